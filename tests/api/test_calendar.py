"""The calendar: posts by day in each brand's zone, posting slots and "add to queue",
rescheduling with conflicts, iCalendar feeds and the CSV export."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

MADRID = ZoneInfo("Europe/Madrid")


@pytest.fixture
async def plan(tenant, owner_engine, settings):
    brand = await tenant.brand("Panadería Sol")
    accounts = {n: await tenant.social_account(owner_engine, settings.vault(), brand["id"], n)
                for n in ("x", "instagram", "facebook")}
    return brand, accounts


async def _post(tenant, brand_id, accounts, when=None, *, title="", labels=(), campaign_id=None, text="Hola",
                networks=("x",)):
    body = {"title": title, "labels": list(labels),
            "variants": [{"social_account_id": accounts[n], "text": f"{text} ({n})" if text is not None else ""}
                         for n in networks]}
    if when is not None:
        body["scheduled_at"] = when.isoformat() if isinstance(when, datetime) else when
    if campaign_id is not None:
        body["campaign_id"] = campaign_id
    r = await tenant.req("POST", f"/v1/brands/{brand_id}/posts", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _calendar(tenant, token=None, **params):
    r = await tenant.req("GET", "/v1/calendar", token=token, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _days(calendar):
    return {d["date"]: [p["id"] for p in d["posts"]] for d in calendar["days"] if d["posts"]}


def _future(days=10, hour=9, minute=0):
    """A day well ahead, at a wall-clock time in Madrid, as a UTC instant."""
    day = datetime.now(MADRID).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=MADRID).astimezone(UTC)


def _path(url):
    return urlsplit(url).path


# --- the calendar ---------------------------------------------------------------------------


async def test_posts_fall_on_their_brands_local_day(tenant, plan, owner_engine, settings):
    brand, accounts = plan
    ny = await tenant.brand("NY Bagels", time_zone="America/New_York")
    ny_account = await tenant.social_account(owner_engine, settings.vault(), ny["id"], "x")
    late = await _post(tenant, brand["id"], accounts, "2027-01-05T23:30:00Z", title="late in UTC")
    before = await _post(tenant, brand["id"], accounts, "2027-01-04T23:30:00Z", title="first local minute")
    after = await _post(tenant, brand["id"], accounts, "2027-01-06T23:30:00Z", title="day after the range")
    bagel = await _post(tenant, ny["id"], {"x": ny_account}, "2027-01-06T03:30:00Z", title="bagel")

    cal = await _calendar(tenant, brand_id=[brand["id"], ny["id"]], **{"from": "2027-01-05", "to": "2027-01-06"})
    assert cal["from"] == "2027-01-05" and cal["to"] == "2027-01-06"
    assert [d["date"] for d in cal["days"]] == ["2027-01-05", "2027-01-06"]
    assert {b["id"]: b["time_zone"] for b in cal["brands"]} == {brand["id"]: "Europe/Madrid",
                                                                 ny["id"]: "America/New_York"}
    # 23:30 UTC is 00:30 the next day in Madrid; 03:30 UTC is 22:30 the day before in New York.
    assert _days(cal) == {"2027-01-05": [before["id"], bagel["id"]], "2027-01-06": [late["id"]]}
    assert after["id"] not in str(cal)
    item = cal["days"][1]["posts"][0]
    assert item["local_time"] == "00:30" and item["scheduled_at"] == "2027-01-05T23:30:00Z"
    assert item["networks"] == ["x"] and item["variants"][0]["status"] == "draft"
    assert item["ready"] is True and item["issue_count"] == 0
    assert cal["days"][0]["posts"][1]["local_time"] == "22:30"


async def test_views_and_every_brand_by_default(tenant, plan):
    brand, accounts = plan
    p = await _post(tenant, brand["id"], accounts, "2027-05-20T10:00:00Z")
    quarter = await _calendar(tenant, view="quarter", date="2027-05-20")
    assert (quarter["from"], quarter["to"], len(quarter["days"])) == ("2027-04-01", "2027-06-30", 91)
    assert _days(quarter) == {"2027-05-20": [p["id"]]}
    week = await _calendar(tenant, view="week", date="2027-05-20")
    assert (week["from"], week["to"]) == ("2027-05-17", "2027-05-23") and _days(week) == {"2027-05-20": [p["id"]]}
    month = await _calendar(tenant)  # this month
    assert month["from"].endswith("-01") and [b["id"] for b in month["brands"]] == [brand["id"]]


async def test_filters_narrow_posts_but_not_slots_or_conflicts(tenant, plan):
    brand, accounts = plan
    campaign = (await tenant.req("POST", "/v1/campaigns", json={
        "brand_id": brand["id"], "name": "Roscón", "objective": "sales", "start_date": "2027-01-01",
        "end_date": "2027-01-31"})).json()
    r = await tenant.req("PUT", f"/v1/brands/{brand['id']}/posting-slots", json={"slots": [
        {"network": "x", "weekday": 2, "local_time": "09:00"}]})  # Tuesdays
    assert r.status_code == 200, r.text
    tuesday_9 = "2027-01-05T08:00:00Z"
    roscon = await _post(tenant, brand["id"], accounts, tuesday_9, labels=["Roscon"], campaign_id=campaign["id"],
                         networks=("x", "instagram"))
    other = await _post(tenant, brand["id"], accounts, "2027-01-05T08:10:00Z", networks=("x",))
    broken = await _post(tenant, brand["id"], accounts, "2027-01-07T08:00:00Z", networks=("facebook",), text=None)
    week = {"from": "2027-01-04", "to": "2027-01-10", "brand_id": brand["id"]}

    everything = await _calendar(tenant, **week)
    assert _days(everything) == {"2027-01-05": [roscon["id"], other["id"]], "2027-01-07": [broken["id"]]}
    bad = everything["days"][3]["posts"][0]
    assert bad["ready"] is False and bad["issue_count"] >= 1 and bad["variants"][0]["issue_count"] >= 1
    for params in ({"label": "roscon"}, {"campaign_id": campaign["id"]}, {"network": "instagram"}):
        narrowed = await _calendar(tenant, **week, **params)
        assert _days(narrowed) == {"2027-01-05": [roscon["id"]]}, params
        # The Tuesday slot is taken even when the post at it is filtered out, and the conflict shows.
        [slot] = narrowed["days"][1]["slots"] if params != {"network": "instagram"} else [None]
        if slot is not None:
            assert slot["free"] is False and slot["scheduled_at"] == "2027-01-05T08:00:00Z"
    assert _days(await _calendar(tenant, **week, status="draft")) == _days(everything)
    assert _days(await _calendar(tenant, **week, status="scheduled")) == {}
    assert _days(await _calendar(tenant, **week, network="facebook")) == {"2027-01-07": [broken["id"]]}

    [conflict] = everything["conflicts"]
    assert conflict == {"brand_id": brand["id"], "network": "x", "post_ids": [roscon["id"], other["id"]],
                        "minutes_apart": 10}
    assert (await _calendar(tenant, **week, conflict_window=5))["conflicts"] == []
    [slot] = everything["days"][1]["slots"]
    assert slot == {"brand_id": brand["id"], "network": "x", "local_time": "09:00",
                    "scheduled_at": "2027-01-05T08:00:00Z", "free": False, "shifted": False}


async def test_ideas_without_a_time_come_separately(tenant, plan):
    brand, accounts = plan
    idea = await _post(tenant, brand["id"], accounts, None, title="Someday", labels=["later"])
    await _post(tenant, brand["id"], accounts, "2027-01-05T10:00:00Z")
    cal = await _calendar(tenant, brand_id=brand["id"], **{"from": "2027-01-01", "to": "2027-01-31"})
    assert [p["id"] for p in cal["unscheduled"]] == [idea["id"]] and cal["unscheduled_more"] is False
    assert cal["unscheduled"][0]["scheduled_at"] is None and cal["unscheduled"][0]["local_time"] is None
    assert (await _calendar(tenant, brand_id=brand["id"], label="nope"))["unscheduled"] == []
    assert (await _calendar(tenant, brand_id=brand["id"], network="instagram"))["unscheduled"] == []
    assert len((await _calendar(tenant, brand_id=brand["id"], network="x"))["unscheduled"]) == 1


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "2027-01-01"}, "to"),
    ({"from": "2027-01-31", "to": "2027-01-01"}, "to"),
    ({"from": "2027-01-01", "to": "2028-01-02"}, "to"),
    ({"from": "2027-01-01", "to": "2027-01-02", "view": "week"}, "from"),
    ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
    ({"view": "month", "date": "9999-12-31"}, "from"),
])
async def test_bad_ranges_are_422(tenant, plan, params, field):
    r = await tenant.req("GET", "/v1/calendar", params=params)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text


async def test_brands_one_cannot_see_are_404_and_left_out(tenant, other_tenant, plan):
    brand, accounts = plan
    hidden = await tenant.brand("Hidden")
    theirs = await other_tenant.brand()
    r = await tenant.req("GET", "/v1/calendar", params={"brand_id": theirs["id"]})
    assert r.status_code == 404 and r.json()["type"].endswith("/not-found")
    limited, _ = await tenant.member("editor", brand_ids=[brand["id"]])
    r = await tenant.req("GET", "/v1/calendar", token=limited, params={"brand_id": [brand["id"], hidden["id"]]})
    assert r.status_code == 404
    assert [b["id"] for b in (await _calendar(tenant, token=limited))["brands"]] == [brand["id"]]
    r = await tenant.req("GET", "/v1/calendar/export.csv", token=limited, params={"brand_id": hidden["id"]})
    assert r.status_code == 404


# --- posting slots and add to queue -----------------------------------------------------------


async def test_slots_replace_the_whole_week_and_are_validated(tenant, plan):
    brand, _ = plan
    url = f"/v1/brands/{brand['id']}/posting-slots"
    assert (await tenant.req("GET", url)).json() == {"brand_id": brand["id"], "time_zone": "Europe/Madrid",
                                                     "items": []}
    first = [{"network": "x", "weekday": 3, "local_time": "18:00"}, {"network": "x", "weekday": 1, "local_time": "09:30"},
             {"network": "instagram", "weekday": 1, "local_time": "09:30"}]
    r = await tenant.req("PUT", url, json={"slots": first})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [{"network": "instagram", "weekday": 1, "local_time": "09:30"},
                                 {"network": "x", "weekday": 1, "local_time": "09:30"},
                                 {"network": "x", "weekday": 3, "local_time": "18:00"}]
    assert (await tenant.req("GET", url)).json() == r.json()
    for bad, field in [
        ({"network": "x", "weekday": 8, "local_time": "09:00"}, "slots[0].weekday"),
        ({"network": "x", "weekday": 0, "local_time": "09:00"}, "slots[0].weekday"),
        ({"network": "x", "weekday": 1, "local_time": "24:00"}, "slots[0].local_time"),
        ({"network": "x", "weekday": 1, "local_time": "9:00"}, "slots[0].local_time"),
        ({"network": "myspace", "weekday": 1, "local_time": "09:00"}, "slots[0].network"),
    ]:
        r = await tenant.req("PUT", url, json={"slots": [bad]})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (bad, r.text)
    twice = {"network": "x", "weekday": 2, "local_time": "10:00"}
    r = await tenant.req("PUT", url, json={"slots": [twice, twice]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "slots[1]"
    assert len((await tenant.req("GET", url)).json()["items"]) == 3  # nothing changed by the refusals
    r = await tenant.req("PUT", url, json={"slots": [twice]})
    assert [i["weekday"] for i in r.json()["items"]] == [2]
    assert (await tenant.req("PUT", url, json={"slots": []})).json()["items"] == []
    analyst, _ = await tenant.member("analyst")
    assert (await tenant.req("PUT", url, token=analyst, json={"slots": []})).status_code == 403
    assert (await tenant.req("GET", url, token=analyst)).status_code == 200


async def test_slots_on_daylight_saving_days(tenant, plan):
    brand, _ = plan
    r = await tenant.req("PUT", f"/v1/brands/{brand['id']}/posting-slots", json={"slots": [
        {"network": "x", "weekday": 7, "local_time": "02:30"}]})
    assert r.status_code == 200
    spring = await _calendar(tenant, brand_id=brand["id"], **{"from": "2027-03-28", "to": "2027-03-28"})
    assert spring["days"][0]["slots"] == [{"brand_id": brand["id"], "network": "x", "local_time": "03:30",
                                           "scheduled_at": "2027-03-28T01:30:00Z", "free": True, "shifted": True}]
    autumn = await _calendar(tenant, brand_id=brand["id"], **{"from": "2027-10-31", "to": "2027-10-31"})
    assert autumn["days"][0]["slots"] == [{"brand_id": brand["id"], "network": "x", "local_time": "02:30",
                                           "scheduled_at": "2027-10-31T00:30:00Z", "free": True, "shifted": False}]
    ordinary = await _calendar(tenant, brand_id=brand["id"], **{"from": "2027-04-04", "to": "2027-04-04"})
    assert ordinary["days"][0]["slots"][0]["scheduled_at"] == "2027-04-04T00:30:00Z"


async def test_add_to_queue_takes_the_next_free_slot(tenant, plan):
    brand, accounts = plan
    r = await tenant.req("PUT", f"/v1/brands/{brand['id']}/posting-slots", json={"slots": [
        {"network": "x", "weekday": d, "local_time": "10:00"} for d in range(1, 8)]})
    assert r.status_code == 200
    soon = datetime.now(UTC) + timedelta(minutes=1)
    first = datetime.combine(soon.astimezone(MADRID).date(), time(10), tzinfo=MADRID)
    if first <= soon:
        first += timedelta(days=1)
    expected = [(first + timedelta(days=i)).astimezone(UTC) for i in range(4)]
    # Someone already planned a post at the second slot: the queue goes around it.
    manual = await _post(tenant, brand["id"], accounts, expected[1])
    queued = []
    for _ in range(3):
        post = await _post(tenant, brand["id"], accounts, None)
        r = await tenant.req("POST", f"/v1/posts/{post['id']}/queue", json={})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "draft" and r.headers["etag"] == f'"{r.json()["version"]}"'
        queued.append(datetime.fromisoformat(r.json()["scheduled_at"]))
    assert queued == [expected[0], expected[2], expected[3]]
    assert manual["scheduled_at"] is not None
    # schedule: true schedules it at the slot.
    post = await _post(tenant, brand["id"], accounts, None)
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/queue", json={"schedule": True})
    assert r.status_code == 200 and r.json()["status"] == "scheduled"
    assert datetime.fromisoformat(r.json()["scheduled_at"]) == (first + timedelta(days=4)).astimezone(UTC)


async def test_queue_needs_slots_variants_and_a_ready_post(tenant, plan):
    brand, accounts = plan
    await tenant.req("PUT", f"/v1/brands/{brand['id']}/posting-slots", json={"slots": [
        {"network": "x", "weekday": 1, "local_time": "10:00"}]})
    insta = await _post(tenant, brand["id"], accounts, None, networks=("instagram",))
    r = await tenant.req("POST", f"/v1/posts/{insta['id']}/queue", json={})
    assert r.status_code == 409 and r.json()["type"].endswith("/no-posting-slots")
    empty = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={})).json()
    r = await tenant.req("POST", f"/v1/posts/{empty['id']}/queue", json={})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "variants"
    broken = await _post(tenant, brand["id"], accounts, None, text=None)
    r = await tenant.req("POST", f"/v1/posts/{broken['id']}/queue", json={"schedule": True})
    assert r.status_code == 422 and r.json()["type"].endswith("/post-not-ready")
    after = (await tenant.req("GET", f"/v1/posts/{broken['id']}")).json()
    assert after["scheduled_at"] is None and after["status"] == "draft"
    r = await tenant.req("POST", f"/v1/posts/{broken['id']}/queue", json={}, headers={"If-Match": '"999"'})
    assert r.status_code == 412


async def test_queue_with_every_network_sharing_the_slot(tenant, plan):
    brand, accounts = plan
    day = (datetime.now(MADRID) + timedelta(days=3)).date()
    wd = day.isoweekday()
    await tenant.req("PUT", f"/v1/brands/{brand['id']}/posting-slots", json={"slots": [
        {"network": "x", "weekday": wd, "local_time": "08:00"},
        {"network": "x", "weekday": wd, "local_time": "12:00"},
        {"network": "instagram", "weekday": wd, "local_time": "12:00"}]})
    post = await _post(tenant, brand["id"], accounts, None, networks=("x", "instagram"))
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/queue", json={"match": "all"})
    assert r.status_code == 200
    assert datetime.fromisoformat(r.json()["scheduled_at"]) == datetime.combine(day, time(12), tzinfo=MADRID)
    other = await _post(tenant, brand["id"], accounts, None, networks=("x", "instagram"))
    r = await tenant.req("POST", f"/v1/posts/{other['id']}/queue", json={"match": "any"})
    assert datetime.fromisoformat(r.json()["scheduled_at"]) == datetime.combine(day, time(8), tzinfo=MADRID)


# --- rescheduling ---------------------------------------------------------------------------


async def test_reschedule_moves_and_reports_conflicts(tenant, plan):
    brand, accounts = plan
    t = _future(days=12, hour=9)
    anchor = await _post(tenant, brand["id"], accounts, t, title="Anchor", networks=("x", "instagram"))
    insta_only = await _post(tenant, brand["id"], accounts, t + timedelta(minutes=15), networks=("instagram",))
    moving = await _post(tenant, brand["id"], accounts, t + timedelta(hours=5), networks=("x",))
    r = await tenant.req("POST", f"/v1/posts/{moving['id']}/reschedule",
                         json={"scheduled_at": (t + timedelta(minutes=20)).isoformat()},
                         headers={"If-Match": f'"{moving["version"]}"'})
    assert r.status_code == 200, r.text
    body = r.json()
    assert datetime.fromisoformat(body["post"]["scheduled_at"]) == t + timedelta(minutes=20)
    assert r.headers["etag"] == f'"{body["post"]["version"]}"' and body["post"]["revision"] == moving["revision"] + 1
    # Only posts sharing one of its networks: the Instagram-only post is not a conflict.
    assert body["conflicts"] == [{"post_id": anchor["id"], "title": "Anchor", "network": "x",
                                  "scheduled_at": t.isoformat().replace("+00:00", "Z"), "minutes_apart": 20}]
    assert insta_only["id"] not in r.text
    r = await tenant.req("POST", f"/v1/posts/{moving['id']}/reschedule",
                         json={"scheduled_at": (t + timedelta(minutes=25)).isoformat(), "conflict_window_minutes": 10})
    assert r.status_code == 200 and r.json()["conflicts"] == []


async def test_a_scheduled_post_moved_to_an_invalid_time_is_refused_and_unchanged(tenant, plan):
    brand, accounts = plan
    post = await _post(tenant, brand["id"], accounts, _future(days=5))
    post = (await tenant.req("POST", f"/v1/posts/{post['id']}/schedule", json={})).json()
    assert post["status"] == "scheduled"
    for when, field in [("2020-01-01T09:00:00Z", "scheduled_at"), ("2027-01-01T09:00:00", "scheduled_at"),
                        ("9999-12-31T23:00:00Z", "scheduled_at")]:
        r = await tenant.req("POST", f"/v1/posts/{post['id']}/reschedule", json={"scheduled_at": when})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/reschedule",
                         json={"scheduled_at": _future(days=6).isoformat()}, headers={"If-Match": '"1"'})
    assert r.status_code == 412
    after = (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()
    assert (after["scheduled_at"], after["version"], after["revision"], after["status"]) == (
        post["scheduled_at"], post["version"], post["revision"], "scheduled")
    # A valid move keeps it scheduled.
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/reschedule", json={"scheduled_at": _future(days=6).isoformat()})
    assert r.status_code == 200 and r.json()["post"]["status"] == "scheduled"


# --- iCalendar feeds --------------------------------------------------------------------------


async def test_ics_feed_shows_the_plan_and_follows_moves(tenant, other_tenant, plan, owner_engine, settings):
    brand, accounts = plan
    t = _future(days=7, hour=10)
    post = await _post(tenant, brand["id"], accounts, t, title="Roscón, ya; en tienda", networks=("x", "instagram"))
    idea = await _post(tenant, brand["id"], accounts, None, title="idea")
    far = await _post(tenant, brand["id"], accounts, _future(days=400), title="far")
    theirs = await other_tenant.brand()
    their_account = await other_tenant.social_account(owner_engine, settings.vault(), theirs["id"], "x")
    their_post = await _post(other_tenant, theirs["id"], {"x": their_account}, t, title="Not yours")

    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/calendar-feeds", json={"label": "For Don Luis"})
    assert r.status_code == 201, r.text
    feed = r.json()
    assert feed["url"].startswith("http://testserver.local/calendar/ccf_") and feed["url"].endswith(".ics")
    assert feed["webcal_url"] == "webcal://" + feed["url"].removeprefix("http://")
    secret = _path(feed["url"]).split("_", 2)[2].removesuffix(".ics")
    assert len(secret) >= 43  # 256 random bits

    r = await tenant.client.get(_path(feed["url"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/calendar")
    assert r.headers["cache-control"] == "private, max-age=300"
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["x-robots-tag"] == "noindex"
    cal = Calendar.from_ical(r.text)
    assert str(cal["X-WR-TIMEZONE"]) == "Europe/Madrid" and "Panadería Sol" in str(cal["X-WR-CALNAME"])
    assert str(cal["PRODID"]) and str(cal["VERSION"]) == "2.0"
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {f"{post['id']}@testserver.local"}  # no idea, nothing out of the window, no one else's
    event = events[f"{post['id']}@testserver.local"]
    assert event.decoded("DTSTART") == t
    assert str(event["SUMMARY"]) == "Roscón, ya; en tienda"
    assert "Networks: X, Instagram" in str(event["DESCRIPTION"]) and "Status: draft" in str(event["DESCRIPTION"])
    for absent in (idea["id"], far["id"], their_post["id"], "Not yours"):
        assert absent not in r.text

    listed = (await tenant.req("GET", f"/v1/brands/{brand['id']}/calendar-feeds")).json()["items"]
    assert [f["id"] for f in listed] == [feed["id"]] and listed[0]["label"] == "For Don Luis"
    assert listed[0]["last_used_at"] is not None and secret not in str(listed)

    moved = t + timedelta(days=1, hours=2)
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/reschedule", json={"scheduled_at": moved.isoformat()})
    assert r.status_code == 200
    again = Calendar.from_ical((await tenant.client.get(_path(feed["url"]))).text)
    [event] = again.walk("VEVENT")
    assert event.decoded("DTSTART") == moved and int(event["SEQUENCE"]) > 0


async def test_revoked_tampered_and_foreign_feeds_are_404(tenant, other_tenant, plan):
    brand, _ = plan
    feed = (await tenant.req("POST", f"/v1/brands/{brand['id']}/calendar-feeds", json={})).json()
    path = _path(feed["url"])
    assert (await tenant.client.get(path)).status_code == 200
    prefix, agency, secret = path.removeprefix("/calendar/").removesuffix(".ics").split("_", 2)
    tampered = [
        f"/calendar/{prefix}_{agency}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}.ics",
        f"/calendar/{prefix}_{uuid.UUID(other_tenant.agency_id).hex}_{secret}.ics",  # same secret, other agency
        path.removesuffix(".ics"),
        path + ".ics",
        "/calendar/nothing.ics",
    ]
    for bad in tampered:
        r = await tenant.client.get(bad)
        assert r.status_code == 404 and r.json() == {"type": "https://chorus.dev/problems/not-found",
                                                     "title": "Not found", "status": 404, "detail": "Not found",
                                                     "instance": bad, "request_id": r.json()["request_id"]}, bad
    # Another agency cannot revoke it, nor list it.
    assert (await other_tenant.req("DELETE", f"/v1/calendar-feeds/{feed['id']}")).status_code == 404
    assert (await other_tenant.req("GET", f"/v1/brands/{brand['id']}/calendar-feeds")).status_code == 404
    assert (await tenant.client.get(path)).status_code == 200
    r = await tenant.req("DELETE", f"/v1/calendar-feeds/{feed['id']}")
    assert r.status_code == 204
    assert (await tenant.req("DELETE", f"/v1/calendar-feeds/{feed['id']}")).status_code == 204
    r = await tenant.client.get(path)
    assert r.status_code == 404 and r.json()["detail"] == "Not found"
    [listed] = (await tenant.req("GET", f"/v1/brands/{brand['id']}/calendar-feeds")).json()["items"]
    assert listed["revoked_at"] is not None


# --- CSV export -----------------------------------------------------------------------------


async def test_csv_export_one_row_per_variant_with_formulas_defused(tenant, plan, owner_engine):
    from tests.api.test_posts import media_asset

    brand, accounts = plan
    photo = await media_asset(tenant, owner_engine, brand["id"])
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "title": "=HYPERLINK(\"http://evil.example\",\"click\")", "labels": ["roscon", "launch"],
        "scheduled_at": "2027-01-05T23:30:00Z", "variants": [
            {"social_account_id": accounts["x"], "text": "+34 600 000 000, llámanos"},
            {"social_account_id": accounts["instagram"], "text": "@panaderia ñam", "media": [{"media_id": photo}]}]})
    post = r.json()
    empty = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "title": "no variants", "scheduled_at": "2027-01-10T10:00:00Z"})).json()
    await _post(tenant, brand["id"], accounts, "2027-02-01T10:00:00Z", title="next month")

    r = await tenant.req("GET", "/v1/calendar/export.csv",
                         params={"brand_id": brand["id"], "from": "2027-01-01", "to": "2027-01-31"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="chorus-panaderia-sol-2027-01-01-2027-01-31.csv"'
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(row["post_id"], row["network"]) for row in rows] == [
        (post["id"], "x"), (post["id"], "instagram"), (empty["id"], "")]
    x, insta, bare = rows
    assert x == {"post_id": post["id"], "brand": "Panadería Sol", "local_date": "2027-01-06", "local_time": "00:30",
                 "time_zone": "Europe/Madrid", "scheduled_at_utc": "2027-01-05T23:30:00Z", "network": "x",
                 "account": "h", "post_status": "draft", "variant_status": "draft",
                 "title": "'=HYPERLINK(\"http://evil.example\",\"click\")", "labels": "roscon, launch",
                 "text": "'+34 600 000 000, llámanos", "media_count": "0"}
    assert insta["text"] == "'@panaderia ñam" and insta["media_count"] == "1"
    assert bare["media_count"] == "0" and bare["title"] == "no variants"


async def test_csv_export_range_is_capped(tenant, plan):
    brand, _ = plan
    r = await tenant.req("GET", "/v1/calendar/export.csv",
                         params={"brand_id": brand["id"], "from": "2027-01-01", "to": "2028-01-02"})
    assert r.status_code == 422 and r.json()["type"].endswith("/validation-error")
    r = await tenant.req("GET", "/v1/calendar/export.csv",
                         params={"brand_id": brand["id"], "from": "2027-01-01", "to": "2027-12-31"})
    assert r.status_code == 200 and r.text.strip("\ufeff").count("\r\n") == 1  # the header only


async def test_a_repeated_calendar_read_follows_every_change(tenant, plan, owner_engine):
    """The encoded answer is reused while the plan is unchanged: each kind of change shows at once."""
    from sqlalchemy import text

    brand, accounts = plan
    week = {"brand_id": brand["id"], "from": "2027-01-04", "to": "2027-01-10"}
    post = await _post(tenant, brand["id"], accounts, "2027-01-05T10:00:00Z", title="Before")
    first = await _calendar(tenant, **week)
    assert await _calendar(tenant, **week) == first
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}", json={"title": "After"})
    assert r.status_code == 200
    assert (await _calendar(tenant, **week))["days"][1]["posts"][0]["title"] == "After"
    # A status written on the post alone (a worker's Core update, no stamp, no version) shows too.
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE posts SET status = 'publishing' WHERE id = :p"), {"p": post["id"]})
    assert (await _calendar(tenant, **week))["days"][1]["posts"][0]["status"] == "publishing"
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE posts SET status = 'draft' WHERE id = :p"), {"p": post["id"]})
    await tenant.req("PUT", f"/v1/brands/{brand['id']}/posting-slots", json={"slots": [
        {"network": "x", "weekday": 3, "local_time": "10:00"}]})
    assert [len(d["slots"]) for d in (await _calendar(tenant, **week))["days"]] == [0, 0, 1, 0, 0, 0, 0]
    await tenant.req("PUT", f"/v1/brands/{brand['id']}/posting-slots", json={"slots": []})
    assert all(not d["slots"] for d in (await _calendar(tenant, **week))["days"])
    other = await _post(tenant, brand["id"], accounts, "2027-01-05T10:10:00Z")
    cal = await _calendar(tenant, **week)
    assert _days(cal) == {"2027-01-05": [post["id"], other["id"]]} and len(cal["conflicts"]) == 1
    idea = await _post(tenant, brand["id"], accounts, None)
    assert [p["id"] for p in (await _calendar(tenant, **week))["unscheduled"]] == [idea["id"]]
    assert (await tenant.req("DELETE", f"/v1/posts/{other['id']}")).status_code == 204
    assert _days(await _calendar(tenant, **week)) == {"2027-01-05": [post["id"]]}
    r = await tenant.req("PATCH", f"/v1/brands/{brand['id']}", json={"time_zone": "America/New_York"})
    assert r.status_code == 200, r.text
    moved = await _calendar(tenant, **week)
    assert moved["brands"][0]["time_zone"] == "America/New_York"
    assert moved["days"][1]["posts"][0]["local_time"] == "05:00"


async def test_a_variant_changed_alone_shows_at_the_next_recheck(tenant, plan, owner_engine):
    """A write that changes one variant without touching its post (a publishing worker) is
    found by the variants' fingerprint, compared at most every `recheck_seconds`."""
    from sqlalchemy import text

    from api.controllers.calendar import PLANS

    brand, accounts = plan
    week = {"brand_id": brand["id"], "from": "2027-01-04", "to": "2027-01-10"}
    post = await _post(tenant, brand["id"], accounts, "2027-01-05T10:00:00Z")
    assert (await _calendar(tenant, **week))["days"][1]["posts"][0]["variants"][0]["status"] == "draft"
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE post_variants SET status = 'publishing' WHERE post_id = :p"), {"p": post["id"]})
    before = PLANS.recheck_seconds
    try:
        PLANS.recheck_seconds = 3600
        assert (await _calendar(tenant, **week))["days"][1]["posts"][0]["variants"][0]["status"] == "draft"
        PLANS.recheck_seconds = 0
        assert (await _calendar(tenant, **week))["days"][1]["posts"][0]["variants"][0]["status"] == "publishing"
    finally:
        PLANS.recheck_seconds = before


async def test_the_calendar_is_gzipped_for_clients_that_ask(tenant, plan):
    from api.controllers.calendar import accepts_gzip

    brand, accounts = plan
    await _post(tenant, brand["id"], accounts, "2027-01-05T10:00:00Z", title="Roscón")
    params = {"brand_id": brand["id"], "from": "2027-01-01", "to": "2027-01-31"}
    zipped = await tenant.req("GET", "/v1/calendar", params=params, headers={"Accept-Encoding": "gzip"})
    plain = await tenant.req("GET", "/v1/calendar", params=params, headers={"Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert zipped.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
    assert zipped.json() == plain.json() and plain.json()["days"][4]["posts"][0]["title"] == "Roscón"
    assert [accepts_gzip(h) for h in ("gzip, deflate, br", "br;q=1, gzip;q=0.5", "gzip;q=0", "*", "*, gzip;q=0",
                                      "identity", "")] == [True, True, False, True, False, False, False]
