"""Webhook deliveries are leased, not locked, and endpoints that keep failing are disabled.

Real receivers on loopback (CHORUS_WEBHOOKS_ALLOW_PRIVATE on), the API, and a real dramatiq
Worker on the PostgreSQL broker. Time passing is owner SQL moving due times back."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.loopback import serve
from tests.workers.conftest import eventually, queued_jobs
from tests.workers.test_webhook_delivery import (  # noqa: F401 - the fixtures are shared
    Receiver, _delivery, _done, _endpoint, dev_client, dev_settings, dev_worker, receiver)


class HoldingReceiver(Receiver):
    """Answers every POST only once `release` is set (a slow receiver)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.arrived = threading.Event()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            self.arrived.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        await super().__call__(scope, receive, send)


@pytest.fixture
def holding_receiver():
    app = HoldingReceiver()
    with serve(app, ready_path="/ready") as base:
        app.base = base
        try:
            yield app
        finally:
            app.release.set()


async def _claim(settings, app_engine, agency_id: str, delivery_id: str):
    """A claim as a worker makes it, in its own committed transaction."""
    import uuid

    from domain.core.db import scoped_session, session_factory
    from domain.webhooks.service import claim

    async with scoped_session(session_factory(app_engine), agency_id=uuid.UUID(agency_id)) as session:
        async with session.begin():
            return await claim(session, uuid.UUID(agency_id), uuid.UUID(delivery_id), settings=settings)


async def test_a_slow_receiver_holds_no_row_lock_and_a_rerun_during_the_lease_does_nothing(
        dev_client, dev_settings, tenant, holding_receiver, dev_worker, owner_engine, app_engine):
    endpoint = await _endpoint(dev_client, tenant, f"{holding_receiver.base}/slow", ["post.published"])
    delivery = (await dev_client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=tenant.auth())).json()
    await eventually(holding_receiver.arrived.is_set, what="the request to reach the slow receiver")

    # The request is in flight: the attempt is claimed, committed and leased ...
    leased = await _delivery(dev_client, tenant, delivery["id"])
    assert leased["status"] == "pending" and leased["attempts"] == 1 and leased["leased_until"]
    assert leased["next_attempt_at"] == leased["leased_until"]
    assert [(a["number"], a["error"], a["status_code"]) for a in leased["attempt_log"]] == [(1, "in flight", None)]
    # ... and nobody holds the row: another transaction locks and updates it at once.
    async with owner_engine.begin() as conn:
        await conn.execute(text("SET LOCAL lock_timeout = '2s'"))
        locked = await conn.execute(text("SELECT id FROM webhook_deliveries WHERE id = :id FOR UPDATE NOWAIT"),
                                    {"id": delivery["id"]})
        assert locked.scalar_one() is not None
        await conn.execute(text("UPDATE webhook_deliveries SET last_error = last_error WHERE id = :id"),
                           {"id": delivery["id"]})
    # No backend of ours sits in an open transaction holding a lock on the deliveries table.
    async with owner_engine.connect() as conn:
        holders = (await conn.execute(text(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.relation = 'webhook_deliveries'::regclass AND l.mode = 'RowShareLock' "
            "AND a.pid <> pg_backend_pid()"))).scalar_one()
    assert holders == 0
    # A second run of the job while the lease holds does nothing.
    assert await _claim(dev_settings, app_engine, tenant.agency_id, delivery["id"]) == "leased"

    holding_receiver.release.set()
    done = await eventually(lambda: _done(dev_client, tenant, delivery["id"]), what="the recorded result")
    assert done["status"] == "delivered" and done["attempts"] == 1 and done["leased_until"] is None
    assert [(a["number"], a["status_code"], a["error"]) for a in done["attempt_log"]] == [(1, 200, "")]
    assert len(holding_receiver.received) == 1


