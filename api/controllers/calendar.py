from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.auth import etag, if_match_version, requires
from api.controllers.agencies import ETAG_HEADER, IF_MATCH
from api.problems import CREATE, DELETE, LIST, READ, SECURED, WRITE, problems
from domain.agencies.rules import Action, Principal
from domain.calendar import rules
from domain.calendar import schemas as s
from domain.calendar.rules import View
from domain.calendar.service import FEED_PREFIX, CalendarService, PlanCache, render_feed
from domain.content import schemas as content_schemas
from domain.content.rules import VariantStatus
from domain.content.service import Loaded, post_out
from domain.core.context import Context
from domain.core.db import scoped_session
from domain.core.errors import NotFoundError
from domain.core.security import OpaqueToken
from domain.networks.adapters.base import Network

# This process's encoded calendars, reused while unchanged (see PlanCache).
PLANS = PlanCache()

BrandIds = Annotated[list[UUID] | None, QueryParameter(
    max_items=50, description="One or more brands (repeat the parameter); default every brand you can see")]
From = Annotated[date | None, QueryParameter(name="from", description="First day, in each brand's zone (with `to`)")]
To = Annotated[date | None, QueryParameter(name="to", description="Last day, included (at most 366 days)")]
ViewParam = Annotated[View | None, QueryParameter(description="A week (Monday first), month or quarter around "
                                                  "`date`; the default is the month")]
OnDate = Annotated[date | None, QueryParameter(name="date", description="The day the view holds (default today)")]


def accepts_gzip(header: str) -> bool:
    """Accept-Encoding allows gzip (RFC 9110 12.5.3: named, or `*`, with a q above 0)."""
    allowed = False
    for item in header.lower().split(","):
        name, _, params = item.partition(";")
        name, q = name.strip(), 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name == "gzip":
            return q > 0
        if name == "*":
            allowed = q > 0
    return allowed


def _post_answer(loaded: Loaded) -> Response[content_schemas.PostOut]:
    return Response(post_out(loaded), headers={"ETag": etag(loaded.post.version)})


