"""The token sweep end to end, over real HTTP against the network sandbox on loopback:
accounts are linked through the API and the sandbox's consent, moved towards expiry with
owner SQL (the clock is not controllable), swept by the real SQL function, and refreshed or
flagged by `accounts.refresh_token` jobs on a real dramatiq Worker (PostgreSQL broker)."""

from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import urlsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from api.sandbox.app import create_sandbox_app
from tests.conftest import sign_up
from tests.loopback import serve
from tests.workers.conftest import eventually, queued_jobs


@pytest.fixture(scope="module")
def sandbox():
    with serve(create_sandbox_app()) as base:
        yield base


@pytest.fixture
async def linked_client(settings, sandbox):
    from api.app import create_app

    app = create_app(dataclasses.replace(settings, network_sandbox_url=sandbox, network_apps=(),
                                         network_timeout_seconds=5.0))
    async with AsyncTestClient(app, base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
def token_worker(worker_settings, sandbox):
    from workers.broker import InProcessWorker

    running = InProcessWorker(dataclasses.replace(worker_settings, network_sandbox_url=sandbox, network_apps=(),
                                                  network_timeout_seconds=5.0), threads=4)
    running.start()
    yield running
    running.stop(timeout_ms=5_000)


@pytest.fixture
async def provider(sandbox):
    async with httpx.AsyncClient(base_url=sandbox, timeout=5) as http:
        await http.delete("/_sandbox/calls")
        await http.delete("/_sandbox/faults")
        yield http
        await http.delete("/_sandbox/faults")


async def _linked(client, network: str = "x"):
    """A new agency with a brand and one account on `network`, linked through the sandbox."""
    tenant = await sign_up(client)
    brand = await tenant.brand()
    started = (await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links",
                                json={"network": network})).json()
    async with httpx.AsyncClient(timeout=5) as http:
        consent = await http.get(started["authorize_url"])
    assert consent.status_code in (302, 303), consent.text
    back = urlsplit(consent.headers["location"])
    page = await client.get(f"{back.path}?{back.query}")
    assert page.status_code == 200, page.text
    link = (await tenant.req("GET", f"/v1/social-account-links/{started['link_id']}")).json()
    if link["status"] == "awaiting_choice":
        r = await tenant.req("POST", f"/v1/social-account-links/{started['link_id']}/choice",
                             json={"external_ids": [link["candidates"][0]["external_id"]]})
        assert r.status_code == 200, r.text
    accounts = (await tenant.req("GET", "/v1/social-accounts")).json()["items"]
    assert len(accounts) == 1 and accounts[0]["status"] == "connected"
    return tenant, brand, accounts[0]


async def _set(owner_engine, account_id: str, sql: str) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"UPDATE social_accounts SET {sql} WHERE id = :id"), {"id": account_id})


async def _row(owner_engine, account_id: str):
    async with owner_engine.connect() as conn:
        return (await conn.execute(text(
            "SELECT status, details, token_expires_at, last_refreshed_at, refresh_token_enc, access_token_enc, "
            "token_expires_at > now() + interval '1 hour' AS fresh FROM social_accounts WHERE id = :id"),
            {"id": account_id})).one()


async def _refresh_calls(provider, network: str = "x") -> int:
    return (await provider.get("/_sandbox/calls", params={"network": network, "kind": "refresh"})).json()["count"]


async def _drained(owner_engine, agency_id: str) -> bool:
    return not [j for j in await queued_jobs(owner_engine, agency_id) if j["state"] in ("queued", "consumed")]


async def _notified(owner_engine, agency_id: str) -> list[tuple[str, str]]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(text(
            "SELECT n.user_id::text, n.title FROM notifications n WHERE n.agency_id = :a "
            "AND n.kind = 'account.needs_reconnect' ORDER BY n.user_id"), {"a": agency_id})
        return [(r[0], r[1]) for r in rows]


async def _user_id(owner_engine, email: str) -> str:
    async with owner_engine.connect() as conn:
        return str((await conn.execute(text("SELECT id FROM users WHERE email = :e"), {"e": email})).scalar())


# X's tokens live 2 hours: a quarter of that before expiry, the sweep refreshes.
NEAR_EXPIRY = "token_expires_at = now() + interval '10 minutes', last_refreshed_at = now() - interval '110 minutes'"


