"""The publishing routes: publish now, retry a failed variant, cancel, and the publishing log.
Posts are made through the API; states the workers would reach are written with owner SQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text


async def _post(tenant, owner_engine, settings, *, status: str = "scheduled") -> tuple[dict, str]:
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    when = datetime.now(UTC) + timedelta(days=2)
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "title": "Roscón", "scheduled_at": when.isoformat(), "variants": [{"social_account_id": account, "text": "hola"}]})
    assert r.status_code == 201, r.text
    post = r.json()
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE post_variants SET status = :s WHERE post_id = :id"), {"s": status, "id": post["id"]})
        await conn.execute(text("UPDATE posts SET status = :s WHERE id = :id"), {"s": status, "id": post["id"]})
    return post, post["variants"][0]["id"]


async def _attempt(owner_engine, tenant, variant_id: str, number: int, outcome: str, response: dict) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO publish_attempts (id, agency_id, variant_id, number, started_at, finished_at, outcome, response,"
            " error, message, created_at, updated_at) VALUES (:id, :agency, :variant, :n, now(), now(), :o, :r, NULL, '',"
            " now(), now())"), {"id": str(uuid.uuid4()), "agency": tenant.agency_id, "variant": variant_id, "n": number,
                                "o": outcome, "r": json.dumps(response)})


async def test_the_publishing_log_lists_every_attempt_newest_first(tenant, other_tenant, owner_engine, settings):
    post, variant = await _post(tenant, owner_engine, settings)
    await _attempt(owner_engine, tenant, variant, 1, "rate_limited", {"retry_after": 60})
    await _attempt(owner_engine, tenant, variant, 2, "published",
                   {"external_id": "123", "url": "https://x.com/i/web/status/123", "pending_ref": "internal"})
    r = await tenant.req("GET", f"/v1/posts/{post['id']}/variants/{variant}/attempts")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(a["number"], a["outcome"]) for a in items] == [(2, "published"), (1, "rate_limited")]
    assert items[0]["response"] == {"external_id": "123", "url": "https://x.com/i/web/status/123"}
    assert items[1]["response"] == {"retry_after": 60}
    r = await other_tenant.req("GET", f"/v1/posts/{post['id']}/variants/{variant}/attempts")
    assert r.status_code == 404
    r = await tenant.req("GET", f"/v1/posts/{post['id']}/variants/{uuid.uuid4()}/attempts")
    assert r.status_code == 404


async def test_retry_schedules_a_failed_variant_again_and_logs_it(tenant, owner_engine, settings):
    post, variant = await _post(tenant, owner_engine, settings, status="scheduled")
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/variants/{variant}/retry")
    assert r.status_code == 409, r.text  # not failed
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE post_variants SET status = 'failed', error = '{\"code\": \"rejected\"}'"
                                " WHERE id = :id"), {"id": variant})
        await conn.execute(text("UPDATE posts SET status = 'failed', scheduled_at = now() - interval '5 hours'"
                                " WHERE id = :id"), {"id": post["id"]})
    await _attempt(owner_engine, tenant, variant, 1, "rejected", {})
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/variants/{variant}/retry")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "scheduled"
    assert r.json()["variants"][0]["status"] == "scheduled"
    log = (await tenant.req("GET", f"/v1/posts/{post['id']}/variants/{variant}/attempts")).json()["items"]
    assert [a["outcome"] for a in log] == ["retry_requested", "rejected"]
    # Five hours late, but the retry restarts the lateness clock: the sweep claims it.
    from domain.core.db import create_engine, scoped_session, session_factory
    from domain.publishing.service import claim_due

    engine = create_engine(settings.app_url(), pool_size=1)
    try:
        agency = uuid.UUID(tenant.agency_id)
        async with scoped_session(session_factory(engine), agency_id=agency) as session, session.begin():
            claimed = await claim_due(session, agency)
    finally:
        await engine.dispose()
    assert [str(v) for v, _ in claimed] == [variant]


async def test_cancel_takes_waiting_variants_back_to_draft(tenant, owner_engine, settings):
    post, variant = await _post(tenant, owner_engine, settings)
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "draft" and r.json()["variants"][0]["status"] == "draft"
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/cancel")
    assert r.status_code == 409
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE post_variants SET status = 'publishing' WHERE id = :id"), {"id": variant})
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/cancel")
    assert r.status_code == 409  # being sent: not cancellable


async def test_publish_now_makes_a_scheduled_post_due_at_once(tenant, owner_engine, settings):
    draft, _ = await _post(tenant, owner_engine, settings, status="draft")
    r = await tenant.req("POST", f"/v1/posts/{draft['id']}/publish-now")
    assert r.status_code == 409, r.text
    post, variant = await _post(tenant, owner_engine, settings)
    before = datetime.now(UTC)
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/publish-now")
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["scheduled_at"]) <= datetime.now(UTC)
    assert datetime.fromisoformat(r.json()["scheduled_at"]) >= before - timedelta(seconds=5)
    from domain.core.db import create_engine, scoped_session, session_factory
    from domain.publishing.service import claim_due

    engine = create_engine(settings.app_url(), pool_size=1)
    try:
        agency = uuid.UUID(tenant.agency_id)
        async with scoped_session(session_factory(engine), agency_id=agency) as session, session.begin():
            claimed = await claim_due(session, agency)
    finally:
        await engine.dispose()
    assert [str(v) for v, _ in claimed] == [variant]
    r = await tenant.req("GET", f"/v1/posts/{post['id']}")
    assert r.json()["status"] == "publishing"
