"""The approval sweep end to end: the SQL function names the agencies with a reminder or an
expiry due, one `approvals.remind_and_expire` job per agency runs on a real dramatiq Worker
(PostgreSQL broker), and the scheduler's registered sweep does the same unprompted. Requests are made
through the API, then moved back in time with owner SQL (the clock is not controllable)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.conftest import sign_up
from tests.workers.conftest import eventually, queued_jobs


@pytest.fixture
def sweep_worker(worker_settings):
    """A worker (it runs actors only, no sweeps): the tests sweep explicitly."""
    from workers.broker import InProcessWorker

    running = InProcessWorker(worker_settings, threads=2)
    assert not hasattr(running, "sweeper")
    running.start()
    yield running
    running.stop(timeout_ms=5_000)


async def _pending_request(tenant, owner_engine, settings, steps, *, hours_ago: float, **workflow) -> dict:
    """A brand with `workflow`, a post submitted for approval, and the request (and its
    expiry) moved `hours_ago` hours into the past."""
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    r = await tenant.req("PUT", f"/v1/brands/{brand['id']}/approval-workflow", json={"steps": steps, **workflow})
    assert r.status_code == 200, r.text
    when = (datetime.now(UTC) + timedelta(days=5)).replace(hour=9, minute=0, second=0, microsecond=0)
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "title": "Roscón", "scheduled_at": when.isoformat(), "variants": [{"social_account_id": account, "text": "9h"}]})
    assert r.status_code == 201, r.text
    post = r.json()
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})
    assert r.status_code in (200, 201), r.text
    req = r.json()
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "UPDATE approval_requests SET created_at = created_at - make_interval(secs => :s), "
            "expires_at = expires_at - make_interval(secs => :s) WHERE id = :id"), {"s": hours_ago * 3600, "id": req["id"]})
    return req


async def _owner_user(owner_engine, tenant) -> str:
    async with owner_engine.connect() as conn:
        return str((await conn.execute(text("SELECT id FROM users WHERE email = :e"), {"e": tenant.email})).scalar())


async def _reminders(owner_engine, user_id: str) -> list[str]:
    async with owner_engine.connect() as conn:
        return list((await conn.execute(text(
            "SELECT title FROM notifications WHERE user_id = :u AND kind = 'approval.requested' "
            "AND (data->>'reminder')::boolean"), {"u": user_id})).scalars())


async def _drained(owner_engine, *agency_ids: str) -> bool:
    for agency_id in agency_ids:
        if await queued_jobs(owner_engine, agency_id):
            return False
    return True


CLIENT = [{"name": "Client", "kind": "client"}]


async def test_one_sweep_reminds_the_submitters_of_two_agencies_once(client, tenant, other_tenant, owner_engine,
                                                                      app_engine, settings, sweep_worker, smtp_inbox):
    from workers.approvals import REMIND_AND_EXPIRE, sweep

    tenants = [tenant, other_tenant]
    requests = [await _pending_request(t, owner_engine, settings, CLIENT, hours_ago=25, remind_after_hours=24)
                for t in tenants]
    submitters = [await _owner_user(owner_engine, t) for t in tenants]
    for user in submitters:
        assert await _reminders(owner_engine, user) == []

    sent = {str(a) for a in await sweep(app_engine, sweep_worker.broker)}
    assert {t.agency_id for t in tenants} <= sent
    # A second worker sweeping at the same moment: the same jobs again, run concurrently.
    for t in tenants:
        sweep_worker.broker.get_actor(REMIND_AND_EXPIRE).send_with_options(kwargs={"agency_id": t.agency_id})

    for user in submitters:
        await eventually(lambda user=user: _reminders(owner_engine, user), what="the reminder notification")
    await eventually(lambda: _drained(owner_engine, *(t.agency_id for t in tenants)), what="the jobs to finish")
    for t, user, req in zip(tenants, submitters, requests, strict=True):
        assert await _reminders(owner_engine, user) == ["Reminder: Waiting for the client: Roscón"]
        got = (await t.req("GET", f"/v1/approval-requests/{req['id']}")).json()
        assert got["status"] == "pending" and got["reminded_at"] is not None

    # The reminder is emailed too (the job's buffered email jobs go out after its commit).
    for t in tenants:
        await eventually(lambda t=t: [m for m in smtp_inbox.to(t.email) if m["Subject"].endswith(
            "Reminder: Waiting for the client: Roscón")], what="the reminder email")

    # Sweeping again names neither agency (already reminded) and sends them nothing more.
    again = {str(a) for a in await sweep(app_engine, sweep_worker.broker)}
    assert not again & {t.agency_id for t in tenants}
    await eventually(lambda: _drained(owner_engine, *(t.agency_id for t in tenants)), what="the jobs to finish")
    for user in submitters:
        assert len(await _reminders(owner_engine, user)) == 1


async def test_the_sweep_function_names_due_agencies_and_shows_the_app_role_nothing_else(
        client, tenant, other_tenant, owner_engine, app_engine, settings):
    from workers.approvals import due_agencies

    # Pending but not yet due (2 h of 24): not named.
    await _pending_request(other_tenant, owner_engine, settings, CLIENT, hours_ago=2, remind_after_hours=24)
    quiet = await sign_up(client)  # pending with no reminder and no expiry: never named
    await _pending_request(quiet, owner_engine, settings, CLIENT, hours_ago=500)
    named = {str(a) for a in await due_agencies(app_engine)}
    assert tenant.agency_id not in named and other_tenant.agency_id not in named and quiet.agency_id not in named

    # One agency due for a reminder, the other for an expiry.
    await _pending_request(tenant, owner_engine, settings, CLIENT, hours_ago=25, remind_after_hours=24)
    await _pending_request(other_tenant, owner_engine, settings, CLIENT, hours_ago=73, expire_after_hours=72)
    async with app_engine.connect() as conn:
        result = await conn.execute(text("SELECT * FROM chorus_agencies_with_pending_approvals()"))
        assert list(result.keys()) == ["chorus_agencies_with_pending_approvals"]  # ids, nothing else
        named = {str(a) for a in result.scalars()}
        assert {tenant.agency_id, other_tenant.agency_id} <= named and quiet.agency_id not in named
        # The app role itself still sees no agency's requests or workflows without a tenant.
        for table in ("approval_requests", "approval_workflows", "agencies"):
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar() == 0
        fn = (await conn.execute(text(
            "SELECT p.prosecdef, p.proconfig, p.proacl::text AS acl FROM pg_proc p "
            "WHERE p.proname = 'chorus_agencies_with_pending_approvals'"))).one()
    assert fn.prosecdef and "search_path=public, pg_temp" in fn.proconfig
    assert "chorus_app=X/" in fn.acl and not fn.acl.lstrip("{").startswith("=") and ",=" not in fn.acl  # not PUBLIC


async def test_a_request_past_its_expiry_ends_expired(client, tenant, owner_engine, app_engine, settings,
                                                      sweep_worker):
    from workers.approvals import sweep

    _, manager = await tenant.member("manager")
    req = await _pending_request(tenant, owner_engine, settings,
                                 [{"name": "Managers", "kind": "internal", "roles": ["manager"]}],
                                 hours_ago=73, remind_after_hours=24, expire_after_hours=72)
    assert tenant.agency_id in {str(a) for a in await sweep(app_engine, sweep_worker.broker)}

    async def expired():
        got = (await tenant.req("GET", f"/v1/approval-requests/{req['id']}")).json()
        return got if got["status"] == "expired" else None

    got = await eventually(expired, what="the request to expire")
    assert got["decided_at"] is not None
    post = (await tenant.req("GET", f"/v1/posts/{req['post_id']}")).json()
    assert post["status"] == "draft"
    submitter = await _owner_user(owner_engine, tenant)
    async with owner_engine.connect() as conn:
        titles = list((await conn.execute(text(
            "SELECT title FROM notifications WHERE user_id = :u AND kind = 'approval.decided'"),
            {"u": submitter})).scalars())
    assert titles == ["Approval expired: Roscón"]
    # Expired, it is no longer named; the manager was not reminded of a request that expired.
    await eventually(lambda: _drained(owner_engine, tenant.agency_id), what="the jobs to finish")
    assert tenant.agency_id not in {str(a) for a in await sweep(app_engine, sweep_worker.broker)}
    assert await _reminders(owner_engine, manager["user_id"]) == []


async def test_the_scheduler_sweeps_on_its_own_and_stops(client, tenant, owner_engine, settings, worker_settings,
                                                          sweep_worker):
    from workers.scheduler import SWEEPS, Scheduler, SweepRegistry, load_sweep_modules

    load_sweep_modules()
    only_approvals = SweepRegistry({"approvals.remind_and_expire": SWEEPS.sweeps["approvals.remind_and_expire"]})
    await _pending_request(tenant, owner_engine, settings, CLIENT, hours_ago=25, remind_after_hours=24)
    submitter = await _owner_user(owner_engine, tenant)
    scheduler = Scheduler(dataclasses.replace(worker_settings, approval_sweep_seconds=0.2), broker=sweep_worker.broker,
                          registry=only_approvals)
    scheduler.start()
    try:
        assert scheduler.names == ["approvals.remind_and_expire"] and scheduler.is_alive()
        await eventually(lambda: _reminders(owner_engine, submitter), what="the sweep's reminder")
        await eventually(lambda: _drained(owner_engine, tenant.agency_id), what="the jobs to finish")
        await eventually(lambda: scheduler.stats["approvals.remind_and_expire"].runs >= 3, what="more sweeps")
    finally:
        scheduler.stop()
    assert not scheduler.is_alive()
    assert scheduler.stats["approvals.remind_and_expire"].failures == 0
    assert len(await _reminders(owner_engine, submitter)) == 1


async def test_a_zero_interval_turns_the_approval_sweep_off(worker_settings, sweep_worker):
    from workers.scheduler import Scheduler

    scheduler = Scheduler(dataclasses.replace(worker_settings, approval_sweep_seconds=0), broker=sweep_worker.broker)
    assert "approvals.remind_and_expire" not in scheduler.names
    assert "accounts.token_refresh" in scheduler.names