async def test_an_expired_lease_lets_the_sweep_retry(dev_client, dev_settings, tenant, receiver, owner_engine,
                                                     app_engine):
    from domain.webhooks.service import LEASE_RAN_OUT, Claim
    from workers.broker import InProcessWorker
    from workers.webhooks import due_deliveries, sweep

    endpoint = await _endpoint(dev_client, tenant, f"{receiver.base}/h", ["post.published"])
    # No worker yet: the ping's job waits in the queue.
    delivery = (await dev_client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=tenant.auth())).json()
    # A worker claims the attempt and dies before its request (nothing is ever recorded).
    claimed = await _claim(dev_settings, app_engine, tenant.agency_id, delivery["id"])
    assert isinstance(claimed, Claim) and claimed.attempt == 1

    assert [j["state"] for j in await queued_jobs(owner_engine, tenant.agency_id)] == ["queued"]
    worker = InProcessWorker(dev_settings, threads=2)
    worker.start()
    try:
        # The queued job runs now and finds the lease taken: nothing is sent.
        await eventually(lambda: _all_done(owner_engine, tenant.agency_id), what="the queued job to run")
        assert receiver.received == []
        assert all(str(d) != delivery["id"] for _, d in await due_deliveries(app_engine))
        # The lease runs out (time passes); the sweep sends the delivery again.
        async with owner_engine.begin() as conn:
            await conn.execute(text(
                "UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second', "
                "leased_until = now() - interval '1 second' WHERE id = :id"), {"id": delivery["id"]})
        swept = await sweep(app_engine, worker.broker)
        assert delivery["id"] in {str(d) for _, d in swept}
        done = await eventually(lambda: _done(dev_client, tenant, delivery["id"]), what="the retry")
    finally:
        worker.stop(timeout_ms=5_000)
    assert done["status"] == "delivered" and done["attempts"] == 2
    assert [(a["number"], a["status_code"], a["error"]) for a in done["attempt_log"]] == [
        (1, None, LEASE_RAN_OUT), (2, 200, "")]
    [got] = receiver.received
    assert got["headers"]["chorus-delivery"] == delivery["id"]


async def _all_done(owner_engine, agency_id: str) -> bool:
    return await queued_jobs(owner_engine, agency_id) == []  # acknowledged messages are deleted


@pytest.fixture
def strict_settings(dev_settings):
    return dataclasses.replace(dev_settings, webhooks_disable_after_failures=3)


