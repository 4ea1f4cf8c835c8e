"""The calendar: what is planned when, the weekly posting schedule, moving posts onto it, and
the read-only views of the plan (iCalendar feeds, CSV export).

The calendar read is a hot path (a planner scrolls quarters): Core rows only, one query for
the posts with their variants aggregated by PostgreSQL, one for the brands, one for the
slots and one for the ideas; filters on status, label, campaign and network are applied in
Python so slot occupancy and conflicts always see every planned post.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import DateTime, Select, Uuid, bindparam, delete, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, array_agg

from domain.agencies.rules import Action
from domain.brands.models import Brand
from domain.calendar import rules
from domain.calendar import schemas as s
from domain.calendar.models import CalendarFeed, PostingSlot
from domain.calendar.rules import MatchSlots, Planned, Slot, View
from domain.content import schemas as content_schemas
from domain.content.models import Post, PostVariant, PostVariantMedia
from domain.content.rules import VariantStatus
from domain.content.service import Loaded, PostService
from domain.core.clock import now
from domain.core.context import Context
from domain.core.errors import ConflictError, NotFoundError, ValidationFailedError
from domain.core.security import OpaqueToken
from domain.networks.adapters.base import Network
from domain.networks.catalog import CATALOG
from domain.networks.models import SocialAccount

FEED_PREFIX = "ccf"
IDEAS_MAX = 200
# A feed's last use is stamped at most this often (calendar apps poll every few minutes).
FEED_STAMP_EVERY = timedelta(hours=1)


class NoPostingSlotsError(ConflictError):
    slug = "no-posting-slots"
    title = "The brand has no posting slot for this post's networks"


class NoFreeSlotError(ConflictError):
    slug = "no-free-slot"
    title = "No free posting slot in the coming months"


@dataclass(frozen=True)
class BrandRow:
    id: UUID
    name: str
    slug: str
    time_zone: str
    version: int
    # Set while the brand's publishing is paused (its due posts are held).
    publishing_paused_at: datetime | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def resolve_range(first: date | None, last: date | None, view: View | None, on: date | None,
                  today: date) -> tuple[date, date]:
    """from/to, or a view around a date (today by default); a month when nothing is given."""
    if (first is not None or last is not None) and (view is not None or on is not None):
        raise ValidationFailedError.field("from", "Give either from and to, or view and date, not both")
    if first is not None or last is not None:
        if first is None or last is None:
            raise ValidationFailedError.field("to" if last is None else "from", "Give both from and to")
    else:
        first, last = rules.view_range(view or View.MONTH, on or today)
    for name, value in (("from", first), ("to", last)):
        if not rules.in_bounds(value):
            raise ValidationFailedError.field(name, f"Dates go from {rules.EARLIEST} to {rules.LATEST}")
    if last < first:
        raise ValidationFailedError.field("to", "to is before from")
    if (last - first).days + 1 > rules.MAX_RANGE_DAYS:
        raise ValidationFailedError.field("to", f"At most {rules.MAX_RANGE_DAYS} days at once")
    return first, last


def _check_instant(value: datetime, field: str) -> None:
    if not rules.in_bounds(value.date()):
        raise ValidationFailedError.field(field, f"Choose a time between {rules.EARLIEST} and {rules.LATEST}")


# The variants of each post, aggregated in the database: one row per post.
_P = Post.__table__
_V = PostVariant.__table__
_ORDER = (_V.c.position, _V.c.created_at)
_ERRORS = func.jsonb_array_length(func.jsonb_path_query_array(
    _V.c.issues, literal_column("""'$[*] ? (@.severity == "error")'::jsonpath""")))


def _agg(column: Any) -> Any:
    return array_agg(aggregate_order_by(column, *_ORDER)).filter(_V.c.id.is_not(None))


_POST_COLUMNS = (
    _P.c.id, _P.c.brand_id, _P.c.campaign_id, _P.c.title, _P.c.labels, _P.c.scheduled_at, _P.c.status,
    _agg(_V.c.network).label("networks"), _agg(_V.c.status).label("statuses"),
    _agg(_ERRORS).label("errors"),
)


# The brands asked for (or all those the caller sees) and a fingerprint of their plan, in one
# round trip: the posts in range and the ideas (count, latest change, versions, statuses) and
# the slots. Brand names and zones are in the cache key through the brands' versions. Every
# change made through PostService touches its post (`updated_at`, `version`), variants
# included. The window is the range widened to whole UTC days on either side, a superset of
# every zone's local days: never narrower than what is shown.
_WINDOW = "(p.scheduled_at >= :start AND p.scheduled_at < :end OR p.scheduled_at IS NULL)"
_BRANDS_AND_PLAN = text(f"""
WITH b AS (
  SELECT id, name, slug, time_zone, version, publishing_paused_at FROM brands
   WHERE agency_id = :agency
     AND (cardinality(:wanted) = 0 OR id = ANY(:wanted))
     AND (:visible IS NULL OR id = ANY(:visible))
)
SELECT b.id, b.name, b.slug, b.time_zone, b.version, b.publishing_paused_at, f.plan
  FROM b CROSS JOIN (SELECT row(
    (SELECT row(count(*), max(p.updated_at), sum(p.version), sum(hashtext(p.status))) FROM posts p
      WHERE p.agency_id = :agency AND p.brand_id IN (SELECT id FROM b) AND {_WINDOW}),
    (SELECT row(count(*), max(s.updated_at)) FROM posting_slots s
      WHERE s.agency_id = :agency AND s.brand_id IN (SELECT id FROM b))
  )::text AS plan) f
 ORDER BY b.name, b.id
