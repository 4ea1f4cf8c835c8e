"""Each variant's own due instant, `post_variants.due_at` (migration 0016): every writer of the
post's time or the variant's wait keeps it right (the database's triggers, the one place it is
computed), and claim_due's statement runs on the partial index `ix_post_variants_due`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from domain.networks.adapters.base import Network
from tests.workers.conftest import eventually
from tests.workers.test_publishing import (  # noqa: F401 (fixtures)
    _attempts, _due_post, _fault, _link, _sweep, _variants, _who, app_role_engine, pub_settings, pub_worker, sandbox)


async def _row(owner_engine, variant_id) -> dict:
    async with owner_engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT v.due_at, v.not_before, v.status, p.scheduled_at FROM post_variants v JOIN posts p ON p.id = v.post_id"
            " WHERE v.id = :id"), {"id": str(variant_id)})).one()
        return dict(row._mapping)


async def _sql(owner_engine, statement: str, **params) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(text(statement), params)


async def test_due_at_follows_the_posts_time_and_the_variants_wait(tenant, owner_engine, settings):
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    when = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "title": "Roscón", "scheduled_at": when.isoformat(), "variants": [{"social_account_id": account, "text": "hola"}]})
    assert r.status_code == 201, r.text
    post, variant = r.json(), r.json()["variants"][0]["id"]
    assert (await _row(owner_engine, variant))["due_at"] == when  # inserted: the post's time
    later = when + timedelta(days=2)
    r = await tenant.req("PATCH", f"/v1/posts/{post['id']}", json={"scheduled_at": later.isoformat()})
    assert r.status_code == 200, r.text
    assert (await _row(owner_engine, variant))["due_at"] == later  # moved through the API
    # A wait later than the post's time holds the variant until then; an earlier one does not.
    wait = later + timedelta(hours=1)
    await _sql(owner_engine, "UPDATE post_variants SET not_before = :w WHERE id = :id", w=wait, id=variant)
    assert (await _row(owner_engine, variant))["due_at"] == wait
    await _sql(owner_engine, "UPDATE posts SET scheduled_at = :t WHERE id = :id", t=later + timedelta(hours=2),
               id=post["id"])
    assert (await _row(owner_engine, variant))["due_at"] == later + timedelta(hours=2)  # the post moved past the wait
    await _sql(owner_engine, "UPDATE post_variants SET not_before = :w WHERE id = :id", w=when, id=variant)
    assert (await _row(owner_engine, variant))["due_at"] == later + timedelta(hours=2)
    await _sql(owner_engine, "UPDATE post_variants SET not_before = NULL WHERE id = :id", id=variant)
    assert (await _row(owner_engine, variant))["due_at"] == later + timedelta(hours=2)
    # Unscheduled (no time): never due.
    await _sql(owner_engine, "UPDATE posts SET scheduled_at = NULL WHERE id = :id", id=post["id"])
    assert (await _row(owner_engine, variant))["due_at"] is None
    # An attempt to set it by hand is overruled.
    await _sql(owner_engine, "UPDATE posts SET scheduled_at = :t WHERE id = :id", t=when, id=post["id"])
    await _sql(owner_engine, "UPDATE post_variants SET due_at = now() - interval '1 day' WHERE id = :id", id=variant)
    assert (await _row(owner_engine, variant))["due_at"] == when


async def test_publish_now_and_retry_make_the_variant_due_now(tenant, owner_engine, settings):
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    when = datetime.now(UTC) + timedelta(days=2)
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "title": "Roscón", "scheduled_at": when.isoformat(), "variants": [{"social_account_id": account, "text": "hola"}]})
    post, variant = r.json(), r.json()["variants"][0]["id"]
    await _sql(owner_engine, "UPDATE posts SET status = 'scheduled' WHERE id = :id", id=post["id"])
    await _sql(owner_engine, "UPDATE post_variants SET status = 'scheduled', not_before = :w WHERE id = :id",
               w=when + timedelta(hours=5), id=variant)
    assert (await _row(owner_engine, variant))["due_at"] == when + timedelta(hours=5)
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/publish-now")
    assert r.status_code == 200, r.text
    row = await _row(owner_engine, variant)
    assert row["not_before"] is None and row["due_at"] == row["scheduled_at"] <= datetime.now(UTC)
    # Failed long ago, retried: due now (not at the post's old time, not never).
    await _sql(owner_engine, "UPDATE post_variants SET status = 'failed' WHERE id = :id", id=variant)
    await _sql(owner_engine, "UPDATE posts SET status = 'failed', scheduled_at = now() - interval '5 hours'"
               " WHERE id = :id", id=post["id"])
    before = datetime.now(UTC)
    r = await tenant.req("POST", f"/v1/posts/{post['id']}/variants/{variant}/retry")
    assert r.status_code == 200, r.text
    row = await _row(owner_engine, variant)
    assert row["status"] == "scheduled"
    assert before - timedelta(seconds=5) <= row["due_at"] <= datetime.now(UTC) + timedelta(seconds=1)


async def test_a_rate_limit_pushes_the_due_time_to_the_reset(tenant, owner_engine, pub_settings, sandbox, pub_worker,
                                                             app_role_engine):
    brand = await tenant.brand()
    who = _who("pdue")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    await _fault(sandbox, network="x", match="publish", kind="status", status=429, identity=who, retry_after=600)
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Paciencia"}])
    variant = next(iter(await _variants(owner_engine, post["id"])))
    assert (await _row(owner_engine, variant))["due_at"] <= datetime.now(UTC)
    await _sweep(app_role_engine, pub_worker)

    async def limited():
        row = await _row(owner_engine, variant)
        return row if row["status"] == "scheduled" and row["not_before"] else None

    row = await eventually(limited, what="rate limited")
    assert row["due_at"] == row["not_before"] > row["scheduled_at"]
    assert [a["outcome"] for a in await _attempts(owner_engine, variant)] == ["rate_limited"]


async def test_claim_dues_statement_uses_the_partial_index_on_due_at(tenant, owner_engine, app_role_engine, settings):
    """Many variants not scheduled (published, drafts) and a few due: after ANALYZE, the plan of
    claim_due's own statement (compiled as it runs) scans ix_post_variants_due."""
    from sqlalchemy.dialects import postgresql

    from domain.core.db import scoped_session, session_factory
    from domain.publishing import service

    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    agency = tenant.agency_id
    async with owner_engine.begin() as conn:
        posts = [str(uuid.uuid4()) for _ in range(4000)]
        await conn.execute(text(
            "INSERT INTO posts (id, agency_id, brand_id, title, labels, scheduled_at, time_zone, status, revision,"
            " content_hash, version, created_at, updated_at) SELECT id, :agency, :brand, 'bulk', '{}',"
            " now() - interval '1 minute', 'UTC', CASE WHEN n <= 5 THEN 'scheduled' ELSE 'published' END, 0, '', 1,"
            " now(), now()"
            " FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS t(id, n)"),
            {"agency": agency, "brand": brand["id"], "ids": posts})
        await conn.execute(text(
            "INSERT INTO post_variants (id, agency_id, post_id, social_account_id, network, position, text, options,"
            " status, content_hash, issues, created_at, updated_at) SELECT gen_random_uuid(), p.agency_id, p.id,"
            " :account, 'x', 0, 'hola', '{}', p.status, '', '[]', now(), now() FROM posts p WHERE p.id = ANY(CAST(:ids AS uuid[]))"),
            {"account": account, "ids": posts})
    async with owner_engine.begin() as conn:  # committed first: the statistics count them
        await conn.execute(text("ANALYZE posts, post_variants, brands"))
    captured: list[str] = []
    real_execute = None

    agency_id = uuid.UUID(agency)
    async with scoped_session(session_factory(app_role_engine), agency_id=agency_id) as session, session.begin():
        real_execute = session.execute

        async def explain(statement, *args, **kwargs):
            # claim_due's first SELECT ... FOR UPDATE is the claim: EXPLAIN it, compiled as it runs.
            compiled = statement.compile(dialect=postgresql.asyncpg.dialect(), compile_kwargs={"literal_binds": True}) \
                if hasattr(statement, "compile") else None
            if compiled is not None and "FOR UPDATE" in str(compiled) and not captured:
                plan = (await real_execute(text("EXPLAIN " + str(compiled)))).scalars().all()
                captured.append("\n".join(plan))
            return await real_execute(statement, *args, **kwargs)

        session.execute = explain  # type: ignore[method-assign]
        claimed = await service.claim_due(session, agency_id, limit=50)
        session.execute = real_execute  # type: ignore[method-assign]
        await session.rollback()
    assert len(claimed) == min(5, service.DEFAULT_LIMITS.account_concurrency)  # one account: its cap
    assert captured, "claim_due ran no SELECT ... FOR UPDATE"
    print("\n" + captured[0])
    assert "ix_post_variants_due" in captured[0], captured[0]
