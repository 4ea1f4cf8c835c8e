"""Client share links: the team's API, the public page and its JSON twin, and every rule
(expiry, revocation, permissions, tampering, the rate limit, the headers)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from tests.media_files import image

PAGE_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


@pytest.fixture(autouse=True)
def no_redirects(client):
    """Forms answer 303: the tests look at the redirect itself."""
    before = client.follow_redirects
    client.follow_redirects = False
    yield
    client.follow_redirects = before


@dataclass
class Shared:
    brand: dict[str, Any]
    accounts: dict[str, str]
    posts: dict[str, dict[str, Any]]  # by network


def later(days: int = 5, hour: int = 10) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


async def awaiting_client(owner_engine, tenant, post: dict[str, Any]) -> None:
    """A pending approval request whose current step is the client's (the approval workflow
    itself is tested with the approvals; here only its state matters)."""
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO approval_requests (id, agency_id, brand_id, post_id, revision, content_hash, steps, current_step,"
            " status, then_schedule, submitted_label, version, created_at, updated_at)"
            " VALUES (:id, :agency, :brand, :post, :rev, :hash, CAST(:steps AS jsonb), 0, 'pending', false, 'test', 1,"
            " now(), now())"),
            {"id": str(uuid.uuid4()), "agency": tenant.agency_id, "brand": post["brand_id"], "post": post["id"],
             "rev": post["revision"], "hash": "0" * 64,
             "steps": json.dumps([{"name": "Client", "kind": "client", "roles": [], "member_ids": [], "rule": "any"}])})


async def make_shared(tenant, owner_engine, settings, *, networks=("instagram", "facebook", "x"),
                      awaiting: bool = True, workflow: bool = False) -> Shared:
    """A brand with one account per network and one post on each. `awaiting`: each post waits
    for the client; `workflow`: through the real thing (a one-step client workflow, submit)."""
    brand = await tenant.brand()
    accounts = {n: await tenant.social_account(owner_engine, settings.vault(), brand["id"], n) for n in networks}
    media = await tenant.client.post(f"/v1/brands/{brand['id']}/media", headers=tenant.auth(),
                                     files={"file": ("photo.jpg", image("JPEG", (1080, 1080)), "image/jpeg")})
    assert media.status_code == 201, media.text
    if workflow:
        r = await tenant.req("PUT", f"/v1/brands/{brand['id']}/approval-workflow",
                             json={"steps": [{"name": "Client", "kind": "client"}]})
        assert r.status_code == 200, r.text
    posts = {}
    for i, network in enumerate(networks):
        variant: dict[str, Any] = {"social_account_id": accounts[network],
                                   "text": f"Roscón de Reyes on {network}\nsecond line\n\n#roscon"}
        if network in ("instagram", "facebook"):
            variant["media"] = [{"media_id": media.json()["id"], "alt_text": "A roscón"}]
        if network == "instagram":
            variant["options"] = {"first_comment": "#panaderia #navidad"}
        r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
            "title": f"Post {network}", "scheduled_at": later(5 + i).isoformat(), "variants": [variant]})
        assert r.status_code == 201, r.text
        posts[network] = r.json()
        if workflow:
            r = await tenant.req("POST", f"/v1/posts/{posts[network]['id']}/submit", json={})
            assert r.status_code in (200, 201), r.text
        elif awaiting:
            await awaiting_client(owner_engine, tenant, posts[network])
    return Shared(brand, accounts, posts)


async def create_link(tenant, brand_id: str, **body: Any) -> dict[str, Any]:
    r = await tenant.req("POST", f"/v1/brands/{brand_id}/share-links", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def token_of(link: dict[str, Any]) -> str:
    return link["url"].rsplit("/share/", 1)[1]


def page_path(link: dict[str, Any]) -> str:
    return "/share/" + token_of(link)


def assert_page_headers(r) -> None:
    for name, value in PAGE_HEADERS.items():
        assert r.headers.get(name) == value, (name, r.headers.get(name))
    assert "noindex" in r.headers["x-robots-tag"]
    csp = r.headers["content-security-policy"]
    for directive in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "img-src 'self'"):
        assert directive in csp, csp
    assert "script-src" not in csp and "unsafe-inline" not in csp


async def set_reviewer(client, link: dict[str, Any], name="Don Luis", email="luis@panaderia.test") -> str:
    """The page's reviewer form; answers the CSRF token of the page that follows."""
    r = await client.post(page_path(link) + "/reviewer", data={"name": name, "email": email})
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith(page_path(link) + "?m=welcome")
    assert_page_headers(r)  # redirects too
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/share/" in cookie
    page = await client.get(page_path(link))
    assert name in page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