async def test_an_account_near_expiry_is_refreshed_once(linked_client, owner_engine, app_engine, token_worker,
                                                        provider):
    from workers.tokens import sweep

    tenant, _, account = await _linked(linked_client)
    # Freshly linked (2 h left of 2 h): not due.
    assert (tenant.agency_id, account["id"]) not in {(str(a), str(b)) for a, b in await sweep(app_engine, token_worker.broker)}
    await _set(owner_engine, account["id"], NEAR_EXPIRY)
    before = await _row(owner_engine, account["id"])
    await provider.delete("/_sandbox/calls")

    named = {(str(a), str(b)) for a, b in await sweep(app_engine, token_worker.broker)}
    assert (tenant.agency_id, account["id"]) in named

    async def refreshed():
        row = await _row(owner_engine, account["id"])
        return row if row.fresh else None

    after = await eventually(refreshed, what="the refreshed token")
    await eventually(lambda: _drained(owner_engine, tenant.agency_id), what="the job to finish")
    assert await _refresh_calls(provider) == 1
    assert after.status == "connected" and after.access_token_enc != before.access_token_enc
    assert after.last_refreshed_at > before.last_refreshed_at
    assert after.refresh_token_enc  # X rotates its refresh token: the new one is stored

    # Fresh again: the next sweep does not name it and the provider hears nothing more.
    again = {(str(a), str(b)) for a, b in await sweep(app_engine, token_worker.broker)}
    assert (tenant.agency_id, account["id"]) not in again
    assert await _refresh_calls(provider) == 1


async def test_ten_racing_sweeps_make_one_provider_call(linked_client, owner_engine, app_engine, token_worker,
                                                        provider):
    from workers.tokens import sweep

    tenant, _, account = await _linked(linked_client)
    await _set(owner_engine, account["id"], NEAR_EXPIRY)
    await provider.delete("/_sandbox/calls")
    # Widen the race: the provider takes a moment to answer each refresh.
    await provider.post("/_sandbox/faults", json={"network": "x", "match": "refresh", "kind": "delay",
                                                  "seconds": 0.3, "times": None})
    results = await asyncio.gather(*[sweep(app_engine, token_worker.broker) for _ in range(10)])
    assert all((tenant.agency_id, account["id"]) in {(str(a), str(b)) for a, b in r} for r in results)

    await eventually(lambda: _drained(owner_engine, tenant.agency_id), what="the ten jobs to finish")
    row = await _row(owner_engine, account["id"])
    assert row.fresh and row.status == "connected"
    assert await _refresh_calls(provider) == 1
    assert await _notified(owner_engine, tenant.agency_id) == []


async def test_an_account_that_cannot_be_refreshed_is_flagged_and_its_team_told_once(
        linked_client, owner_engine, app_engine, token_worker, provider):
    from workers.tokens import REFRESH_TOKEN, sweep

    tenant, brand, account = await _linked(linked_client)
    other_brand = await tenant.brand()
    _, manager = await tenant.member("manager")
    _, outside_manager = await tenant.member("manager", brand_ids=[other_brand["id"]])
    _, editor = await tenant.member("editor")
    # No refresh token (like a Facebook user token) and two days left.
    await _set(owner_engine, account["id"], "refresh_token_enc = NULL, token_expires_at = now() + interval '2 days'")
    await provider.delete("/_sandbox/calls")

    assert (tenant.agency_id, account["id"]) in {(str(a), str(b)) for a, b in await sweep(app_engine, token_worker.broker)}
    # Two more sweeps and a redelivered job at the same moment.
    await sweep(app_engine, token_worker.broker)
    token_worker.broker.get_actor(REFRESH_TOKEN).send_with_options(
        kwargs={"agency_id": tenant.agency_id, "account_id": account["id"]})

    async def flagged():
        row = await _row(owner_engine, account["id"])
        return row if "reconnect" in (row.details or {}) else None

    row = await eventually(flagged, what="the account to be flagged")
    await eventually(lambda: _drained(owner_engine, tenant.agency_id), what="the jobs to finish")
    assert row.status == "connected"  # told ahead of time; it keeps publishing until the token ends
    reconnect = row.details["reconnect"]
    assert reconnect["reason"] == "no_refresh" and "reconnect it" in reconnect["message"]
    assert reconnect["authorisation_ends_at"]
    owner = await _user_id(owner_engine, tenant.email)
    told = await _notified(owner_engine, tenant.agency_id)
    assert sorted(u for u, _ in told) == sorted([owner, manager["user_id"]])  # once each; not the editor
    assert outside_manager["user_id"] not in {u for u, _ in told} and editor["user_id"] not in {u for u, _ in told}
    assert all(t.startswith("Reconnect ") and " on x " in t for _, t in told)
    assert await _refresh_calls(provider) == 0  # nothing was asked of the provider

    # Flagged, it is no longer named; the API shows it.
    assert (tenant.agency_id, account["id"]) not in {(str(a), str(b)) for a, b in await sweep(app_engine, token_worker.broker)}
    got = (await tenant.req("GET", f"/v1/social-accounts/{account['id']}")).json()
    assert got["status"] == "connected" and got["reconnect_notice"]["reason"] == "no_refresh"
    assert len(await _notified(owner_engine, tenant.agency_id)) == 2


