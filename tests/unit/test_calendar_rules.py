"""The calendar's pure rules: ranges, wall-clock slots across daylight saving, the next free
slot, conflicts, iCalendar text and CSV cells."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from domain.calendar import rules
from domain.calendar.rules import FeedEvent, MatchSlots, Planned, Slot, View

MADRID = ZoneInfo("Europe/Madrid")
SPRING_FORWARD = date(2027, 3, 28)  # last Sunday of March: 02:00 CET -> 03:00 CEST
FALL_BACK = date(2027, 10, 31)  # last Sunday of October: 03:00 CEST -> 02:00 CET


@pytest.mark.parametrize(("view", "day", "expected"), [
    (View.WEEK, date(2027, 1, 6), (date(2027, 1, 4), date(2027, 1, 10))),  # Wednesday -> Monday..Sunday
    (View.WEEK, date(2027, 1, 4), (date(2027, 1, 4), date(2027, 1, 10))),
    (View.WEEK, date(2027, 1, 10), (date(2027, 1, 4), date(2027, 1, 10))),
    (View.MONTH, date(2028, 2, 15), (date(2028, 2, 1), date(2028, 2, 29))),
    (View.QUARTER, date(2027, 5, 20), (date(2027, 4, 1), date(2027, 6, 30))),
    (View.QUARTER, date(2027, 12, 31), (date(2027, 10, 1), date(2027, 12, 31))),
])
def test_view_ranges(view, day, expected):
    assert rules.view_range(view, day) == expected


def test_a_0230_slot_on_the_spring_forward_day_moves_to_0330():
    at = rules.local_instant(SPRING_FORWARD, time(2, 30), MADRID)
    assert at == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert at.astimezone(MADRID).strftime("%H:%M %Z") == "03:30 CEST"
    assert not rules.exists_locally(SPRING_FORWARD, time(2, 30), MADRID)
    assert rules.exists_locally(SPRING_FORWARD, time(3, 30), MADRID)
    # The day before and after, 02:30 is just 02:30.
    assert rules.local_instant(SPRING_FORWARD - timedelta(days=7), time(2, 30), MADRID) == \
        datetime(2027, 3, 21, 1, 30, tzinfo=UTC)
    assert rules.local_instant(SPRING_FORWARD + timedelta(days=7), time(2, 30), MADRID) == \
        datetime(2027, 4, 4, 0, 30, tzinfo=UTC)


def test_a_0230_slot_on_the_fall_back_day_is_the_first_0230():
    at = rules.local_instant(FALL_BACK, time(2, 30), MADRID)
    assert at == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)  # 02:30 CEST, not 02:30 CET (01:30 UTC)
    assert at.astimezone(MADRID).strftime("%H:%M %Z") == "02:30 CEST"
    assert rules.exists_locally(FALL_BACK, time(2, 30), MADRID)


def test_weekly_slots_across_the_spring_forward_week():
    slots = [Slot(7, time(2, 30), "x"), Slot(7, time(9, 0), "instagram")]
    start, end = rules.day_bounds(SPRING_FORWARD - timedelta(days=7), SPRING_FORWARD, MADRID)
    found = [(o.day, o.slot.network, o.at, o.shifted) for o in rules.slot_instants(slots, start, end, MADRID)]
    assert found == [
        (date(2027, 3, 21), "x", datetime(2027, 3, 21, 1, 30, tzinfo=UTC), False),
        (date(2027, 3, 21), "instagram", datetime(2027, 3, 21, 8, 0, tzinfo=UTC), False),
        (SPRING_FORWARD, "x", datetime(2027, 3, 28, 1, 30, tzinfo=UTC), True),
        (SPRING_FORWARD, "instagram", datetime(2027, 3, 28, 7, 0, tzinfo=UTC), False),
    ]
    # The spring-forward day is 23 hours long; both its slots are inside it.
    assert end - start == timedelta(days=8) - timedelta(hours=1)


def test_next_free_slot_skips_taken_ones_and_the_past():
    slots = [Slot(1, time(9, 0), "x"), Slot(3, time(9, 0), "x"), Slot(3, time(18, 0), "instagram")]
    after = datetime(2027, 1, 4, 8, 30, tzinfo=UTC)  # Monday 09:30 in Madrid: Monday's slot has passed
    assert rules.next_free_instant(slots, ["x"], set(), after, MADRID) == datetime(2027, 1, 6, 8, 0, tzinfo=UTC)
    taken = {("x", datetime(2027, 1, 6, 8, 0, tzinfo=UTC))}
    assert rules.next_free_instant(slots, ["x"], taken, after, MADRID) == datetime(2027, 1, 11, 8, 0, tzinfo=UTC)
    # A slot taken on another network does not matter for a post that does not go there.
    assert rules.next_free_instant(slots, ["x"], {("instagram", datetime(2027, 1, 6, 8, 0, tzinfo=UTC))},
                                   after, MADRID) == datetime(2027, 1, 6, 8, 0, tzinfo=UTC)
    assert rules.next_free_instant(slots, ["tiktok"], set(), after, MADRID) is None


def test_a_multi_network_post_takes_one_instant():
    slots = [Slot(3, time(9, 0), "x"), Slot(3, time(12, 0), "instagram"), Slot(4, time(12, 0), "x"),
             Slot(4, time(12, 0), "instagram")]
    after = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)
    wed_9 = datetime(2027, 1, 6, 8, 0, tzinfo=UTC)
    wed_12 = datetime(2027, 1, 6, 11, 0, tzinfo=UTC)
    thu_12 = datetime(2027, 1, 7, 11, 0, tzinfo=UTC)
    both = ["x", "instagram"]
    # any: the first slot of either network, free on both.
    assert rules.next_free_instant(slots, both, set(), after, MADRID) == wed_9
    # ... and not one where the other network already has a post.
    assert rules.next_free_instant(slots, both, {("instagram", wed_9)}, after, MADRID) == wed_12
    # all: only an instant that is a slot of every network.
    assert rules.next_free_instant(slots, both, set(), after, MADRID, match=MatchSlots.ALL) == thu_12
    assert rules.next_free_instant(slots, both, {("x", thu_12)}, after, MADRID, match=MatchSlots.ALL) == \
        thu_12 + timedelta(days=7)


def test_nothing_free_within_the_horizon():
    slots = [Slot(1, time(9, 0), "x")]
    after = datetime(2027, 1, 1, tzinfo=UTC)
    taken = {("x", rules.local_instant(date(2027, 1, 4) + timedelta(weeks=w), time(9), MADRID)) for w in range(30)}
    assert rules.next_free_instant(slots, ["x"], taken, after, MADRID, horizon_days=180) is None


def test_conflicts_are_same_brand_same_network_within_the_window():
    brand, other_brand = uuid.uuid4(), uuid.uuid4()
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    t = datetime(2027, 1, 5, 9, tzinfo=UTC)
    planned = [
        Planned(a, "x", t, brand), Planned(b, "x", t + timedelta(minutes=20), brand),
        Planned(c, "x", t + timedelta(minutes=51), brand),  # 31 from b: outside 30
        Planned(a, "instagram", t, brand), Planned(d, "instagram", t + timedelta(minutes=30), brand),
        Planned(d, "x", t + timedelta(minutes=5), other_brand),  # another brand: never a conflict
    ]
    pairs = [(p.post_id, q.post_id, p.network) for p, q in rules.conflicts(planned, timedelta(minutes=30))]
    assert pairs == [(a, b, "x"), (a, d, "instagram")]
    assert rules.conflicts(planned, timedelta(0)) == []


def test_ics_escaping_and_folding():
    assert rules.ics_text("a,b;c\\d\r\ne\x07") == "a\\,b\\;c\\\\d\\ne"
    line = "DESCRIPTION:" + "ñ" * 100
    folded = rules.ics_fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert "".join([parts[0], *(p[1:] for p in parts[1:])]) == line  # unfolds to the same, no split 'ñ'


def test_ics_calendar_parses_with_the_icalendar_library():
    start = datetime(2027, 1, 5, 8, 0, tzinfo=UTC)
    event = FeedEvent(uid="abc@chorus.test", start=start, summary="Roscón, ya; en tienda",
                      description="Networks: X\nStatus: scheduled\n\n" + "Texto largo " * 20,
                      modified=datetime(2027, 1, 1, tzinfo=UTC), sequence=3, confirmed=True)
    body = rules.ics_calendar(name="Panadería Sol · Chorus", zone="Europe/Madrid", events=[event],
                              prodid="-//Chorus//Content calendar//EN")
    assert body.endswith("\r\n") and "\n" not in body.replace("\r\n", "")
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    cal = Calendar.from_ical(body)
    assert str(cal["X-WR-CALNAME"]) == "Panadería Sol · Chorus" and str(cal["X-WR-TIMEZONE"]) == "Europe/Madrid"
    [vevent] = cal.walk("VEVENT")
    assert str(vevent["UID"]) == "abc@chorus.test"
    assert vevent.decoded("DTSTART") == start
    assert str(vevent["SUMMARY"]) == "Roscón, ya; en tienda"
    assert str(vevent["DESCRIPTION"]).startswith("Networks: X\nStatus: scheduled\n\nTexto largo")


def test_summary_falls_back_to_the_first_line_of_text():
    assert rules.summary_of("  ", "First line\nsecond") == "First line"
    assert rules.summary_of("Title", "text") == "Title"
    assert rules.summary_of("", None) == "Untitled post"
    assert rules.summary_of("", "a" * 100) == "a" * 79 + "…"


@pytest.mark.parametrize(("value", "expected"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("plain", "plain"), ("a=b", "a=b"), ("", ""), (3, 3),
])
def test_csv_cells_never_start_a_formula(value, expected):
    assert rules.csv_cell(value) == expected
