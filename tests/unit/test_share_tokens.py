"""Share links' pure parts: the reviewer proof, the CSRF token bound to it, the month grid."""

from __future__ import annotations

import uuid
from datetime import date

from domain.approvals import share_schemas as s
from domain.approvals.share import (
    branding_of,
    csrf_ok,
    csrf_token,
    month_grid,
    parse_token,
    reviewer_id_from,
    reviewer_key,
    reviewer_token,
)
from domain.core.security import OpaqueToken

KEY = reviewer_key("a secret of the app")


def test_reviewer_token_names_its_reviewer_on_its_link_only():
    link, other_link, reviewer = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    token = reviewer_token(KEY, link, reviewer)
    assert reviewer_id_from(KEY, link, token) == reviewer
    assert reviewer_id_from(KEY, other_link, token) is None
    assert reviewer_id_from(reviewer_key("another secret"), link, token) is None
    forged = f"{uuid.uuid4().hex}.{token.split('.', 1)[1]}"
    assert reviewer_id_from(KEY, link, forged) is None
    for bad in (None, "", "x", "nothex.abc", token + "A", token[:-1], "a" * 500):
        assert reviewer_id_from(KEY, link, bad) is None


def test_csrf_token_is_bound_to_the_reviewer_cookie():
    one = reviewer_token(KEY, uuid.uuid4(), uuid.uuid4())
    two = reviewer_token(KEY, uuid.uuid4(), uuid.uuid4())
    assert csrf_ok(KEY, one, csrf_token(KEY, one))
    assert not csrf_ok(KEY, two, csrf_token(KEY, one))
    assert not csrf_ok(KEY, None, csrf_token(KEY, one))
    assert not csrf_ok(KEY, one, None) and not csrf_ok(KEY, one, "")


def test_share_tokens_have_256_random_bits_and_their_own_prefix():
    agency = uuid.uuid4()
    token = OpaqueToken.new("chs", agency)
    assert parse_token(token.value) == token
    assert len(token.secret) >= 43  # 32 bytes, base64url
    assert parse_token(OpaqueToken.new("ccf", agency).value) is None


def test_month_grid_covers_the_range_monday_first():
    post = s.SharedPost(id=uuid.uuid4(), title="t", status="draft", scheduled_at=None, local_date=date(2027, 2, 1),
                        local_time="09:00", local_label=None, variants=[], awaiting_client=False, decisions=[],
                        comments=[])
    months = month_grid(date(2027, 1, 25), date(2027, 2, 3), [post])
    assert [m.title for m in months] == ["January 2027", "February 2027"]
    january = [d for w in months[0].weeks for d in w]
    assert january[0].day is None and len(january) % 7 == 0  # 1 January 2027 is a Friday
    in_range = [d.day for m in months for w in m.weeks for d in w if d.in_range]
    assert in_range[0] == date(2027, 1, 25) and in_range[-1] == date(2027, 2, 3) and len(in_range) == 10
    february = {d.day: d.post_ids for w in months[1].weeks for d in w if d.day}
    assert february[date(2027, 2, 1)] == [post.id]


def test_branding_without_a_logo_is_not_white_label_and_bad_colours_fall_back():
    class Agency:
        name = "Estudio"
        branding = {"primary_color": "red;}</style>", "secondary_color": "#ABCDEF"}

    out = branding_of(Agency())  # type: ignore[arg-type]
    assert out.white_label is False and out.primary_color == "#1F2937" and out.secondary_color == "#ABCDEF"
    Agency.branding = {"logo_url": "https://cdn.example.test/l.png"}
    assert branding_of(Agency()).white_label is True  # type: ignore[arg-type]
