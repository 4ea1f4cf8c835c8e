"""Approval workflows: submitting, deciding step by step (internal, then the client through a
share link), revision binding (an edit sends the post back to review), scheduling through
approval, reminders and expiry, and the audit trail."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text


def _later(days=3, hour=9):
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


@pytest.fixture
async def shop(tenant, owner_engine, settings):
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    return brand, account


async def new_post(tenant, brand, account, text_="Roscón a las 9", when=None, title="Roscón"):
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "title": title, "scheduled_at": (when or _later()).isoformat(),
        "variants": [{"social_account_id": account, "text": text_}]})
    assert r.status_code == 201, r.text
    return r.json()


async def put_workflow(tenant, brand, steps, **extra):
    r = await tenant.req("PUT", f"/v1/brands/{brand['id']}/approval-workflow", json={"steps": steps, **extra})
    assert r.status_code == 200, r.text
    return r.json()


MANAGER_THEN_CLIENT = [{"name": "Account manager", "kind": "internal", "roles": ["manager"]},
                       {"name": "Client", "kind": "client"}]


async def notifications(owner_engine, user_id, kind=None):
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT kind, title, data FROM notifications WHERE user_id = :u ORDER BY created_at"),
            {"u": user_id})).mappings().all()
    return [dict(r) for r in rows if kind is None or r["kind"] == kind]


@asynccontextmanager
async def domain_context(engine, agency_id, label="share link"):
    """A Context like the share-link pages and the workers build: the agency, no user, on the
    application's database role (row-level security applies)."""
    from domain.agencies.rules import Principal
    from domain.core.context import Context
    from domain.core.db import scoped_session, session_factory

    session = scoped_session(session_factory(engine), agency_id=uuid.UUID(agency_id))
    try:
        yield Context(Principal(agency_id=uuid.UUID(agency_id), label=label), session=session)
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        await session.close()


async def share_link(owner_engine, tenant, brand, post_ids, name="Lucía (client)", email="lucia@client.test"):
    link_id, reviewer_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO share_links (id, agency_id, brand_id, token_hash, label, permission, post_ids, expires_at,"
            " created_at, updated_at) VALUES (:id, :a, :b, :h, 'December', 'approve', :posts,"
            " now() + interval '7 days', now(), now())"),
            {"id": link_id, "a": tenant.agency_id, "b": brand["id"], "h": uuid.uuid4().hex + uuid.uuid4().hex,
             "posts": [uuid.UUID(p) for p in post_ids]})
        await conn.execute(text(
            "INSERT INTO share_reviewers (id, agency_id, share_link_id, name, email, created_at, updated_at)"
            " VALUES (:id, :a, :l, :n, :e, now(), now())"),
            {"id": reviewer_id, "a": tenant.agency_id, "l": link_id, "n": name, "e": email})
    return link_id, reviewer_id


async def client_decides(app_engine, tenant, link_id, reviewer_id, post_id, decision, comment=""):
    from domain.approvals.models import ShareLink, ShareReviewer
    from domain.approvals.rules import Decision
    from domain.approvals.service import ApprovalService

    async with domain_context(app_engine, tenant.agency_id) as ctx:
        link = await ctx.get(ShareLink, uuid.UUID(link_id))
        reviewer = await ctx.get(ShareReviewer, uuid.UUID(reviewer_id))
        req = await ApprovalService(ctx).decide_as_client(
            share_link=link, reviewer=reviewer, post_id=uuid.UUID(post_id), decision=Decision(decision),
            comment=comment, ip="203.0.113.7", user_agent="Mozilla/5.0 (client phone)")
        return req.id, req.status


# --- workflows -------------------------------------------------------------------------


