"""Linking social accounts against the plan: starting and completing a link over the limit
answer 402 and link nothing; reconnecting an account already linked takes no new slot."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from sqlalchemy import text

from tests.billing.helpers import assert_limit_problem, set_plan

ACCOUNTS_SQL = "SELECT count(*) FROM social_accounts WHERE agency_id = :a AND status <> 'revoked'"


async def _start(tenant, brand_id: str, network: str = "x"):
    return await tenant.req("POST", f"/v1/brands/{brand_id}/social-account-links", json={"network": network})


async def _callback(started, identity: str = "alice") -> str:
    async with httpx.AsyncClient(timeout=5) as http:
        consent = await http.get(f"{started['authorize_url']}&sandbox_identity={identity}")
    assert consent.status_code in (302, 303), consent.text
    back = urlsplit(consent.headers["location"])
    return f"{back.path}?{back.query}"


async def _accounts(owner_engine, agency_id: str) -> int:
    async with owner_engine.connect() as conn:
        return int(await conn.scalar(text(ACCOUNTS_SQL), {"a": agency_id}))


async def _starter_with_eleven_accounts(linked_client, owner_engine, settings):
    """A Starter agency (12 accounts) with one slot left, and its brand."""
    from tests.conftest import sign_up

    tenant = await sign_up(linked_client)
    await set_plan(owner_engine, tenant.agency_id, "starter")
    brand = await tenant.brand()
    vault = settings.vault()
    for _ in range(11):
        await tenant.social_account(owner_engine, vault, brand["id"], "pinterest")
    return tenant, brand, vault


async def test_linking_over_the_limit(linked_client, owner_engine, settings):
    tenant, brand, vault = await _starter_with_eleven_accounts(linked_client, owner_engine, settings)
    r = await _start(tenant, brand["id"])
    assert r.status_code == 201, r.text  # room for a 12th
    started = r.json()
    callback = await _callback(started)
    # Meanwhile the 12th slot is taken: completing the link is refused and links nothing.
    await tenant.social_account(owner_engine, vault, brand["id"], "pinterest")
    r = await linked_client.get(callback, headers={"Accept": "application/json"})
    assert_limit_problem(r, limit="social_accounts", usage=12, allowed=12, plan="starter", upgrade_to="growth")
    assert await _accounts(owner_engine, tenant.agency_id) == 12
    link = (await tenant.req("GET", f"/v1/social-account-links/{started['link_id']}")).json()
    assert link["status"] == "failed"
    # And starting another is refused up front.
    r = await _start(tenant, brand["id"])
    assert_limit_problem(r, limit="social_accounts", usage=12, allowed=12, plan="starter", upgrade_to="growth")


async def test_reconnecting_an_account_takes_no_new_slot(linked_client, owner_engine, settings):
    tenant, brand, _ = await _starter_with_eleven_accounts(linked_client, owner_engine, settings)
    started = (await _start(tenant, brand["id"])).json()
    r = await linked_client.get(await _callback(started), headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["status"] == "connected", r.text
    assert await _accounts(owner_engine, tenant.agency_id) == 12
    # The X account needs reconnecting: at the limit, reconnecting it is still allowed.
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE social_accounts SET status = 'needs_reconnect' WHERE agency_id = :a"
                                " AND network = 'x'"), {"a": tenant.agency_id})
    r = await _start(tenant, brand["id"])
    assert r.status_code == 201, r.text
    r = await linked_client.get(await _callback(r.json()), headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["status"] == "connected", r.text
    assert await _accounts(owner_engine, tenant.agency_id) == 12
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT status FROM social_accounts WHERE agency_id = :a AND network = 'x'"),
                                 {"a": tenant.agency_id}) == "connected"


async def test_linking_to_a_frozen_brand_is_refused(linked_client, owner_engine, app_engine):
    from tests.billing.helpers import apply_plan
    from tests.conftest import sign_up

    tenant = await sign_up(linked_client)
    await set_plan(owner_engine, tenant.agency_id, "growth")
    brands = [await tenant.brand() for _ in range(4)]
    await set_plan(owner_engine, tenant.agency_id, "starter")
    await apply_plan(app_engine, tenant.agency_id)
    r = await _start(tenant, brands[3]["id"])
    assert r.status_code == 402 and r.json()["type"].endswith("/frozen-by-plan"), r.text
    assert await _accounts(owner_engine, tenant.agency_id) == 0
