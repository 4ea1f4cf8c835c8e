"""Publishing (tag "Publishing"): publish a scheduled post now, retry a failed variant,
cancel what is waiting, and the publishing log of a variant. The sending itself is the
workers' (workers/publishing.py): these routes only change what the sweep will claim."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from api.auth import etag, requires
from api.controllers.agencies import ETAG_HEADER
from api.problems import READ, SECURED, WRITE, problems
from domain.agencies.rules import Action
from domain.content import schemas as cs
from domain.content.service import post_out
from domain.core.context import Context
from domain.publishing.schemas import AttemptList, attempt_out
from domain.publishing.service import PublishingService


def _answer(loaded) -> Response[cs.PostOut]:  # noqa: ANN001 - domain.content.service.Loaded
    return Response(post_out(loaded), status_code=200, headers={"ETag": etag(loaded.post.version)})


class PublishingController(Controller):
    path = "/v1"
    tags = ["Publishing"]
    security = SECURED

    @post("/posts/{post_id:uuid}/publish-now", operation_id="publishPostNow",
          summary="Publish a scheduled post now instead of at its time",
          **requires(Action.POSTS_WRITE, "Every variant must be approved and scheduled (409 otherwise). The post's "
                     "time becomes now and the workers claim it at once; approvals are checked again before sending."),
          responses=problems(*WRITE), status_code=200, response_headers=ETAG_HEADER)
    async def publish_now(self, ctx: NamedDependency[Context], post_id: FromPath[UUID]) -> Response[cs.PostOut]:
        return _answer(await PublishingService(ctx).publish_now(post_id))

    @post("/posts/{post_id:uuid}/variants/{variant_id:uuid}/retry", operation_id="retryPostVariant",
          summary="Send a failed variant again",
          **requires(Action.POSTS_WRITE, "Only a failed variant (409 otherwise). It is scheduled again, now if its "
                     "time has passed; the attempt budget and lateness limit count again from the retry."),
          responses=problems(*WRITE), status_code=200, response_headers=ETAG_HEADER)
    async def retry(self, ctx: NamedDependency[Context], post_id: FromPath[UUID],
                    variant_id: FromPath[UUID]) -> Response[cs.PostOut]:
        return _answer(await PublishingService(ctx).retry(post_id, variant_id))

    @post("/posts/{post_id:uuid}/cancel", operation_id="cancelPostPublishing",
          summary="Stop what is waiting to be published: scheduled variants go back to draft",
          **requires(Action.POSTS_WRITE, "Variants already being sent or published are not touched; 409 when "
                     "nothing is waiting."),
          responses=problems(*WRITE), status_code=200, response_headers=ETAG_HEADER)
    async def cancel(self, ctx: NamedDependency[Context], post_id: FromPath[UUID]) -> Response[cs.PostOut]:
        return _answer(await PublishingService(ctx).cancel(post_id))

    @get("/posts/{post_id:uuid}/variants/{variant_id:uuid}/attempts", operation_id="listPublishAttempts",
         summary="The publishing log of a variant: every attempt with its outcome, newest first",
         **requires(Action.POSTS_READ), responses=problems(*READ))
    async def attempts(self, ctx: NamedDependency[Context], post_id: FromPath[UUID],
                       variant_id: FromPath[UUID]) -> AttemptList:
        rows = await PublishingService(ctx).attempts(post_id, variant_id)
        return AttemptList(items=[attempt_out(a) for a in rows])