async def test_a_workflow_is_validated_and_versioned(tenant, shop):
    brand, _ = shop
    path = f"/v1/brands/{brand['id']}/approval-workflow"
    r = await tenant.req("GET", path)
    assert r.status_code == 404
    _, editor = await tenant.member("editor")
    bad = await tenant.req("PUT", path, json={"steps": [
        {"name": "Nobody", "kind": "internal"},
        {"name": "Client", "kind": "client", "roles": ["manager"]},
        {"name": "Ghost", "kind": "internal", "member_ids": [str(uuid.uuid4())]},
        {"name": "All roles", "kind": "internal", "roles": ["admin"], "rule": "all"},
    ], "remind_after_hours": 48, "expire_after_hours": 24})
    assert bad.status_code == 422, bad.text
    assert [e["field"] for e in bad.json()["errors"]] == [
        "steps[0]", "steps[1]", "steps[2].member_ids[0]", "steps[3].rule", "expire_after_hours"]
    for body in ({"steps": []}, {"steps": [{"name": "x", "kind": "internal", "roles": ["boss"]}]},
                 {"steps": [{"name": "s", "kind": "client"}] * 11}):
        assert (await tenant.req("PUT", path, json=body)).status_code == 422
    wf = await put_workflow(tenant, brand, [
        {"name": "Editor", "kind": "internal", "member_ids": [editor["user_id"]]}, *MANAGER_THEN_CLIENT],
        remind_after_hours=24, expire_after_hours=72)
    assert [s["name"] for s in wf["steps"]] == ["Editor", "Account manager", "Client"]
    assert wf["steps"][0]["member_ids"] == [editor["user_id"]] and wf["remind_after_hours"] == 24
    r = await tenant.req("PUT", path, json={"steps": MANAGER_THEN_CLIENT}, headers={"If-Match": '"99"'})
    assert r.status_code == 412
    r = await tenant.req("GET", path)
    assert r.status_code == 200 and r.headers["etag"] == f'"{wf["version"]}"'
    editor_token = (await tenant.member("editor"))[0]
    assert (await tenant.req("PUT", path, token=editor_token, json={"steps": MANAGER_THEN_CLIENT})).status_code == 403
    assert (await tenant.req("GET", path, token=editor_token)).status_code == 200
    assert (await tenant.req("DELETE", path)).status_code == 204
    assert (await tenant.req("GET", path)).status_code == 404


# --- the whole journey ------------------------------------------------------------------