""").bindparams(bindparam("agency", type_=Uuid), bindparam("wanted", type_=ARRAY(Uuid)),
                bindparam("visible", type_=ARRAY(Uuid)), bindparam("start", type_=DateTime(timezone=True)),
                bindparam("end", type_=DateTime(timezone=True)))
# The variants of those posts, for writes that change a variant alone (a publishing worker
# marking one variant published): about five times the work of the above, so it runs when an
# answer is built and then at most every `PlanCache.recheck_seconds` per answer.
_VARIANTS_PLAN = text(f"""
SELECT row(count(*), max(v.updated_at), sum(hashtext(v.status)))::text
  FROM posts p JOIN post_variants v ON v.post_id = p.id AND v.agency_id = p.agency_id
 WHERE p.agency_id = :agency AND p.brand_id = ANY(:brands) AND {_WINDOW}
""").bindparams(bindparam("agency", type_=Uuid), bindparam("brands", type_=ARRAY(Uuid)),
                bindparam("start", type_=DateTime(timezone=True)), bindparam("end", type_=DateTime(timezone=True)))


class Encoded:
    """An encoded calendar answer, and its gzip form made on first demand (a quarter of a
    busy brand is about a megabyte of JSON and a tenth of that compressed)."""

    __slots__ = ("body", "_gzipped")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._gzipped: bytes | None = None

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped


@dataclass
class _Cached:
    plan: Any  # the brands-and-posts fingerprint
    variants: Any  # the variants' fingerprint
    checked: float  # monotonic time the variants' fingerprint was last compared
    encoded: Encoded


class PlanCache:
    """Encoded calendar answers, per process, reused while the plan they were built from is
    unchanged: a planner, or a whole team, reading the same quarter again costs one small
    aggregate query instead of rebuilding thousands of objects. Changes made through the
    API show at once; a write that changes a variant without touching its post shows within
    `recheck_seconds`. Least recently used answers go first beyond `max_entries` or `max_bytes`."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 64 * 1024 * 1024,
                 recheck_seconds: float = 5.0) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.recheck_seconds = recheck_seconds
        self._entries: OrderedDict[Any, _Cached] = OrderedDict()
        self._bytes = 0

    def get(self, key: Any, plan: Any) -> _Cached | None:
        entry = self._entries.get(key)
        if entry is None or entry.plan != plan:
            return None
        self._entries.move_to_end(key)
        return entry

    def due(self, entry: _Cached) -> bool:
        return monotonic() - entry.checked >= self.recheck_seconds

    def put(self, key: Any, entry: _Cached) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.encoded.body)
        if len(entry.encoded.body) > self.max_bytes:
            return
        self._entries[key] = entry
        self._bytes += len(entry.encoded.body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped.encoded.body)


