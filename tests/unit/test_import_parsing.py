"""Reading import files and checking their posts, without a database."""

from __future__ import annotations

import codecs
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.content.rules import OPTIONS, MediaFacts
from domain.imports import rules
from domain.imports.rules import Account, FileInvalid, Lookups
from domain.networks.adapters.base import Network

X = Account(uuid.uuid4(), Network.X, "PanaderiaSol", "connected")
INSTAGRAM = Account(uuid.uuid4(), Network.INSTAGRAM, "panaderiasol", "connected")
TIKTOK = Account(uuid.uuid4(), Network.TIKTOK, "panaderiasol", "connected")
REVOKED = Account(uuid.uuid4(), Network.PINTEREST, "old", "revoked")
CAMPAIGN = uuid.uuid4()
IMAGE = uuid.uuid4()
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def lookups(**overrides) -> Lookups:
    values = {
        "zone": "Europe/Madrid", "now": NOW,
        "accounts": {a.id: a for a in (X, INSTAGRAM, TIKTOK, REVOKED)},
        "campaigns": {CAMPAIGN: "Christmas roscón"},
        "media": {IMAGE: MediaFacts("image", "image/jpeg", 200_000, 1080, 1080)},
    }
    return Lookups(**(values | overrides))


def csv_bytes(rows: list[dict[str, str]], *, delimiter: str = ",", columns: list[str] | None = None) -> bytes:
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return out.getvalue().encode()


def checked(data: bytes, **lk):
    parsed = rules.parse(data)
    return parsed, [rules.check_post(source, lookups(**lk)) for source in parsed.posts]


def where(problems) -> set[tuple[int, str, str]]:
    return {(p.row, p.column, p.rule) for p in problems}


# --- bytes and delimiters ------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_read_from_the_header(delimiter):
    data = csv_bytes([{"account": "x:panaderiasol", "text": "uno, dos; tres"}], delimiter=delimiter)
    parsed, [post] = checked(data)
    assert parsed.problems == [] and post.create is not None
    assert post.create.variants[0].text == "uno, dos; tres"


def test_a_byte_order_mark_is_not_part_of_the_first_column():
    data = codecs.BOM_UTF8 + csv_bytes([{"post_key": "a", "account": "x:panaderiasol", "text": "hola"}])
    parsed, [post] = checked(data)
    assert parsed.problems == [] and post.create is not None


