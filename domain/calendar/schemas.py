from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec

from domain.calendar.rules import DEFAULT_CONFLICT_MINUTES, MatchSlots
from domain.content.schemas import PostOut
from domain.core.schemas import ShortText
from domain.networks.adapters.base import Network

LocalTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["09:30"],
                                        description="Wall-clock time in the brand's zone, HH:MM (24 h)")]
Weekday = Annotated[int, msgspec.Meta(ge=1, le=7, description="ISO weekday: 1 = Monday … 7 = Sunday")]
ConflictWindow = Annotated[int, msgspec.Meta(ge=0, le=1440, description="Minutes either side of a post within "
                                             "which another post of the brand on the same network is a conflict")]


# --- posting slots ----------------------------------------------------------------------------


class SlotIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    network: Network
    weekday: Weekday
    local_time: LocalTime


class SlotsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The whole weekly schedule: it replaces the one before."""

    slots: Annotated[list[SlotIn], msgspec.Meta(max_length=700)]


class SlotOut(msgspec.Struct, kw_only=True):
    network: Network
    weekday: int
    local_time: str


class SlotList(msgspec.Struct, kw_only=True):
    brand_id: UUID
    time_zone: str
    items: list[SlotOut]


class QueueIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # True: schedule the post at the slot (it must be ready). False: only plan it there.
    schedule: bool = False
    match: MatchSlots = MatchSlots.ANY


# --- moving posts -----------------------------------------------------------------------------


class RescheduleIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    scheduled_at: datetime
    conflict_window_minutes: ConflictWindow = DEFAULT_CONFLICT_MINUTES


class NearbyPost(msgspec.Struct, kw_only=True):
    post_id: UUID
    title: str
    network: Network
    scheduled_at: datetime
    minutes_apart: int


class Rescheduled(msgspec.Struct, kw_only=True):
    post: PostOut
    # Other posts of the brand on one of this post's networks within the window of its new time.
    conflicts: list[NearbyPost]


# --- the calendar -----------------------------------------------------------------------------


# The calendar's answer is large (a busy quarter is thousands of objects) and has no cycles:
# gc=False keeps the garbage collector from scanning it.
class CalendarVariant(msgspec.Struct, kw_only=True, gc=False):
    network: Network
    status: str
    issue_count: int


class CalendarPost(msgspec.Struct, kw_only=True, gc=False):
    id: UUID
    brand_id: UUID
    campaign_id: UUID | None
    title: str
    status: str
    labels: list[str]
    scheduled_at: datetime | None
    # HH:MM on the brand's wall clock; null for an idea without a time.
    local_time: str | None
    networks: list[Network]
    variants: list[CalendarVariant]
    # False while a variant breaks its network's rules; issue_count counts those errors.
    ready: bool
    issue_count: int


class CalendarSlot(msgspec.Struct, kw_only=True, gc=False):
    brand_id: UUID
    network: Network
    local_time: str
    scheduled_at: datetime
    # No post of the brand on that network is planned at that instant.
    free: bool
    # The wall-clock time does not exist that day (spring forward): the slot moved later.
    shifted: bool


class CalendarDay(msgspec.Struct, kw_only=True, gc=False):
    date: date
    posts: list[CalendarPost]
    slots: list[CalendarSlot]


class CalendarConflict(msgspec.Struct, kw_only=True, gc=False):
    brand_id: UUID
    network: Network
    post_ids: list[UUID]
    minutes_apart: int


class CalendarBrand(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    time_zone: str
    # Set while the brand's publishing is paused: its scheduled posts that come due are held
    # (not sent) until it resumes; getBrandPublishing lists them.
    publishing_paused_at: datetime | None = None


class Calendar(msgspec.Struct, kw_only=True):
    from_: date = msgspec.field(name="from")
    to: date
    brands: list[CalendarBrand]
    # Every day of the range; posts fall on their brand's local date.
    days: list[CalendarDay]
    conflicts: list[CalendarConflict]
    # Ideas: posts with no time yet, most recently changed first, to drag onto a day.
    unscheduled: list[CalendarPost]
    unscheduled_more: bool


# --- calendar feeds ---------------------------------------------------------------------------


class FeedIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    label: ShortText = ""


class FeedOut(msgspec.Struct, kw_only=True):
    id: UUID
    brand_id: UUID
    label: str
    created_by_id: UUID | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class FeedCreated(msgspec.Struct, kw_only=True):
    """The feed's address is shown this once: only its hash is kept."""

    id: UUID
    brand_id: UUID
    label: str
    url: str
    # The same address for calendar apps that subscribe on a click (webcal://).
    webcal_url: str
    created_at: datetime


class FeedList(msgspec.Struct, kw_only=True):
    items: list[FeedOut]