# --- the team's API -----------------------------------------------------------------------


async def test_create_list_read_revoke_and_only_the_hash_is_stored(tenant, owner_engine, settings):
    shared = await make_shared(tenant, owner_engine, settings, awaiting=False)
    ids = [p["id"] for p in shared.posts.values()]
    link = await create_link(tenant, shared.brand["id"], posts=ids, permission="approve", label="January",
                             emails=["luis@panaderia.test"])
    assert link["url"].startswith(settings.api_base_url + "/share/chs_")
    assert link["permission"] == "approve" and link["state"] == "active" and sorted(link["post_ids"]) == sorted(ids)
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    token = token_of(link)
    secret = token.split("_", 2)[2]
    assert len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))) * 8 >= 128
    async with owner_engine.begin() as conn:
        stored = (await conn.execute(text("SELECT * FROM share_links WHERE id = :id"), {"id": link["id"]})).mappings().one()
    assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps({k: str(v) for k, v in stored.items()})
    second = await create_link(tenant, shared.brand["id"], posts=ids[:1])  # several links per brand
    assert second["permission"] == "view"
    listed = await tenant.req("GET", "/v1/share-links", params={"brand_id": shared.brand["id"]})
    assert listed.status_code == 200
    assert [i["id"] for i in listed.json()["items"]] == [second["id"], link["id"]]
    assert token not in listed.text and "url" not in listed.json()["items"][0]
    one = await tenant.req("GET", f"/v1/share-links/{link['id']}")
    assert one.status_code == 200 and one.json()["reviewers"] == [] and token not in one.text
    assert (await tenant.client.get(page_path(second))).status_code == 200
    r = await tenant.req("DELETE", f"/v1/share-links/{link['id']}")
    assert r.status_code == 204
    assert (await tenant.req("DELETE", f"/v1/share-links/{link['id']}")).status_code == 204
    assert (await tenant.req("GET", f"/v1/share-links/{link['id']}")).json()["state"] == "revoked"
    # One by one: the other link still works.
    assert (await tenant.client.get(page_path(second))).status_code == 200