def test_utf16_with_its_mark_is_read():
    text = csv_bytes([{"account": "x:panaderiasol", "text": "añadir ñ"}]).decode()
    parsed, [post] = checked(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert post.create is not None and post.create.variants[0].text == "añadir ñ"


@pytest.mark.parametrize(("data", "rule"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not_text"),
    (b"PK\x03\x04 workbook", "not_text"),
    (b"account,text\nx:a,hi\x00there\n", "not_text"),
    ("account,text\nx:a,caf\xe9\n".encode("latin-1"), "encoding"),
    (bytes(range(1, 32)) * 40, "not_text"),
    (b"   \n\n", "empty"),
    (b'account,text\nx:a,"never closed\n', "malformed_csv"),
    (b"[1, 2", "malformed_json"),
    (b'{"items": []}', "json_shape"),
])
def test_what_is_not_an_import_file_is_refused_clearly(data, rule):
    with pytest.raises(FileInvalid) as err:
        rules.parse(data, filename="file.json" if data[:1] in (b"[", b"{") else "file.csv")
    assert err.value.rule == rule and err.value.message


def test_a_line_break_inside_a_cell_does_not_move_the_row_numbers():
    data = csv_bytes([
        {"account": "x:panaderiasol", "text": "first line\nsecond line\r\nthird"},
        {"account": "x:nobody", "text": "after"},
        {},  # an empty spreadsheet row keeps its number
        {"account": "x:ghost", "text": "later"},
    ])
    parsed, posts = checked(data)
    assert parsed.total_rows == 3
    assert posts[0].create.variants[0].text == "first line\nsecond line\nthird"
    assert where(posts[1].problems) == {(3, "account", "unknown_account")}
    assert where(posts[2].problems) == {(5, "account", "unknown_account")}


# --- the header ----------------------------------------------------------------------------


def test_header_problems_name_the_column_on_row_1():
    data = b"Post Key,TEXT,colour,opt_colour,text,,\nk,hi,red,blue,again,,\n,,,,,x,\n"
    parsed = rules.parse(data)
    assert where(parsed.problems) == {
        (1, "colour", "unknown_column"), (1, "opt_colour", "unknown_column"), (1, "text", "duplicate_column"),
        (1, "account", "missing_column"), (1, "#6", "unnamed_column"),
    }
    assert "opt_privacy" in next(p.message for p in parsed.problems if p.column == "opt_colour")
    # Without the account column, rows are not blamed one by one.
    assert all(p.row == 1 for s in parsed.posts for p in rules.check_post(s, lookups()).problems)


def test_extra_cells_beyond_the_header_are_a_problem_of_their_row():
    parsed = rules.parse(b"account,text\nx:panaderiasol,hi,surprise\n")
    assert where(parsed.problems) == {(2, "#3", "extra_cells")}


# --- posts from rows -----------------------------------------------------------------------


def test_rows_with_the_same_key_are_one_post_wherever_they_are():
    data = csv_bytes([
        {"post_key": "a", "title": "Roscón", "account": "x:panaderiasol", "text": "x copy"},
        {"post_key": "b", "account": "x:panaderiasol", "text": "other"},
        {"post_key": "a", "title": "Roscón", "account": "instagram:panaderiasol", "text": "ig copy",
         "media_ids": str(IMAGE)},
        {"post_key": "", "account": "x:panaderiasol", "text": "alone"},
        {"post_key": "", "account": "x:panaderiasol", "text": "alone too"},
    ])
    parsed, posts = checked(data)
    assert [p.rows for p in posts] == [[2, 4], [3], [5], [6]]
    first = posts[0].create
    assert first.title == "Roscón" and [v.social_account_id for v in first.variants] == [X.id, INSTAGRAM.id]
    assert first.variants[1].media[0].media_id == IMAGE


def test_post_cells_may_repeat_but_not_disagree():
    data = csv_bytes([
        {"post_key": "a", "title": "One", "account": "x:panaderiasol", "text": "a"},
        {"post_key": "a", "title": "Two", "account": "instagram:panaderiasol", "text": "b"},
    ])
    _, [post] = checked(data)
    assert (3, "title", "conflicting_value") in where(post.problems) and post.blocked


def test_the_same_account_twice_in_a_post_is_refused():
    data = csv_bytes([
        {"post_key": "a", "account": "x:panaderiasol", "text": "a"},
        {"post_key": "a", "account": str(X.id), "text": "b"},
    ])
    _, [post] = checked(data)
    assert where(post.problems) == {(3, "account", "duplicate_account")}


@pytest.mark.parametrize(("ref", "rule"), [
    ("x:@PANADERIASOL", None),
    (str(X.id), None),
    ("x:someone", "unknown_account"),
    ("pinterest:old", "account_revoked"),
    ("myspace:me", "invalid_account"),
    ("panaderiasol", "invalid_account"),
    (str(uuid.uuid4()), "unknown_account"),
])
def test_accounts_by_handle_or_id(ref, rule):
    _, [post] = checked(csv_bytes([{"account": ref, "text": "hola"}]))
    assert [p.rule for p in post.problems if p.blocking] == ([rule] if rule else [])


def test_two_accounts_with_one_handle_need_the_id():
    twin = Account(uuid.uuid4(), Network.X, "panaderiasol", "connected")
    _, [post] = checked(csv_bytes([{"account": "x:panaderiasol", "text": "hola"}]),
                        accounts={X.id: X, twin.id: twin})
    assert [p.rule for p in post.problems] == ["ambiguous_account"]


def test_campaign_by_name_or_id():
    _, [post] = checked(csv_bytes([{"campaign": "christmas ROSCÓN", "account": "x:panaderiasol", "text": "a"}]))
    assert post.create.campaign_id == CAMPAIGN
    _, [post] = checked(csv_bytes([{"campaign": "Easter", "account": "x:panaderiasol", "text": "a"}]))
    assert where(post.problems) == {(2, "campaign", "unknown_campaign")}
    _, [post] = checked(csv_bytes([{"campaign_id": "not-an-id", "account": "x:panaderiasol", "text": "a"}]))
    assert where(post.problems) == {(2, "campaign_id", "invalid_id")}


# --- times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "clock", "expected"), [
    ("2026-12-20", "09:30", "2026-12-20T08:30:00+00:00"),
    ("2026/12/20", "9:30", "2026-12-20T08:30:00+00:00"),
    ("2026-12-20 00:00:00", "9.30", "2026-12-20T08:30:00+00:00"),
    ("2026-12-20", "9:30 PM", "2026-12-20T20:30:00+00:00"),
    ("2026-12-20", "12:00 am", "2026-12-19T23:00:00+00:00"),
    ("2027-07-20", "09:30:15", "2027-07-20T07:30:15+00:00"),
])
def test_date_and_time_are_read_on_the_brands_wall_clock(day, clock, expected):
    _, [post] = checked(csv_bytes([{"date": day, "time": clock, "account": "x:panaderiasol", "text": "a"}]))
    assert post.problems == [] and post.create.scheduled_at.isoformat() == expected


