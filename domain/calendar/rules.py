"""The calendar's pure rules: date ranges, wall-clock slots across daylight-saving changes,
the next free slot, conflicts, iCalendar text and CSV cells. No I/O.

Wall-clock times in a brand's zone are turned into instants in one place
(`local_instant`), with one rule for the two daylight-saving oddities:

- a time that does not exist (02:30 on the spring-forward Sunday in Europe/Madrid) moves
  forward by the length of the gap, so the slot still happens that day: 03:30 CEST;
- a time that happens twice (02:30 on the fall-back Sunday) is the first of the two
  (fold=0, summer time): 02:30 CEST = 00:30 UTC.

Both are what Python's zoneinfo does with fold=0 (PEP 495), which is why the function is
short; the tests pin the behaviour down.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

DEFAULT_CONFLICT_MINUTES = 30
MAX_RANGE_DAYS = 366
# How far ahead "add to queue" looks for a free slot.
QUEUE_HORIZON_DAYS = 180
# Planned posts with their minutes; earlier or later dates are refused before any arithmetic.
EARLIEST = date(2000, 1, 1)
LATEST = date(2199, 12, 31)
# The iCalendar feed shows this window around today.
FEED_DAYS_BACK = 30
FEED_DAYS_AHEAD = 180
# How long an event lasts in a calendar app (a post is an instant; a zero-length event is
# hard to see in some apps).
FEED_EVENT_MINUTES = 15


class View(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


class MatchSlots(StrEnum):
    """How "add to queue" picks one instant for a post that goes to several networks."""

    # The earliest slot of any of the post's networks at which none of its networks has
    # another post planned (default: slots are per network, so demanding all would rarely match).
    ANY = "any"
    # The earliest instant that is a slot of every one of the post's networks, all free.
    ALL = "all"


def in_bounds(day: date) -> bool:
    return EARLIEST <= day <= LATEST


def view_range(view: View, day: date) -> tuple[date, date]:
    """The first and last day (both included) of the week (ISO, Monday first), month or
    quarter that holds `day`."""
    if view is View.WEEK:
        first = day - timedelta(days=day.isoweekday() - 1)
        return first, first + timedelta(days=6)
    if view is View.MONTH:
        return day.replace(day=1), day.replace(day=_calendar.monthrange(day.year, day.month)[1])
    start_month = 3 * ((day.month - 1) // 3) + 1
    last_month = start_month + 2
    return (date(day.year, start_month, 1),
            date(day.year, last_month, _calendar.monthrange(day.year, last_month)[1]))


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a day in a zone (see the module's docstring
    for the daylight-saving gap and overlap)."""
    return datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=zone).astimezone(UTC)


def exists_locally(day: date, at: time, zone: ZoneInfo) -> bool:
    """False for a wall-clock time inside a spring-forward gap."""
    instant = local_instant(day, at, zone)
    back = instant.astimezone(zone)
    return back.date() == day and back.time().replace(tzinfo=None) == at.replace(tzinfo=None, fold=0)


def day_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of `first`, start of the day after `last`) in the zone, as UTC instants."""
    return local_instant(first, time(0), zone), local_instant(last + timedelta(days=1), time(0), zone)


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


# --- the posting schedule -----------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Slot:
    """A recurring weekly time on a network, in the brand's wall clock (ISO weekday)."""

    weekday: int
    local_time: time
    network: str


@dataclass(frozen=True)
class SlotInstant:
    at: datetime  # UTC
    day: date  # the local date the slot belongs to
    slot: Slot
    shifted: bool  # the wall-clock time did not exist that day (spring forward)


def slot_instants(slots: Iterable[Slot], start: datetime, end: datetime, zone: ZoneInfo) -> list[SlotInstant]:
    """Every occurrence of the weekly slots with start <= instant < end, in time order."""
    by_weekday: dict[int, list[Slot]] = {}
    for slot in slots:
        by_weekday.setdefault(slot.weekday, []).append(slot)
    if not by_weekday:
        return []
    out: list[SlotInstant] = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        for slot in by_weekday.get(day.isoweekday(), ()):
            at = local_instant(day, slot.local_time, zone)
            if start <= at < end:
                out.append(SlotInstant(at, day, slot, not exists_locally(day, slot.local_time, zone)))
        day += timedelta(days=1)
    out.sort(key=lambda s: (s.at, s.slot.network))
    return out


