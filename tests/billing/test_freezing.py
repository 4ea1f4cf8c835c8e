"""A downgrade keeps objects but freezes the newest beyond the limits; frozen objects refuse
new work with 402 frozen-by-plan; freeing room thaws them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests import media_files as mf
from tests.api.test_media import upload

from tests.billing.helpers import apply_plan, count, frozen_report, set_plan


def a_range() -> dict[str, str]:
    start = datetime.now(UTC).date() + timedelta(days=1)
    return {"from": start.isoformat(), "to": (start + timedelta(days=6)).isoformat()}


async def test_downgrade_freezes_newest_brands_and_archiving_thaws(tenant, owner_engine, app_engine):
    await set_plan(owner_engine, tenant.agency_id, "growth")
    brands = [await tenant.brand(f"Brand {i}") for i in range(5)]
    await set_plan(owner_engine, tenant.agency_id, "starter")
    frozen = await apply_plan(app_engine, tenant.agency_id)
    assert [str(b) for b in frozen["brands"]] == [brands[3]["id"], brands[4]["id"]]
    assert (await frozen_report(app_engine, tenant.agency_id))["brands"] == frozen["brands"]
    # Idempotent.
    assert (await apply_plan(app_engine, tenant.agency_id))["brands"] == frozen["brands"]
    # Audited as the system.
    async with owner_engine.connect() as conn:
        actions = (await conn.execute(text(
            "SELECT action, object_id::text, actor_type FROM audit_events WHERE agency_id = :a"
            " AND action LIKE 'brand.%frozen' ORDER BY created_at"), {"a": tenant.agency_id})).all()
    assert {(a, o) for a, o, _ in actions} == {("brand.frozen", brands[3]["id"]), ("brand.frozen", brands[4]["id"])}
    assert {t for _, _, t in actions} == {"system"}

    # A frozen brand takes no new share link; reading it still works.
    r = await tenant.req("POST", f"/v1/brands/{brands[4]['id']}/share-links", json={"range": a_range()})
    assert r.status_code == 402 and r.json()["type"].endswith("/frozen-by-plan"), r.text
    assert r.json()["limit"] == "brands" and r.json()["upgrade_to"] == "growth"
    assert (await tenant.req("GET", f"/v1/brands/{brands[4]['id']}")).status_code == 200
    # Nor new campaigns or media.
    r = await tenant.req("POST", "/v1/campaigns", json={"brand_id": brands[4]["id"], "name": "Navidad", "objective": "awareness",
                                                          "start_date": "2027-12-01", "end_date": "2027-12-31"})
    assert r.status_code == 402 and r.json()["type"].endswith("/frozen-by-plan"), r.text
    r = await upload(tenant, brands[4]["id"], mf.image("JPEG", (600, 600)))
    assert r.status_code == 402 and r.json()["type"].endswith("/frozen-by-plan"), r.text
    assert await count(owner_engine, "SELECT count(*) FROM media_assets WHERE agency_id = :a", tenant.agency_id) == 0
    # Still over the limit: no new brand.
    r = await tenant.req("POST", "/v1/brands", json={"name": "Sixth", "time_zone": "UTC", "language": "en"})
    assert r.status_code == 402 and r.json()["usage"] == 5

    # Archiving two old brands makes room: both frozen ones thaw.
    for b in brands[:2]:
        r = await tenant.req("PATCH", f"/v1/brands/{b['id']}", json={"status": "archived"})
        assert r.status_code == 200, r.text
    assert (await frozen_report(app_engine, tenant.agency_id))["brands"] == []
    r = await tenant.req("POST", f"/v1/brands/{brands[4]['id']}/share-links", json={"range": a_range()})
    assert r.status_code == 201, r.text


async def test_frozen_member_loses_access_and_thaws_when_a_seat_frees(client, tenant, owner_engine, app_engine):
    await set_plan(owner_engine, tenant.agency_id, "growth")
    members = [await tenant.member("editor") for _ in range(3)]  # owner + 3 = 4 seats
    newest_token, newest = members[2]
    assert (await tenant.req("GET", "/v1/brands", newest_token)).status_code == 200
    await set_plan(owner_engine, tenant.agency_id, "starter")
    frozen = await apply_plan(app_engine, tenant.agency_id)
    assert [str(m) for m in frozen["members"]] == [newest["id"]]
    # The current access token stops at once (its membership version moved on).
    r = await tenant.req("GET", "/v1/brands", newest_token)
    assert r.status_code == 401 and r.json()["type"].endswith("/access-token-stale")
    # Refresh and sign-in say why.
    refresh = tenant.refresh_tokens[newest_token]
    r = await client.post("/v1/auth/refresh", json={"refresh_token": refresh})
    assert r.status_code == 402 and r.json()["type"].endswith("/frozen-by-plan"), r.text
    assert "An owner must free a seat" in r.json()["detail"] and "upgrade the plan" in r.json()["detail"]
    r = await client.post("/v1/auth/token", json={"email": newest["email"], "password": "correct horse battery"})
    assert r.status_code == 402 and r.json()["type"].endswith("/frozen-by-plan"), r.text
    # The others keep working; owners are never frozen.
    assert (await tenant.req("GET", "/v1/brands", members[0][0])).status_code == 200
    assert (await tenant.req("GET", "/v1/brands")).status_code == 200
    # An owner frees a seat: the frozen member thaws and can sign in (the refresh token too).
    r = await tenant.req("DELETE", f"/v1/members/{members[0][1]['id']}")
    assert r.status_code == 204, r.text
    assert (await frozen_report(app_engine, tenant.agency_id))["members"] == []
    r = await client.post("/v1/auth/refresh", json={"refresh_token": refresh})
    assert r.status_code == 200, r.text
    assert (await tenant.req("GET", "/v1/brands", r.json()["access_token"])).status_code == 200


async def test_owners_are_never_frozen(tenant, owner_engine, app_engine):
    await set_plan(owner_engine, tenant.agency_id, "growth")
    _, editor = await tenant.member("editor")
    owners = [await tenant.member("owner") for _ in range(3)]  # 4 owners + 1 editor
    await set_plan(owner_engine, tenant.agency_id, "starter")
    frozen = await apply_plan(app_engine, tenant.agency_id)
    assert [str(m) for m in frozen["members"]] == [editor["id"]]
    for token, _ in owners:
        assert (await tenant.req("GET", "/v1/brands", token)).status_code == 200


async def test_api_keys_freeze_without_api_access(tenant, owner_engine, app_engine):
    await set_plan(owner_engine, tenant.agency_id, "growth")
    key = await tenant.api_key(["brands:read"])
    assert (await tenant.req("GET", "/v1/brands", key)).status_code == 200
    await set_plan(owner_engine, tenant.agency_id, "starter")
    frozen = await apply_plan(app_engine, tenant.agency_id)
    assert len(frozen["api_keys"]) == 1
    r = await tenant.req("GET", "/v1/brands", key)
    assert r.status_code == 402 and r.json()["type"].endswith("/frozen-by-plan"), r.text
    assert r.json()["limit"] == "api_access"
    await set_plan(owner_engine, tenant.agency_id, "growth")
    assert (await apply_plan(app_engine, tenant.agency_id))["api_keys"] == []
    assert (await tenant.req("GET", "/v1/brands", key)).status_code == 200


async def test_frozen_share_link_answers_like_an_inactive_one(client, tenant, owner_engine, app_engine):
    await set_plan(owner_engine, tenant.agency_id, "growth")
    brand = await tenant.brand()
    links = []
    for _ in range(11):
        r = await tenant.req("POST", f"/v1/brands/{brand['id']}/share-links", json={"range": a_range()})
        assert r.status_code == 201, r.text
        links.append(r.json())
    newest = links[-1]
    path = "/share/" + newest["url"].rsplit("/share/", 1)[1]
    assert (await client.get(path)).status_code == 200
    await set_plan(owner_engine, tenant.agency_id, "starter")
    frozen = await apply_plan(app_engine, tenant.agency_id)
    assert [str(x) for x in frozen["share_links"]] == [newest["id"]]
    page = await client.get(path)
    revoked_path = "/share/" + links[0]["url"].rsplit("/share/", 1)[1]
    assert (await tenant.req("DELETE", f"/v1/share-links/{links[0]['id']}")).status_code == 204
    gone = await client.get(revoked_path)
    assert page.status_code == gone.status_code == 410
    assert "plan" not in page.text.lower() and "billing" not in page.text.lower()
    # Revoking one made room: the frozen link thawed.
    assert (await client.get(path)).status_code == 200


async def test_billing_off_thaws_everything(tenant, owner_engine, app_engine):
    await set_plan(owner_engine, tenant.agency_id, "growth")
    for _ in range(4):
        await tenant.brand()
    await set_plan(owner_engine, tenant.agency_id, "starter")
    assert len((await apply_plan(app_engine, tenant.agency_id))["brands"]) == 1
    async with owner_engine.begin() as conn:
        await conn.execute(text("DELETE FROM billing_accounts WHERE agency_id = :a"), {"a": tenant.agency_id})
    assert (await apply_plan(app_engine, tenant.agency_id))["brands"] == []
    assert uuid.UUID(tenant.agency_id)