def _window(first: date, last: date) -> dict[str, datetime]:
    return {"start": datetime.combine(first - timedelta(days=1), time(0), tzinfo=UTC),
            "end": datetime.combine(last + timedelta(days=2), time(0), tzinfo=UTC)}


def _today(brands: Sequence[BrandRow]) -> date:
    return datetime.now(brands[0].zone if brands else UTC).date()


@dataclass
class CalendarService:
    ctx: Context

    # --- reading the plan ------------------------------------------------------------------

    async def calendar(self, cache: PlanCache | None, *, brand_ids: Sequence[UUID] | None, first: date | None,
                       last: date | None, view: View | None, on: date | None, campaign_id: UUID | None = None,
                       network: Network | None = None, status: str | None = None, label: str | None = None,
                       conflict_minutes: int = rules.DEFAULT_CONFLICT_MINUTES) -> Encoded:
        """The calendar, encoded (a busy quarter is about a megabyte of JSON); from `cache`
        while the plan it was built from is unchanged."""
        self.ctx.require(Action.POSTS_READ)
        # "Today" is the first brand's; only a range around today needs the brands first.
        today = _today(await self._brands(brand_ids)) if first is None and last is None and on is None else None
        first, last = resolve_range(first, last, view, on, today or date.today())
        brands, plan = await self._brands_and_plan(brand_ids, first, last)
        args = (campaign_id, network, status, label.strip().lower() if label else None, conflict_minutes)
        if cache is None or not brands:
            return Encoded(msgspec.json.encode(await self._build(brands, first, last, *args)))
        key = (self.ctx.agency_id, tuple((b.id, b.version) for b in brands), first, last, *args)
        entry = cache.get(key, plan)
        if entry is not None and cache.due(entry):
            variants = await self._variants_plan(brands, first, last)
            if variants == entry.variants:
                entry.checked = monotonic()
            else:
                entry = None
        if entry is None:
            variants = await self._variants_plan(brands, first, last)
            # Built after the fingerprints were read, so never older than what they vouch for.
            entry = _Cached(plan, variants, monotonic(),
                            Encoded(msgspec.json.encode(await self._build(brands, first, last, *args))))
            cache.put(key, entry)
        return entry.encoded

    async def _brands_and_plan(self, brand_ids: Sequence[UUID] | None, first: date,
                               last: date) -> tuple[list[BrandRow], str | None]:
        wanted = list(dict.fromkeys(brand_ids or ()))
        visible = self.ctx.principal.brand_ids
        rows = (await self.ctx.read(_BRANDS_AND_PLAN, {
            "agency": self.ctx.agency_id, "wanted": wanted, "visible": list(visible) if visible is not None else None,
            **_window(first, last)})).all()
        if wanted and len(rows) != len(wanted):
            raise NotFoundError("No such brand")
        return [BrandRow(*row[:6]) for row in rows], rows[0].plan if rows else None

    async def _variants_plan(self, brands: Sequence[BrandRow], first: date, last: date) -> Any:
        return (await self.ctx.read(_VARIANTS_PLAN, {"agency": self.ctx.agency_id, "brands": [b.id for b in brands],
                                                     **_window(first, last)})).scalar()

    async def _build(self, brands: list[BrandRow], first: date, last: date, campaign_id: UUID | None,
                     network: Network | None, status: str | None, label: str | None,
                     conflict_minutes: int) -> s.Calendar:
        days = {first + timedelta(days=i): s.CalendarDay(date=first + timedelta(days=i), posts=[], slots=[])
                for i in range((last - first).days + 1)}
        answer = s.Calendar(from_=first, to=last, brands=[s.CalendarBrand(id=b.id, name=b.name, time_zone=b.time_zone,
                                                                          publishing_paused_at=b.publishing_paused_at)
                                                           for b in brands],
                            days=list(days.values()), conflicts=[], unscheduled=[], unscheduled_more=False)
        if not brands:
            return answer
        by_id = {b.id: b for b in brands}
        bounds = {b.id: rules.day_bounds(first, last, b.zone) for b in brands}
        start = min(lo for lo, _ in bounds.values())
        end = max(hi for _, hi in bounds.values())

        def shown(row: Any) -> bool:
            return ((campaign_id is None or row.campaign_id == campaign_id)
                    and (status is None or row.status == status)
                    and (label is None or label in (row.labels or ()))
                    and (network is None or network.value in (row.networks or ())))

        rows = (await self.ctx.read(self._posts_stmt(list(by_id)).where(
            _P.c.scheduled_at >= start, _P.c.scheduled_at < end).order_by(_P.c.scheduled_at, _P.c.id))).all()
        planned: list[Planned] = []
        visible: set[UUID] = set()
        for row in rows:
            brand = by_id[row.brand_id]
            lo, hi = bounds[row.brand_id]
            if not lo <= row.scheduled_at < hi:
                continue
            for net in dict.fromkeys(row.networks or ()):
                planned.append(Planned(row.id, net, row.scheduled_at, row.brand_id))
            if shown(row):
                visible.add(row.id)
                item = _post_item(row, brand.zone)
                days[rules.local_date(row.scheduled_at, brand.zone)].posts.append(item)

        taken = {(p.brand_id, p.network, p.at) for p in planned}
        for brand_id, slots in (await self._slots(list(by_id))).items():
            brand = by_id[brand_id]
            if network is not None:
                slots = [slot for slot in slots if slot.network == network.value]
            lo, hi = bounds[brand_id]
            for occurrence in rules.slot_instants(slots, lo, hi, brand.zone):
                if occurrence.day in days:
                    days[occurrence.day].slots.append(s.CalendarSlot(
                        brand_id=brand_id, network=Network(occurrence.slot.network),
                        local_time=rules.hhmm(occurrence.at.astimezone(brand.zone).time()),
                        scheduled_at=occurrence.at, free=(brand_id, occurrence.slot.network, occurrence.at) not in taken,
                        shifted=occurrence.shifted))

        window = timedelta(minutes=conflict_minutes)
        for a, b in rules.conflicts(planned, window):
            if (a.post_id in visible or b.post_id in visible) and (network is None or a.network == network.value):
                answer.conflicts.append(s.CalendarConflict(brand_id=a.brand_id, network=Network(a.network),  # type: ignore[arg-type]
                                                           post_ids=[a.post_id, b.post_id],
                                                           minutes_apart=rules.minutes_apart(a.at, b.at)))

        ideas = self._posts_stmt(list(by_id)).where(_P.c.scheduled_at.is_(None))
        if campaign_id is not None:
            ideas = ideas.where(_P.c.campaign_id == campaign_id)
        if status is not None:
            ideas = ideas.where(_P.c.status == status)
        if label is not None:
            ideas = ideas.where(_P.c.labels.contains([label]))
        if network is not None:
            ideas = ideas.having(func.bool_or(_V.c.network == network.value))
        idea_rows = (await self.ctx.read(ideas.order_by(_P.c.updated_at.desc(), _P.c.id).limit(IDEAS_MAX + 1))).all()
        answer.unscheduled = [_post_item(row, by_id[row.brand_id].zone) for row in idea_rows[:IDEAS_MAX]]
        answer.unscheduled_more = len(idea_rows) > IDEAS_MAX
        return answer

    def _posts_stmt(self, brand_ids: list[UUID]) -> Select[Any]:
        return (select(*_POST_COLUMNS)
                .select_from(_P.outerjoin(_V, (_V.c.post_id == _P.c.id) & (_V.c.agency_id == _P.c.agency_id)))
                .where(_P.c.agency_id == self.ctx.agency_id, _P.c.brand_id.in_(brand_ids))
                .group_by(_P.c.id))

    async def _brands(self, brand_ids: Sequence[UUID] | None) -> list[BrandRow]:
        stmt = self.ctx.visible_brands(self.ctx.select(Brand, Brand.id, Brand.name, Brand.slug, Brand.time_zone,
                                                       Brand.version),
                                       Brand.id)
        wanted = list(dict.fromkeys(brand_ids or ()))
        if wanted:
            stmt = stmt.where(Brand.id.in_(wanted))
        rows = [BrandRow(*row) for row in (await self.ctx.read(stmt.order_by(Brand.name, Brand.id))).all()]
        if wanted and len(rows) != len(wanted):
            raise NotFoundError("No such brand")
        return rows

    async def _brand(self, brand_id: UUID) -> BrandRow:
        return (await self._brands([brand_id]))[0]

    async def _slots(self, brand_ids: list[UUID]) -> dict[UUID, list[Slot]]:
        stmt = self.ctx.select(PostingSlot, PostingSlot.brand_id, PostingSlot.weekday, PostingSlot.local_time,
                               PostingSlot.network).where(PostingSlot.brand_id.in_(brand_ids))
        out: dict[UUID, list[Slot]] = {}
        for brand_id, weekday, at, network in (await self.ctx.read(stmt)).all():
            out.setdefault(brand_id, []).append(Slot(weekday, at, network))
        for slots in out.values():
            slots.sort()
        return out

    # --- the posting schedule ---------------------------------------------------------------

    async def slots(self, brand_id: UUID) -> s.SlotList:
        self.ctx.require(Action.POSTS_READ)
        brand = await self._brand(brand_id)
        return _slot_list(brand, (await self._slots([brand.id])).get(brand.id, []))

    async def put_slots(self, brand_id: UUID, data: s.SlotsIn) -> s.SlotList:
        self.ctx.require(Action.SCHEDULE_WRITE)
        brand = await self._brand(brand_id)
        seen: set[Slot] = set()
        slots: list[Slot] = []
        for i, item in enumerate(data.slots):
            slot = Slot(item.weekday, rules.parse_hhmm(item.local_time), item.network.value)
            if slot in seen:
                raise ValidationFailedError.field(f"slots[{i}]", "The same network, weekday and time appear twice")
            seen.add(slot)
            slots.append(slot)
        session = self.ctx.session
        await session.execute(delete(PostingSlot).where(PostingSlot.agency_id == self.ctx.agency_id,
                                                        PostingSlot.brand_id == brand.id))
        session.add_all(PostingSlot(agency_id=self.ctx.agency_id, brand_id=brand.id, network=slot.network,
                                    weekday=slot.weekday, local_time=slot.local_time) for slot in slots)
        await session.flush()
        await self.ctx.audit("posting_slots.replaced", "brand", brand.id, {"slots": len(slots)})
        return _slot_list(brand, sorted(slots))

    async def queue(self, post_id: UUID, data: s.QueueIn, expected_version: int | None) -> Loaded:
        """Add to queue: the post takes the next free slot of its networks after now."""
        self.ctx.require(Action.POSTS_WRITE)
        post = await self._post(post_id)
        brand = await self._brand(post.brand_id)
        # Two posts queued at once for the same brand must not take the same slot.
        await self.ctx.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                                       {"key": f"chorus.queue:{brand.id}"})
        networks = list(dict.fromkeys((await self.ctx.read(self.ctx.select(PostVariant, PostVariant.network).where(
            PostVariant.post_id == post.id).order_by(PostVariant.position))).scalars()))
        if not networks:
            raise ValidationFailedError.field("variants", "Add a variant for at least one social account first")
        slots = [slot for slot in (await self._slots([brand.id])).get(brand.id, []) if slot.network in networks]
        if not slots:
            raise NoPostingSlotsError(f"The brand has no posting slot for {', '.join(networks)}: "
                                      "set them with putPostingSlots")
        after = now() + timedelta(minutes=1)
        horizon = after + timedelta(days=rules.QUEUE_HORIZON_DAYS)
        taken = {(row.network, row.scheduled_at) for row in (await self.ctx.read(
            select(_V.c.network, _P.c.scheduled_at).select_from(_P.join(_V, _V.c.post_id == _P.c.id)).where(
                _P.c.agency_id == self.ctx.agency_id, _V.c.agency_id == self.ctx.agency_id,
                _P.c.brand_id == brand.id, _P.c.id != post.id, _V.c.network.in_(networks),
                _P.c.scheduled_at > after, _P.c.scheduled_at <= horizon))).all()}
        at = rules.next_free_instant(slots, networks, taken, after, brand.zone, match=data.match)
        if at is None:
            how = "shared by all its networks" if data.match is MatchSlots.ALL else "of its networks"
            raise NoFreeSlotError(f"Every slot {how} is taken for the next {rules.QUEUE_HORIZON_DAYS} days")
        posts = PostService(self.ctx)
        if data.schedule:
            return await posts.schedule(post.id, content_schemas.ScheduleIn(scheduled_at=at), expected_version)
        return await posts.update(post.id, content_schemas.PostUpdate(scheduled_at=at), expected_version)

    async def reschedule(self, post_id: UUID, data: s.RescheduleIn,
                         expected_version: int | None) -> tuple[Loaded, list[s.NearbyPost]]:
        """Move a post; PostService re-validates it (a scheduled post must stay valid and in
        the future). Answers the other posts now close to it on its networks."""
        self.ctx.require(Action.POSTS_WRITE)
        _check_instant(data.scheduled_at, "scheduled_at")
        loaded = await PostService(self.ctx).update(
            post_id, content_schemas.PostUpdate(scheduled_at=data.scheduled_at), expected_version)
        return loaded, await self.nearby(loaded, timedelta(minutes=data.conflict_window_minutes))

    async def nearby(self, loaded: Loaded, window: timedelta) -> list[s.NearbyPost]:
        post = loaded.post
        networks = list(dict.fromkeys(v.network for v in loaded.variants))
        if post.scheduled_at is None or not networks:
            return []
        at = post.scheduled_at
        rows = (await self.ctx.read(
            select(_P.c.id, _P.c.title, _V.c.network, _P.c.scheduled_at)
            .select_from(_P.join(_V, _V.c.post_id == _P.c.id))
            .where(_P.c.agency_id == self.ctx.agency_id, _V.c.agency_id == self.ctx.agency_id,
                   _P.c.brand_id == post.brand_id, _P.c.id != post.id, _V.c.network.in_(networks),
                   _P.c.scheduled_at >= at - window, _P.c.scheduled_at <= at + window)
            .distinct().order_by(_P.c.scheduled_at, _P.c.id, _V.c.network))).all()
        return [s.NearbyPost(post_id=r.id, title=r.title, network=Network(r.network), scheduled_at=r.scheduled_at,
                             minutes_apart=rules.minutes_apart(at, r.scheduled_at)) for r in rows]

    async def _post(self, post_id: UUID) -> Any:
        row = (await self.ctx.read(self.ctx.select(Post, Post.id, Post.brand_id).where(Post.id == post_id))).first()
        if row is None or not self.ctx.principal.sees_brand(row.brand_id):
            raise NotFoundError("No such post")
        return row

    # --- calendar feeds ---------------------------------------------------------------------

    async def create_feed(self, brand_id: UUID, data: s.FeedIn, base_url: str) -> s.FeedCreated:
        self.ctx.require(Action.SCHEDULE_WRITE)
        brand = await self._brand(brand_id)
        token = OpaqueToken.new(FEED_PREFIX, self.ctx.agency_id)
        feed = CalendarFeed(agency_id=self.ctx.agency_id, brand_id=brand.id, token_hash=token.hashed,
                            label=data.label.strip(), created_by_id=self.ctx.principal.user_id)
        self.ctx.session.add(feed)
        await self.ctx.session.flush()
        await self.ctx.audit("calendar_feed.created", "calendar_feed", feed.id, {"brand_id": brand.id})
        url = f"{base_url.rstrip('/')}/calendar/{token.value}.ics"
        return s.FeedCreated(id=feed.id, brand_id=brand.id, label=feed.label, url=url,
                             webcal_url="webcal://" + url.split("://", 1)[1], created_at=feed.created_at)

    async def feeds(self, brand_id: UUID) -> s.FeedList:
        self.ctx.require(Action.POSTS_READ)
        brand = await self._brand(brand_id)
        rows = (await self.ctx.session.scalars(self.ctx.select(CalendarFeed).where(
            CalendarFeed.brand_id == brand.id).order_by(CalendarFeed.created_at.desc(), CalendarFeed.id))).all()
        return s.FeedList(items=[_feed_out(f) for f in rows])

    async def revoke_feed(self, feed_id: UUID) -> None:
        self.ctx.require(Action.SCHEDULE_WRITE)
        feed = await self.ctx.get(CalendarFeed, feed_id, lock=True, what="calendar feed")
        if not self.ctx.principal.sees_brand(feed.brand_id):
            raise NotFoundError("No such calendar feed")
        if feed.revoked_at is None:
            feed.revoked_at = now()
            await self.ctx.audit("calendar_feed.revoked", "calendar_feed", feed.id, {"brand_id": feed.brand_id})

    # --- CSV export ---------------------------------------------------------------------------

    async def export_csv(self, *, brand_ids: Sequence[UUID] | None, first: date | None, last: date | None,
                         view: View | None, on: date | None) -> tuple[str, str]:
        """(file name, CSV text): one row per variant, a post with none gets one row."""
        self.ctx.require(Action.POSTS_READ)
        brands = await self._brands(brand_ids)
        first, last = resolve_range(first, last, view, on, _today(brands))
        name = brands[0].slug if len(brands) == 1 else "calendar"
        filename = f"chorus-{name}-{first.isoformat()}-{last.isoformat()}.csv"
        out = io.StringIO()
        out.write("\ufeff")  # spreadsheets read UTF-8 (accents, emoji) only with the mark
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["post_id", "brand", "local_date", "local_time", "time_zone", "scheduled_at_utc", "network",
                         "account", "post_status", "variant_status", "title", "labels", "text", "media_count"])
        if not brands:
            return filename, out.getvalue()
        by_id = {b.id: b for b in brands}
        bounds = {b.id: rules.day_bounds(first, last, b.zone) for b in brands}
        media = (select(func.count()).select_from(PostVariantMedia.__table__)
                 .where(PostVariantMedia.variant_id == _V.c.id, PostVariantMedia.agency_id == self.ctx.agency_id)
                 .scalar_subquery())
        accounts = SocialAccount.__table__
        stmt = (select(_P.c.id, _P.c.brand_id, _P.c.scheduled_at, _P.c.status, _P.c.title, _P.c.labels,
                       _V.c.id.label("variant_id"), _V.c.network, _V.c.status.label("variant_status"), _V.c.text,
                       accounts.c.handle, media.label("media_count"))
                .select_from(_P.outerjoin(_V, (_V.c.post_id == _P.c.id) & (_V.c.agency_id == _P.c.agency_id))
                             .outerjoin(accounts, (accounts.c.id == _V.c.social_account_id)
                                        & (accounts.c.agency_id == _P.c.agency_id)))
                .where(_P.c.agency_id == self.ctx.agency_id, _P.c.brand_id.in_(list(by_id)),
                       _P.c.scheduled_at >= min(lo for lo, _ in bounds.values()),
                       _P.c.scheduled_at < max(hi for _, hi in bounds.values()))
                .order_by(_P.c.scheduled_at, _P.c.id, _V.c.position, _V.c.created_at))
        cell = rules.csv_cell
        for row in (await self.ctx.read(stmt)).all():
            brand = by_id[row.brand_id]
            lo, hi = bounds[row.brand_id]
            if not lo <= row.scheduled_at < hi:
                continue
            local = row.scheduled_at.astimezone(brand.zone)
            writer.writerow([
                str(row.id), cell(brand.name), local.date().isoformat(), rules.hhmm(local.time()), brand.time_zone,
                row.scheduled_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), row.network or "",
                cell(row.handle or ""), row.status, row.variant_status or "", cell(row.title),
                cell(", ".join(row.labels or ())), cell(row.text or ""),
                row.media_count if row.variant_id is not None else 0,
            ])
        return filename, out.getvalue()