def next_free_instant(slots: Sequence[Slot], networks: Sequence[str], taken: set[tuple[str, datetime]],
                      after: datetime, zone: ZoneInfo, *, match: MatchSlots = MatchSlots.ANY,
                      horizon_days: int = QUEUE_HORIZON_DAYS) -> datetime | None:
    """The earliest slot instant strictly after `after` for a post going to `networks`, free
    on every one of them (`taken` holds (network, instant) of the brand's other posts)."""
    wanted = set(networks)
    relevant = [s for s in slots if s.network in wanted]
    if not relevant or not wanted:
        return None
    end = after + timedelta(days=horizon_days)
    by_instant: dict[datetime, set[str]] = {}
    for occurrence in slot_instants(relevant, after, end, zone):
        if occurrence.at > after:
            by_instant.setdefault(occurrence.at, set()).add(occurrence.slot.network)
    for at in sorted(by_instant):
        if match is MatchSlots.ALL and by_instant[at] != wanted:
            continue
        if all((network, at) not in taken for network in wanted):
            return at
    return None


# --- conflicts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    post_id: UUID
    network: str
    at: datetime
    brand_id: UUID | None = None


def conflicts(planned: Iterable[Planned], window: timedelta) -> list[tuple[Planned, Planned]]:
    """Pairs of different posts of the same brand on the same network at most `window` apart,
    in time order."""
    groups: dict[tuple[UUID | None, str], list[Planned]] = {}
    for item in planned:
        groups.setdefault((item.brand_id, item.network), []).append(item)
    pairs: list[tuple[Planned, Planned]] = []
    for items in groups.values():
        items.sort(key=lambda p: (p.at, str(p.post_id)))
        for i, first in enumerate(items):
            for second in items[i + 1:]:
                if second.at - first.at > window:
                    break
                if second.post_id != first.post_id:
                    pairs.append((first, second))
    pairs.sort(key=lambda pair: (pair[0].at, pair[1].at, pair[0].network))
    return pairs


def minutes_apart(a: datetime, b: datetime) -> int:
    return int(abs((b - a).total_seconds()) // 60)


# --- iCalendar (RFC 5545) -----------------------------------------------------------------


@dataclass(frozen=True)
class FeedEvent:
    uid: str
    start: datetime
    summary: str
    description: str
    modified: datetime
    sequence: int
    confirmed: bool


def ics_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newlines escaped;
    other control characters dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = "".join(c for c in value if c in "\n\t" or ord(c) >= 32 and ord(c) != 127)
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def ics_fold(line: str) -> str:
    """Lines longer than 75 octets are folded (CRLF and one space), never inside a UTF-8
    sequence (RFC 5545 3.1)."""
    encoded = line.encode()
    if len(encoded) <= 75:
        return line
    parts: list[str] = []
    current = ""
    size = 0
    limit = 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, 74  # the leading space of a continuation counts
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def ics_utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def ics_calendar(*, name: str, zone: str, events: Sequence[FeedEvent], prodid: str) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{prodid}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ics_text(name)}",
        f"X-WR-TIMEZONE:{zone}",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
    ]
    for event in events:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{event.uid}",
            # Without METHOD:REQUEST, DTSTAMP is the time the information last changed.
            f"DTSTAMP:{ics_utc(event.modified)}",
            f"LAST-MODIFIED:{ics_utc(event.modified)}",
            f"SEQUENCE:{event.sequence}",
            f"DTSTART:{ics_utc(event.start)}",
            f"DTEND:{ics_utc(event.start + timedelta(minutes=FEED_EVENT_MINUTES))}",
            f"SUMMARY:{ics_text(event.summary)}",
            f"DESCRIPTION:{ics_text(event.description)}",
            f"STATUS:{'CONFIRMED' if event.confirmed else 'TENTATIVE'}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(ics_fold(line) + "\r\n" for line in lines)


def summary_of(title: str, first_text: str | None, limit: int = 80) -> str:
    """The event's title: the post's title, else the first line of its first variant."""
    text = title.strip() or (first_text or "").strip().split("\n", 1)[0].strip()
    if not text:
        return "Untitled post"
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- CSV ----------------------------------------------------------------------------------

# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