async def test_the_end_of_linkedins_refresh_window_is_flagged_ahead(linked_client, owner_engine, app_engine,
                                                                    token_worker, provider):
    from workers.tokens import sweep

    tenant, _, account = await _linked(linked_client, "linkedin")
    row = await _row(owner_engine, account["id"])
    assert row.refresh_token_enc and row.fresh  # 60-day access token and a refresh token
    await _set(owner_engine, account["id"], "refresh_expires_at = now() + interval '1 day'")
    assert (tenant.agency_id, account["id"]) in {(str(a), str(b)) for a, b in await sweep(app_engine, token_worker.broker)}

    async def flagged():
        row = await _row(owner_engine, account["id"])
        return row if "reconnect" in (row.details or {}) else None

    row = await eventually(flagged, what="the account to be flagged")
    assert row.details["reconnect"]["reason"] == "refresh_window_ends" and row.status == "connected"
    await eventually(lambda: _notified(owner_engine, tenant.agency_id), what="the team's notification")
    assert await _refresh_calls(provider, "linkedin") == 0


async def test_a_refused_refresh_flags_the_account_and_tells_the_team_once(linked_client, owner_engine, app_engine,
                                                                           token_worker, provider):
    from workers.tokens import sweep

    tenant, _, account = await _linked(linked_client)
    await _set(owner_engine, account["id"], NEAR_EXPIRY)
    await provider.post("/_sandbox/faults", json={"network": "x", "match": "refresh", "kind": "invalid_grant",
                                                  "times": None})
    await sweep(app_engine, token_worker.broker)

    async def flagged():
        row = await _row(owner_engine, account["id"])
        return row if row.status == "needs_reconnect" and "reconnect" in (row.details or {}) else None

    row = await eventually(flagged, what="the account to be flagged")
    await eventually(lambda: _drained(owner_engine, tenant.agency_id), what="the job to finish")
    assert row.details["reconnect"]["reason"] == "refresh_refused"
    assert row.refresh_token_enc  # not wiped by the failure
    owner = await _user_id(owner_engine, tenant.email)
    assert [u for u, _ in await _notified(owner_engine, tenant.agency_id)] == [owner]


async def test_the_sweep_function_names_due_accounts_of_every_agency_and_shows_the_app_role_only_ids(
        linked_client, owner_engine, app_engine):
    from workers.tokens import due_accounts

    first, _, due = await _linked(linked_client)
    second, _, also_due = await _linked(linked_client)
    _, _, fresh = await _linked(linked_client)
    await _set(owner_engine, due["id"], NEAR_EXPIRY)
    await _set(owner_engine, also_due["id"], "refresh_token_enc = NULL, token_expires_at = now() + interval '1 day'")
    named = {(str(a), str(b)) for a, b in await due_accounts(app_engine)}
    assert {(first.agency_id, due["id"]), (second.agency_id, also_due["id"])} <= named
    assert fresh["id"] not in {b for _, b in named}

    async with app_engine.connect() as conn:
        result = await conn.execute(text(
            "SELECT * FROM chorus_social_accounts_due_for_tokens(interval '1 day', interval '3 days', '{}')"))
        assert list(result.keys()) == ["agency_id", "account_id"]  # ids, nothing else
        assert (await conn.execute(text("SELECT count(*) FROM social_accounts"))).scalar() == 0
        fn = (await conn.execute(text(
            "SELECT p.prosecdef, p.proconfig, p.proacl::text AS acl FROM pg_proc p "
            "WHERE p.proname = 'chorus_social_accounts_due_for_tokens'"))).one()
    assert fn.prosecdef and "search_path=public, pg_temp" in fn.proconfig
    assert "chorus_app=X/" in fn.acl and ",=" not in fn.acl and not fn.acl.lstrip("{").startswith("=")
