"""Webhook endpoints through the API: the secret shown once and kept encrypted, the event
catalog, the SSRF guard at registration, and the documented signature recipe."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import time
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from domain.webhooks.rules import forbidden_address, next_attempt, retry_delay, sign

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_verifier():
    """The Python snippet under "Verifying webhook signatures" in the README, as is."""
    section = README.read_text().split("### Verifying webhook signatures", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["verify_chorus_signature"]


@pytest.fixture
async def dev_client(settings):
    """The API with CHORUS_WEBHOOKS_ALLOW_PRIVATE=true (development): loopback targets allowed."""
    from api.app import create_app

    app = create_app(dataclasses.replace(settings, webhooks_allow_private=True))
    async with AsyncTestClient(app, base_url="http://testserver.local") as c:
        yield c


def test_the_documented_recipe_verifies_our_signature_and_refuses_the_rest():
    verify = documented_verifier()
    body = b'{"id":"e1","type":"post.published","data":{}}'
    at = int(time.time())
    header = sign("whsec_abc", at, body)
    expected = hmac.new(b"whsec_abc", f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={at},v1={expected}"
    assert verify("whsec_abc", header, body)
    assert not verify("whsec_other", header, body)
    assert not verify("whsec_abc", header, body + b" ")
    assert not verify("whsec_abc", "garbage", body)
    # Stale: more than five minutes old (or ahead) is refused, whatever the signature.
    assert verify("whsec_abc", header, body, now=at + 299)
    assert not verify("whsec_abc", header, body, now=at + 301)
    assert not verify("whsec_abc", header, body, now=at - 301)


def test_retry_schedule_doubles_with_jitter_and_stops_after_a_day():
    from datetime import UTC, datetime, timedelta

    assert retry_delay(1, jitter=0).total_seconds() == 30
    assert retry_delay(2, jitter=0).total_seconds() == 60
    assert retry_delay(1, jitter=1).total_seconds() == 36 and retry_delay(1, jitter=-1).total_seconds() == 24
    assert retry_delay(30, jitter=0) == timedelta(hours=6)
    made = datetime(2026, 1, 1, tzinfo=UTC)
    at, attempts = made, 0
    while (nxt := next_attempt(made, at, attempts + 1, jitter=0)) is not None:
        at, attempts = nxt, attempts + 1
    assert 10 <= attempts <= 16 and at <= made + timedelta(hours=24)


@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1",
                                     "fe80::1", "224.0.0.1", "100.64.0.1", "0.0.0.0", "192.168.1.1", "172.16.0.1",
                                     "2002:7f00:1::1", "64:ff9b::a00:1", "fc00::1"])
def test_non_public_addresses_are_forbidden(address):
    assert forbidden_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert not forbidden_address(address)


@pytest.mark.parametrize("url", [
    "https://10.0.0.5/hook", "https://127.0.0.1:8443/hook", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook", "https://[::ffff:127.0.0.1]/hook", "https://localhost/hook",
    "http://93.184.215.14/hook", "ftp://93.184.215.14/", "https://user:pw@93.184.215.14/", "not a url",
])
async def test_registration_refuses_unsafe_urls_and_writes_nothing(tenant, owner_engine, url):
    r = await tenant.req("POST", "/v1/webhook-endpoints", json={"url": url, "events": ["post.published"]})
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("/validation-error")
    async with owner_engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM webhook_endpoints WHERE agency_id = :a"),
                                    {"a": tenant.agency_id})).scalar()
    assert count == 0


async def test_changing_the_url_to_a_private_one_is_refused(tenant):
    r = await tenant.req("POST", "/v1/webhook-endpoints", json={
        "url": "https://93.184.215.14/hook", "events": ["post.published"]})
    assert r.status_code == 201, r.text
    r2 = await tenant.req("PATCH", f"/v1/webhook-endpoints/{r.json()['id']}", json={"url": "https://127.0.0.2/x"})
    assert r2.status_code == 422
    assert (await tenant.req("GET", f"/v1/webhook-endpoints/{r.json()['id']}")).json()["url"] == "https://93.184.215.14/hook"


async def test_unknown_events_are_refused(tenant):
    r = await tenant.req("POST", "/v1/webhook-endpoints", json={
        "url": "https://93.184.215.14/hook", "events": ["post.published", "post.exploded"]})
    assert r.status_code == 422
    assert "post.exploded" in r.text
    catalog = (await tenant.req("GET", "/v1/webhook-event-types")).json()["items"]
    assert {"post.published", "post.failed", "post.approved", "post.changes_requested",
            "account.needs_reconnect"} <= {e["type"] for e in catalog}


async def test_secret_is_shown_once_and_stored_encrypted(dev_client, tenant, owner_engine, settings, caplog):
    h = tenant.auth()
    r = await dev_client.post("/v1/webhook-endpoints", headers=h, json={
        "url": "http://127.0.0.1:9/hook", "events": ["post.approved", "post.approved"], "description": "CRM"})
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["signing_secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created["events"] == ["post.approved"]
    endpoint_id = created["id"]
    responses = [await dev_client.get("/v1/webhook-endpoints", headers=h),
                 await dev_client.get(f"/v1/webhook-endpoints/{endpoint_id}", headers=h),
                 await dev_client.patch(f"/v1/webhook-endpoints/{endpoint_id}", headers=h,
                                        json={"active": False, "events": ["post.published"]})]
    for response in responses:
        assert response.status_code == 200, response.text
        assert secret not in response.text and "signing_secret" not in response.text
    assert responses[2].json()["active"] is False and responses[2].json()["events"] == ["post.published"]
    async with owner_engine.connect() as conn:
        stored = (await conn.execute(text("SELECT secret_enc FROM webhook_endpoints WHERE id = :id"),
                                     {"id": endpoint_id})).scalar()
        dump = (await conn.execute(text("SELECT string_agg(t::text, ' ') FROM webhook_endpoints t WHERE agency_id = :a"),
                                   {"a": tenant.agency_id})).scalar()
        audit = (await conn.execute(text("SELECT string_agg(changes::text, ' ') FROM audit_events WHERE agency_id = :a"),
                                    {"a": tenant.agency_id})).scalar()
    assert secret not in dump and secret not in (audit or "")
    assert settings.vault().decrypt(stored) == secret
    rotated = await dev_client.post(f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", headers=h)
    assert rotated.status_code == 200
    new_secret = rotated.json()["signing_secret"]
    assert new_secret != secret and new_secret.startswith("whsec_")
    async with owner_engine.connect() as conn:
        stored = (await conn.execute(text("SELECT secret_enc FROM webhook_endpoints WHERE id = :id"),
                                     {"id": endpoint_id})).scalar()
    assert settings.vault().decrypt(stored) == new_secret
    assert secret not in caplog.text and new_secret not in caplog.text
    assert (await dev_client.delete(f"/v1/webhook-endpoints/{endpoint_id}", headers=h)).status_code == 204
    assert (await dev_client.get(f"/v1/webhook-endpoints/{endpoint_id}", headers=h)).status_code == 404


async def test_an_api_key_needs_the_webhooks_scope(tenant):
    reader = await tenant.api_key(["webhooks:read"])
    writer = await tenant.api_key(["webhooks:write"])
    body = {"url": "https://93.184.215.14/hook", "events": ["post.failed"]}
    assert (await tenant.req("POST", "/v1/webhook-endpoints", token=reader, json=body)).status_code == 403
    assert (await tenant.req("POST", "/v1/webhook-endpoints", token=writer, json=body)).status_code == 201
    assert (await tenant.req("GET", "/v1/webhook-endpoints", token=reader)).status_code == 200