async def test_marta_manager_then_client_then_an_edit_goes_back_to_review(app_engine, tenant, shop, owner_engine):
    brand, account = shop
    manager_token, manager = await tenant.member("manager")
    await put_workflow(tenant, brand, MANAGER_THEN_CLIENT)
    post = await new_post(tenant, brand, account)

    r = await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={"then_schedule": True})
    assert r.status_code == 201, r.text
    req = r.json()
    assert r.headers["location"] == f"/v1/approval-requests/{req['id']}"
    assert req["status"] == "pending" and req["current_step"] == 0 and req["awaiting"] == "internal"
    assert req["revision"] == post["revision"] and req["content_hash"] == post["content_hash"]
    got = (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()
    assert got["status"] == "in_review" and got["variants"][0]["status"] == "in_review"
    asked = await notifications(owner_engine, manager["user_id"], "approval.requested")
    assert len(asked) == 1 and asked[0]["data"]["request_id"] == req["id"]
    again = await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})
    assert again.status_code == 409 and again.json()["type"].endswith("/already-in-review")

    # The client cannot decide the internal step.
    link_id, reviewer_id = await share_link(owner_engine, tenant, brand, [post["id"]])
    from domain.core.errors import ConflictError
    with pytest.raises(ConflictError, match="not awaiting the client"):
        await client_decides(app_engine, tenant, link_id, reviewer_id, post["id"], "approve")

    mine = await tenant.req("GET", "/v1/approval-requests", token=manager_token, params={"awaiting_me": "true"})
    assert [i["id"] for i in mine.json()["items"]] == [req["id"]]
    r = await tenant.req("POST", f"/v1/approval-requests/{req['id']}/decisions", token=manager_token,
                         json={"decision": "approve"}, headers={"User-Agent": "chorus-test/1.0"})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending" and r.json()["current_step"] == 1 and r.json()["awaiting"] == "client"
    mine = await tenant.req("GET", "/v1/approval-requests", token=manager_token, params={"awaiting_me": "true"})
    assert mine.json()["items"] == []
    told = await notifications(owner_engine, await _owner_user(owner_engine, tenant))
    assert [n["title"] for n in told] == ["Waiting for the client: Roscón"]  # Marta shares the link now

    # The client approves through the link.
    _, status = await client_decides(app_engine, tenant, link_id, reviewer_id, post["id"], "approve")
    assert status == "approved"
    got = (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()
    assert got["status"] == "scheduled", got
    detail = (await tenant.req("GET", f"/v1/approval-requests/{req['id']}")).json()
    trail = [(d["step_name"], d["decision"], d["reviewer_type"], d["reviewer_name"], d["revision"])
             for d in detail["decisions"]]
    assert trail == [("Account manager", "approve", "member", "manager", post["revision"]),
                     ("Client", "approve", "client", "Lucía (client)", post["revision"])]
    assert detail["decisions"][0]["user_agent"] == "chorus-test/1.0" and detail["decisions"][0]["ip"]
    assert detail["decisions"][1]["ip"] == "203.0.113.7"
    assert detail["decisions"][1]["reviewer_email"] == "lucia@client.test"
    decided = await notifications(owner_engine, await _owner_user(owner_engine, tenant), "approval.decided")
    assert any(n["data"]["status"] == "approved" for n in decided)

    # Two days before, a different photo: the edit supersedes the approval and resubmits.
    variant = got["variants"][0]["id"]
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}/variants/{variant}", json={"text": "Roscón, nueva foto"})
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["status"] == "in_review" and edited["review"]["status"] == "pending"
    assert "back to review" in edited["review"]["message"]
    old = (await tenant.req("GET", f"/v1/approval-requests/{req['id']}")).json()
    assert old["status"] == "superseded"
    new = (await tenant.req("GET", f"/v1/approval-requests/{edited['review']['request_id']}")).json()
    assert new["status"] == "pending" and new["revision"] == edited["revision"] and new["then_schedule"] is True
    assert new["content_hash"] == edited["content_hash"] != post["content_hash"]
    # The manager and the client approve the new revision; it is scheduled again.
    r = await tenant.req("POST", f"/v1/approval-requests/{new['id']}/decisions", token=manager_token,
                         json={"decision": "approve"})
    assert r.status_code == 201, r.text
    _, status = await client_decides(app_engine, tenant, link_id, reviewer_id, post["id"], "approve")
    assert status == "approved"
    final = (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()
    assert final["status"] == "scheduled"
    new = (await tenant.req("GET", f"/v1/approval-requests/{new['id']}")).json()
    assert {d["revision"] for d in new["decisions"]} == {edited["revision"]}
    # Every decision is in the agency's audit log too.
    async with owner_engine.connect() as conn:
        actions = (await conn.execute(text(
            "SELECT action FROM audit_events WHERE agency_id = :a AND object_type = 'approval_request'"),
            {"a": tenant.agency_id})).scalars().all()
    assert actions.count("approval.submitted") == 2 and actions.count("approval.decided") == 4
    assert actions.count("approval.superseded") == 1
    async with owner_engine.connect() as conn:
        scheduled = (await conn.execute(text(
            "SELECT changes->>'by_approval' FROM audit_events WHERE agency_id = :a AND action = 'post.scheduled'"
            " ORDER BY created_at"),
            {"a": tenant.agency_id})).scalars().all()
    assert scheduled == [req["id"], new["id"]]


async def _owner_user(owner_engine, tenant):
    async with owner_engine.connect() as conn:
        return str((await conn.execute(text("SELECT id FROM users WHERE email = :e"), {"e": tenant.email})).scalar())


async def test_changes_requested_and_rejection_need_a_comment_and_return_to_draft(app_engine, tenant, shop, owner_engine):
    brand, account = shop
    await put_workflow(tenant, brand, [{"name": "Client", "kind": "client"}])
    post = await new_post(tenant, brand, account)
    req = (await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})).json()
    link_id, reviewer_id = await share_link(owner_engine, tenant, brand, [post["id"]])
    from domain.core.errors import ValidationFailedError
    with pytest.raises(ValidationFailedError):
        await client_decides(app_engine, tenant, link_id, reviewer_id, post["id"], "request_changes", "  ")
    # A member cannot decide a client step.
    r = await tenant.req("POST", f"/v1/approval-requests/{req['id']}/decisions", json={"decision": "approve"})
    assert r.status_code == 403 and r.json()["type"].endswith("/not-a-reviewer")
    _, status = await client_decides(app_engine, tenant, link_id, reviewer_id, post["id"], "request_changes",
                                     "Otra foto, por favor")
    assert status == "changes_requested"
    got = (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()
    assert got["status"] == "draft"
    owner = await _owner_user(owner_engine, tenant)
    changes = await notifications(owner_engine, owner, "approval.changes_requested")
    assert len(changes) == 1 and "Otra foto" in (await _bodies(owner_engine, owner))[-1]
    comments = (await tenant.req("GET", f"/v1/posts/{post['id']}/comments")).json()["items"]
    assert [(c["author_type"], c["visibility"], c["body"]) for c in comments] == [
        ("client", "client", "Otra foto, por favor")]
    # Decided requests take no more decisions; a new submission starts over.
    r = await tenant.req("POST", f"/v1/approval-requests/{req['id']}/cancel", json={})
    assert r.status_code == 409 and r.json()["type"].endswith("/approval-state")
    req2 = (await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})).json()
    _, status = await client_decides(app_engine, tenant, link_id, reviewer_id, post["id"], "reject", "No")
    assert status == "rejected"
    assert (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()["status"] == "draft"
    assert (await tenant.req("GET", "/v1/approval-requests", params={"post_id": post["id"], "status": "rejected"})
            ).json()["items"][0]["id"] == req2["id"]


async def _bodies(owner_engine, user_id):
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT body FROM notifications WHERE user_id = :u ORDER BY created_at"),
                                   {"u": user_id})).scalars().all()