async def test_create_refuses_bad_input_and_other_brands_posts(tenant, owner_engine, settings):
    shared = await make_shared(tenant, owner_engine, settings, networks=("x",), awaiting=False)
    other = await make_shared(tenant, owner_engine, settings, networks=("x",), awaiting=False)
    url = f"/v1/brands/{shared.brand['id']}/share-links"
    post_id = shared.posts["x"]["id"]
    cases = [
        {},
        {"posts": [post_id], "range": {"from": "2027-01-01", "to": "2027-01-31"}},
        {"posts": [other.posts["x"]["id"]]},
        {"range": {"from": "2027-01-31", "to": "2027-01-01"}},
        {"range": {"from": "2027-01-01", "to": "2027-12-31"}},
        {"posts": [post_id], "expires_in_days": 91},
        {"posts": [post_id], "permission": "own"},
        {"posts": [post_id], "agency_id": str(uuid.uuid4())},
    ]
    for body in cases:
        r = await tenant.req("POST", url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    listed = await tenant.req("GET", "/v1/share-links", params={"brand_id": shared.brand["id"]})
    assert listed.json()["items"] == []
    r = await tenant.req("POST", f"/v1/brands/{uuid.uuid4()}/share-links", json={"posts": [post_id]})
    assert r.status_code == 404


async def test_roles_and_another_agency(tenant, other_tenant, owner_engine, settings):
    shared = await make_shared(tenant, owner_engine, settings, networks=("x",), awaiting=False)
    link = await create_link(tenant, shared.brand["id"], posts=[shared.posts["x"]["id"]])
    analyst, _ = await tenant.member("analyst")
    assert (await tenant.req("GET", f"/v1/share-links/{link['id']}", analyst)).status_code == 200
    r = await tenant.req("POST", f"/v1/brands/{shared.brand['id']}/share-links", analyst,
                         json={"posts": [shared.posts["x"]["id"]]})
    assert r.status_code == 403
    assert (await tenant.req("DELETE", f"/v1/share-links/{link['id']}", analyst)).status_code == 403
    for method in ("GET", "DELETE"):
        assert (await other_tenant.req(method, f"/v1/share-links/{link['id']}")).status_code == 404
    listed = await other_tenant.req("GET", "/v1/share-links")
    assert link["id"] not in listed.text


# --- the page -----------------------------------------------------------------------------


async def test_page_shows_each_post_as_on_its_network_in_the_brands_zone(client, tenant, owner_engine, settings):
    shared = await make_shared(tenant, owner_engine, settings)
    link = await create_link(tenant, shared.brand["id"], posts=[p["id"] for p in shared.posts.values()])
    r = await client.get(page_path(link))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert_page_headers(r)
    html = r.text
    assert set(re.findall(r'data-network="(\w+)"', html)) == {"instagram", "facebook", "x"}
    assert "Roscón de Reyes on instagram\nsecond line\n\n#roscon" in html  # line breaks kept (pre-wrap)
    assert "#panaderia #navidad" in html  # the first comment
    assert "<script" not in html.lower()
    madrid = datetime.fromisoformat(shared.posts["x"]["scheduled_at"]).astimezone(ZoneInfo("Europe/Madrid"))
    assert madrid.strftime("%H:%M") + " (Europe/Madrid)" in html
    images = re.findall(r'<img src="(/media/[^"]+)"', html)
    assert len(images) == 2  # instagram and facebook carry the photo; through our own signed route
    picture = await client.get(images[0])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    nonce = re.search(r'<style nonce="([^"]+)"', html).group(1)
    assert f"'nonce-{nonce}'" in r.headers["content-security-policy"]
    # A view link shows no forms at all, and no Chorus-free promise: the agency is not white-labelled.
    assert "<form" not in html and "Chorus" in html
    stamped = await tenant.req("GET", f"/v1/share-links/{link['id']}")
    assert stamped.json()["last_used_at"] is not None


async def test_white_label_shows_the_agency_and_never_chorus(client, tenant, owner_engine, settings):
    r = await tenant.req("PATCH", "/v1/agency", json={"name": "Estudio Sol", "branding": {
        "logo_url": "https://cdn.estudiosol.test/logo.png", "primary_color": "#E4572E", "secondary_color": "#FFF8F0"}})
    assert r.status_code == 200, r.text
    shared = await make_shared(tenant, owner_engine, settings, networks=("x",))
    link = await create_link(tenant, shared.brand["id"], posts=[shared.posts["x"]["id"]], permission="approve")
    page = await client.get(page_path(link))
    assert page.status_code == 200
    assert "https://cdn.estudiosol.test/logo.png" in page.text and "Estudio Sol" in page.text
    assert "--primary:#E4572E" in page.text
    assert "chorus" not in page.text.lower()
    assert "img-src 'self' https://cdn.estudiosol.test;" in page.headers["content-security-policy"]
    data = (await client.get(f"/v1/shared/{token_of(link)}")).json()
    assert data["branding"]["white_label"] is True and data["branding"]["agency_name"] == "Estudio Sol"


async def test_expired_and_revoked_links_are_410_pages_that_reveal_nothing(client, tenant, owner_engine, settings):
    shared = await make_shared(tenant, owner_engine, settings, networks=("x",))
    expired = await create_link(tenant, shared.brand["id"], posts=[shared.posts["x"]["id"]], permission="approve")
    revoked = await create_link(tenant, shared.brand["id"], posts=[shared.posts["x"]["id"]], permission="approve")
    assert (await client.get(page_path(expired))).status_code == 200
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE share_links SET expires_at = now() - interval '1 second' WHERE id = :id"),
                           {"id": expired["id"]})
    await tenant.req("DELETE", f"/v1/share-links/{revoked['id']}")
    for link in (expired, revoked):
        r = await client.get(page_path(link))
        assert r.status_code == 410
        assert_page_headers(r)
        assert "This link is no longer valid" in r.text
        assert shared.brand["name"] not in r.text and "Roscón" not in r.text and "Agency" not in r.text
        for path in ("/reviewer", f"/posts/{shared.posts['x']['id']}/decision"):
            assert (await client.post(page_path(link) + path, data={"name": "a", "email": "a@b.cc"})).status_code == 410
        api = await client.get(f"/v1/shared/{token_of(link)}")
        assert api.status_code == 410 and api.json()["type"].endswith("/share-link-gone")
        assert shared.brand["name"] not in api.text
    state = (await tenant.req("GET", f"/v1/share-links/{expired['id']}")).json()["state"]
    assert state == "expired"