@pytest.fixture
async def strict_client(strict_settings):
    from api.app import create_app

    async with AsyncTestClient(create_app(strict_settings), base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
def strict_worker(strict_settings):
    from workers.broker import InProcessWorker

    running = InProcessWorker(strict_settings, threads=2)
    running.start()
    yield running
    running.stop(timeout_ms=5_000)


async def _emit(app_engine, agency_id: str, event_type: str):
    """Emit an event as a service would, in a committed transaction of the agency."""
    import uuid

    from domain.core.db import scoped_session, session_factory
    from domain.core.jobs import JobBuffer
    from domain.webhooks.service import emit_in

    after: list = []
    async with scoped_session(session_factory(app_engine), agency_id=uuid.UUID(agency_id)) as session:
        async with session.begin():
            event = await emit_in(session, uuid.UUID(agency_id), JobBuffer(after, uuid.UUID(agency_id)), event_type,
                                  {"post_id": str(uuid.uuid4())})
    for task in after:
        await task()
    return event


async def test_an_endpoint_that_keeps_failing_is_disabled_admins_are_told_and_it_can_be_re_enabled(
        strict_client, strict_worker, tenant, receiver, owner_engine, app_engine):
    from workers.webhooks import sweep

    admin_token, _ = await tenant.member("admin")
    analyst_token, _ = await tenant.member("analyst")
    receiver.statuses = [500]
    endpoint = await _endpoint(strict_client, tenant, f"{receiver.base}/down", ["post.published"])
    deliveries = []
    for n in (1, 2, 3):
        d = (await strict_client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=tenant.auth())).json()
        await eventually(lambda d=d: _done(strict_client, tenant, d["id"]), what=f"failed attempt {n}")
        deliveries.append(d)
        shown = (await strict_client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=tenant.auth())).json()
        assert shown["consecutive_failures"] == n
        assert shown["active"] is (n < 3)
    assert shown["disabled_reason"] == "Disabled after 3 failed delivery attempts in a row"
    assert shown["disabled_at"] is not None

    # The owner and the admin are told in the app; an analyst is not.
    for token in (tenant.owner_token, admin_token):
        items = (await strict_client.get("/v1/notifications", headers=tenant.auth(token))).json()["items"]
        [told] = [i for i in items if i["kind"] == "webhook_endpoint.disabled"]
        assert told["data"] == {"webhook_endpoint_id": endpoint["id"]} and "/down" in told["title"]
    items = (await strict_client.get("/v1/notifications", headers=tenant.auth(analyst_token))).json()["items"]
    assert not [i for i in items if i["kind"] == "webhook_endpoint.disabled"]

    # Further events are not queued for it; its waiting retries fail without a request.
    assert await _emit(app_engine, tenant.agency_id, "post.published") is None
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' "
                                "WHERE id = :id"), {"id": deliveries[0]["id"]})
    await sweep(app_engine, strict_worker.broker)
    stopped = await eventually(lambda: _status(strict_client, tenant, deliveries[0]["id"], "failed"),
                               what="the retry to stop")
    assert stopped["last_error"] == "endpoint disabled: Disabled after 3 failed delivery attempts in a row"
    assert len(receiver.received) == 3

    # The receiver is fixed; a ping (an explicit test) still reaches the disabled endpoint
    # and leaves it disabled; then an admin re-enables it through the API.
    receiver.statuses = [200]
    r = await strict_client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=tenant.auth())
    await eventually(lambda: _status(strict_client, tenant, r.json()["id"], "delivered"), what="the ping")
    shown = (await strict_client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=tenant.auth())).json()
    assert shown["active"] is False and shown["disabled_reason"] and shown["consecutive_failures"] == 0
    r = await strict_client.patch(f"/v1/webhook-endpoints/{endpoint['id']}", headers=tenant.auth(admin_token),
                                  json={"active": True})
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["active"] is True and again["disabled_at"] is None and again["disabled_reason"] == ""
    assert again["consecutive_failures"] == 0
    # Replay still works, and new events reach it again.
    r = await strict_client.post(f"/v1/webhook-deliveries/{deliveries[0]['id']}/replay", headers=tenant.auth())
    assert r.status_code == 202, r.text
    replayed = await eventually(lambda: _status(strict_client, tenant, r.json()["id"], "delivered"), what="the replay")
    assert replayed["replay_of_id"] == deliveries[0]["id"]
    assert await _emit(app_engine, tenant.agency_id, "post.published") is not None
    await eventually(lambda: len(receiver.received) == 6, what="the new event")


async def _status(client, tenant, delivery_id, status):
    d = await _delivery(client, tenant, delivery_id)
    return d if d["status"] == status else None


def test_disable_rules():
    from datetime import UTC, datetime, timedelta

    from domain.webhooks.rules import disable_reason, lease_length

    at = datetime(2026, 11, 26, 12, tzinfo=UTC)
    rule = dict(max_failures=50, max_hours=24)
    assert disable_reason(0, None, at, **rule) is None
    assert disable_reason(49, at - timedelta(hours=23), at, **rule) is None
    assert disable_reason(50, at, at, **rule) == "Disabled after 50 failed delivery attempts in a row"
    assert disable_reason(7, at - timedelta(hours=24), at, **rule) == (
        "Disabled after every delivery attempt failed for 24 hours (7 attempts)")
    assert disable_reason(500, at - timedelta(days=3), at, max_failures=0, max_hours=0) is None
    assert lease_length(10, 120) == timedelta(seconds=120)
    assert lease_length(60, 120) == timedelta(seconds=155)  # never shorter than the request may take