@pytest.mark.parametrize(("cells", "expected"), [
    ({"date": "20/12/2026", "time": "09:00"}, (2, "date", "invalid_date")),
    ({"date": "2026-02-30", "time": "09:00"}, (2, "date", "invalid_date")),
    ({"date": "2026-12-20", "time": "25:00"}, (2, "time", "invalid_time")),
    ({"date": "2026-12-20", "time": "13:00 pm"}, (2, "time", "invalid_time")),
    ({"date": "2026-12-20"}, (2, "time", "required")),
    ({"time": "09:00"}, (2, "date", "required")),
    ({"scheduled_at": "2026-12-20T09:00"}, (2, "scheduled_at", "offset_required")),
    ({"scheduled_at": "tomorrow"}, (2, "scheduled_at", "invalid_datetime")),
    ({"scheduled_at": "2026-12-20T09:00Z", "date": "2026-12-20", "time": "09:00"},
     (2, "scheduled_at", "conflicting_time")),
    ({"date": "2026-03-29", "time": "02:30"}, (2, "date", "nonexistent_local_time")),
])
def test_bad_times_are_named_where_they_are(cells, expected):
    _, [post] = checked(csv_bytes([{**cells, "account": "x:panaderiasol", "text": "a"}]))
    assert where(post.problems) == {expected}
    assert post.blocked


def test_an_ambiguous_local_time_takes_the_first_and_warns():
    instant, note = rules.wall_clock_to_utc(datetime(2026, 10, 25, 2, 30), "Europe/Madrid")
    assert note == "ambiguous" and instant == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    _, [post] = checked(csv_bytes([{"date": "2026-10-25", "time": "02:30", "account": "x:panaderiasol",
                                    "text": "a"}]), now=datetime(2026, 10, 1, tzinfo=UTC))
    assert [(p.rule, p.severity, p.blocking) for p in post.problems] == [("ambiguous_local_time", "warning", False)]
    assert post.create.scheduled_at == instant