async def test_unknown_and_tampered_tokens_are_404(client, tenant, other_tenant, owner_engine, settings):
    shared = await make_shared(tenant, owner_engine, settings, networks=("x",))
    link = await create_link(tenant, shared.brand["id"], posts=[shared.posts["x"]["id"]])
    token = token_of(link)
    prefix, agency, secret = token.split("_", 2)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    tampered = [
        f"{prefix}_{agency}_{flipped}",
        f"{prefix}_{uuid.UUID(other_tenant.agency_id).hex}_{secret}",  # another agency's tenant: not found there
        f"xxx_{agency}_{secret}",
        "nonsense",
        token[:-5],
    ]
    for bad in tampered:
        r = await client.get(f"/share/{bad}")
        assert r.status_code == 404, bad
        assert_page_headers(r)
        assert shared.brand["name"] not in r.text
        assert (await client.get(f"/v1/shared/{bad}")).status_code == 404
        assert (await client.post(f"/share/{bad}/reviewer", data={"name": "a", "email": "a@b.cc"})).status_code == 404


async def test_view_link_cannot_comment_or_decide_and_comment_link_cannot_decide(client, tenant, owner_engine,
                                                                                  settings):
    shared = await make_shared(tenant, owner_engine, settings, networks=("x",))
    post_id = shared.posts["x"]["id"]
    view = await create_link(tenant, shared.brand["id"], posts=[post_id], permission="view")
    comment = await create_link(tenant, shared.brand["id"], posts=[post_id], permission="comment")
    # The page.
    r = await client.post(page_path(view) + f"/posts/{post_id}/decision", data={"decision": "approve"})
    assert r.status_code == 403 and "does not allow" in r.text
    assert_page_headers(r)
    assert (await client.post(page_path(view) + f"/posts/{post_id}/comments", data={"body": "hi"})).status_code == 403
    csrf = await set_reviewer(client, comment)
    page = await client.get(page_path(comment))
    assert "/decision" not in page.text and "/comments" in page.text
    r = await client.post(page_path(comment) + f"/posts/{post_id}/decision", data={"decision": "approve", "csrf": csrf})
    assert r.status_code == 403
    r = await client.post(page_path(comment) + f"/posts/{post_id}/comments", data={"body": "Lovely!", "csrf": csrf})
    assert r.status_code == 303 and "m=commented" in r.headers["location"]
    assert "Lovely!" in (await client.get(page_path(comment))).text
    # The JSON twin.
    assert (await client.post(f"/v1/shared/{token_of(view)}/reviewer",
                              json={"name": "A", "email": "a@b.cc"})).status_code == 403
    reviewer = await client.post(f"/v1/shared/{token_of(comment)}/reviewer", json={"name": "Ana", "email": "ana@b.cc"})
    assert reviewer.status_code == 201
    header = {"X-Share-Reviewer": reviewer.json()["reviewer_token"]}
    r = await client.post(f"/v1/shared/{token_of(comment)}/posts/{post_id}/decisions", headers=header,
                          json={"decision": "approve"})
    assert r.status_code == 403 and r.json()["type"].endswith("/share-permission")
    r = await client.post(f"/v1/shared/{token_of(view)}/posts/{post_id}/comments", headers=header, json={"body": "x"})
    assert r.status_code == 403
    detail = (await tenant.req("GET", f"/v1/share-links/{comment['id']}")).json()
    assert detail["decisions"] == [] and {r["name"] for r in detail["reviewers"]} == {"Don Luis", "Ana"}