async def test_rule_any_and_rule_all(tenant, shop):
    brand, account = shop
    (t1, m1), (t2, m2), (t3, m3) = [await tenant.member("editor") for _ in range(3)]
    await put_workflow(tenant, brand, [
        {"name": "Any editor", "kind": "internal", "member_ids": [m1["user_id"], m2["user_id"]], "rule": "any"},
        {"name": "Both", "kind": "internal", "member_ids": [m1["user_id"], m3["user_id"]], "rule": "all"}])
    post = await new_post(tenant, brand, account)
    req = (await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})).json()
    path = f"/v1/approval-requests/{req['id']}/decisions"

    async def awaiting(token):
        r = await tenant.req("GET", "/v1/approval-requests", token=token, params={"awaiting_me": "true"})
        return [i["id"] for i in r.json()["items"]]

    assert await awaiting(t1) == await awaiting(t2) == [req["id"]] and await awaiting(t3) == []
    # Not named: 403, and nothing recorded.
    r = await tenant.req("POST", path, token=t3, json={"decision": "approve"})
    assert r.status_code == 403 and r.json()["type"].endswith("/not-a-reviewer")
    r = await tenant.req("POST", path, token=t2, json={"decision": "approve"})
    assert r.json()["current_step"] == 1
    assert await awaiting(t1) == await awaiting(t3) == [req["id"]] and await awaiting(t2) == []
    r = await tenant.req("POST", path, token=t1, json={"decision": "approve"})
    assert r.json()["current_step"] == 1 and r.json()["status"] == "pending"
    assert await awaiting(t1) == [] and await awaiting(t3) == [req["id"]]  # t1 has done their part
    r = await tenant.req("POST", path, token=t1, json={"decision": "approve"})
    assert r.status_code == 409
    r = await tenant.req("POST", path, token=t3, json={"decision": "request_changes"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "comment"
    r = await tenant.req("POST", path, token=t3, json={"decision": "approve"})
    assert r.json()["status"] == "approved"
    got = (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()
    assert got["status"] == "approved"
    assert len((await tenant.req("GET", f"/v1/approval-requests/{req['id']}")).json()["decisions"]) == 3


async def test_submit_refuses_invalid_posts_and_batches_are_all_or_nothing(tenant, shop):
    brand, account = shop
    bad = await new_post(tenant, brand, account, text_="é" * 281)
    r = await tenant.req("POST", f"/v1/posts/{bad['id']}/submit", json={})
    assert r.status_code == 409 and r.json()["type"].endswith("/no-approval-workflow")
    await put_workflow(tenant, brand, [{"name": "Managers", "kind": "internal", "roles": ["manager", "owner"]}])
    r = await tenant.req("POST", f"/v1/posts/{bad['id']}/submit", json={})
    assert r.status_code == 422 and r.json()["type"].endswith("/post-not-ready")
    assert r.json()["errors"][0]["field"] == "variants[0].text"
    good = [await new_post(tenant, brand, account, text_=f"Día {i}") for i in range(3)]
    r = await tenant.req("POST", "/v1/approval-requests", json={
        "post_ids": [good[0]["id"], bad["id"], str(uuid.uuid4())]})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["post_ids[1].variants[0].text", "post_ids[2]"]
    assert (await tenant.req("GET", "/v1/approval-requests", params={"brand_id": brand["id"]})).json()["items"] == []
    r = await tenant.req("POST", "/v1/approval-requests", json={"post_ids": [g["id"] for g in good]})
    assert r.status_code == 201, r.text
    assert {i["post_id"] for i in r.json()["items"]} == {g["id"] for g in good}
    r = await tenant.req("POST", "/v1/approval-requests", json={"post_ids": [good[0]["id"]]})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "post_ids[0]"
    # The owner's role is in the step: they see all three awaiting them, and can cancel one.
    mine = (await tenant.req("GET", "/v1/approval-requests", params={"awaiting_me": "true"})).json()["items"]
    assert len(mine) == 3
    key = await tenant.api_key(["posts:read"])  # a key is nobody: nothing awaits it, everything is listed
    r = await tenant.req("GET", "/v1/approval-requests", token=key, params={"awaiting_me": "true"})
    assert r.status_code == 200 and r.json()["items"] == []
    r = await tenant.req("GET", "/v1/approval-requests", token=key, params={"brand_id": brand["id"], "limit": 2})
    page2 = await tenant.req("GET", "/v1/approval-requests", token=key,
                             params={"brand_id": brand["id"], "limit": 2, "cursor": r.json()["next_cursor"]})
    assert len({i["id"] for i in r.json()["items"] + page2.json()["items"]}) == 3
    r = await tenant.req("POST", f"/v1/approval-requests/{mine[0]['id']}/cancel", json={})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert (await tenant.req("GET", f"/v1/posts/{mine[0]['post_id']}")).json()["status"] == "draft"


async def test_scheduling_with_a_workflow_sends_for_approval_then_schedules(app_engine, tenant, shop):
    from domain.approvals.service import is_publishable
    from domain.content.models import Post

    brand, account = shop
    free = await new_post(tenant, brand, account, text_="Sin flujo")
    r = await tenant.req("POST", f"/v1/posts/{free['id']}/schedule", json={})
    assert r.json()["status"] == "scheduled" and r.json()["review"] is None  # no workflow: scheduling approves

    await put_workflow(tenant, brand, [{"name": "Owner", "kind": "internal", "roles": ["owner"]}])
    post = await new_post(tenant, brand, account)
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/schedule", json={})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_review" and r.json()["review"]["status"] == "pending"
    assert r.json()["review"]["message"].startswith("Scheduling sends it for approval first")
    request_id = r.json()["review"]["request_id"]

    async def publishable(post_id):
        async with domain_context(app_engine, tenant.agency_id, "publisher") as ctx:
            return await is_publishable(ctx, await ctx.get(Post, uuid.UUID(post_id)))

    assert await publishable(post["id"]) is False
    # The post scheduled before the workflow existed was never approved: it is held too.
    assert await publishable(free["id"]) is False
    # ... and an edit of it sends it to review under the new workflow.
    r = await tenant.req("PATCH", f"/v1/posts/{free['id']}/variants/{free['variants'][0]['id']}",
                         json={"text": "Sin flujo, corregido"})
    assert r.json()["status"] == "in_review" and r.json()["review"]["status"] == "pending", r.text
    r = await tenant.req("POST", f"/v1/approval-requests/{request_id}/decisions", json={"decision": "approve"})
    assert r.json()["status"] == "approved"
    assert (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()["status"] == "scheduled"
    assert await publishable(post["id"]) is True
    # Unschedule and schedule again: the approval still matches, it is scheduled at once.
    assert (await tenant.req("POST", f"/v1/posts/{post['id']}/unschedule", json={})).status_code == 200
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/schedule", json={})
    assert r.json()["status"] == "scheduled" and r.json()["review"]["status"] == "approved"
    # An edit of the scheduled post: the approval lapses, it is not publishable until approved again.
    variant = r.json()["variants"][0]["id"]
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}/variants/{variant}", json={"text": "Otro texto"})
    assert r.json()["status"] == "in_review" and r.json()["review"]["status"] == "pending"
    assert await publishable(post["id"]) is False
    # Without a workflow, anything goes.
    assert (await tenant.req("DELETE", f"/v1/brands/{brand['id']}/approval-workflow")).status_code == 204
    assert await publishable(post["id"]) is True


async def test_an_edit_of_a_post_in_review_resubmits_without_a_workflow_it_only_supersedes(tenant, shop):
    brand, account = shop
    await put_workflow(tenant, brand, [{"name": "Owner", "kind": "internal", "roles": ["owner"]}])
    post = await new_post(tenant, brand, account)
    first = (await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})).json()
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}", json={"title": "Only the title"})
    assert r.json()["review"] is None  # the title is not part of the approved content
    assert (await tenant.req("GET", f"/v1/approval-requests/{first['id']}")).json()["status"] == "pending"
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}", json={"scheduled_at": _later(5).isoformat()})
    second = r.json()["review"]
    assert second["status"] == "pending" and second["request_id"] != first["id"]
    assert (await tenant.req("GET", f"/v1/approval-requests/{first['id']}")).json()["status"] == "superseded"
    assert (await tenant.req("DELETE", f"/v1/brands/{brand['id']}/approval-workflow")).status_code == 204
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}", json={"scheduled_at": _later(6).isoformat()})
    assert r.json()["review"]["status"] == "superseded" and r.json()["review"]["request_id"] is None
    assert r.json()["status"] == "draft"  # no workflow: out of review, to be scheduled (which approves)
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/schedule", json={})
    assert r.json()["status"] == "scheduled" and r.json()["review"] is None


