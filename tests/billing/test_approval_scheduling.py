"""Approvals that schedule: the team's last approval is refused (402) while the agency may not
schedule; a client's approval is recorded and leaves the post approved, not scheduled (the
client never sees billing)."""

from __future__ import annotations

from sqlalchemy import text

from tests.api.test_approvals import _later, client_decides, new_post, put_workflow, share_link
from tests.billing.helpers import set_plan


async def test_team_approval_that_would_schedule_is_refused_when_read_only(tenant, owner_engine, settings):
    await set_plan(owner_engine, tenant.agency_id, "starter")
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    await put_workflow(tenant, brand, [{"name": "Owner", "kind": "internal", "roles": ["owner"]}])
    post = await new_post(tenant, brand, account, when=_later(days=4))
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={"then_schedule": True})
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    await set_plan(owner_engine, tenant.agency_id, "starter", status="canceled")
    r = await tenant.req("POST", f"/v1/approval-requests/{request_id}/decisions", json={"decision": "approve"})
    assert r.status_code == 402 and r.json()["type"].endswith("/billing-read-only"), r.text
    got = (await tenant.req("GET", f"/v1/approval-requests/{request_id}")).json()
    assert got["status"] == "pending" and got["decisions"] == []
    assert (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()["status"] == "in_review"


async def test_client_approval_is_kept_but_does_not_schedule_when_read_only(app_engine, tenant, owner_engine,
                                                                          settings):
    await set_plan(owner_engine, tenant.agency_id, "starter")
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    await put_workflow(tenant, brand, [{"name": "Client", "kind": "client"}])
    post = await new_post(tenant, brand, account, when=_later(days=4))
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={"then_schedule": True})
    assert r.status_code == 201, r.text
    link_id, reviewer_id = await share_link(owner_engine, tenant, brand, [post["id"]])
    await set_plan(owner_engine, tenant.agency_id, "starter", status="canceled")
    _, status = await client_decides(app_engine, tenant, link_id, reviewer_id, post["id"], "approve")
    assert status == "approved"
    got = (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()
    assert got["status"] == "approved", got
    async with owner_engine.connect() as conn:
        reason = await conn.scalar(text(
            "SELECT changes->>'reason' FROM audit_events WHERE agency_id = :a AND action = 'post.schedule_refused'"),
            {"a": tenant.agency_id})
    assert reason == "billing-read-only"
