"""Creative briefs: sizes per network from the adapters, status rules, and delivered media
landing on the variants where the network rules check it."""

from __future__ import annotations

import uuid

import pytest

from tests.api.test_posts import media_asset


@pytest.fixture
async def post(tenant, owner_engine, settings):
    brand = await tenant.brand()
    accounts = {n: await tenant.social_account(owner_engine, settings.vault(), brand["id"], n)
                for n in ("instagram", "x", "tiktok")}
    body = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={"variants": [
        {"social_account_id": accounts["instagram"], "text": "Roscón", "options": {"placement": "feed"}},
        {"social_account_id": accounts["x"], "text": "Roscón hoy"},
        {"social_account_id": accounts["tiktok"], "text": "Roscón", "options": {"privacy": "SELF_ONLY"}},
    ]})).json()
    return brand, body


async def test_a_brief_carries_each_networks_format_and_size(tenant, post):
    brand, body = post
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/briefs", json={
        "title": "Carousel of the roscón", "kind": "carousel", "post_id": body["id"],
        "guidelines": "Warm light, the counter, no faces", "due_at": "2027-01-02T10:00:00+01:00",
        "references": [{"url": "https://example.com/moodboard", "note": "mood"}]})
    assert r.status_code == 201, r.text
    brief = r.json()
    specs = {s["network"]: s for s in brief["specs"]}
    assert list(specs) == ["instagram", "x", "tiktok"]
    assert specs["instagram"]["width"] == 1080 and specs["instagram"]["height"] == 1350
    assert specs["instagram"]["image_formats"] == ["image/jpeg"] and specs["instagram"]["max_items"] == 10
    assert specs["instagram"]["aspect_ratio_min"] == pytest.approx(0.8)
    assert specs["x"]["max_items"] == 4 and specs["tiktok"]["max_items"] == 35
    assert brief["status"] == "open" and brief["due_at"].startswith("2027-01-02T09:00:00")
    video = (await tenant.req("POST", f"/v1/brands/{brand['id']}/briefs", json={
        "title": "Reel", "kind": "reel", "networks": ["instagram", "tiktok"]})).json()
    assert {s["network"]: (s["width"], s["height"], s["video_max_seconds"]) for s in video["specs"]} == {
        "instagram": (1080, 1920, 900), "tiktok": (1080, 1920, None)}


async def test_delivered_media_goes_onto_the_variants_and_is_checked(tenant, owner_engine, post):
    brand, body = post
    instagram = next(v for v in body["variants"] if v["network"] == "instagram")
    brief = (await tenant.req("POST", f"/v1/brands/{brand['id']}/briefs", json={
        "title": "Photo", "kind": "image", "post_id": body["id"], "variant_id": instagram["id"]})).json()
    assert [s["network"] for s in brief["specs"]] == ["instagram"]
    png = await media_asset(tenant, owner_engine, brand["id"], content_type="image/png")
    r = await tenant.req("POST", f"/v1/briefs/{brief['id']}/deliveries", json={"media_ids": [png]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "delivered" and r.json()["delivered_media_ids"] == [png]
    after = (await tenant.req("GET", f"/v1/posts/{body['id']}")).json()
    variant = next(v for v in after["variants"] if v["network"] == "instagram")
    assert [m["media_id"] for m in variant["media"]] == [png]
    assert "image_format" in {i["rule"] for i in variant["issues"]}  # Instagram takes JPEG only
    assert all(not v["media"] for v in after["variants"] if v["network"] != "instagram")
    # Changes requested, then a new delivery replaces nothing and adds the new one.
    r = await tenant.req("PATCH", f"/v1/briefs/{brief['id']}", json={"status": "changes_requested"})
    assert r.status_code == 200
    jpeg = await media_asset(tenant, owner_engine, brand["id"])
    r = await tenant.req("POST", f"/v1/briefs/{brief['id']}/deliveries", json={"media_ids": [jpeg]})
    assert r.json()["delivered_media_ids"] == [png, jpeg]
    assert (await tenant.req("PATCH", f"/v1/briefs/{brief['id']}", json={"status": "accepted"})).status_code == 200
    r = await tenant.req("PATCH", f"/v1/briefs/{brief['id']}", json={"status": "open"})
    assert r.status_code == 409 and r.json()["type"].endswith("/brief-status-transition")
    r = await tenant.req("POST", f"/v1/briefs/{brief['id']}/deliveries", json={"media_ids": [jpeg]})
    assert r.status_code == 409


async def test_brief_input_problems(tenant, other_tenant, owner_engine, post):
    brand, body = post
    other = await tenant.brand()
    foreign_media = await media_asset(tenant, owner_engine, other["id"])
    brief = (await tenant.req("POST", f"/v1/brands/{brand['id']}/briefs", json={
        "title": "B", "kind": "image", "post_id": body["id"]})).json()
    for payload, field in [
        ({"title": "B", "kind": "image"}, "networks"),
        ({"title": "B", "kind": "image", "variant_id": str(uuid.uuid4())}, "post_id"),
        ({"title": "B", "kind": "image", "post_id": body["id"], "variant_id": str(uuid.uuid4())}, "variant_id"),
        ({"title": "B", "kind": "image", "networks": ["x"], "assignee_id": str(uuid.uuid4())}, "assignee_id"),
        ({"title": "B", "kind": "image", "networks": ["x"], "due_at": "2027-01-01T10:00:00"}, "due_at"),
        ({"title": "B", "kind": "poster", "networks": ["x"]}, "kind"),
    ]:
        r = await tenant.req("POST", f"/v1/brands/{brand['id']}/briefs", json=payload)
        assert r.status_code in (400, 422), (payload, r.text)
        fields = [e["field"] for e in r.json().get("errors") or []] + [r.json().get("field")]
        assert field in fields, (payload, r.json())
    r = await tenant.req("POST", f"/v1/briefs/{brief['id']}/deliveries", json={"media_ids": [foreign_media]})
    assert r.status_code == 422
    assert (await tenant.req("GET", f"/v1/briefs/{brief['id']}")).json()["status"] == "open"
    editor, membership = await tenant.member("editor")
    r = await tenant.req("PATCH", f"/v1/briefs/{brief['id']}", json={"assignee_id": membership["user_id"],
                                                                     "status": "in_progress"})
    assert r.status_code == 200 and r.json()["assignee_id"] == membership["user_id"]
    mine = (await tenant.req("GET", "/v1/briefs", params={"assignee_id": membership["user_id"]})).json()["items"]
    assert [b["id"] for b in mine] == [brief["id"]]
    assert (await other_tenant.req("GET", f"/v1/briefs/{brief['id']}")).status_code == 404
