"""Share links, the team's side: create (the address is shown once), list, read, revoke."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.auth import requires
from api.controllers.common import Cursor, Limit, page_out, page_request
from api.problems import CREATE, DELETE, LIST, READ, SECURED, problems
from domain.agencies.rules import Action
from domain.approvals import share_schemas as s
from domain.approvals.share import ShareLinkService
from domain.core.context import Context


class ShareLinkController(Controller):
    path = "/v1"
    tags = ["Share links"]
    security = SECURED

    @post("/brands/{brand_id:uuid}/share-links", operation_id="createShareLink",
          summary="A link for the client to see chosen posts or a date range, and comment or approve",
          **requires(Action.POSTS_WRITE, (
              "Give `posts` (ids of this brand's posts) or `range` (dates in the brand's zone: the client sees "
              "the calendar and every post in it). `permission`: view, comment or approve. The link expires after "
              f"`expires_in_days` (default {s.DEFAULT_EXPIRY_DAYS}, at most {s.MAX_EXPIRY_DAYS}). The `url` is "
              "in this answer only: Chorus keeps the SHA-256 of its token, never the token.")),
          responses=problems(*CREATE, 404), status_code=HTTP_201_CREATED)
    async def create_link(self, ctx: NamedDependency[Context], state: State, brand_id: FromPath[UUID],
                          data: JSONBody[s.ShareLinkCreate]) -> Response[s.ShareLinkCreated]:
        created = await ShareLinkService(ctx, state.mailer).create(brand_id, data, state.settings.api_base_url)
        return Response(created, status_code=HTTP_201_CREATED,
                        headers={"Location": f"/v1/share-links/{created.id}", "Cache-Control": "no-store"})

    @get("/share-links", operation_id="listShareLinks", summary="Share links, newest first (never their addresses)",
         **requires(Action.POSTS_READ), responses=problems(*LIST))
    async def list_links(self, ctx: NamedDependency[Context], limit: Limit = 50, cursor: Cursor = None,
                         brand_id: FromQuery[UUID | None] = None) -> s.ShareLinkPage:
        return page_out(s.ShareLinkPage, await ShareLinkService(ctx).list(page_request(limit, cursor), brand_id))

    @get("/share-links/{share_link_id:uuid}", operation_id="getShareLink",
         summary="One share link, who reviewed through it and what they decided",
         **requires(Action.POSTS_READ), responses=problems(*READ))
    async def get_link(self, ctx: NamedDependency[Context], share_link_id: FromPath[UUID]) -> s.ShareLinkDetail:
        return await ShareLinkService(ctx).read(share_link_id)

    @delete("/share-links/{share_link_id:uuid}", operation_id="revokeShareLink",
            summary="Revoke a share link: its page answers 410 from now on",
            **requires(Action.POSTS_WRITE, "Revoking twice is harmless; other links to the same posts keep working."),
            responses=problems(*DELETE), status_code=HTTP_204_NO_CONTENT)
    async def revoke_link(self, ctx: NamedDependency[Context], share_link_id: FromPath[UUID]) -> None:
        await ShareLinkService(ctx).revoke(share_link_id)


__all__: list[Any] = ["ShareLinkController"]