def _post_item(row: Any, zone: ZoneInfo) -> s.CalendarPost:
    networks = row.networks or []
    statuses = row.statuses or []
    errors = row.errors or []
    issues = sum(errors)
    at = row.scheduled_at
    return s.CalendarPost(
        id=row.id, brand_id=row.brand_id, campaign_id=row.campaign_id, title=row.title, status=row.status,
        labels=row.labels or [], scheduled_at=at,
        local_time=rules.hhmm(at.astimezone(zone).time()) if at is not None else None,
        networks=list(dict.fromkeys(networks)),
        variants=[s.CalendarVariant(network=n, status=st, issue_count=e)
                  for n, st, e in zip(networks, statuses, errors, strict=True)],
        ready=issues == 0, issue_count=issues)


def _slot_list(brand: BrandRow, slots: Sequence[Slot]) -> s.SlotList:
    return s.SlotList(brand_id=brand.id, time_zone=brand.time_zone, items=[
        s.SlotOut(network=Network(slot.network), weekday=slot.weekday, local_time=rules.hhmm(slot.local_time))
        for slot in slots])


def _feed_out(feed: CalendarFeed) -> s.FeedOut:
    return s.FeedOut(id=feed.id, brand_id=feed.brand_id, label=feed.label, created_by_id=feed.created_by_id,
                     created_at=feed.created_at, last_used_at=feed.last_used_at, revoked_at=feed.revoked_at)


