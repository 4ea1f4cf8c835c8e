"""Linking round trips for every network, over real HTTP against the network sandbox on
loopback: start, authorize, callback, pick, account stored; refresh serialised per account."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from domain.networks.adapters.base import Network


@pytest.fixture(scope="module")
async def linked_client(settings, sandbox_url):
    from api.app import create_app

    app = create_app(replace(settings, network_sandbox_url=sandbox_url, network_apps=(), network_timeout_seconds=1.0))
    async with AsyncTestClient(app, base_url="http://testserver.local") as c:
        yield c


async def _link(client, tenant, brand_id, network, identity="alice"):
    started = (await tenant.req("POST", f"/v1/brands/{brand_id}/social-account-links", json={"network": network})).json()
    async with httpx.AsyncClient(timeout=5) as http:
        consent = await http.get(f"{started['authorize_url']}&sandbox_identity={identity}")
    assert consent.status_code in (302, 303), consent.text
    back = urlsplit(consent.headers["location"])
    assert back.path == f"/v1/oauth/callback/{network}"
    page = await client.get(f"{back.path}?{back.query}")
    return started, page


@pytest.mark.parametrize("network", [n.value for n in Network])
async def test_full_linking_round_trip(linked_client, client, settings, owner_engine, network):
    from tests.conftest import Tenant, sign_up

    tenant: Tenant = await sign_up(linked_client)
    brand = await tenant.brand()
    started, page = await _link(linked_client, tenant, brand["id"], network)
    assert page.status_code == 200, page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    link = (await tenant.req("GET", f"/v1/social-account-links/{started['link_id']}")).json()
    if link["status"] == "awaiting_choice":
        candidates = link["candidates"]
        assert len(candidates) >= 2 and all("token" not in str(c) for c in candidates)
        chosen = [c["external_id"] for c in candidates[:2]]
        r = await tenant.req("POST", f"/v1/social-account-links/{started['link_id']}/choice", json={"external_ids": chosen})
        assert r.status_code == 200, r.text
        assert sorted(a["external_id"] for a in r.json()["items"]) == sorted(chosen)
    else:
        assert link["status"] == "connected"
    accounts = (await tenant.req("GET", "/v1/social-accounts", params={"brand_id": brand["id"]})).json()["items"]
    assert accounts and all(a["network"] == network and a["status"] == "connected" for a in accounts)
    assert all(a["handle"] or a["display_name"] for a in accounts)
    # Tokens are in the vault, never in the clear, and never in a response.
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT access_token_enc FROM social_accounts WHERE brand_id = :b"), {"b": brand["id"]})).scalars().all()
    vault = settings.vault()
    assert rows and all(vault.is_current(r) for r in rows)
    assert all(vault.decrypt(r) not in r for r in rows)

    # Reconnecting the same account updates it in place.
    again_started, page = await _link(linked_client, tenant, brand["id"], network)
    again = (await tenant.req("GET", f"/v1/social-account-links/{again_started['link_id']}")).json()
    if again["status"] == "awaiting_choice":
        await tenant.req("POST", f"/v1/social-account-links/{again_started['link_id']}/choice",
                         json={"external_ids": [accounts[0]["external_id"]]})
    after = (await tenant.req("GET", "/v1/social-accounts", params={"brand_id": brand["id"]})).json()["items"]
    assert sorted(a["id"] for a in after) == sorted(a["id"] for a in accounts)


async def test_provider_denial_and_reused_state_store_nothing(linked_client, sandbox_url):
    from tests.conftest import sign_up

    tenant = await sign_up(linked_client)
    brand = await tenant.brand()
    started = (await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links", json={"network": "x"})).json()
    async with httpx.AsyncClient(timeout=5) as http:
        denied = await http.get(f"{started['authorize_url']}&sandbox_deny=1")
    back = urlsplit(denied.headers["location"])
    page = await linked_client.get(f"{back.path}?{back.query}")
    assert page.status_code == 400
    assert (await tenant.req("GET", "/v1/social-accounts")).json()["items"] == []


async def test_pkce_is_verified_by_the_sandbox(linked_client, owner_engine, settings):
    """Swap the stored verifier: the provider refuses the exchange, nothing is stored."""
    from tests.conftest import sign_up

    tenant = await sign_up(linked_client)
    brand = await tenant.brand()
    started = (await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links", json={"network": "x"})).json()
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE oauth_links SET code_verifier_enc = :v WHERE id = :id"),
                           {"v": settings.vault().encrypt("not-the-verifier-" + "x" * 40), "id": started["link_id"]})
    async with httpx.AsyncClient(timeout=5) as http:
        consent = await http.get(started["authorize_url"])
    back = urlsplit(consent.headers["location"])
    page = await linked_client.get(f"{back.path}?{back.query}")
    assert page.status_code == 502
    assert (await tenant.req("GET", f"/v1/social-account-links/{started['link_id']}")).json()["status"] == "failed"
    assert (await tenant.req("GET", "/v1/social-accounts")).json()["items"] == []


async def test_ten_concurrent_refreshes_make_one_provider_call(linked_client, sandbox_url, settings, owner_engine):
    from domain.networks.linking import network_settings
    from domain.core.db import create_engine, session_factory
    from domain.networks.tokens import AccountNeedsReconnectError, fresh_access_token
    from tests.conftest import sign_up

    tenant = await sign_up(linked_client)
    brand = await tenant.brand()
    await _link(linked_client, tenant, brand["id"], "x")
    account = (await tenant.req("GET", "/v1/social-accounts")).json()["items"][0]
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE social_accounts SET token_expires_at = now() - interval '1 minute' WHERE id = :id"),
                           {"id": account["id"]})
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        await http.delete("/_sandbox/calls")
        # Widen the race window: the provider takes a moment to answer each refresh.
        await http.post("/_sandbox/faults", json={"network": "x", "match": "refresh", "kind": "delay", "seconds": 0.3,
                                                  "times": None})
    engine = create_engine(settings.app_url(), pool_size=10)
    factory = session_factory(engine)

    nets = network_settings(replace(settings, network_sandbox_url=sandbox_url, network_apps=()))
    import uuid

    kwargs = dict(agency_id=uuid.UUID(tenant.agency_id), account_id=uuid.UUID(account["id"]))
    try:
        tokens = await asyncio.gather(*[fresh_access_token(factory, settings.vault(), nets, **kwargs) for _ in range(10)])
        assert len(set(tokens)) == 1
        async with httpx.AsyncClient(base_url=sandbox_url) as http:
            calls = (await http.get("/_sandbox/calls", params={"network": "x", "kind": "refresh"})).json()
            await http.delete("/_sandbox/faults")
            assert calls["count"] == 1
            # The provider now refuses the refresh token: the account needs reconnecting.
            await http.post("/_sandbox/faults", json={"network": "x", "match": "refresh", "kind": "invalid_grant"})
        with pytest.raises(AccountNeedsReconnectError):
            await fresh_access_token(factory, settings.vault(), nets, force=True, **kwargs)
        got = (await tenant.req("GET", f"/v1/social-accounts/{account['id']}")).json()
        assert got["status"] == "needs_reconnect"
        async with owner_engine.connect() as conn:
            refresh_enc = (await conn.execute(text("SELECT refresh_token_enc FROM social_accounts WHERE id = :id"),
                                              {"id": account["id"]})).scalar()
        assert refresh_enc  # the stored refresh token was not wiped by the failure
    finally:
        await engine.dispose()
        async with httpx.AsyncClient(base_url=sandbox_url) as http:
            await http.delete("/_sandbox/faults")


@pytest.mark.parametrize(("network", "revocable"), [("x", True), ("tiktok", True), ("youtube", True),
                                                    ("linkedin", True), ("pinterest", False), ("facebook", False)])
async def test_unlink_revokes_at_the_provider_where_it_can(linked_client, sandbox_url, network, revocable):
    from tests.conftest import sign_up

    tenant = await sign_up(linked_client)
    brand = await tenant.brand()
    started, _ = await _link(linked_client, tenant, brand["id"], network, identity=f"unlink{network}")
    link = (await tenant.req("GET", f"/v1/social-account-links/{started['link_id']}")).json()
    if link["status"] == "awaiting_choice":
        await tenant.req("POST", f"/v1/social-account-links/{started['link_id']}/choice",
                         json={"external_ids": [link["candidates"][0]["external_id"]]})
    account = (await tenant.req("GET", "/v1/social-accounts", params={"brand_id": brand["id"]})).json()["items"][0]
    r = await tenant.req("DELETE", f"/v1/social-accounts/{account['id']}")
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    # The answer says whether the provider withdrew the access, so the agency knows what is left to do.
    assert r.json()["provider_revoke"] == ("revoked" if revocable else "not_offered")
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        grants = (await http.get("/_sandbox/grants", params={"network": network})).json()["grants"]
    mine = [g for g in grants if g.get("identity") == f"unlink{network}"]
    assert mine and all(g["revoked"] is revocable for g in mine)
    assert (await tenant.req("GET", f"/v1/social-accounts/{account['id']}")).json()["provider_revoke"] == \
        r.json()["provider_revoke"]


async def test_bring_your_own_app(linked_client, sandbox_url, owner_engine, settings):
    """An agency's own app: its client id goes to the provider, its secret is sealed and never shown."""
    from tests.conftest import sign_up

    tenant = await sign_up(linked_client)
    brand = await tenant.brand()
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        r = await http.post("/_sandbox/apps", json={"network": "x", "client_id": "agency-own-x",
                                                    "client_secret": "agency-own-secret"})
        assert r.status_code in (200, 201), r.text
    r = await tenant.req("PUT", "/v1/network-apps/x", json={"client_id": "agency-own-x", "client_secret": "agency-own-secret"})
    assert r.status_code == 200 and r.json() == {**r.json(), "network": "x", "client_id": "agency-own-x", "has_secret": True}
    assert "agency-own-secret" not in r.text
    assert "agency-own-secret" not in (await tenant.req("GET", "/v1/network-apps")).text
    async with owner_engine.connect() as conn:
        sealed = (await conn.execute(text("SELECT client_secret_enc FROM network_apps WHERE agency_id = :a"),
                                     {"a": tenant.agency_id})).scalar()
    assert "agency-own-secret" not in sealed and settings.vault().decrypt(sealed) == "agency-own-secret"
    started, page = await _link(linked_client, tenant, brand["id"], "x")
    assert "client_id=agency-own-x" in started["authorize_url"] and page.status_code == 200
    # Another agency still links with Chorus's app.
    other = await sign_up(linked_client)
    other_brand = await other.brand()
    other_started = (await other.req("POST", f"/v1/brands/{other_brand['id']}/social-account-links", json={"network": "x"})).json()
    assert "client_id=chorus-sandbox-x" in other_started["authorize_url"]
    assert (await tenant.req("DELETE", "/v1/network-apps/x")).status_code == 204
    assert (await tenant.req("DELETE", "/v1/network-apps/x")).status_code == 404
    assert (await tenant.req("PUT", "/v1/network-apps/myspace", json={"client_id": "a", "client_secret": "b"})).status_code in (400, 422)


