"""A brand's publishing pause end to end: paused through the API, a post due while paused is
held (not claimed, not sent, not failed as too late) and reported, then resumed through the
API and published by a real worker through the network sandbox, exactly once. The team is
notified and integrators get brand.publishing_paused / brand.publishing_resumed."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import text

from domain.networks.adapters.base import Network
from tests.workers.conftest import eventually
from tests.workers.test_publishing import (  # noqa: F401 - fixtures
    _attempts, _claim, _due_post, _link, _publish_calls, _settled, _sweep, _variants, _who, app_role_engine,
    pub_settings, sandbox,
)
from tests.workers.test_webhook_publishing import hook_client, hook_settings, hook_worker, receiver  # noqa: F401 - fixtures




async def _notifications(client, token: str) -> list[dict]:
    r = await client.get("/v1/notifications", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_a_post_due_while_paused_is_held_reported_and_goes_out_once_on_resume(
        tenant, owner_engine, hook_settings, sandbox, hook_worker, app_role_engine, hook_client, receiver):
    r = await hook_client.post("/v1/webhook-endpoints", headers=tenant.auth(), json={
        "url": f"{receiver.base}/h", "events": ["brand.publishing_paused", "brand.publishing_resumed"]})
    assert r.status_code == 201, r.text
    brand = await tenant.brand()
    other = await tenant.brand()
    manager, _ = await tenant.member("manager", [brand["id"]])
    elsewhere, _ = await tenant.member("editor", [other["id"]])
    who = _who("pps")
    x = await _link(tenant, owner_engine, hook_settings, sandbox, brand["id"], Network.X, who)

    # Pause, with the brand's ETag.
    r = await hook_client.post(f"/v1/brands/{brand['id']}/publishing/pause", headers={
        **tenant.auth(), "If-Match": f'"{brand["version"]}"'}, json={"reason": "Crisis meeting at noon"})
    assert r.status_code == 200, r.text
    paused = r.json()
    assert paused["publishing_pause"]["reason"] == "Crisis meeting at noon"
    assert paused["publishing_pause"]["source"] == "manual" and paused["publishing_pause"]["paused_by_id"]
    assert r.headers["etag"] == f'"{paused["version"]}"' and paused["version"] == brand["version"] + 1
    r = await hook_client.get(f"/v1/brands/{brand['id']}", headers=tenant.auth())
    assert r.json()["publishing_pause"]["paused_at"] == paused["publishing_pause"]["paused_at"]
    # Pausing twice is a conflict, and a stale ETag a failed precondition; neither writes.
    r = await hook_client.post(f"/v1/brands/{brand['id']}/publishing/pause", headers=tenant.auth(),
                                json={"reason": "again"})
    assert r.status_code == 409 and r.json()["type"].endswith("/publishing-already-paused")
    r = await hook_client.post(f"/v1/brands/{brand['id']}/publishing/resume", headers={
        **tenant.auth(), "If-Match": f'"{brand["version"]}"'})
    assert r.status_code == 412

    # A post due three hours ago, the pause having started before it (more than the 2 h lateness).
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "En pausa"}])
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE posts SET scheduled_at = now() - interval '3 hours' WHERE id = :id"),
                           {"id": post["id"]})
        await conn.execute(text("UPDATE brands SET publishing_paused_at = now() - interval '4 hours' WHERE id = :id"),
                           {"id": brand["id"]})
    assert await _claim(app_role_engine, tenant) == []  # held: not claimed, not failed as too late
    await _sweep(app_role_engine, hook_worker)
    [variant] = (await _variants(owner_engine, post["id"])).values()
    assert variant["status"] == "scheduled" and await _attempts(owner_engine, str(variant["id"])) == []
    assert await _publish_calls(sandbox, "x", who) == 0

    # Reported: the pause and the held variant with its due time.
    r = await hook_client.get(f"/v1/brands/{brand['id']}/publishing", headers=tenant.auth())
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["paused"] is True and report["pause"]["reason"] == "Crisis meeting at noon"
    assert report["held_count"] == 1
    [held] = report["held"]
    assert held["variant_id"] == str(variant["id"]) and held["post_id"] == post["id"] and held["network"] == "x"
    async with owner_engine.connect() as conn:
        due = await conn.scalar(text("SELECT scheduled_at FROM posts WHERE id = :id"), {"id": post["id"]})
    assert held["due_at"].replace("Z", "+00:00") == due.isoformat()

    # Publishing it now is refused while paused (it would only be held).
    r = await hook_client.post(f"/v1/posts/{post['id']}/publish-now", headers=tenant.auth())
    assert r.status_code == 409 and r.json()["type"].endswith("/publishing-paused"), r.text

    # The calendar shows the brand's pause, so a frontend can mark its due posts as held.
    r = await hook_client.get("/v1/calendar", headers=tenant.auth(), params={"brand_id": [brand["id"], other["id"]]})
    assert r.status_code == 200, r.text
    shown = {b["id"]: b["publishing_paused_at"] for b in r.json()["brands"]}
    assert shown[brand["id"]] is not None and shown[other["id"]] is None

    # The brand's team heard about it (not a member of another brand only, not the one who paused).
    assert any(n["kind"] == "brand.publishing_paused" for n in await _notifications(hook_client, manager))
    assert not any(n["kind"].startswith("brand.publishing") for n in await _notifications(hook_client, elsewhere))
    assert not any(n["kind"].startswith("brand.publishing") for n in await _notifications(hook_client, tenant.owner_token))

    # Resume: the held post goes out now (the resume kicks a sweep), late from the resume.
    r = await hook_client.post(f"/v1/brands/{brand['id']}/publishing/resume", headers=tenant.auth())
    assert r.status_code == 200, r.text
    assert r.json()["publishing_pause"] is None
    await _settled(owner_engine, post["id"], "published")
    assert [a["outcome"] for a in await _attempts(owner_engine, str(variant["id"]))] == ["published"]
    await _sweep(app_role_engine, hook_worker)
    assert await _publish_calls(sandbox, "x", who) == 1
    r = await hook_client.get(f"/v1/brands/{brand['id']}/publishing", headers=tenant.auth())
    assert r.json() == {"brand_id": brand["id"], "paused": False, "pause": None, "held": [], "held_count": 0}
    r = await hook_client.post(f"/v1/brands/{brand['id']}/publishing/resume", headers=tenant.auth())
    assert r.status_code == 409 and r.json()["type"].endswith("/publishing-not-paused")
    assert any(n["kind"] == "brand.publishing_resumed" for n in await _notifications(hook_client, manager))

    await eventually(lambda: len(receiver.received) == 2, what="both webhook events")
    events = {json.loads(got["body"])["type"]: json.loads(got["body"])["data"] for got in receiver.received}
    assert events["brand.publishing_paused"]["brand_id"] == brand["id"]
    assert events["brand.publishing_paused"]["reason"] == "Crisis meeting at noon"
    assert events["brand.publishing_resumed"]["held"] == 1


async def test_pausing_leaves_other_brands_and_sends_in_flight_alone(tenant, owner_engine, pub_settings, sandbox,
                                                                     app_role_engine):
    """A variant claimed before the pause is in flight: the pause does not take it back, and its
    job still sends it. Another brand of the agency keeps publishing."""
    from domain.core.db import session_factory
    from domain.publishing.service import Publisher, network_settings

    brand, other = await tenant.brand(), await tenant.brand()
    w1, w2, w3 = _who("ppa"), _who("ppb"), _who("ppc")
    x1 = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, w1)
    x2 = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, w2)
    x3 = await _link(tenant, owner_engine, pub_settings, sandbox, other["id"], Network.X, w3)
    first = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x1, "text": "Ya salía"}])
    [(variant_id, attempt_id)] = await _claim(app_role_engine, tenant)
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/publishing/pause", json={"reason": "Alto"})
    assert r.status_code == 200, r.text
    held = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x2, "text": "Espera"}])
    free = await _due_post(tenant, owner_engine, other["id"], [{"social_account_id": x3, "text": "Otra marca"}])
    claimed = await _claim(app_role_engine, tenant)
    assert [str(v) for v, _ in claimed] == list(await _variants(owner_engine, free["id"]))
    publisher = Publisher(agency_id=uuid.UUID(tenant.agency_id), factory=session_factory(app_role_engine),
                          vault=pub_settings.vault(), networks=network_settings(pub_settings), after_commit=[])
    assert await publisher.publish_attempt(variant_id, attempt_id) == "published"
    assert await _publish_calls(sandbox, "x", w1) == 1
    assert next(iter((await _variants(owner_engine, held["id"])).values()))["status"] == "scheduled"
    assert await _publish_calls(sandbox, "x", w2) == 0
    assert (await _variants(owner_engine, first["id"]))[str(variant_id)]["status"] == "published"