def test_scheduling_needs_a_future_time_and_valid_variants():
    later = (NOW + timedelta(days=2)).isoformat()
    _, [post] = checked(csv_bytes([{"schedule": "yes", "account": "x:panaderiasol", "text": "a"}]))
    assert where(post.problems) == {(2, "schedule", "time_required")}
    _, [post] = checked(csv_bytes([{"schedule": "yes", "scheduled_at": "2026-01-01T09:00:00Z",
                                    "account": "x:panaderiasol", "text": "a"}]))
    assert where(post.problems) == {(2, "scheduled_at", "time_passed")} and post.blocked
    _, [post] = checked(csv_bytes([{"schedule": "maybe", "account": "x:panaderiasol", "text": "a"}]))
    assert where(post.problems) == {(2, "schedule", "invalid_value")}
    # A draft with a past time is imported, with a warning.
    _, [post] = checked(csv_bytes([{"scheduled_at": "2026-01-01T09:00:00Z", "account": "x:panaderiasol",
                                    "text": "a"}]))
    assert [(p.rule, p.blocking) for p in post.problems] == [("time_passed", False)] and not post.blocked
    _, [post] = checked(csv_bytes([{"schedule": "yes", "scheduled_at": later, "account": "x:panaderiasol",
                                    "text": "a"}]))
    assert post.problems == [] and post.schedule and post.create.scheduled_at == NOW + timedelta(days=2)


# --- network rules, mapped back to columns -------------------------------------------------


def test_network_rules_point_at_their_column_and_block_only_posts_to_schedule():
    later = (NOW + timedelta(days=2)).isoformat()
    rows = [
        {"post_key": "x", "account": "x:panaderiasol", "text": "é" * 281, "opt_thread": "two ||  || four"},
        {"post_key": "t", "account": "tiktok:panaderiasol", "text": "hola", "opt_disable_duet": "yes"},
        {"post_key": "i", "account": "instagram:panaderiasol", "text": "hola", "media_ids": str(IMAGE),
         "opt_placement": "reel", "opt_privacy": "public"},
        {"post_key": "s", "account": "x:panaderiasol", "text": "é" * 281, "schedule": "yes", "scheduled_at": later},
    ]
    _, posts = checked(csv_bytes(rows))
    x, tiktok, instagram, scheduled = posts
    assert where(x.problems) == {(2, "text", "text_too_long"), (2, "opt_thread", "thread_part_empty")}
    assert not x.blocked and x.create.variants[0].options == {"thread": ["two", "", "four"]}
    assert where(tiktok.problems) == {(3, "opt_privacy", "option_required"), (3, "media_ids", "media_required")}
    assert tiktok.create.variants[0].options == {"disable_duet": True}
    assert where(instagram.problems) == {(4, "opt_privacy", "unknown_option"),
                                         (4, "media_ids", "reel_needs_one_video")}
    assert all(not p.blocking and p.severity == "error" for p in x.problems + tiktok.problems)
    assert [(p.rule, p.blocking) for p in scheduled.problems] == [("text_too_long", True)] and scheduled.blocked


def test_media_ids_must_be_the_brands():
    other = uuid.uuid4()
    _, [post] = checked(csv_bytes([{"account": "instagram:panaderiasol", "text": "a",
                                    "media_ids": f"{IMAGE}; {other}"}]))
    assert where(post.problems) == {(2, "media_ids", "unknown_media")}
    _, [post] = checked(csv_bytes([{"account": "instagram:panaderiasol", "text": "a", "media_ids": "cat.jpg"}]))
    assert where(post.problems) == {(2, "media_ids", "invalid_id")}
    _, [post] = checked(csv_bytes([{"account": "instagram:panaderiasol", "text": "a",
                                    "media_ids": f"{IMAGE},{IMAGE}"}]))
    assert where(post.problems) == {(2, "media_ids", "duplicate_media")}


