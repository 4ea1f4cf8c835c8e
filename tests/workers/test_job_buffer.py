"""The after-commit job buffer: jobs reach the broker only when the request commits."""

from __future__ import annotations

import uuid

import pytest

from domain.core.jobs import Job, JobBuffer, use_sender, current_sender
from tests.workers.conftest import queued_jobs


async def _member_id(tenant) -> str:
    _, member = await tenant.member("editor")
    return member["user_id"]


async def test_a_committed_request_sends_one_job_per_notification(notify_client, tenant, owner_engine):
    editor = await _member_id(tenant)
    r = await notify_client.post("/test/notify", headers=tenant.auth(), json={"user_ids": [editor], "title": "Hello"})
    assert r.status_code == 201, r.text
    [notification_id] = r.json()["ids"]
    jobs = await queued_jobs(owner_engine, tenant.agency_id)
    assert [j["message"]["actor_name"] for j in jobs] == ["notifications.send_email"]
    assert jobs[0]["message"]["kwargs"] == {"agency_id": tenant.agency_id, "notification_id": notification_id}
    assert jobs[0]["message"]["queue_name"] == "notifications"


async def test_a_rolled_back_request_sends_no_job(notify_client, tenant, owner_engine):
    editor = await _member_id(tenant)
    r = await notify_client.post("/test/notify", headers=tenant.auth(),
                                 json={"user_ids": [editor], "title": "Never", "fail": True})
    assert r.status_code == 409, r.text
    assert await queued_jobs(owner_engine, tenant.agency_id) == []
    # Nor a notification row: the request's transaction rolled back whole.
    feed = await tenant.req("GET", "/v1/notifications", token=None)
    assert feed.status_code == 200 and feed.json()["items"] == []


async def test_no_email_job_when_email_is_off_or_nobody_else_is_told(notify_client, tenant, owner_engine):
    # The actor themselves is never notified: no row, no job.
    me = (await tenant.req("GET", "/v1/members", params={"limit": 5})).json()["items"][0]["user_id"]
    r = await notify_client.post("/test/notify", headers=tenant.auth(), json={"user_ids": [me], "title": "Me"})
    assert r.status_code == 201 and r.json()["ids"] == []
    assert await queued_jobs(owner_engine, tenant.agency_id) == []


async def test_buffer_sends_after_commit_only_and_refuses_objects():
    sent: list[Job] = []

    async def sender(jobs):
        sent.extend(jobs)

    previous = current_sender()
    use_sender(sender)
    try:
        after_commit: list = []
        agency = uuid.uuid4()
        buffer = JobBuffer(after_commit, agency)
        first = uuid.uuid4()
        buffer.send("notifications.send_email", notification_id=first)
        buffer.send("notifications.send_email", notification_id=uuid.uuid4())
        assert sent == [] and len(after_commit) == 1  # one task sends the whole batch
        with pytest.raises(TypeError):
            buffer.send("notifications.send_email", notification=object())
        with pytest.raises(ValueError):
            buffer.send("send_email", notification_id=first)
        for task in after_commit:
            await task()
        assert [j.kwargs["notification_id"] for j in sent][0] == str(first)
        assert all(j.kwargs["agency_id"] == str(agency) for j in sent) and len(sent) == 2
    finally:
        use_sender(previous)