async def test_reminders_then_expiry(app_engine, tenant, shop, owner_engine):
    from domain.approvals.service import ApprovalService

    brand, account = shop
    manager_token, manager = await tenant.member("manager")
    await put_workflow(tenant, brand, [{"name": "Managers", "kind": "internal", "roles": ["manager"]}],
                       remind_after_hours=24, expire_after_hours=72)
    post = await new_post(tenant, brand, account)
    req = (await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})).json()
    assert req["expires_at"] is not None
    start = datetime.fromisoformat(req["created_at"])

    async def sweep(at):
        async with domain_context(app_engine, tenant.agency_id, "scheduler") as ctx:
            return await ApprovalService(ctx).remind_and_expire(at)

    assert await sweep(start + timedelta(hours=23)) == {"reminded": 0, "expired": 0}
    assert await sweep(start + timedelta(hours=25)) == {"reminded": 1, "expired": 0}
    assert await sweep(start + timedelta(hours=26)) == {"reminded": 0, "expired": 0}  # once
    reminders = [n for n in await notifications(owner_engine, manager["user_id"], "approval.requested")
                 if n["data"]["reminder"]]
    assert len(reminders) == 1 and reminders[0]["title"].startswith("Reminder")
    got = (await tenant.req("GET", f"/v1/approval-requests/{req['id']}")).json()
    assert got["reminded_at"] is not None
    assert await sweep(start + timedelta(hours=73)) == {"reminded": 0, "expired": 1}
    got = (await tenant.req("GET", f"/v1/approval-requests/{req['id']}")).json()
    assert got["status"] == "expired"
    assert (await tenant.req("GET", f"/v1/posts/{post['id']}")).json()["status"] == "draft"
    r = await tenant.req("POST", f"/v1/approval-requests/{req['id']}/decisions", token=manager_token,
                         json={"decision": "approve"})
    assert r.status_code == 409