async def test_tokens_never_reach_the_database_logs_or_responses(linked_client, owner_engine, settings, caplog):
    import logging

    from tests.conftest import sign_up

    caplog.set_level(logging.DEBUG)
    tenant = await sign_up(linked_client)
    brand = await tenant.brand()
    seen: list[str] = []
    for network in ("x", "facebook", "pinterest"):
        started, page = await _link(linked_client, tenant, brand["id"], network, identity=f"grep{network}")
        seen.append(page.text)
        link = (await tenant.req("GET", f"/v1/social-account-links/{started['link_id']}"))
        seen.append(link.text)
        if link.json()["status"] == "awaiting_choice":
            r = await tenant.req("POST", f"/v1/social-account-links/{started['link_id']}/choice",
                                 json={"external_ids": [c["external_id"] for c in link.json()["candidates"]]})
            seen.append(r.text)
    seen.append((await tenant.req("GET", "/v1/social-accounts", params={"limit": 200})).text)
    vault = settings.vault()
    async with owner_engine.connect() as conn:
        sealed = (await conn.execute(text(
            "SELECT access_token_enc, refresh_token_enc FROM social_accounts WHERE agency_id = :a"),
            {"a": tenant.agency_id})).all()
        tables = (await conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars().all()
        dump = []
        for table in tables:
            dump += (await conn.execute(text(f'SELECT t::text FROM "{table}" t'))).scalars().all()
    plaintexts = {vault.decrypt(v) for row in sealed for v in row if v}
    assert len(plaintexts) >= 4  # access and refresh tokens, page tokens
    everything = "\n".join(dump + seen + [f"{r.getMessage()} {r.__dict__}" for r in caplog.records])
    for secret in plaintexts:
        assert secret not in everything


@pytest.mark.parametrize(
    "fault",
    [
        {"match": "code", "kind": "status", "status": 503},
        {"match": "code", "kind": "timeout", "seconds": 2, "effect": "not_applied"},
        {"match": "profile", "kind": "status", "status": 429},
        {"match": "code", "kind": "invalid_grant"},
    ],
    ids=["5xx", "timeout", "rate-limited-profile", "invalid-grant"],
)
async def test_provider_failures_during_linking_store_nothing(linked_client, sandbox_url, fault):
    from tests.conftest import sign_up

    tenant = await sign_up(linked_client)
    brand = await tenant.brand()
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        await http.post("/_sandbox/faults", json={"network": "x", **fault})
    try:
        started, page = await _link(linked_client, tenant, brand["id"], "x")
    finally:
        async with httpx.AsyncClient(base_url=sandbox_url) as http:
            await http.delete("/_sandbox/faults")
    assert page.status_code == 502 and "The network refused or failed" in page.text
    assert (await tenant.req("GET", f"/v1/social-account-links/{started['link_id']}")).json()["status"] == "failed"
    assert (await tenant.req("GET", "/v1/social-accounts")).json()["items"] == []


async def _consent(started, identity="alice", extra=""):
    async with httpx.AsyncClient(timeout=5) as http:
        consent = await http.get(f"{started['authorize_url']}&sandbox_identity={identity}{extra}")
    assert consent.status_code in (302, 303), consent.text
    back = urlsplit(consent.headers["location"])
    return f"{back.path}?{back.query}"


async def test_callback_returns_to_the_agencys_frontend_with_the_outcome(linked_client, owner_engine):
    from urllib.parse import parse_qs

    from tests.conftest import sign_up

    tenant = await sign_up(linked_client)
    brand = await tenant.brand()
    frontend = "https://app.agency.example/brands/1/accounts?tab=networks"
    for network, status in (("x", "connected"), ("facebook", "awaiting_choice")):
        started = (await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links",
                                    json={"network": network, "return_url": frontend})).json()
        r = await linked_client.get(await _consent(started), follow_redirects=False)
        assert r.status_code == 303, r.text
        assert r.headers["referrer-policy"] == "no-referrer"
        to = urlsplit(r.headers["location"])
        assert f"{to.scheme}://{to.netloc}{to.path}" == "https://app.agency.example/brands/1/accounts"
        query = {k: v[0] for k, v in parse_qs(to.query).items()}
        assert query == {"tab": "networks", "link_id": started["link_id"], "network": network, "status": status}
        assert "code" not in to.query and "state" not in to.query  # the provider's secrets stay here
    # A denial goes back too, with the problem's type; nothing is connected for it.
    before = len((await tenant.req("GET", "/v1/social-accounts")).json()["items"])
    started = (await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links",
                                json={"network": "tiktok", "return_url": "http://localhost:5173/done"})).json()
    r = await linked_client.get(await _consent(started, extra="&sandbox_deny=1"), follow_redirects=False)
    assert r.status_code == 303
    query = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query).items()}
    assert r.headers["location"].startswith("http://localhost:5173/done?")
    assert query["status"] == "denied" and query["error"] == "oauth-denied", query
    assert len((await tenant.req("GET", "/v1/social-accounts")).json()["items"]) == before


async def test_callback_answers_json_to_clients_that_ask(linked_client):
    from tests.conftest import sign_up

    tenant = await sign_up(linked_client)
    brand = await tenant.brand()
    started = (await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links", json={"network": "x"})).json()
    callback = await _consent(started)
    r = await linked_client.get(callback, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text
    assert r.json()["id"] == started["link_id"] and r.json()["status"] == "connected"
    # The same callback again: the state is used up; the answer is a problem, not a page.
    r = await linked_client.get(callback, headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/oauth-state-invalid"), r.json()
    r = await linked_client.get("/v1/oauth/callback/myspace?code=a&state=b", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json()["status"] == 404
    # A browser's Accept still gets the page.
    r = await linked_client.get(callback, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