async def test_reviewer_gives_name_and_email_before_deciding_and_each_decision_records_it(client, tenant, owner_engine,
                                                                                           settings):
    shared = await make_shared(tenant, owner_engine, settings)
    ids = {n: p["id"] for n, p in shared.posts.items()}
    link = await create_link(tenant, shared.brand["id"], posts=list(ids.values()), permission="approve")
    # No reviewer yet: the page asks first and shows no decision forms.
    page = await client.get(page_path(link))
    assert 'name="email"' in page.text and "/decision" not in page.text
    r = await client.post(page_path(link) + f"/posts/{ids['x']}/decision", data={"decision": "approve"})
    assert r.status_code == 303 and "m=reviewer-first" in r.headers["location"]
    r = await client.post(page_path(link) + "/reviewer", data={"name": "Don Luis", "email": "not an email"})
    assert "m=reviewer-invalid" in r.headers["location"]
    api = await client.post(f"/v1/shared/{token_of(link)}/posts/{ids['x']}/decisions", json={"decision": "approve"})
    assert api.status_code == 401 and api.json()["type"].endswith("/share-reviewer-required")
    csrf = await set_reviewer(client, link)
    # The CSRF token is bound to the reviewer cookie.
    r = await client.post(page_path(link) + f"/posts/{ids['x']}/decision", data={"decision": "approve", "csrf": "x" * 43})
    assert r.status_code == 403
    r = await client.post(page_path(link) + f"/posts/{ids['x']}/decision", data={"decision": "approve", "csrf": csrf})
    assert r.status_code == 303 and r.headers["location"].endswith(f"?m=approved#post-{ids['x']}")
    assert "Approved. Thank you!" in (await client.get(r.headers["location"].split("#")[0])).text
    r = await client.post(page_path(link) + f"/posts/{ids['facebook']}/decision",
                          data={"decision": "request_changes", "comment": "", "csrf": csrf})
    assert "m=comment-needed" in r.headers["location"]
    r = await client.post(page_path(link) + f"/posts/{ids['facebook']}/decision",
                          data={"decision": "request_changes", "comment": "Use the photo with the kids", "csrf": csrf})
    assert "m=changes" in r.headers["location"]
    # Deciding again on a post no longer waiting for the client is refused politely.
    r = await client.post(page_path(link) + f"/posts/{ids['x']}/decision", data={"decision": "approve", "csrf": csrf})
    assert "m=not-awaiting" in r.headers["location"]
    # The portal's way: a reviewer token in a header.
    reviewer = (await client.post(f"/v1/shared/{token_of(link)}/reviewer",
                                  json={"name": "Marta", "email": "marta@panaderia.test"})).json()
    header = {"X-Share-Reviewer": reviewer["reviewer_token"]}
    r = await client.post(f"/v1/shared/{token_of(link)}/posts/{ids['instagram']}/decisions", headers=header,
                          json={"decision": "approve"})
    assert r.status_code == 201, r.text
    assert r.json()["reviewer_name"] == "Marta" and r.json()["request_status"] == "approved"
    assert_page_headers(r)
    r = await client.post(f"/v1/shared/{token_of(link)}/posts/{ids['instagram']}/comments", headers=header,
                          json={"body": "Gracias"})
    assert r.status_code == 201 and r.json()["author"] == "Marta"
    # A reviewer token of another link is no reviewer here.
    other = await create_link(tenant, shared.brand["id"], posts=list(ids.values()), permission="approve")
    r = await client.post(f"/v1/shared/{token_of(other)}/posts/{ids['instagram']}/comments", headers=header,
                          json={"body": "x"})
    assert r.status_code == 401
    detail = (await tenant.req("GET", f"/v1/share-links/{link['id']}")).json()
    decisions = {(d["post_id"], d["decision"], d["reviewer_name"], d["reviewer_email"]) for d in detail["decisions"]}
    assert decisions == {(ids["x"], "approve", "Don Luis", "luis@panaderia.test"),
                         (ids["facebook"], "request_changes", "Don Luis", "luis@panaderia.test"),
                         (ids["instagram"], "approve", "Marta", "marta@panaderia.test")}
    shown = (await client.get(f"/v1/shared/{token_of(link)}")).json()
    by_id = {p["id"]: p for p in shown["posts"]}
    assert by_id[ids["facebook"]]["decisions"][0]["comment"] == "Use the photo with the kids"
    assert not any(p["awaiting_client"] for p in shown["posts"])