class CalendarController(Controller):
    path = "/v1"
    tags = ["Calendar"]
    security = SECURED

    @get("/calendar", operation_id="getCalendar",
         summary="The plan by day in each brand's zone, with the posting slots, conflicts and unscheduled ideas",
         **requires(Action.POSTS_READ, "Posts fall on their brand's local date (a post at 23:30 UTC is on the next "
                    "day in Madrid). Filters (campaign, network, status, label) narrow the posts shown; slot "
                    "occupancy (`free`) and `conflicts` always count every planned post of the brands. A conflict "
                    "is two posts of a brand on one network at most `conflict_window` minutes apart."),
         responses=problems(*LIST, 404))
    async def get_calendar(
        self, ctx: NamedDependency[Context], request: Request[Any, Any, Any], brand_id: BrandIds = None, date_from: From = None, date_to: To = None,
        view: ViewParam = None, on: OnDate = None, campaign_id: FromQuery[UUID | None] = None,
        network: FromQuery[Network | None] = None, status: FromQuery[VariantStatus | None] = None,
        label: Annotated[str | None, QueryParameter(max_length=50)] = None,
        conflict_window: Annotated[int, QueryParameter(ge=0, le=1440, description="Minutes (default 30)")] =
        rules.DEFAULT_CONFLICT_MINUTES,
    ) -> Response[s.Calendar]:
        encoded = await CalendarService(ctx).calendar(
            PLANS, brand_ids=brand_id, first=date_from, last=date_to, view=view, on=on, campaign_id=campaign_id,
            network=network, status=status.value if status else None, label=label, conflict_minutes=conflict_window)
        if accepts_gzip(request.headers.get("accept-encoding", "")):
            return Response(encoded.gzipped(), media_type="application/json",  # type: ignore[arg-type]
                            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        return Response(encoded.body, media_type="application/json",  # type: ignore[arg-type]
                        headers={"Vary": "Accept-Encoding"})

    @get("/calendar/export.csv", operation_id="exportCalendarCsv",
         summary="The plan as CSV: one row per variant, times in each brand's zone and in UTC",
         **requires(Action.POSTS_READ, "UTF-8 with a byte order mark (spreadsheets need it for accents). Cells that "
                    "a spreadsheet would run as a formula (starting with = + - @) get a leading apostrophe. Same "
                    "range parameters as getCalendar, at most 366 days."),
         media_type="text/csv", responses=problems(*LIST, 404))
    async def export_csv(self, ctx: NamedDependency[Context], brand_id: BrandIds = None, date_from: From = None,
                         date_to: To = None, view: ViewParam = None, on: OnDate = None) -> Response[str]:
        filename, body = await CalendarService(ctx).export_csv(brand_ids=brand_id, first=date_from, last=date_to,
                                                               view=view, on=on)
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @get("/brands/{brand_id:uuid}/posting-slots", operation_id="listPostingSlots",
         summary="The brand's weekly posting slots per network, in its wall-clock time",
         **requires(Action.POSTS_READ), responses=problems(*READ))
    async def list_slots(self, ctx: NamedDependency[Context], brand_id: FromPath[UUID]) -> s.SlotList:
        return await CalendarService(ctx).slots(brand_id)

    @put("/brands/{brand_id:uuid}/posting-slots", operation_id="putPostingSlots",
         summary="Replace the brand's weekly posting slots",
         **requires(Action.SCHEDULE_WRITE, "Times are the brand's wall clock. On the spring-forward day a time "
                    "that does not exist (02:30 in Madrid) happens as late as the clock jumped (03:30); on the "
                    "fall-back day a time that happens twice is the first one (summer time)."),
         responses=problems(*WRITE))
    async def put_slots(self, ctx: NamedDependency[Context], brand_id: FromPath[UUID],
                        data: JSONBody[s.SlotsIn]) -> s.SlotList:
        return await CalendarService(ctx).put_slots(brand_id, data)

    @post("/posts/{post_id:uuid}/queue", operation_id="queuePost",
          summary="Add to queue: give the post the next free posting slot after now",
          **requires(Action.POSTS_WRITE, "A slot is free when no other post of the brand on that network is planned "
                     "at that instant. A post for several networks takes one instant: with `match: any` (default) "
                     "the earliest slot of any of its networks that is free on all of them; with `match: all` the "
                     "earliest instant that is a slot of every one of its networks. `schedule: true` also schedules "
                     "it (it must be ready); otherwise it is only planned there. Looks 180 days ahead; 409 "
                     "`no-posting-slots` or `no-free-slot` when there is none."),
          responses=problems(*WRITE), status_code=200, response_headers=ETAG_HEADER)
    async def queue(self, ctx: NamedDependency[Context], post_id: FromPath[UUID], data: JSONBody[s.QueueIn],
                    request: Request[Any, Any, Any],
                    if_match: Annotated[str | None, IF_MATCH] = None) -> Response[content_schemas.PostOut]:
        return _post_answer(await CalendarService(ctx).queue(post_id, data, if_match_version(request)))

    @post("/posts/{post_id:uuid}/reschedule", operation_id="reschedulePost",
          summary="Move a post to another time; answers the posts it now comes close to",
          **requires(Action.POSTS_WRITE, "Re-validated like updatePost: a scheduled post must stay valid and in the "
                     "future, or nothing changes (422). `conflicts` lists the brand's other posts on the same "
                     "networks within `conflict_window_minutes` (default 30)."),
          responses=problems(*WRITE), status_code=200, response_headers=ETAG_HEADER)
    async def reschedule(self, ctx: NamedDependency[Context], post_id: FromPath[UUID],
                         data: JSONBody[s.RescheduleIn], request: Request[Any, Any, Any],
                         if_match: Annotated[str | None, IF_MATCH] = None) -> Response[s.Rescheduled]:
        loaded, nearby = await CalendarService(ctx).reschedule(post_id, data, if_match_version(request))
        return Response(s.Rescheduled(post=post_out(loaded), conflicts=nearby),
                        headers={"ETag": etag(loaded.post.version)})

    @post("/brands/{brand_id:uuid}/calendar-feeds", operation_id="createCalendarFeed",
          summary="A private iCalendar address of the brand's plan, for Google Calendar or Outlook",
          **requires(Action.SCHEDULE_WRITE, "The address (`url`) is shown once: keep it; only its hash is stored. "
                     "Anyone with it can read the plan (30 days back, 180 ahead) until it is revoked."),
          responses=problems(*CREATE, 404), status_code=HTTP_201_CREATED)
    async def create_feed(self, ctx: NamedDependency[Context], state: State, brand_id: FromPath[UUID],
                          data: JSONBody[s.FeedIn]) -> s.FeedCreated:
        return await CalendarService(ctx).create_feed(brand_id, data, state.settings.api_base_url)

    @get("/brands/{brand_id:uuid}/calendar-feeds", operation_id="listCalendarFeeds",
         summary="The brand's calendar feeds (never their addresses)", **requires(Action.POSTS_READ),
         responses=problems(*READ))
    async def list_feeds(self, ctx: NamedDependency[Context], brand_id: FromPath[UUID]) -> s.FeedList:
        return await CalendarService(ctx).feeds(brand_id)

    @delete("/calendar-feeds/{feed_id:uuid}", operation_id="revokeCalendarFeed",
            summary="Revoke a calendar feed: its address answers 404 from now on", **requires(Action.SCHEDULE_WRITE),
            responses=problems(*DELETE), status_code=HTTP_204_NO_CONTENT)
    async def revoke_feed(self, ctx: NamedDependency[Context], feed_id: FromPath[UUID]) -> None:
        await CalendarService(ctx).revoke_feed(feed_id)


_FEED_HEADERS = {
    "Cache-Control": "private, max-age=300",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}
_FEED_RESPONSES = {
    200: ResponseSpec(data_container=str, media_type="text/calendar", generate_examples=False,
                      description="RFC 5545 iCalendar: one event per planned post, times in UTC"),
    **problems(400, 404),
}


class CalendarFeedController(Controller):
    """The public side of calendar feeds: the unguessable address is the credential."""

    path = "/calendar"
    tags = ["Calendar"]

    @get("/{token:str}", operation_id="getCalendarFeed", summary="A brand's plan as an iCalendar feed",
         description="`token` is the last part of the address createCalendarFeed returned, ending in `.ics`. "
         "No credential: the address is the secret. Unknown, altered or revoked addresses answer 404.",
         opt={"public": True}, media_type="text/calendar", responses=_FEED_RESPONSES)
    async def feed(self, state: State, token: FromPath[str]) -> Response[str]:
        parsed = OpaqueToken.parse(token[: -len(".ics")], FEED_PREFIX) if token.endswith(".ics") else None
        if parsed is None:
            raise NotFoundError()
        settings = state.settings
        session = scoped_session(state.session_factory, agency_id=parsed.agency_id)
        try:
            ctx = Context(Principal(agency_id=parsed.agency_id, label="calendar feed"), session=session)
            body = await render_feed(ctx, parsed, urlsplit(settings.api_base_url).hostname or "chorus")
            await session.commit()
        except BaseException:
            await asyncio.shield(session.rollback())
            raise
        finally:
            await asyncio.shield(session.close())
        return Response(body, media_type="text/calendar; charset=utf-8", headers=_FEED_HEADERS)
