"""Per-account rate limits, quotas and concurrency caps, against the network sandbox: a 429
holds every variant of the account until the provider's reset; a used-up quota holds the
variant (visibly) until a slot frees instead of sending it into a 429; claim_due never hands
out more sends than the per-account and per-network caps, even to racing sweeps."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from datetime import timedelta

from sqlalchemy import text

from domain.networks.adapters.base import Network
from tests.workers.conftest import eventually
from tests.workers.test_publishing import (  # noqa: F401 - fixtures
    _attempts, _claim, _due_post, _fault, _link, _publish_calls, _settled, _sweep, _variants, _who, app_role_engine,
    pub_settings, pub_worker, sandbox,
)


async def _only_variant(owner_engine, post_id: str) -> dict:
    [variant] = (await _variants(owner_engine, post_id)).values()
    return variant


async def test_a_429_holds_every_variant_of_the_account_until_the_reset(tenant, owner_engine, pub_settings, sandbox,
                                                                        pub_worker, app_role_engine):
    brand = await tenant.brand()
    who, other = _who("pra"), _who("prb")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    y = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, other)
    await _fault(sandbox, network="x", match="publish", kind="status", status=429, identity=who, retry_after=600)
    first = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Primero"}])
    await _sweep(app_role_engine, pub_worker)

    async def limited():
        variant = await _only_variant(owner_engine, first["id"])
        return variant if variant["status"] == "scheduled" and variant["not_before"] else None

    limited_variant = await eventually(limited, what="the first variant rate limited")
    assert limited_variant["wait_reason"] == "rate_limited"
    async with owner_engine.connect() as conn:
        reset = await conn.scalar(text("SELECT publish_not_before FROM social_accounts WHERE id = :id"), {"id": x})
    assert reset == limited_variant["not_before"]  # the provider's reset, now the account's

    # The account's next post is due now: it is not sent into the limit, it waits for the reset.
    second = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Segundo"},
                                                                 {"social_account_id": y, "text": "Otra cuenta"}])
    await _sweep(app_role_engine, pub_worker)
    variants = await _variants(owner_engine, second["id"])
    on_y = next(v for v in variants.values() if str(v["social_account_id"]) == y)
    await eventually(lambda: _only_published(owner_engine, on_y["id"]), what="the other account's variant published")
    on_x = next(v for v in (await _variants(owner_engine, second["id"])).values() if str(v["social_account_id"]) == x)
    assert on_x["status"] == "scheduled" and on_x["not_before"] == reset and on_x["wait_reason"] == "rate_limited"
    assert await _attempts(owner_engine, str(on_x["id"])) == []
    assert await _publish_calls(sandbox, "x", who) == 1
    # Visible on the post: until when, and why.
    r = await tenant.req("GET", f"/v1/posts/{second['id']}")
    shown = next(v for v in r.json()["variants"] if v["social_account_id"] == x)
    assert shown["wait_reason"] == "rate_limited" and shown["not_before"]

    # The reset passes: both go out, once each.
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE social_accounts SET publish_not_before = now() - interval '1 second'"
                                " WHERE id = :id"), {"id": x})
        await conn.execute(text("UPDATE post_variants SET not_before = now() - interval '1 second'"
                                " WHERE social_account_id = :id AND status = 'scheduled'"), {"id": x})
    await _sweep(app_role_engine, pub_worker)
    await _settled(owner_engine, first["id"], "published")
    await _settled(owner_engine, second["id"], "published")
    assert await _publish_calls(sandbox, "x", who) == 3  # the 429, then each post once
    assert (await _only_variant(owner_engine, first["id"]))["wait_reason"] is None


async def _only_published(owner_engine, variant_id) -> bool:
    async with owner_engine.connect() as conn:
        return await conn.scalar(text("SELECT status FROM post_variants WHERE id = :id"), {"id": variant_id}) \
            == "published"


async def _used_quota(owner_engine, tenant, account_id: str, brand_id: str, count: int, minutes_ago: int) -> None:
    """`count` published attempts on the account, the oldest `minutes_ago` minutes ago, a
    second apart (a post published earlier, its attempts written with owner SQL)."""
    post = await _due_post(tenant, owner_engine, brand_id, [{"social_account_id": account_id, "text": "Antes"}])
    async with owner_engine.begin() as conn:
        variant_id = await conn.scalar(text("UPDATE post_variants SET status = 'published' WHERE post_id = :id"
                                            " RETURNING id"), {"id": post["id"]})
        await conn.execute(text(
            "INSERT INTO publish_attempts (id, agency_id, variant_id, number, started_at, finished_at, outcome,"
            " response, message, created_at, updated_at)"
            " SELECT gen_random_uuid(), :agency, :variant, n,"
            "  now() - make_interval(mins => :ago) + make_interval(secs => n - 1),"
            "  now() - make_interval(mins => :ago) + make_interval(secs => n - 1), 'published', '{}', '', now(), now()"
            " FROM generate_series(1, :count) AS n"),
            {"agency": tenant.agency_id, "variant": variant_id, "ago": minutes_ago, "count": count})


async def test_a_used_up_quota_holds_the_variant_until_a_slot_frees(tenant, owner_engine, pub_settings, sandbox,
                                                                    pub_worker, app_role_engine):
    """X: 100 posts per 15 minutes per user (x.LIMITS.publish_quotas). With 98 used, of three
    due posts two go out and the third waits, visibly, until the oldest attempt is 15 min old."""
    brand = await tenant.brand()
    who = _who("pqx")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    await _used_quota(owner_engine, tenant, x, brand["id"], 98, minutes_ago=10)
    posts = [await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": f"Cupo {i}"}])
             for i in range(3)]
    claimed = await _claim(app_role_engine, tenant)
    assert len(claimed) == 2
    [waiting] = [v for p in posts for v in (await _variants(owner_engine, p["id"])).values()
                 if v["status"] == "scheduled"]
    async with owner_engine.connect() as conn:
        oldest = await conn.scalar(text(
            "SELECT min(a.started_at) FROM publish_attempts a JOIN post_variants v ON v.id = a.variant_id"
            " WHERE v.social_account_id = :id AND a.outcome = 'published'"), {"id": x})
    assert waiting["wait_reason"] == "quota" and waiting["not_before"] == oldest + timedelta(minutes=15)
    assert await _attempts(owner_engine, str(waiting["id"])) == []  # never sent into a 429
    # Reported on the post.
    post_id = str(waiting["post_id"])
    r = await tenant.req("GET", f"/v1/posts/{post_id}")
    assert r.json()["variants"][0]["wait_reason"] == "quota"
    # A later sweep does not send it either (its not_before is in the future).
    assert await _claim(app_role_engine, tenant) == []

    # The window moves on: the slot frees and the worker publishes it through the sandbox.
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE publish_attempts SET started_at = started_at - interval '15 minutes'"
                                " WHERE variant_id IN (SELECT id FROM post_variants WHERE social_account_id = :id)"
                                " AND outcome = 'published'"), {"id": x})
        await conn.execute(text("UPDATE post_variants SET not_before = now() - interval '1 second' WHERE id = :id"),
                           {"id": waiting["id"]})
        # The two claimed above were never sent by a job: let them go back and out now.
        await conn.execute(text("UPDATE publish_attempts SET outcome = 'abandoned', finished_at = now()"
                                " WHERE id = ANY(:ids)"), {"ids": [a for _, a in claimed]})
        await conn.execute(text("UPDATE post_variants SET status = 'scheduled' WHERE id = ANY(:ids)"),
                           {"ids": [v for v, _ in claimed]})
    await _sweep(app_role_engine, pub_worker)
    for post in posts:
        await _settled(owner_engine, post["id"], "published")
    assert await _publish_calls(sandbox, "x", who) == 3


async def test_quotas_scale_with_the_setting_and_zero_turns_them_off(tenant, owner_engine, pub_settings, sandbox,
                                                                     app_role_engine):
    from domain.core.db import scoped_session, session_factory
    from domain.publishing.rules import PublishLimits
    from domain.publishing.service import claim_due

    brand = await tenant.brand()
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, _who("pqs"))
    await _used_quota(owner_engine, tenant, x, brand["id"], 100, minutes_ago=5)
    await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Escala"}])
    agency = uuid.UUID(tenant.agency_id)

    class Undo(Exception):
        pass

    async def claims_with(scale: float) -> int:
        limits = PublishLimits.from_settings(dataclasses.replace(pub_settings, publish_quota_scale=scale))
        try:
            async with scoped_session(session_factory(app_role_engine), agency_id=agency) as session, session.begin():
                raise Undo(len(await claim_due(session, agency, limits=limits)))  # rolled back
        except Undo as undo:
            return undo.args[0]

    assert await claims_with(1.0) == 0  # 100 of 100 used
    assert await claims_with(2.0) == 1  # an app allowed twice the standard cap
    assert await claims_with(0.0) == 1  # quotas off


async def _sending(owner_engine, agency_id: str) -> tuple[Counter, Counter]:
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT v.social_account_id, v.network FROM publish_attempts a JOIN post_variants v ON v.id = a.variant_id"
            " WHERE a.agency_id = :agency AND a.outcome = 'sending' AND a.finished_at IS NULL"),
            {"agency": agency_id})).all()
    return Counter(str(r.social_account_id) for r in rows), Counter(r.network for r in rows)


async def test_claims_respect_the_account_and_network_caps_even_when_sweeps_race(
        tenant, owner_engine, pub_settings, sandbox, app_role_engine):
    from domain.core.db import scoped_session, session_factory
    from domain.publishing.rules import PublishLimits
    from domain.publishing.service import claim_due

    brand = await tenant.brand()
    a = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, _who("pca"))
    b = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, _who("pcb"))
    c = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, _who("pcc"))
    li = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.LINKEDIN, _who("pcl"),
                     "organization")
    for account, n in ((a, 5), (b, 1), (c, 2), (li, 1)):
        for i in range(n):
            await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": account,
                                                                 "text": f"Tope {i} {uuid.uuid4().hex[:6]}"}])
    limits = PublishLimits.from_settings(dataclasses.replace(pub_settings, publish_account_concurrency=2,
                                                             publish_network_concurrency=3))
    agency = uuid.UUID(tenant.agency_id)
    factory = session_factory(app_role_engine)

    async def claim() -> list:
        async with scoped_session(factory, agency_id=agency) as session, session.begin():
            return await claim_due(session, agency, limits=limits)

    first, second = await asyncio.gather(claim(), claim())  # two sweeps racing
    assert len(first) + len(second) == 4  # three on X (the network cap), one on LinkedIn
    by_account, by_network = await _sending(owner_engine, tenant.agency_id)
    assert by_network == {"x": 3, "linkedin": 1}
    assert max(by_account.values()) <= 2
    assert await claim() == []  # every X slot is taken, LinkedIn has nothing more due

    # One X send finishes: exactly one more X variant may go.
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "UPDATE publish_attempts SET outcome = 'published', finished_at = now() WHERE id = ("
            " SELECT a.id FROM publish_attempts a JOIN post_variants v ON v.id = a.variant_id"
            " WHERE a.agency_id = :agency AND a.outcome = 'sending' AND v.network = 'x' LIMIT 1)"),
            {"agency": tenant.agency_id})
    assert len(await claim()) == 1
    by_account, by_network = await _sending(owner_engine, tenant.agency_id)
    assert by_network["x"] == 3 and max(by_account.values()) <= 2


async def test_a_real_worker_publishes_everything_within_the_caps(tenant, owner_engine, pub_settings, sandbox,
                                                                  app_role_engine):
    """With caps of 1 per account and 2 per network the worker still publishes every post,
    once each, through the sandbox (sweep after sweep)."""
    from workers.broker import InProcessWorker

    capped = dataclasses.replace(pub_settings, publish_account_concurrency=1, publish_network_concurrency=2)
    brand = await tenant.brand()
    whos = [_who("pcw") for _ in range(3)]
    accounts = [await _link(tenant, owner_engine, capped, sandbox, brand["id"], Network.X, w) for w in whos]
    posts = [await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": account,
                                                                  "text": f"Uno a uno {i} {uuid.uuid4().hex[:6]}"}])
             for account in accounts for i in range(3)]
    worker = InProcessWorker(capped, threads=2)
    worker.start()
    try:
        async def all_out():
            await _sweep(app_role_engine, worker)
            by_account, by_network = await _sending(owner_engine, tenant.agency_id)
            assert not by_network or (max(by_network.values()) <= 2 and max(by_account.values()) <= 1)
            statuses = [v["status"] for p in posts for v in (await _variants(owner_engine, p["id"])).values()]
            return all(s == "published" for s in statuses)

        await eventually(all_out, timeout=60, what="every post published")
    finally:
        worker.stop(timeout_ms=5_000)
    for who in whos:
        assert await _publish_calls(sandbox, "x", who) == 3