async def test_posts_not_on_the_link_are_404(client, tenant, owner_engine, settings):
    shared = await make_shared(tenant, owner_engine, settings, networks=("x", "facebook"))
    link = await create_link(tenant, shared.brand["id"], posts=[shared.posts["x"]["id"]], permission="approve")
    csrf = await set_reviewer(client, link)
    outside = shared.posts["facebook"]["id"]
    page = await client.get(page_path(link))
    assert shared.posts["facebook"]["id"] not in page.text
    for post_id in (outside, str(uuid.uuid4())):
        r = await client.post(page_path(link) + f"/posts/{post_id}/decision", data={"decision": "approve", "csrf": csrf})
        assert r.status_code == 404
        reviewer = (await client.post(f"/v1/shared/{token_of(link)}/reviewer",
                                      json={"name": "A", "email": "a@b.cc"})).json()["reviewer_token"]
        r = await client.post(f"/v1/shared/{token_of(link)}/posts/{post_id}/decisions",
                              headers={"X-Share-Reviewer": reviewer}, json={"decision": "approve"})
        assert r.status_code == 404


async def test_range_link_shows_the_calendar_and_only_that_brands_posts_in_range(client, tenant, owner_engine,
                                                                                 settings):
    shared = await make_shared(tenant, owner_engine, settings, networks=("x", "facebook", "instagram"))
    other = await make_shared(tenant, owner_engine, settings, networks=("x",))
    zone = ZoneInfo("Europe/Madrid")
    first = datetime.fromisoformat(shared.posts["x"]["scheduled_at"]).astimezone(zone).date()
    second = datetime.fromisoformat(shared.posts["facebook"]["scheduled_at"]).astimezone(zone).date()
    link = await create_link(tenant, shared.brand["id"], range={"from": first.isoformat(), "to": second.isoformat()},
                             permission="approve")
    data = (await client.get(f"/v1/shared/{token_of(link)}")).json()
    assert {p["id"] for p in data["posts"]} == {shared.posts["x"]["id"], shared.posts["facebook"]["id"]}
    assert data["range_from"] == first.isoformat() and data["calendar"]
    days = {d["day"]: d["post_ids"] for m in data["calendar"] for w in m["weeks"] for d in w if d["day"]}
    assert days[first.isoformat()] == [shared.posts["x"]["id"]]
    page = await client.get(page_path(link))
    assert '<table class="month">' in page.text and f'href="#post-{shared.posts["x"]["id"]}"' in page.text
    assert shared.posts["instagram"]["id"] not in page.text and other.posts["x"]["id"] not in page.text
    csrf = await set_reviewer(client, link)
    for post_id in (shared.posts["instagram"]["id"], other.posts["x"]["id"]):
        r = await client.post(page_path(link) + f"/posts/{post_id}/decision", data={"decision": "approve", "csrf": csrf})
        assert r.status_code == 404
    r = await client.post(page_path(link) + f"/posts/{shared.posts['x']['id']}/decision",
                          data={"decision": "approve", "csrf": csrf})
    assert "m=approved" in r.headers["location"]