async def test_a_member_limited_to_other_brands_is_not_notified_and_cannot_see_requests(tenant, shop, owner_engine):
    brand, account = shop
    other = await tenant.brand()
    limited_token, limited = await tenant.member("manager", brand_ids=[other["id"]])
    await put_workflow(tenant, brand, [{"name": "Managers", "kind": "internal", "roles": ["manager"]}])
    post = await new_post(tenant, brand, account)
    req = (await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})).json()
    assert await notifications(owner_engine, limited["user_id"]) == []
    r = await tenant.req("GET", f"/v1/approval-requests/{req['id']}", token=limited_token)
    assert r.status_code == 404
    r = await tenant.req("POST", f"/v1/approval-requests/{req['id']}/decisions", token=limited_token,
                         json={"decision": "approve"})
    assert r.status_code == 404
    assert (await tenant.req("GET", "/v1/approval-requests", token=limited_token)).json()["items"] == []


async def test_a_decision_racing_an_edit_waits_and_is_refused(app_engine, tenant, shop, owner_engine):
    """The edit holds the post; the decision waits for it, then finds its request superseded:
    nobody approves content they did not see."""
    import asyncio

    from domain.agencies.rules import Principal, Role
    from domain.approvals import schemas as s
    from domain.approvals.rules import Decision
    from domain.approvals.service import ApprovalService, ApprovalStateError
    from domain.content import schemas as cs
    from domain.content.service import PostService
    from domain.core.context import Context
    from domain.core.db import scoped_session, session_factory

    brand, account = shop
    await put_workflow(tenant, brand, [{"name": "Owner", "kind": "internal", "roles": ["owner"]}])
    post = await new_post(tenant, brand, account)
    req = (await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})).json()
    owner = uuid.UUID(await _owner_user(owner_engine, tenant))
    agency = uuid.UUID(tenant.agency_id)

    def context():
        session = scoped_session(session_factory(app_engine), agency_id=agency, user_id=owner)
        return Context(Principal(agency_id=agency, user_id=owner, role=Role.OWNER, label="owner"), session=session)

    editing, deciding = context(), context()
    try:
        edited = await PostService(editing).update_variant(
            uuid.UUID(post["id"]), uuid.UUID(post["variants"][0]["id"]), cs.VariantUpdate(text="Otra foto"), None)
        decision = asyncio.ensure_future(ApprovalService(deciding).decide(
            uuid.UUID(req["id"]), s.DecisionIn(decision=Decision.APPROVE), ip="198.51.100.1", user_agent="t"))
        await asyncio.sleep(0.3)
        assert not decision.done()  # waiting for the post
        await editing.session.commit()
        with pytest.raises(ApprovalStateError):
            await decision
    finally:
        await deciding.session.rollback()
        await editing.session.close()
        await deciding.session.close()
    assert (await tenant.req("GET", f"/v1/approval-requests/{req['id']}")).json()["status"] == "superseded"
    new = (await tenant.req("GET", f"/v1/approval-requests/{edited.review.request_id}")).json()
    assert new["status"] == "pending" and new["decisions"] == []


async def test_a_slow_client_reminds_the_submitter(app_engine, tenant, shop, owner_engine):
    from domain.approvals.service import ApprovalService

    brand, account = shop
    await put_workflow(tenant, brand, [{"name": "Client", "kind": "client"}], remind_after_hours=48)
    post = await new_post(tenant, brand, account)
    req = (await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})).json()
    start = datetime.fromisoformat(req["created_at"])
    async with domain_context(app_engine, tenant.agency_id, "scheduler") as ctx:
        assert await ApprovalService(ctx).remind_and_expire(start + timedelta(hours=47)) == {"reminded": 0,
                                                                                              "expired": 0}
        assert await ApprovalService(ctx).remind_and_expire(start + timedelta(hours=49)) == {"reminded": 1,
                                                                                              "expired": 0}
    owner = await _owner_user(owner_engine, tenant)
    titles = [n["title"] for n in await notifications(owner_engine, owner, "approval.requested")]
    # (Not told at submission: they submitted it themselves.)
    assert titles == ["Reminder: Waiting for the client: Roscón"]
