"""Plan limits through the API: each limit reached answers 402 with the exact problem fields
and writes nothing; with no billing row (billing off) nothing is limited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.billing.helpers import assert_limit_problem, count, set_plan, usage

BRANDS_SQL = "SELECT count(*) FROM brands WHERE agency_id = :a"
INVITES_SQL = "SELECT count(*) FROM invitations WHERE agency_id = :a"
MEMBERS_SQL = "SELECT count(*) FROM memberships WHERE agency_id = :a"
LINKS_SQL = "SELECT count(*) FROM share_links WHERE agency_id = :a"
KEYS_SQL = "SELECT count(*) FROM api_keys WHERE agency_id = :a"


def a_range() -> dict[str, str]:
    start = datetime.now(UTC).date() + timedelta(days=1)
    return {"from": start.isoformat(), "to": (start + timedelta(days=6)).isoformat()}


async def test_brand_limit_answers_402_and_writes_nothing(tenant, owner_engine):
    await set_plan(owner_engine, tenant.agency_id, "starter")
    for _ in range(3):
        await tenant.brand()
    before = await count(owner_engine, BRANDS_SQL, tenant.agency_id)
    r = await tenant.req("POST", "/v1/brands", json={"name": "Fourth", "time_zone": "UTC", "language": "en"})
    body = assert_limit_problem(r, limit="brands", usage=3, allowed=3, plan="starter", upgrade_to="growth")
    assert body["detail"] == "The Starter plan allows 3 active brands; the agency has 3. The Growth plan allows 10."
    assert await count(owner_engine, BRANDS_SQL, tenant.agency_id) == before == 3


async def test_archived_brands_do_not_count_and_unarchiving_is_checked(tenant, owner_engine):
    await set_plan(owner_engine, tenant.agency_id, "starter")
    brands = [await tenant.brand() for _ in range(3)]
    r = await tenant.req("PATCH", f"/v1/brands/{brands[0]['id']}", json={"status": "archived"})
    assert r.status_code == 200, r.text
    fourth = await tenant.brand()
    assert fourth["status"] == "active"
    r = await tenant.req("PATCH", f"/v1/brands/{brands[0]['id']}", json={"status": "active"})
    assert_limit_problem(r, limit="brands", usage=3, allowed=3, plan="starter", upgrade_to="growth")
    got = await tenant.req("GET", f"/v1/brands/{brands[0]['id']}")
    assert got.json()["status"] == "archived"


async def test_billing_off_means_no_limit(tenant, owner_engine):
    # No billing_accounts row: self-hosted mode. More than any Starter limit.
    for _ in range(4):
        await tenant.brand()
    for _ in range(3):
        r = await tenant.req("POST", "/v1/invitations", json={"email": f"{uuid.uuid4().hex[:8]}@example.test",
                                                                "role": "editor"})
        assert r.status_code == 201, r.text
    key = await tenant.api_key(["brands:read"])
    assert (await tenant.req("GET", "/v1/brands", key)).status_code == 200
    r = await tenant.req("PATCH", "/v1/agency", json={"branding": {"logo_url": "https://cdn.example.test/l.png"}})
    assert r.status_code == 200, r.text
    used = await usage_of(owner_engine, tenant)
    assert used["brands"] == 4 and used["seats"] == 4


async def usage_of(owner_engine, tenant):
    from tests.billing.helpers import usage as use

    return await use(owner_engine, tenant.agency_id)


async def test_seat_limit_counts_members_and_pending_invitations(client, tenant, owner_engine):
    await set_plan(owner_engine, tenant.agency_id, "starter")
    await tenant.member("editor")  # seat 2
    r = await tenant.req("POST", "/v1/invitations", json={"email": "third@example.test", "role": "analyst"})
    assert r.status_code == 201  # seat 3 (pending)
    third = r.json()
    before = await count(owner_engine, INVITES_SQL, tenant.agency_id)
    r = await tenant.req("POST", "/v1/invitations", json={"email": "fourth@example.test", "role": "analyst"})
    body = assert_limit_problem(r, limit="seats", usage=3, allowed=3, plan="starter", upgrade_to="growth")
    assert "allows 3 seats" in body["detail"]
    assert await count(owner_engine, INVITES_SQL, tenant.agency_id) == before
    # Re-inviting the same address replaces the pending invitation: no extra seat.
    r = await tenant.req("POST", "/v1/invitations", json={"email": "third@example.test", "role": "editor"})
    assert r.status_code == 201, r.text
    # Accepting still works: the invitation holds its seat.
    r = await client.post("/v1/invitations/accept", json={"token": r.json()["token"], "password": "long enough pw",
                                                          "name": "Third"})
    assert r.status_code == 201, r.text


async def test_accepting_when_seats_are_full_by_then_answers_402(client, tenant, owner_engine):
    r = await tenant.req("POST", "/v1/invitations", json={"email": "late@example.test", "role": "editor"})
    token = r.json()["token"]
    await tenant.member("editor")
    await tenant.member("analyst")  # 3 members + 1 pending = 4 seats, with billing off
    await set_plan(owner_engine, tenant.agency_id, "starter")
    members = await count(owner_engine, MEMBERS_SQL, tenant.agency_id)
    r = await client.post("/v1/invitations/accept", json={"token": token, "password": "long enough pw", "name": "L"})
    assert_limit_problem(r, limit="seats", usage=4, allowed=3, plan="starter", upgrade_to="growth")
    assert await count(owner_engine, MEMBERS_SQL, tenant.agency_id) == members


async def test_share_link_limit(tenant, owner_engine):
    await set_plan(owner_engine, tenant.agency_id, "starter")
    brand = await tenant.brand()
    url = f"/v1/brands/{brand['id']}/share-links"
    links = []
    for _ in range(10):
        r = await tenant.req("POST", url, json={"range": a_range()})
        assert r.status_code == 201, r.text
        links.append(r.json())
    r = await tenant.req("POST", url, json={"range": a_range()})
    assert_limit_problem(r, limit="share_links", usage=10, allowed=10, plan="starter", upgrade_to="growth")
    assert await count(owner_engine, LINKS_SQL, tenant.agency_id) == 10
    # Revoked links do not count.
    assert (await tenant.req("DELETE", f"/v1/share-links/{links[0]['id']}")).status_code == 204
    r = await tenant.req("POST", url, json={"range": a_range()})
    assert r.status_code == 201, r.text


async def test_api_keys_need_api_access(tenant, owner_engine):
    await set_plan(owner_engine, tenant.agency_id, "starter")
    r = await tenant.req("POST", "/v1/api-keys", json={"name": "k", "scopes": ["brands:read"]})
    body = assert_limit_problem(r, limit="api_access", usage=None, allowed=None, plan="starter", upgrade_to="growth")
    assert body["detail"] == "The Starter plan does not include API keys. The Growth plan does."
    assert await count(owner_engine, KEYS_SQL, tenant.agency_id) == 0
    await set_plan(owner_engine, tenant.agency_id, "growth")
    await tenant.api_key(["brands:read"])


async def test_white_label_branding_needs_the_plan(tenant, owner_engine):
    await set_plan(owner_engine, tenant.agency_id, "growth")
    r = await tenant.req("PATCH", "/v1/agency", json={"branding": {"primary_color": "#112233"}})
    assert_limit_problem(r, limit="white_label", usage=None, allowed=None, plan="growth", upgrade_to="agency")
    agency = (await tenant.req("GET", "/v1/agency")).json()
    assert not any((agency.get("branding") or {}).values())
    # Clearing branding is always allowed.
    r = await tenant.req("PATCH", "/v1/agency", json={"branding": {}})
    assert r.status_code == 200, r.text
    await set_plan(owner_engine, tenant.agency_id, "agency")
    r = await tenant.req("PATCH", "/v1/agency", json={"branding": {"primary_color": "#112233"}})
    assert r.status_code == 200, r.text


async def test_usage_counts(tenant, owner_engine):
    await set_plan(owner_engine, tenant.agency_id, "growth")
    brands = [await tenant.brand() for _ in range(2)]
    await tenant.req("PATCH", f"/v1/brands/{brands[1]['id']}", json={"status": "archived"})
    r = await tenant.req("POST", "/v1/invitations", json={"email": "u@example.test", "role": "editor"})
    assert r.status_code == 201
    used = await usage_of(owner_engine, tenant)
    assert used == {"brands": 1, "seats": 2, "social_accounts": 0, "scheduled_posts_per_month": 0,
                    "share_links": 0}


async def test_a_check_waits_for_a_concurrent_addition(tenant, owner_engine, app_engine):
    """Two transactions adding the last brand: the second check waits for the first to
    commit, then counts its brand and refuses (without the per-limit lock both would pass)."""
    import asyncio

    import pytest
    from sqlalchemy import text as sql

    from domain.billing import entitlements
    from domain.billing.plans import Limit
    from domain.brands.models import Brand
    from domain.core.db import scoped_session, session_factory
    from domain.core.errors import PlanLimitError

    await set_plan(owner_engine, tenant.agency_id, "starter")
    await tenant.brand()
    await tenant.brand()
    agency = uuid.UUID(tenant.agency_id)
    first = scoped_session(session_factory(app_engine), agency_id=agency)
    second = scoped_session(session_factory(app_engine), agency_id=agency)
    async with first, second:
        await first.begin()
        await entitlements.check(first, agency, Limit.BRANDS)
        first.add(Brand(agency_id=agency, name="Last", slug=f"last-{uuid.uuid4().hex[:6]}", time_zone="UTC",
                        language="en", status="active", profile={}))
        await first.flush()

        async def second_adds() -> None:
            async with second.begin():
                await entitlements.check(second, agency, Limit.BRANDS)

        waiting = asyncio.create_task(second_adds())
        async with owner_engine.connect() as conn:
            for _ in range(400):  # until the second check waits on the lock (or has finished)
                blocked = await conn.scalar(sql(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"))
                if blocked or waiting.done():
                    break
                await asyncio.sleep(0.025)
        assert not waiting.done(), "the second check did not wait for the first transaction"
        await first.commit()
        with pytest.raises(PlanLimitError):
            await asyncio.wait_for(waiting, timeout=30)
    assert await count(owner_engine, BRANDS_SQL, tenant.agency_id) == 3