async def test_the_share_space_is_rate_limited_per_client(settings, tenant, owner_engine):
    from api.app import create_app

    shared = await make_shared(tenant, owner_engine, settings, networks=("x",))
    link = await create_link(tenant, shared.brand["id"], posts=[shared.posts["x"]["id"]])
    limited = create_app(replace(settings, share_rate_limit_per_minute=3))
    async with AsyncTestClient(limited, base_url="http://testserver.local") as c:
        c.follow_redirects = False
        assert (await c.get(page_path(link))).status_code == 200
        assert (await c.get(f"/v1/shared/{token_of(link)}")).status_code == 200
        assert (await c.get("/share/nonsense")).status_code == 404  # guessing counts too
        r = await c.get(page_path(link))
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert_page_headers(r)
        assert "Too many requests" in r.text and r.headers["content-type"].startswith("text/html")
        r = await c.get(f"/v1/shared/{token_of(link)}")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert r.json()["type"].endswith("/rate-limited") and r.headers["cache-control"] == "no-store"
        assert (await c.post(page_path(link) + "/reviewer", data={"name": "a", "email": "a@b.cc"})).status_code == 429
        # The team's API is not part of the share space.
        assert (await c.get("/v1/share-links", headers=tenant.auth())).status_code == 200


async def test_the_link_never_reaches_the_access_log(client, tenant, owner_engine, settings, caplog):
    shared = await make_shared(tenant, owner_engine, settings, networks=("x",))
    link = await create_link(tenant, shared.brand["id"], posts=[shared.posts["x"]["id"]])
    secret = token_of(link).split("_", 2)[2]
    with caplog.at_level("INFO", logger="chorus.access"):
        assert (await client.get(page_path(link))).status_code == 200
        assert (await client.get(f"/v1/shared/{token_of(link)}")).status_code == 200
    paths = [getattr(r, "path", "") for r in caplog.records if r.name == "chorus.access"]
    assert "/share/[redacted]" in paths and "/v1/shared/[redacted]" in paths
    server = [r for r in caplog.records if r.name.startswith("chorus")]  # httpx here is the test client
    assert server and not any(secret in r.getMessage() or secret in str(r.__dict__) for r in server)


async def test_the_link_is_emailed_to_the_client_in_the_agencys_name(tenant, owner_engine, settings, smtp_inbox):
    import asyncio

    shared = await make_shared(tenant, owner_engine, settings, awaiting=False)
    ids = [p["id"] for p in shared.posts.values()]
    to = f"luis-{uuid.uuid4().hex[:6]}@panaderia.test"
    link = await create_link(tenant, shared.brand["id"], posts=ids, permission="approve",
                             emails=[to, to.upper()])
    for _ in range(100):  # the SMTP server stores the message on its own thread
        if smtp_inbox.to(to):
            break
        await asyncio.sleep(0.05)
    [message] = smtp_inbox.to(to)  # once, however the address was spelled
    agency = (await tenant.req("GET", "/v1/agency")).json()
    assert message["Subject"] == f"{agency['name']}: 3 posts for {shared.brand['name']} to approve or ask for changes"
    text_part = message.get_body(("plain",)).get_content()
    html_part = message.get_body(("html",)).get_content()
    assert link["url"] in text_part and link["url"] in html_part
    assert "chorus" not in (text_part + html_part + message["Subject"]).lower().replace(link["url"].lower(), "")
    # The page it leads to works.
    assert (await tenant.client.get(page_path(link))).status_code == 200
    # No address, no email; a refused link sends nothing.
    before = len(smtp_inbox.messages)
    await create_link(tenant, shared.brand["id"], posts=ids)
    r = await tenant.req("POST", f"/v1/brands/{shared.brand['id']}/share-links",
                         json={"posts": ids, "permission": "approve", "emails": ["x@y.test"], "expires_in_days": 999})
    assert r.status_code == 422
    await asyncio.sleep(0.3)
    assert len(smtp_inbox.messages) == before
