"""Scheduled posts per month (in the agency's time zone), read-only agencies, frozen brands
and accounts on the scheduling paths, and what keeps publishing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.billing.helpers import (
    apply_plan, assert_limit_problem, draft_post, fill_month, frozen_report, set_plan, usage,
)

# Far enough ahead to be in the future, winter time in Madrid (UTC+1): March begins in Madrid
# at 2027-02-28T23:00Z.
MARCH = datetime(2027, 3, 15, 10, 0, tzinfo=UTC)
MARCH_STARTS = datetime(2027, 2, 28, 23, 0, tzinfo=UTC)
POSTS_SQL = "SELECT count(*) FROM post_variants WHERE agency_id = :a AND status = 'scheduled'"


async def setup(tenant, owner_engine, settings, plan="starter"):
    await set_plan(owner_engine, tenant.agency_id, plan)
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    return brand, account


async def scheduled_count(owner_engine, agency_id: str) -> int:
    async with owner_engine.connect() as conn:
        return int(await conn.scalar(text(POSTS_SQL), {"a": agency_id}))


async def test_monthly_limit_in_the_agencys_time_zone(tenant, owner_engine, settings, app_engine):
    brand, account = await setup(tenant, owner_engine, settings)
    await fill_month(owner_engine, tenant.agency_id, brand["id"], account, MARCH, 150)
    # Published and publishing posts count too; a post with several counted variants counts once.
    assert (await usage(app_engine, tenant.agency_id, at=MARCH))["scheduled_posts_per_month"] == 150
    # 23:30 on 28 February in Madrid: February, room.
    feb = await draft_post(tenant, brand["id"], account, MARCH_STARTS - timedelta(minutes=30))
    r = await tenant.req("POST", f"/v1/posts/{feb['id']}/schedule", json={})
    assert r.status_code == 200, r.text
    # 00:30 on 1 March in Madrid (still February in UTC): March, full.
    march = await draft_post(tenant, brand["id"], account, MARCH_STARTS + timedelta(minutes=30))
    before = await scheduled_count(owner_engine, tenant.agency_id)
    r = await tenant.req("POST", f"/v1/posts/{march['id']}/schedule", json={})
    body = assert_limit_problem(r, limit="scheduled_posts_per_month", usage=150, allowed=150, plan="starter",
                                upgrade_to="growth")
    assert body["detail"] == ("The Starter plan allows 150 posts scheduled in one calendar month; the agency has "
                              "150. The Growth plan allows 1000.")
    assert await scheduled_count(owner_engine, tenant.agency_id) == before
    assert (await tenant.req("GET", f"/v1/posts/{march['id']}")).json()["status"] == "draft"
    # Moving the scheduled February post into March is refused too; it stays where it was.
    r = await tenant.req("POST", f"/v1/posts/{feb['id']}/reschedule",
                         json={"scheduled_at": (MARCH_STARTS + timedelta(hours=1)).isoformat()})
    assert_limit_problem(r, limit="scheduled_posts_per_month", usage=150, allowed=150, plan="starter",
                         upgrade_to="growth")
    got = (await tenant.req("GET", f"/v1/posts/{feb['id']}")).json()
    assert datetime.fromisoformat(got["scheduled_at"]) == MARCH_STARTS - timedelta(minutes=30)
    # Moving within February is fine.
    r = await tenant.req("POST", f"/v1/posts/{feb['id']}/reschedule",
                         json={"scheduled_at": (MARCH_STARTS - timedelta(hours=2)).isoformat()})
    assert r.status_code == 200, r.text


async def test_rescheduling_within_a_full_month_and_unscheduling_frees_room(tenant, owner_engine, settings):
    brand, account = await setup(tenant, owner_engine, settings)
    fillers = await fill_month(owner_engine, tenant.agency_id, brand["id"], account, MARCH, 149)
    post = await draft_post(tenant, brand["id"], account, MARCH)
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/schedule", json={})
    assert r.status_code == 200, r.text  # the 150th
    # Already counted in March: moving it inside March takes no new room, even when full.
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/reschedule",
                         json={"scheduled_at": (MARCH + timedelta(days=3)).isoformat()})
    assert r.status_code == 200, r.text
    other = await draft_post(tenant, brand["id"], account, MARCH + timedelta(days=1))
    r = await tenant.req("POST", f"/v1/posts/{other['id']}/schedule", json={})
    assert r.status_code == 402
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE post_variants SET status = 'draft' WHERE post_id = :p"), {"p": fillers[0]})
    r = await tenant.req("POST", f"/v1/posts/{other['id']}/schedule", json={})
    assert r.status_code == 200, r.text


async def test_billing_off_schedules_without_limit(tenant, owner_engine, settings):
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    await fill_month(owner_engine, tenant.agency_id, brand["id"], account, MARCH, 160)
    post = await draft_post(tenant, brand["id"], account, MARCH)
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/schedule", json={})
    assert r.status_code == 200, r.text


async def test_read_only_refuses_new_scheduling_but_scheduled_posts_still_publish(tenant, owner_engine, settings):
    brand, account = await setup(tenant, owner_engine, settings)
    # Scheduled before the agency went read-only, now due.
    [due] = await fill_month(owner_engine, tenant.agency_id, brand["id"], account,
                             datetime.now(UTC) - timedelta(minutes=1), 1)
    later = await draft_post(tenant, brand["id"], account, datetime.now(UTC) + timedelta(days=3))
    r = await tenant.req("POST", f"/v1/posts/{later['id']}/schedule", json={})
    assert r.status_code == 200, r.text
    await set_plan(owner_engine, tenant.agency_id, "starter", status="canceled")
    draft = await draft_post(tenant, brand["id"], account, datetime.now(UTC) + timedelta(days=2))
    before = await scheduled_count(owner_engine, tenant.agency_id)
    r = await tenant.req("POST", f"/v1/posts/{draft['id']}/schedule", json={})
    assert r.status_code == 402 and r.json()["type"].endswith("/billing-read-only"), r.text
    assert r.json()["billing_status"] == "canceled" and r.json()["plan"] == "starter"
    assert "choose a plan" in r.json()["detail"]
    assert await scheduled_count(owner_engine, tenant.agency_id) == before
    # Publish now is scheduling too.
    r = await tenant.req("POST", f"/v1/posts/{later['id']}/publish-now")
    assert r.status_code == 402 and r.json()["type"].endswith("/billing-read-only"), r.text
    # What was scheduled stays scheduled, and the publishing engine still claims what is due.
    assert (await tenant.req("GET", f"/v1/posts/{later['id']}")).json()["status"] == "scheduled"
    from domain.core.db import scoped_session, session_factory
    from domain.publishing.service import claim_due

    from domain.core.db import create_engine

    engine = create_engine(settings.app_url(), pool_size=1)
    try:
        agency = uuid.UUID(tenant.agency_id)
        session = scoped_session(session_factory(engine), agency_id=agency)
        async with session:
            async with session.begin():
                claimed = await claim_due(session, agency)
                await session.rollback()  # only the claim matters here: nothing is sent
    finally:
        await engine.dispose()
    async with owner_engine.connect() as conn:
        variant = str(await conn.scalar(text("SELECT id FROM post_variants WHERE post_id = :p"), {"p": due}))
    assert [str(v) for v, _ in claimed] == [variant]
    # Paying again restores scheduling.
    await set_plan(owner_engine, tenant.agency_id, "starter", status="active")
    r = await tenant.req("POST", f"/v1/posts/{draft['id']}/schedule", json={})
    assert r.status_code == 200, r.text


async def test_frozen_brand_and_account_refuse_new_posts_and_scheduling(tenant, owner_engine, settings, app_engine):
    await set_plan(owner_engine, tenant.agency_id, "growth")
    brands = [await tenant.brand() for _ in range(4)]
    vault = settings.vault()
    accounts = [await tenant.social_account(owner_engine, vault, brands[0]["id"], "x") for _ in range(13)]
    post = await draft_post(tenant, brands[0]["id"], accounts[-1], datetime.now(UTC) + timedelta(days=3))
    brand_post = await draft_post(tenant, brands[3]["id"], await tenant.social_account(
        owner_engine, vault, brands[3]["id"], "x"), datetime.now(UTC) + timedelta(days=3))
    await set_plan(owner_engine, tenant.agency_id, "starter")
    frozen = await apply_plan(app_engine, tenant.agency_id)
    assert [str(b) for b in frozen["brands"]] == [brands[3]["id"]]
    # 14 accounts for 12: the two newest (the last of brand 0 and brand 3's) are frozen.
    assert len(frozen["social_accounts"]) == 2 and uuid.UUID(accounts[-1]) in frozen["social_accounts"]

    r = await tenant.req("POST", f"/v1/posts/{post['id']}/schedule", json={})
    assert r.status_code == 402 and r.json()["type"].endswith("/frozen-by-plan"), r.text
    assert r.json()["limit"] == "social_accounts"
    r = await tenant.req("POST", f"/v1/brands/{brands[3]['id']}/posts", json={"title": "New"})
    assert r.status_code == 402 and r.json()["type"].endswith("/frozen-by-plan"), r.text
    assert r.json()["limit"] == "brands"
    r = await tenant.req("POST", f"/v1/posts/{brand_post['id']}/schedule", json={})
    assert r.status_code == 402 and r.json()["limit"] == "brands"
    # Editing a draft of a frozen brand stays allowed.
    r = await tenant.req("PATCH", f"/v1/posts/{brand_post['id']}", json={"title": "Still editable"})
    assert r.status_code == 200, r.text

    # Unlinking two accounts makes room: the frozen account thaws and takes the post.
    for account in accounts[:2]:
        r = await tenant.req("DELETE", f"/v1/social-accounts/{account}")
        assert r.status_code == 200, r.text
    assert (await frozen_report(app_engine, tenant.agency_id))["social_accounts"] == []
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/schedule", json={})
    assert r.status_code == 200, r.text
