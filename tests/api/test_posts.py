"""Posts with one variant per social account: validation against each network's rules,
revisions, scheduling and last-minute changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text


async def media_asset(tenant, owner_engine, brand_id, kind="image", content_type="image/jpeg", *, width=1080,
                      height=1080, size=200_000, duration_ms=None) -> str:
    """A library entry written straight into the database (uploads are tested in test_media)."""
    media_id = str(uuid.uuid4())
    values = {"id": media_id, "agency_id": tenant.agency_id, "brand_id": brand_id, "kind": kind,
              "content_type": content_type, "size_bytes": size, "width": width, "height": height,
              "duration_ms": duration_ms, "sha256": "0" * 64, "storage_key": f"test/{media_id}", "filename": "f",
              "alt_text": "", "tags": [], "version": 1}
    async with owner_engine.begin() as conn:
        columns = set((await conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'media_assets'"))).scalars())
        values = {k: v for k, v in values.items() if k in columns}
        await conn.execute(text(
            f"INSERT INTO media_assets ({', '.join(values)}, created_at, updated_at)"
            f" VALUES ({', '.join(':' + k for k in values)}, now(), now())"), values)
    return media_id


@pytest.fixture
async def studio(tenant, owner_engine, settings):
    brand = await tenant.brand(profile={
        "voice": "warm, neighbourly, never corporate", "dont_words": ["synergy"],
        "hashtag_sets": [{"name": "christmas", "hashtags": ["#roscon", "#navidad", "#panaderia"]}],
    })
    accounts = {n: await tenant.social_account(owner_engine, settings.vault(), brand["id"], n)
                for n in ("x", "instagram", "tiktok", "facebook", "youtube", "pinterest")}
    return brand, accounts


def _later(days=3, hour=9):
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


def _issues(post, network):
    return [i for v in post["variants"] if v["network"] == network for i in v["issues"]]


async def test_each_variant_is_checked_against_its_network(tenant, owner_engine, studio):
    brand, accounts = studio
    wide = await media_asset(tenant, owner_engine, brand["id"], width=4000, height=1000)
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "title": "Roscón launch", "labels": ["Roscon", "launch"],
        "variants": [
            {"social_account_id": accounts["x"], "text": "é" * 297},
            {"social_account_id": accounts["instagram"], "text": "#a " * 31, "media": [{"media_id": wide}]},
            {"social_account_id": accounts["tiktok"], "text": "Nuevo roscón"},
            {"social_account_id": accounts["youtube"], "text": "desc", "options": {"colour": "red"}},
        ]})
    assert r.status_code == 201, r.text
    post = r.json()
    assert r.headers["location"] == f"/v1/posts/{post['id']}" and r.headers["etag"] == f'"{post["version"]}"'
    assert post["status"] == "draft" and post["ready"] is False and post["revision"] == 1
    assert post["labels"] == ["roscon", "launch"]
    x = _issues(post, "x")
    assert x == [{"rule": "text_too_long", "field": "text", "message": "x: 297 of 280 weighted characters",
                  "severity": "error", "count": 297, "limit": 280}]
    instagram = {i["rule"]: i for i in _issues(post, "instagram")}
    assert instagram["too_many_hashtags"]["message"] == "instagram: 31 of 30 hashtags"
    assert instagram["aspect_ratio"]["field"] == "media[0]" and "4000x1000" in instagram["aspect_ratio"]["message"]
    tiktok = {i["rule"]: i for i in _issues(post, "tiktok")}
    assert tiktok["option_required"]["field"] == "options.privacy" and "media_required" in tiktok
    youtube = {(i["rule"], i["field"]) for i in _issues(post, "youtube")}
    assert {("unknown_option", "options.colour"), ("option_required", "options.title"),
            ("media_required", "media")} <= youtube


async def test_x_counts_urls_as_23_and_emoji_as_2(tenant, studio):
    brand, accounts = studio
    copy = "a" * 250 + " https://example.com/" + "x" * 200 + " " + "🥐" * 2  # 250 + 1 + 23 + 1 + 4 = 279
    r = await tenant.req("POST", "/v1/variant-checks", json={"network": "x", "text": copy})
    assert r.status_code == 200, r.text
    assert r.json() | {"issues": []} == {"network": "x", "ready": True, "issues": [], "length": 279, "limit": 280,
                                         "unit": "weighted characters"}
    r = await tenant.req("POST", "/v1/variant-checks", json={"network": "x", "text": copy + "🥐"})
    assert r.json()["ready"] is False and r.json()["issues"][0]["message"] == "x: 281 of 280 weighted characters"


async def test_the_same_text_everywhere_is_a_warning_not_an_error(tenant, studio):
    brand, accounts = studio
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={"variants": [
        {"social_account_id": accounts["x"], "text": "Roscón de Reyes, ya en tienda"},
        {"social_account_id": accounts["facebook"], "text": "roscón de reyes,  YA en tienda"},
    ]})
    post = r.json()
    for network in ("x", "facebook"):
        assert [(i["rule"], i["severity"]) for i in _issues(post, network)] == [("same_copy", "warning")]
    assert post["ready"] is True


async def test_scheduling_refuses_an_invalid_post_and_takes_a_valid_one(tenant, studio, owner_engine):
    brand, accounts = studio
    when = _later()
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "scheduled_at": when.isoformat(), "variants": [{"social_account_id": accounts["x"], "text": "é" * 281}]})
    post = r.json()
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/schedule", json={})
    assert r.status_code == 422 and r.json()["type"].endswith("/post-not-ready")
    assert r.json()["errors"] == [{"field": "variants[0].text", "message": "x: 281 of 280 weighted characters"}]
    again = (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()
    assert again["status"] == "draft" and again["version"] == post["version"]

    variant = post["variants"][0]["id"]
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}/variants/{variant}", json={"text": "Roscón a las 9"})
    assert r.status_code == 200 and r.json()["ready"] is True
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/schedule", json={})
    assert r.status_code == 200, r.text
    scheduled = r.json()
    assert scheduled["status"] == "scheduled" and scheduled["variants"][0]["status"] == "scheduled"
    assert scheduled["scheduled_at"].startswith(when.strftime("%Y-%m-%dT%H:%M:%S"))
    assert scheduled["time_zone"] == "Europe/Madrid"
    local = datetime.fromisoformat(scheduled["local_scheduled_at"])
    assert local == when and local.utcoffset() in (timedelta(hours=1), timedelta(hours=2))


async def test_a_scheduled_post_stays_valid_through_last_minute_changes(tenant, studio):
    brand, accounts = studio
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "scheduled_at": _later().isoformat(), "variants": [{"social_account_id": accounts["x"], "text": "Hola"}]})
    post = (await tenant.req("POST", f"/v1/posts/{r.json()['id']}/schedule", json={})).json()
    variant = post["variants"][0]["id"]
    # Breaking the rules is refused and changes nothing.
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}/variants/{variant}", json={"text": "x" * 300})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "variants[0].text"
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}", json={"scheduled_at": "2020-01-01T09:00:00Z"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scheduled_at"
    after = (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()
    assert after["variants"][0]["text"] == "Hola" and after["revision"] == post["revision"]
    assert after["scheduled_at"] == post["scheduled_at"]
    # A valid change goes through, stays scheduled and makes a revision.
    moved = _later(days=4, hour=18)
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}", json={"scheduled_at": moved.isoformat()},
                         headers={"If-Match": f'"{post["version"]}"'})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "scheduled" and r.json()["revision"] == post["revision"] + 1
    # The old ETag is stale now.
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}", json={"title": "x"},
                         headers={"If-Match": f'"{post["version"]}"'})
    assert r.status_code == 412
    # Unschedule keeps the planned time.
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/unschedule")
    assert r.status_code == 200 and r.json()["status"] == "draft"
    assert r.json()["scheduled_at"].startswith(moved.strftime("%Y-%m-%dT%H:%M"))
    assert (await tenant.req("POST", f"/v1/posts/{post['id']}/unschedule")).status_code == 409


async def test_every_edit_is_a_revision_with_a_hash_and_a_diff(tenant, studio):
    brand, accounts = studio
    post = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "title": "t", "variants": [{"social_account_id": accounts["x"], "text": "first"}]})).json()
    variant = post["variants"][0]["id"]
    first_hash = post["content_hash"]
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}/variants/{variant}", json={"text": "second"})
    assert r.json()["revision"] == 2 and r.json()["content_hash"] != first_hash
    # Saving the same thing again makes no revision.
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}/variants/{variant}", json={"text": "second"})
    assert r.json()["revision"] == 2
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}", json={"title": "renamed"})
    assert r.json()["revision"] == 3
    # The title is internal: the content hash (what approvals bind to) does not move.
    assert r.json()["content_hash"] == (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()["content_hash"]
    revisions = (await tenant.req("GET", f"/v1/posts/{post['id']}/revisions")).json()["items"]
    assert [rev["number"] for rev in revisions] == [3, 2, 1] and revisions[2]["content_hash"] == first_hash
    assert all(rev["author"] for rev in revisions)
    first = (await tenant.req("GET", f"/v1/posts/{post['id']}/revisions/1")).json()
    assert first["snapshot"]["variants"][0]["text"] == "first"
    diff = (await tenant.req("GET", f"/v1/posts/{post['id']}/revisions/2/diff")).json()
    assert diff["changes"] == [{"path": f"variants[{accounts['x']}].text", "before": "first", "after": "second"}]
    diff = (await tenant.req("GET", f"/v1/posts/{post['id']}/revisions/3/diff", params={"against": 1})).json()
    assert {c["path"] for c in diff["changes"]} == {"title", f"variants[{accounts['x']}].text"}
    assert (await tenant.req("GET", f"/v1/posts/{post['id']}/revisions/9")).status_code == 404


async def test_bad_input_is_a_problem_and_writes_nothing(tenant, other_tenant, studio, owner_engine, settings):
    brand, accounts = studio
    other_brand = await tenant.brand()
    other_brand_account = await tenant.social_account(owner_engine, settings.vault(), other_brand["id"], "x")
    foreign_brand = await other_tenant.brand()
    foreign_account = await other_tenant.social_account(owner_engine, settings.vault(), foreign_brand["id"], "x")
    foreign_campaign = (await tenant.req("POST", "/v1/campaigns", json={
        "brand_id": other_brand["id"], "name": "C", "objective": "sales", "start_date": "2027-01-01",
        "end_date": "2027-01-31"})).json()
    cases = [
        ({"scheduled_at": "2027-01-01T09:00:00"}, "scheduled_at"),
        ({"variants": [{"social_account_id": other_brand_account}]}, "variants[0].social_account_id"),
        ({"variants": [{"social_account_id": foreign_account}]}, "variants[0].social_account_id"),
        ({"variants": [{"social_account_id": accounts["x"]}, {"social_account_id": accounts["x"]}]},
         "variants[1].social_account_id"),
        ({"campaign_id": foreign_campaign["id"]}, "campaign_id"),
        ({"variants": [{"social_account_id": accounts["x"], "media": [{"media_id": str(uuid.uuid4())}]}]},
         "variants[0].media[0].media_id"),
        ({"labels": ["a,b"]}, "labels[0]"),
        ({"variants": [{"social_account_id": accounts["x"], "text": "a", "extra": 1}]}, "variants[0].extra"),
    ]
    async with owner_engine.connect() as conn:
        before = (await conn.execute(text("SELECT count(*) FROM posts"))).scalar()
    for body, field in cases:
        r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        fields = [e["field"] for e in r.json().get("errors") or []] + [r.json().get("field")]
        assert field in fields, (field, r.json())
    async with owner_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM posts"))).scalar() == before
    r = await tenant.req("POST", f"/v1/brands/{foreign_brand['id']}/posts", json={})
    assert r.status_code == 404


async def test_published_history_cannot_change(tenant, studio, owner_engine):
    brand, accounts = studio
    post = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "variants": [{"social_account_id": accounts["x"], "text": "out"},
                     {"social_account_id": accounts["facebook"], "text": "out too"}]})).json()
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE post_variants SET status = 'published' WHERE id = :id"),
                           {"id": post["variants"][0]["id"]})
    for method, path, body in [
        ("PATCH", f"/v1/posts/{post['id']}/variants/{post['variants'][0]['id']}", {"text": "changed"}),
        ("PATCH", f"/v1/posts/{post['id']}", {"title": "changed"}),
        ("DELETE", f"/v1/posts/{post['id']}", None),
        ("DELETE", f"/v1/posts/{post['id']}/variants/{post['variants'][0]['id']}", None),
    ]:
        r = await tenant.req(method, path, json=body) if body else await tenant.req(method, path)
        assert r.status_code == 409 and r.json()["type"].endswith("/post-locked"), (method, path, r.text)
    # A draft goes away entirely.
    draft = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={})).json()
    assert (await tenant.req("DELETE", f"/v1/posts/{draft['id']}")).status_code == 204
    assert (await tenant.req("GET", f"/v1/posts/{draft['id']}")).status_code == 404


async def test_variants_can_be_added_and_removed(tenant, studio, owner_engine):
    brand, accounts = studio
    image = await media_asset(tenant, owner_engine, brand["id"])
    post = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "variants": [{"social_account_id": accounts["x"], "text": "hola"}]})).json()
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/variants", json={
        "social_account_id": accounts["instagram"], "text": "Hola #roscon",
        "options": {"placement": "feed", "first_comment": "#panaderia"},
        "media": [{"media_id": image, "alt_text": "A roscón on the counter"}]})
    assert r.status_code == 201, r.text
    instagram = next(v for v in r.json()["variants"] if v["network"] == "instagram")
    assert instagram["issues"] == [] and instagram["media"] == [{"media_id": image,
                                                                 "alt_text": "A roscón on the counter"}]
    again = await tenant.req("POST", f"/v1/posts/{post['id']}/variants", json={"social_account_id": accounts["x"]})
    assert again.status_code == 409
    r = await tenant.req("DELETE", f"/v1/posts/{post['id']}/variants/{instagram['id']}")
    assert r.status_code == 200 and [v["network"] for v in r.json()["variants"]] == ["x"]


async def test_copy_suggestion_adapts_to_the_network_and_the_brand(tenant, studio):
    brand, accounts = studio
    long_copy = ("Una synergy de sabores. " + "Nuestro roscón de Reyes vuelve con masa madre, naranja confitada y "
                 "mucho cariño de barrio. " * 5 + "#roscon #reyes #madrid #dulce")
    post = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "variants": [{"social_account_id": accounts["facebook"], "text": long_copy}]})).json()
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/copy-suggestions",
                         json={"network": "x", "from_variant_id": post["variants"][0]["id"],
                               "hashtag_sets": ["christmas"]})
    assert r.status_code == 200, r.text
    suggestion = r.json()
    check = (await tenant.req("POST", "/v1/variant-checks", json={"network": "x", "text": suggestion["text"]})).json()
    assert check["length"] <= 280 and suggestion["text"].endswith("#roscon #reyes")
    assert any("shortened" in a for a in suggestion["adaptations"])
    assert "Voice: warm, neighbourly, never corporate" in suggestion["guidelines"]
    assert [i["rule"] for i in suggestion["issues"]] == ["dont_words"]
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/copy-suggestions",
                         json={"network": "instagram", "hashtag_sets": ["summer"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "hashtag_sets"


async def test_list_filters(tenant, studio):
    brand, accounts = studio
    a = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "labels": ["roscon"], "scheduled_at": _later(5).isoformat(),
        "variants": [{"social_account_id": accounts["x"], "text": "a"}]})).json()
    b = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "labels": ["summer"], "variants": [{"social_account_id": accounts["facebook"], "text": "b"}]})).json()
    await tenant.req("POST", f"/v1/posts/{a['id']}/schedule", json={})

    async def ids(**params):
        r = await tenant.req("GET", "/v1/posts", params={"brand_id": brand["id"], **params})
        assert r.status_code == 200, r.text
        return {p["id"] for p in r.json()["items"]}

    assert await ids() == {a["id"], b["id"]}
    assert await ids(label="roscon") == {a["id"]}
    assert await ids(network="facebook") == {b["id"]}
    assert await ids(status="scheduled") == {a["id"]}
    assert await ids(scheduled_from=_later(4).isoformat(), scheduled_to=_later(6).isoformat()) == {a["id"]}
    page = (await tenant.req("GET", "/v1/posts", params={"brand_id": brand["id"], "limit": 1})).json()
    assert len(page["items"]) == 1 and page["next_cursor"]


async def test_editors_write_analysts_read(tenant, studio):
    brand, accounts = studio
    editor, _ = await tenant.member("editor")
    analyst, _ = await tenant.member("analyst")
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", token=editor,
                         json={"variants": [{"social_account_id": accounts["x"], "text": "hi"}]})
    assert r.status_code == 201
    assert (await tenant.req("GET", f"/v1/posts/{r.json()['id']}", token=analyst)).status_code == 200
    assert (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", token=analyst, json={})).status_code == 403