def test_labels_and_bools_and_tags():
    _, [post] = checked(csv_bytes([{"labels": "Navidad; roscón, launch", "account": "x:panaderiasol", "text": "a"}]))
    assert post.create.labels == ["Navidad", "roscón", "launch"]
    _, [post] = checked(csv_bytes([{"labels": "a" * 51, "account": "x:panaderiasol", "text": "a"}]))
    assert where(post.problems) == {(2, "labels", "too_long")}
    _, [post] = checked(csv_bytes([{"account": "x:panaderiasol", "text": "a", "opt_made_for_kids": "perhaps"}]))
    assert where(post.problems) == {(2, "opt_made_for_kids", "invalid_value")}
    assert rules.option_value("tags", "bread; roscón,navidad") == ["bread", "roscón", "navidad"]


def test_formula_looking_cells_stay_text():
    cells = {"title": "=SUM(A1:A2)", "account": "x:panaderiasol", "text": '=HYPERLINK("http://evil.test","x")',
             "opt_thread": "+34 600 || @panaderiasol"}
    _, [post] = checked(csv_bytes([cells]))
    assert post.create.title == "=SUM(A1:A2)"
    assert post.create.variants[0].text == '=HYPERLINK("http://evil.test","x")'
    assert post.create.variants[0].options["thread"] == ["+34 600", "@panaderiasol"]


def test_every_option_name_has_one_kind_across_networks():
    for network, options in OPTIONS.items():
        for name, option in options.items():
            assert rules.OPTION_KINDS[name] == option.kind, (network, name)


# --- JSON ----------------------------------------------------------------------------------


def test_json_posts_are_checked_one_by_one_with_their_paths():
    import msgspec

    later = (NOW + timedelta(days=3)).replace(tzinfo=None).isoformat()
    posts = [
        {"title": "ok", "local_scheduled_at": later, "schedule": True,
         "variants": [{"account": "x:panaderiasol", "text": "hola"}]},
        {"variants": [{"social_account_id": str(TIKTOK.id), "text": "hola", "options": {}}]},
        {"variants": [{"social_account_id": "nope"}]},
        {"title": "bad\u0000"},
        "not a post",
    ]
    for data in (msgspec.json.encode(posts), msgspec.json.encode({"posts": posts})):
        parsed = rules.parse(data, filename="posts.json")
        assert parsed.format == "json" and parsed.total_rows == 5
        ok, tiktok, bad_id, nul, junk = [rules.check_post(s, lookups()) for s in parsed.posts]
        assert ok.problems == [] and ok.schedule
        assert ok.create.scheduled_at == datetime.fromisoformat(later).replace(
            tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Madrid")).astimezone(UTC)
        assert where(tiktok.problems) == {(2, "variants[0].options.privacy", "option_required"),
                                          (2, "variants[0].media", "media_required")}
        assert where(bad_id.problems) == {(3, "variants[0].social_account_id", "invalid_value")}
        assert where(nul.problems) == {(4, "title", "nul_character")}
        assert [p.rule for p in junk.problems] == ["invalid_value"] and junk.blocked


def test_the_template_reads_back_as_one_post_with_two_variants():
    text = rules.template_csv()
    header = next(csv.reader(io.StringIO(text)))
    assert header[:3] == ["post_key", "title", "labels"] and "opt_privacy" in header and "opt_thread" in header
    parsed = rules.parse(text.encode())
    assert parsed.problems == [] and parsed.total_rows == 2 and len(parsed.posts) == 1
    sol_x = Account(uuid.uuid4(), Network.X, "panaderiasol", "connected")
    post = rules.check_post(parsed.posts[0], lookups(accounts={sol_x.id: sol_x, INSTAGRAM.id: INSTAGRAM}))
    assert post.create is not None and len(post.create.variants) == 2
    assert post.create.variants[0].options["thread"] == ["Pídelo hoy", "Recógelo el 6 de enero"]


def test_a_json_string_escape_that_is_not_text_is_refused_with_the_file():
    with pytest.raises(FileInvalid) as err:
        rules.parse(b'[{"title": "ok"}, {"title": "\\ud800"}]', filename="p.json")
    assert err.value.rule == "malformed_json"
