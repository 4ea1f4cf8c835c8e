from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.auth import etag, if_match_version, requires
from api.controllers.agencies import ETAG_HEADER, IF_MATCH
from api.controllers.common import Cursor, Limit, page_out, page_request
from api.problems import CREATE, DELETE, LIST, READ, SECURED, WRITE, problems
from domain.agencies.rules import Action
from domain.content import schemas as s
from domain.content.rules import VariantStatus
from domain.content.service import Loaded, PostService, post_out
from domain.core.context import Context
from domain.networks.adapters.base import Network

PostSort = Annotated[
    Literal["created_at", "-created_at", "updated_at", "-updated_at"] | None,
    QueryParameter(description="Sort order; '-' for descending (default -created_at)"),
]


def _answer(loaded: Loaded, status_code: int = 200) -> Response[s.PostOut]:
    return Response(post_out(loaded), status_code=status_code, headers={"ETag": etag(loaded.post.version)})


class PostController(Controller):
    path = "/v1"
    tags = ["Posts"]
    security = SECURED

    @post("/brands/{brand_id:uuid}/posts", operation_id="createPost",
          summary="Write a post for a brand, with one variant per social account",
          **requires(Action.POSTS_WRITE, "Each variant is checked against its network's rules at once; the issues "
                     "come back on each variant (`issues`), and `ready` says whether it can be scheduled. Saving a "
                     "draft with issues is allowed."),
          responses=problems(*CREATE, 404), status_code=HTTP_201_CREATED, response_headers=ETAG_HEADER)
    async def create_post(self, ctx: NamedDependency[Context], brand_id: FromPath[UUID],
                          data: JSONBody[s.PostCreate]) -> Response[s.PostOut]:
        loaded = await PostService(ctx).create(brand_id, data)
        answer = _answer(loaded, HTTP_201_CREATED)
        answer.headers["Location"] = f"/v1/posts/{loaded.post.id}"
        return answer

    @get("/posts", operation_id="listPosts", summary="Posts, filtered by brand, campaign, status, label, network or time",
         **requires(Action.POSTS_READ), responses=problems(*LIST))
    async def list_posts(
        self, ctx: NamedDependency[Context], limit: Limit = 50, cursor: Cursor = None, sort: PostSort = None,
        brand_id: FromQuery[UUID | None] = None, campaign_id: FromQuery[UUID | None] = None,
        status: FromQuery[VariantStatus | None] = None,
        label: Annotated[str | None, QueryParameter(max_length=50)] = None,
        network: FromQuery[Network | None] = None,
        scheduled_from: Annotated[datetime | None, QueryParameter(description="From this instant (with offset)")] = None,
        scheduled_to: Annotated[datetime | None, QueryParameter(description="Before this instant (with offset)")] = None,
    ) -> s.PostPage:
        page = await PostService(ctx).list(
            page_request(limit, cursor, sort), brand_id=brand_id, campaign_id=campaign_id,
            status=status.value if status else None, label=label, network=network,
            scheduled_from=scheduled_from, scheduled_to=scheduled_to)
        return page_out(s.PostPage, page)

    @get("/posts/{post_id:uuid}", operation_id="getPost", summary="One post with its variants and their issues",
         **requires(Action.POSTS_READ), responses=problems(*READ), response_headers=ETAG_HEADER)
    async def get_post(self, ctx: NamedDependency[Context], post_id: FromPath[UUID]) -> Response[s.PostOut]:
        return _answer(await PostService(ctx).read(post_id))

    @patch("/posts/{post_id:uuid}", operation_id="updatePost",
           summary="Change title, labels, campaign or time; a scheduled post is re-checked",
           **requires(Action.POSTS_WRITE, "Moving a scheduled post re-validates it; a change that would break a "
                      "network's rules is refused (422 `post-not-ready`) and nothing is saved."),
           responses=problems(*WRITE), response_headers=ETAG_HEADER)
    async def update_post(self, ctx: NamedDependency[Context], post_id: FromPath[UUID], data: JSONBody[s.PostUpdate],
                          request: Request[Any, Any, Any],
                          if_match: Annotated[str | None, IF_MATCH] = None) -> Response[s.PostOut]:
        return _answer(await PostService(ctx).update(post_id, data, if_match_version(request)))

    @delete("/posts/{post_id:uuid}", operation_id="deletePost", summary="Delete a post that has not been published",
            **requires(Action.POSTS_WRITE), responses=problems(*DELETE, 412), status_code=HTTP_204_NO_CONTENT)
    async def delete_post(self, ctx: NamedDependency[Context], post_id: FromPath[UUID], request: Request[Any, Any, Any],
                          if_match: Annotated[str | None, IF_MATCH] = None) -> None:
        await PostService(ctx).delete(post_id, if_match_version(request))

    @post("/posts/{post_id:uuid}/variants", operation_id="addPostVariant",
          summary="Add a variant for another social account of the brand", **requires(Action.POSTS_WRITE),
          responses=problems(*CREATE, 404), status_code=HTTP_201_CREATED, response_headers=ETAG_HEADER)
    async def add_variant(self, ctx: NamedDependency[Context], post_id: FromPath[UUID],
                          data: JSONBody[s.VariantIn]) -> Response[s.PostOut]:
        return _answer(await PostService(ctx).add_variant(post_id, data), HTTP_201_CREATED)

    @patch("/posts/{post_id:uuid}/variants/{variant_id:uuid}", operation_id="updatePostVariant",
           summary="Edit one variant's copy, options or media", **requires(Action.POSTS_WRITE),
           responses=problems(*WRITE), response_headers=ETAG_HEADER)
    async def update_variant(self, ctx: NamedDependency[Context], post_id: FromPath[UUID], variant_id: FromPath[UUID],
                             data: JSONBody[s.VariantUpdate], request: Request[Any, Any, Any],
                             if_match: Annotated[str | None, IF_MATCH] = None) -> Response[s.PostOut]:
        return _answer(await PostService(ctx).update_variant(post_id, variant_id, data, if_match_version(request)))

    @delete("/posts/{post_id:uuid}/variants/{variant_id:uuid}", operation_id="removePostVariant",
            summary="Remove one variant", **requires(Action.POSTS_WRITE), responses=problems(*DELETE, 412),
            status_code=200, response_headers=ETAG_HEADER)
    async def remove_variant(self, ctx: NamedDependency[Context], post_id: FromPath[UUID], variant_id: FromPath[UUID],
                             request: Request[Any, Any, Any],
                             if_match: Annotated[str | None, IF_MATCH] = None) -> Response[s.PostOut]:
        return _answer(await PostService(ctx).delete_variant(post_id, variant_id, if_match_version(request)))

    @post("/posts/{post_id:uuid}/schedule", operation_id="schedulePost",
          summary="Commit the post to publish at its time (refused while a variant breaks its network's rules)",
          **requires(Action.POSTS_WRITE), responses=problems(*WRITE), status_code=200, response_headers=ETAG_HEADER)
    async def schedule(self, ctx: NamedDependency[Context], post_id: FromPath[UUID], data: JSONBody[s.ScheduleIn],
                       request: Request[Any, Any, Any],
                       if_match: Annotated[str | None, IF_MATCH] = None) -> Response[s.PostOut]:
        return _answer(await PostService(ctx).schedule(post_id, data, if_match_version(request)))

    @post("/posts/{post_id:uuid}/unschedule", operation_id="unschedulePost",
          summary="Take a scheduled post back to draft; it keeps its planned time", **requires(Action.POSTS_WRITE),
          responses=problems(*WRITE), status_code=200, response_headers=ETAG_HEADER)
    async def unschedule(self, ctx: NamedDependency[Context], post_id: FromPath[UUID], request: Request[Any, Any, Any],
                         if_match: Annotated[str | None, IF_MATCH] = None) -> Response[s.PostOut]:
        return _answer(await PostService(ctx).unschedule(post_id, if_match_version(request)))

    @get("/posts/{post_id:uuid}/revisions", operation_id="listPostRevisions",
         summary="Every edit of the post, newest first", **requires(Action.POSTS_READ),
         responses=problems(*LIST, 404))
    async def list_revisions(self, ctx: NamedDependency[Context], post_id: FromPath[UUID], limit: Limit = 50,
                             cursor: Cursor = None) -> s.RevisionPage:
        return page_out(s.RevisionPage, await PostService(ctx).revisions(post_id, page_request(limit, cursor)))

    @get("/posts/{post_id:uuid}/revisions/{number:int}", operation_id="getPostRevision",
         summary="The post's whole content as it was at one revision", **requires(Action.POSTS_READ),
         responses=problems(*READ, 422))
    async def get_revision(self, ctx: NamedDependency[Context], post_id: FromPath[UUID],
                           number: FromPath[int]) -> s.RevisionDetail:
        return await PostService(ctx).revision(post_id, number)

    @get("/posts/{post_id:uuid}/revisions/{number:int}/diff", operation_id="diffPostRevision",
         summary="What changed at a revision (against the one before, or `against`)", **requires(Action.POSTS_READ),
         responses=problems(*READ, 422))
    async def diff_revision(
        self, ctx: NamedDependency[Context], post_id: FromPath[UUID],
        number: FromPath[int],
        against: Annotated[int | None, QueryParameter(ge=1, le=1_000_000)] = None,
    ) -> s.RevisionDiff:
        return await PostService(ctx).diff(post_id, number, against)

    @post("/posts/{post_id:uuid}/copy-suggestions", operation_id="suggestVariantCopy",
          summary="Start another network's copy from a variant or the brand's hashtag sets (nothing is saved)",
          **requires(Action.POSTS_READ), responses=problems(*READ, 422), status_code=200)
    async def suggest_copy(self, ctx: NamedDependency[Context], post_id: FromPath[UUID],
                           data: JSONBody[s.CopyRequest]) -> s.CopySuggestion:
        return await PostService(ctx).suggest_copy(post_id, data)

    @post("/variant-checks", operation_id="checkVariant",
          summary="Check copy, options and media against a network's rules as the user types (nothing is saved)",
          **requires(Action.POSTS_READ), responses=problems(*READ, 422), status_code=200)
    async def check_variant(self, ctx: NamedDependency[Context], data: JSONBody[s.VariantCheck]) -> s.CheckResult:
        return await PostService(ctx).check(data)
