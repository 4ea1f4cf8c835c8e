"""Webhook deliveries end to end: a real receiver on loopback (CHORUS_WEBHOOKS_ALLOW_PRIVATE
on), the API, and a real dramatiq Worker on the PostgreSQL broker. Retries are driven by
moving `next_attempt_at` back with owner SQL and sweeping, never by waiting."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from tests.api.test_webhooks import documented_verifier
from tests.loopback import Receiver, serve
from tests.workers.conftest import eventually


@pytest.fixture
def receiver():
    app = Receiver()
    with serve(app, ready_path="/ready") as base:
        app.base = base
        yield app


@pytest.fixture
def dev_settings(worker_settings):
    return dataclasses.replace(worker_settings, webhooks_allow_private=True)


@pytest.fixture
async def dev_client(dev_settings):
    from api.app import create_app

    async with AsyncTestClient(create_app(dev_settings), base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
def dev_worker(dev_settings):
    from workers.broker import InProcessWorker

    running = InProcessWorker(dev_settings, threads=2)
    running.start()
    yield running
    running.stop(timeout_ms=5_000)


async def _endpoint(client, tenant, url: str, events: list[str]) -> dict:
    r = await client.post("/v1/webhook-endpoints", headers=tenant.auth(), json={"url": url, "events": events})
    assert r.status_code == 201, r.text
    return r.json()


async def _delivery(client, tenant, delivery_id: str) -> dict:
    r = await client.get(f"/v1/webhook-deliveries/{delivery_id}", headers=tenant.auth())
    assert r.status_code == 200, r.text
    return r.json()


async def test_ping_is_signed_and_verifies_with_the_documented_recipe(dev_client, tenant, receiver, dev_worker, caplog):
    caplog.set_level(logging.DEBUG)
    endpoint = await _endpoint(dev_client, tenant, f"{receiver.base}/hooks/chorus?x=1", ["post.published"])
    r = await dev_client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=tenant.auth())
    assert r.status_code == 202, r.text
    delivery = r.json()
    await eventually(lambda: receiver.received, what="the ping")
    [got] = receiver.received
    assert got["path"] == "/hooks/chorus"
    headers = got["headers"]
    assert headers["chorus-event"] == "ping" and headers["chorus-delivery"] == delivery["id"]
    assert headers["user-agent"].startswith("Chorus-Webhooks/") and headers["content-type"] == "application/json"
    verify = documented_verifier()
    assert verify(endpoint["signing_secret"], headers["chorus-signature"], got["body"])
    assert not verify(endpoint["signing_secret"] + "x", headers["chorus-signature"], got["body"])
    payload = json.loads(got["body"])
    assert payload["type"] == "ping" and payload["id"] == delivery["event_id"]
    assert payload["agency_id"] == tenant.agency_id and payload["data"] == {"endpoint_id": endpoint["id"]}
    done = await eventually(lambda: _done(dev_client, tenant, delivery["id"]), what="delivered")
    assert done["attempts"] == 1 and done["attempt_log"][0]["status_code"] == 200
    assert done["attempt_log"][0]["response_excerpt"] == "ok"
    assert endpoint["signing_secret"] not in caplog.text


async def _done(client, tenant, delivery_id):
    d = await _delivery(client, tenant, delivery_id)
    # An attempt is finished once recorded: no longer pending, or attempted and not leased.
    return d if d["status"] != "pending" or (d["attempts"] > 0 and d["leased_until"] is None) else None


async def test_a_failing_receiver_is_retried_by_the_sweep_and_a_delivery_can_be_replayed(
        dev_client, tenant, receiver, dev_worker, owner_engine, app_engine):
    from workers.webhooks import due_deliveries, sweep

    receiver.statuses = [500, 200]
    endpoint = await _endpoint(dev_client, tenant, f"{receiver.base}/h", ["post.published"])
    delivery = (await dev_client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=tenant.auth())).json()
    failed = await eventually(lambda: _done(dev_client, tenant, delivery["id"]), what="the first attempt")
    assert failed["status"] == "pending" and failed["attempts"] == 1 and failed["last_status_code"] == 500
    assert failed["attempt_log"][0]["response_excerpt"].startswith("receiver says no") 
    assert len(failed["attempt_log"][0]["response_excerpt"]) <= 500
    wait = datetime.fromisoformat(failed["next_attempt_at"]) - datetime.fromisoformat(failed["attempt_log"][0]["created_at"])
    assert timedelta(seconds=20) <= wait <= timedelta(seconds=40)
    # Not due yet: the sweep leaves it alone.
    assert all(str(d) != delivery["id"] for _, d in await due_deliveries(app_engine))
    # Time passes (the due time moves back); the sweep sends it again and it gets through.
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' "
                                "WHERE id = :id"), {"id": delivery["id"]})
    swept = await sweep(app_engine, dev_worker.broker)
    assert delivery["id"] in {str(d) for _, d in swept}
    delivered = await eventually(lambda: _status(dev_client, tenant, delivery["id"], "delivered"), what="the retry")
    assert delivered["attempts"] == 2 and [a["status_code"] for a in delivered["attempt_log"]] == [500, 200]
    assert len(receiver.received) == 2
    # Sweeping again changes nothing: it is delivered.
    assert all(str(d) != delivery["id"] for _, d in await sweep(app_engine, dev_worker.broker))
    # Replay: the same event, a new delivery.
    r = await dev_client.post(f"/v1/webhook-deliveries/{delivery['id']}/replay", headers=tenant.auth())
    assert r.status_code == 202, r.text
    replay = r.json()
    assert replay["replay_of_id"] == delivery["id"] and replay["event_id"] == delivery["event_id"]
    await eventually(lambda: len(receiver.received) == 3, what="the replay")
    first, third = receiver.received[1], receiver.received[2]
    assert first["body"] == third["body"]
    assert third["headers"]["chorus-delivery"] == replay["id"] != first["headers"]["chorus-delivery"]
    listed = (await dev_client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=tenant.auth())).json()
    assert [d["id"] for d in listed["items"]] == [replay["id"], delivery["id"]]


async def _status(client, tenant, delivery_id, status):
    d = await _delivery(client, tenant, delivery_id)
    return d if d["status"] == status else None


async def test_delivery_rechecks_the_address_when_private_targets_are_not_allowed(
        dev_client, tenant, receiver, worker, owner_engine):
    """Registered while allowed (or DNS changed since): the worker, without the development
    setting, refuses to connect and records why."""
    endpoint = await _endpoint(dev_client, tenant, f"{receiver.base}/h", ["post.published"])
    delivery = (await dev_client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=tenant.auth())).json()
    refused = await eventually(lambda: _done(dev_client, tenant, delivery["id"]), what="the refused attempt")
    assert refused["status"] == "pending" and refused["last_status_code"] is None
    assert refused["attempt_log"][0]["error"].startswith("refused:")
    assert receiver.received == []


async def test_an_approval_reaches_the_integrator(dev_client, tenant, receiver, dev_worker, owner_engine, settings):
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    endpoint = await _endpoint(dev_client, tenant, f"{receiver.base}/h", ["post.approved", "post.changes_requested"])
    h = tenant.auth()
    r = await dev_client.put(f"/v1/brands/{brand['id']}/approval-workflow", headers=h,
                             json={"steps": [{"name": "Owner", "kind": "internal", "roles": ["owner"]}]})
    assert r.status_code == 200, r.text
    posts = []
    for _ in range(2):
        r = await dev_client.post(f"/v1/brands/{brand['id']}/posts", headers=h,
                                  json={"variants": [{"social_account_id": account, "text": "hola"}]})
        assert r.status_code == 201, r.text
        posts.append(r.json())
    requests = []
    for post in posts:
        r = await dev_client.post(f"/v1/posts/{post['id']}/submit", headers=h, json={})
        assert r.status_code in (200, 201), r.text
        requests.append(r.json())
    r = await dev_client.post(f"/v1/approval-requests/{requests[0]['id']}/decisions", headers=h,
                              json={"decision": "approve"})
    assert r.status_code in (200, 201), r.text
    r = await dev_client.post(f"/v1/approval-requests/{requests[1]['id']}/decisions", headers=h,
                              json={"decision": "request_changes", "comment": "Más corto"})
    assert r.status_code in (200, 201), r.text
    await eventually(lambda: len(receiver.received) == 2, what="both events")
    verify = documented_verifier()
    by_type = {}
    for got in receiver.received:
        assert verify(endpoint["signing_secret"], got["headers"]["chorus-signature"], got["body"])
        payload = json.loads(got["body"])
        by_type[payload["type"]] = payload
    assert by_type["post.approved"]["data"]["post_id"] == posts[0]["id"]
    assert by_type["post.approved"]["data"]["approval_request_id"] == requests[0]["id"]
    assert by_type["post.changes_requested"]["data"]["post_id"] == posts[1]["id"]
    assert by_type["post.changes_requested"]["data"]["comment"] == "Más corto"


async def test_no_subscriber_records_nothing(client, tenant, owner_engine, settings):
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    await tenant.req("PUT", f"/v1/brands/{brand['id']}/approval-workflow",
                     json={"steps": [{"name": "Owner", "kind": "internal", "roles": ["owner"]}]})
    post = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts",
                             json={"variants": [{"social_account_id": account, "text": "x"}]})).json()
    req = (await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})).json()
    r = await tenant.req("POST", f"/v1/approval-requests/{req['id']}/decisions", json={"decision": "approve"})
    assert r.status_code in (200, 201), r.text
    async with owner_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM webhook_events WHERE agency_id = :a"),
                                   {"a": tenant.agency_id})).scalar() == 0


def test_the_retry_sweep_is_registered_with_the_scheduler(settings):
    import workers.webhooks  # noqa: F401 - imported with the actors whenever a broker is built
    from workers.scheduler import SWEEPS

    sweep = next(s for s in SWEEPS if s.name == "webhooks.deliver_due")
    assert sweep.interval(dataclasses.replace(settings, webhook_sweep_seconds=7)) == 7
