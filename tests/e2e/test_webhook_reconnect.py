"""account.needs_reconnect: a refresh the network refuses marks the account and emits the
webhook event, whose delivery job is sent once that change has committed."""

from __future__ import annotations

import uuid
from dataclasses import replace

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from tests.e2e.test_linking import _link
from tests.workers.conftest import queued_jobs


@pytest.fixture
async def dev_client(settings, sandbox_url):
    from api.app import create_app

    app = create_app(replace(settings, network_sandbox_url=sandbox_url, network_apps=(), network_timeout_seconds=1.0,
                             webhooks_allow_private=True))
    async with AsyncTestClient(app, base_url="http://testserver.local") as c:
        yield c


async def test_a_refused_refresh_emits_account_needs_reconnect(dev_client, sandbox_url, settings, owner_engine):
    from domain.networks.linking import network_settings
    from domain.core.db import create_engine, session_factory
    from domain.networks.tokens import AccountNeedsReconnectError, fresh_access_token
    from tests.conftest import sign_up

    tenant = await sign_up(dev_client)
    brand = await tenant.brand()
    await _link(dev_client, tenant, brand["id"], "x")
    account = (await tenant.req("GET", "/v1/social-accounts")).json()["items"][0]
    r = await tenant.req("POST", "/v1/webhook-endpoints", json={
        "url": "http://127.0.0.1:9/never-listening", "events": ["account.needs_reconnect"]})
    assert r.status_code == 201, r.text
    endpoint = r.json()
    nets = network_settings(replace(settings, network_sandbox_url=sandbox_url, network_apps=()))
    engine = create_engine(settings.app_url(), pool_size=2)
    try:
        async with httpx.AsyncClient(base_url=sandbox_url) as http:
            await http.post("/_sandbox/faults", json={"network": "x", "match": "refresh", "kind": "invalid_grant"})
        try:
            with pytest.raises(AccountNeedsReconnectError):
                await fresh_access_token(session_factory(engine), settings.vault(), nets, force=True,
                                         agency_id=uuid.UUID(tenant.agency_id), account_id=uuid.UUID(account["id"]))
        finally:
            async with httpx.AsyncClient(base_url=sandbox_url) as http:
                await http.delete("/_sandbox/faults")
    finally:
        await engine.dispose()
    async with owner_engine.connect() as conn:
        events = (await conn.execute(text(
            "SELECT e.type, e.data, d.id AS delivery_id, d.endpoint_id, d.status FROM webhook_events e "
            "JOIN webhook_deliveries d ON d.event_id = e.id WHERE e.agency_id = :a"), {"a": tenant.agency_id})).all()
    [(kind, data, delivery_id, endpoint_id, status)] = events
    assert kind == "account.needs_reconnect" and status == "pending" and str(endpoint_id) == endpoint["id"]
    assert data["social_account_id"] == account["id"] and data["network"] == "x" and data["brand_id"] == brand["id"]
    jobs = [j["message"] for j in await queued_jobs(owner_engine, tenant.agency_id)]
    assert any(m["actor_name"] == "webhooks.deliver" and m["kwargs"]["delivery_id"] == str(delivery_id) for m in jobs)
