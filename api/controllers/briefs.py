from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
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
from domain.content.briefs import (
    BriefCreate,
    BriefOut,
    BriefPage,
    BriefService,
    BriefStatus,
    BriefUpdate,
    Delivery,
    brief_out,
)
from domain.core.context import Context


def _answer(brief: Any, status_code: int = 200) -> Response[BriefOut]:
    return Response(brief_out(brief), status_code=status_code, headers={"ETag": etag(brief.version)})


class BriefController(Controller):
    path = "/v1"
    tags = ["Briefs"]
    security = SECURED

    @post("/brands/{brand_id:uuid}/briefs", operation_id="createBrief",
          summary="Brief the designer or video maker: formats and sizes per target network come from the networks",
          **requires(Action.POSTS_WRITE), responses=problems(*CREATE, 404), status_code=HTTP_201_CREATED,
          response_headers=ETAG_HEADER)
    async def create_brief(self, ctx: NamedDependency[Context], brand_id: FromPath[UUID],
                           data: JSONBody[BriefCreate]) -> Response[BriefOut]:
        brief = await BriefService(ctx).create(brand_id, data)
        answer = _answer(brief, HTTP_201_CREATED)
        answer.headers["Location"] = f"/v1/briefs/{brief.id}"
        return answer

    @get("/briefs", operation_id="listBriefs", summary="Briefs, by brand, post, status, assignee or due date",
         **requires(Action.POSTS_READ), responses=problems(*LIST))
    async def list_briefs(
        self, ctx: NamedDependency[Context], limit: Limit = 50, cursor: Cursor = None,
        brand_id: FromQuery[UUID | None] = None, post_id: FromQuery[UUID | None] = None,
        status: FromQuery[BriefStatus | None] = None, assignee_id: FromQuery[UUID | None] = None,
        due_before: Annotated[datetime | None, QueryParameter(description="Due before this instant (with offset)")] = None,
    ) -> BriefPage:
        page = await BriefService(ctx).list(page_request(limit, cursor), brand_id=brand_id, post_id=post_id,
                                            status=status, assignee_id=assignee_id, due_before=due_before)
        return page_out(BriefPage, page)

    @get("/briefs/{brief_id:uuid}", operation_id="getBrief", summary="One brief", **requires(Action.POSTS_READ),
         responses=problems(*READ), response_headers=ETAG_HEADER)
    async def get_brief(self, ctx: NamedDependency[Context], brief_id: FromPath[UUID]) -> Response[BriefOut]:
        return _answer(await BriefService(ctx).get(brief_id))

    @patch("/briefs/{brief_id:uuid}", operation_id="updateBrief",
           summary="Edit a brief or move its status (open, in_progress, changes_requested, accepted, cancelled)",
           **requires(Action.POSTS_WRITE), responses=problems(*WRITE), response_headers=ETAG_HEADER)
    async def update_brief(self, ctx: NamedDependency[Context], brief_id: FromPath[UUID], data: JSONBody[BriefUpdate],
                           request: Request[Any, Any, Any],
                           if_match: Annotated[str | None, IF_MATCH] = None) -> Response[BriefOut]:
        return _answer(await BriefService(ctx).update(brief_id, data, if_match_version(request)))

    @delete("/briefs/{brief_id:uuid}", operation_id="deleteBrief", summary="Delete a brief",
            **requires(Action.POSTS_WRITE), responses=problems(*DELETE), status_code=HTTP_204_NO_CONTENT)
    async def delete_brief(self, ctx: NamedDependency[Context], brief_id: FromPath[UUID]) -> None:
        await BriefService(ctx).delete(brief_id)

    @post("/briefs/{brief_id:uuid}/deliveries", operation_id="deliverBrief",
          summary="Hand over the media made for a brief; it goes onto the brief's variants",
          **requires(Action.POSTS_WRITE, "With `attach` (the default) the media is added to the variant the brief "
                     "is for, or to each variant of its post on the brief's networks, and checked there against "
                     "each network's rules. A scheduled post that the media would break refuses it (422)."),
          responses=problems(*WRITE), status_code=200, response_headers=ETAG_HEADER)
    async def deliver(self, ctx: NamedDependency[Context], brief_id: FromPath[UUID],
                      data: JSONBody[Delivery]) -> Response[BriefOut]:
        return _answer(await BriefService(ctx).deliver(brief_id, data))
