"""End to end: an API call that notifies -> the job is sent after commit -> a real dramatiq
Worker on the PostgreSQL broker runs the actor -> aiosmtpd on loopback receives the email."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.workers.conftest import eventually, queued_jobs


def _notices(inbox, address: str) -> list:
    """Notification emails to `address` (the member's invitation went there too)."""
    return [m for m in inbox.to(address) if not m["Subject"].startswith("You are invited")]


async def _emailed_at(owner_engine, notification_id: str):
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT emailed_at FROM notifications WHERE id = :id"),
                                   {"id": notification_id})).scalar_one()


async def test_notification_is_emailed_by_the_worker_with_text_and_html(notify_client, tenant, smtp_inbox, worker,
                                                                       owner_engine):
    token, member = await tenant.member("editor")
    post_id = uuid.uuid4()
    title = "Approval needed: <Roscón> & \"pre-orders\""
    r = await notify_client.post("/test/notify", headers=tenant.auth(), json={
        "user_ids": [member["user_id"]], "title": title, "body": "Step 1 of 2: <b>Legal</b>", "post_id": str(post_id)})
    assert r.status_code == 201, r.text
    [notification_id] = r.json()["ids"]

    [message] = await eventually(lambda: _notices(smtp_inbox, member["email"]), what="the email")
    assert message["Subject"].endswith(title) and message["Subject"].startswith("[Agency ")
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert title in plain and "Step 1 of 2: <b>Legal</b>" in plain
    assert f"https://app.chorus.test/agency/posts/{post_id}" in plain
    # Everything people wrote is escaped in the HTML part; the link is there too.
    assert "&lt;Roscón&gt; &amp; &quot;pre-orders&quot;" in html and "<Roscón>" not in html
    assert "&lt;b&gt;Legal&lt;/b&gt;" in html and "<b>Legal</b>" not in html
    assert f'href="https://app.chorus.test/agency/posts/{post_id}"' in html
    assert "Your approval is requested" in plain and "Your approval is requested" in html

    # The job commits `emailed_at`; the feed shows it.
    stamped = await eventually(lambda: _emailed_at(owner_engine, notification_id), what="emailed_at")
    feed = (await tenant.req("GET", "/v1/notifications", token=token)).json()["items"]
    assert [n["id"] for n in feed] == [notification_id] and feed[0]["emailed_at"] is not None

    # A redelivered job (the same message again, as after a crash) sends no second email.
    job = worker.broker.get_actor("notifications.send_email")
    message_again = job.message_with_options(kwargs={"agency_id": tenant.agency_id, "notification_id": notification_id})
    worker.broker.enqueue(message_again)
    worker.broker.enqueue(message_again)  # and the very same message id twice
    await eventually(lambda: _done(owner_engine, tenant.agency_id), what="the redelivered jobs to finish")
    assert len(_notices(smtp_inbox, member["email"])) == 1
    assert await _emailed_at(owner_engine, notification_id) == stamped


async def _done(owner_engine, agency_id: str) -> bool:
    return await queued_jobs(owner_engine, agency_id) == []


async def test_a_rolled_back_request_emails_nobody(notify_client, tenant, smtp_inbox, worker, owner_engine):
    _, member = await tenant.member("editor")
    r = await notify_client.post("/test/notify", headers=tenant.auth(), json={
        "user_ids": [member["user_id"]], "title": "Rolled back", "fail": True})
    assert r.status_code == 409
    # A committed notification afterwards is delivered; the rolled-back one never is.
    r = await notify_client.post("/test/notify", headers=tenant.auth(), json={
        "user_ids": [member["user_id"]], "title": "Committed"})
    assert r.status_code == 201
    await eventually(lambda: _notices(smtp_inbox, member["email"]), what="the committed email")
    await eventually(lambda: _done(owner_engine, tenant.agency_id), what="the queue to drain")
    assert [m["Subject"].split("] ", 1)[1] for m in _notices(smtp_inbox, member["email"])] == ["Committed"]


async def test_a_member_removed_before_the_job_runs_is_not_emailed(notify_client, tenant, smtp_inbox, owner_engine,
                                                                  worker_settings):
    from workers.broker import InProcessWorker

    _, member = await tenant.member("editor")
    r = await notify_client.post("/test/notify", headers=tenant.auth(), json={
        "user_ids": [member["user_id"]], "title": "Too late"})
    assert r.status_code == 201
    assert (await tenant.req("DELETE", f"/v1/members/{member['id']}")).status_code == 204
    running = InProcessWorker(worker_settings, threads=1)
    running.start()
    try:
        await eventually(lambda: _done(owner_engine, tenant.agency_id), what="the job to finish")
    finally:
        running.stop(timeout_ms=5_000)
    assert _notices(smtp_inbox, member["email"]) == []


async def test_approval_flow_emails_the_reviewer_then_the_submitter(tenant, owner_engine, settings, smtp_inbox, worker):
    """The real approvals API: submitting notifies the step's reviewer, deciding notifies the
    submitter; the worker emails both, each with a link to the post."""
    from tests.api.test_approvals import new_post, put_workflow

    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    manager_token, manager = await tenant.member("manager")
    await put_workflow(tenant, brand, [{"name": "Account manager", "kind": "internal",
                                        "member_ids": [manager["user_id"]]}])
    post = await new_post(tenant, brand, account, title="Roscón <preventa>")
    submitted = await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})
    assert submitted.status_code in (200, 201), submitted.text

    [asked] = await eventually(lambda: _notices(smtp_inbox, manager["email"]), what="the reviewer's email")
    assert "Roscón <preventa>" in asked["Subject"]
    assert f"https://app.chorus.test/agency/posts/{post['id']}" in asked.get_body(("plain",)).get_content()
    assert "Roscón &lt;preventa&gt;" in asked.get_body(("html",)).get_content()

    decided = await tenant.req("POST", f"/v1/approval-requests/{submitted.json()['id']}/decisions",
                               token=manager_token, json={"decision": "approve"})
    assert decided.status_code in (200, 201), decided.text
    [told] = await eventually(lambda: _notices(smtp_inbox, tenant.email), what="the submitter's email")
    assert "An approval request was decided" in told.get_body(("plain",)).get_content()
    # And both are in the members' feeds, marked emailed.
    feed = (await tenant.req("GET", "/v1/notifications", token=manager_token)).json()["items"]
    assert [n["kind"] for n in feed] == ["approval.requested"]