# --- the public feed ------------------------------------------------------------------------


async def render_feed(ctx: Context, token: OpaqueToken, host: str) -> str:
    """The iCalendar text of a feed, found by its token's hash within the token's agency (the
    transaction's tenant). Unknown, tampered and revoked tokens are all the same 404."""
    feed = await ctx.session.scalar(ctx.select(CalendarFeed).where(
        CalendarFeed.token_hash == token.hashed, CalendarFeed.revoked_at.is_(None)))
    if feed is None:
        raise NotFoundError()
    brand = await ctx.session.get(Brand, feed.brand_id)
    if brand is None or brand.agency_id != ctx.agency_id:
        raise NotFoundError()
    moment = now()
    if feed.last_used_at is None or moment - feed.last_used_at > FEED_STAMP_EVERY:
        await ctx.session.execute(update(CalendarFeed).where(
            CalendarFeed.id == feed.id, CalendarFeed.agency_id == ctx.agency_id).values(last_used_at=moment))
    first = _V.alias("first_variant")
    first_text = (select(first.c.text).where(first.c.post_id == _P.c.id, first.c.agency_id == _P.c.agency_id)
                  .order_by(first.c.position, first.c.created_at).limit(1).scalar_subquery())
    stmt = (select(_P.c.id, _P.c.title, _P.c.scheduled_at, _P.c.status, _P.c.revision, _P.c.updated_at,
                   _agg(_V.c.network).label("networks"), first_text.label("first_text"))
            .select_from(_P.outerjoin(_V, (_V.c.post_id == _P.c.id) & (_V.c.agency_id == _P.c.agency_id)))
            .where(_P.c.agency_id == ctx.agency_id, _P.c.brand_id == brand.id,
                   _P.c.scheduled_at >= moment - timedelta(days=rules.FEED_DAYS_BACK),
                   _P.c.scheduled_at < moment + timedelta(days=rules.FEED_DAYS_AHEAD))
            .group_by(_P.c.id).order_by(_P.c.scheduled_at, _P.c.id))
    zone = ZoneInfo(brand.time_zone)
    events = []
    for row in (await ctx.session.execute(stmt)).all():
        networks = [CATALOG[Network(n)].name for n in dict.fromkeys(row.networks or ())]
        local = row.scheduled_at.astimezone(zone)
        description = "\n".join([
            f"Networks: {', '.join(networks) or 'none yet'}",
            f"Status: {row.status.replace('_', ' ')}",
            f"Time: {local.strftime('%Y-%m-%d %H:%M')} ({brand.time_zone})",
            *(["", row.first_text.strip()] if row.first_text and row.first_text.strip() else []),
        ])
        events.append(rules.FeedEvent(
            uid=f"{row.id}@{host}", start=row.scheduled_at, summary=rules.summary_of(row.title, row.first_text),
            description=description, modified=row.updated_at, sequence=row.revision,
            confirmed=row.status in (VariantStatus.SCHEDULED, VariantStatus.PUBLISHING, VariantStatus.PUBLISHED)))
    return rules.ics_calendar(name=f"{brand.name} · Chorus", zone=brand.time_zone, events=events,
                              prodid="-//Chorus//Content calendar//EN")
