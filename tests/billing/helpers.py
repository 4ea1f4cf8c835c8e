"""Helpers for the billing tests: a billing row written with owner SQL (billing on), the
plan changed the same way, and `apply_plan` run in a session scoped to the agency."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text


async def set_plan(owner_engine, agency_id: str, plan: str = "starter", status: str = "active", **extra: Any) -> None:
    """Billing on for the agency: insert or update its billing_accounts row."""
    columns = {"plan": plan, "status": status, **extra}
    async with owner_engine.begin() as conn:
        exists = await conn.scalar(text("SELECT id FROM billing_accounts WHERE agency_id = :a"), {"a": agency_id})
        if exists is None:
            await conn.execute(text(
                "INSERT INTO billing_accounts (id, agency_id, plan, status, quantity, cancel_at_period_end,"
                " notices_sent, change_seq, version, created_at, updated_at)"
                " VALUES (:id, :a, :plan, :status, 1, false, '[]', 0, 1, now(), now())"),
                {"id": str(uuid.uuid4()), "a": agency_id, "plan": plan, "status": status})
        sets = ", ".join(f"{k} = :{k}" for k in columns)
        await conn.execute(text(f"UPDATE billing_accounts SET {sets} WHERE agency_id = :a"), {"a": agency_id, **columns})


async def count(owner_engine, sql: str, agency_id: str) -> int:
    async with owner_engine.connect() as conn:
        return int(await conn.scalar(text(sql), {"a": agency_id}))


async def apply_plan(app_engine, agency_id: str) -> dict[str, list[uuid.UUID]]:
    """Recompute freezing as the plan-change code does, in the app's role, committed."""
    from domain.billing.entitlements import apply_plan as apply
    from domain.core.db import scoped_session, session_factory

    session = scoped_session(session_factory(app_engine), agency_id=uuid.UUID(agency_id))
    async with session, session.begin():
        return await apply(session, uuid.UUID(agency_id))


async def frozen_report(app_engine, agency_id: str) -> dict[str, list[uuid.UUID]]:
    from domain.billing.entitlements import frozen_report as report
    from domain.core.db import scoped_session, session_factory

    session = scoped_session(session_factory(app_engine), agency_id=uuid.UUID(agency_id))
    async with session, session.begin():
        return await report(session, uuid.UUID(agency_id))


async def usage(app_engine, agency_id: str, at=None) -> dict[str, int]:
    from domain.billing.entitlements import usage as use
    from domain.core.db import scoped_session, session_factory

    session = scoped_session(session_factory(app_engine), agency_id=uuid.UUID(agency_id))
    async with session, session.begin():
        return {k.value: v for k, v in (await use(session, uuid.UUID(agency_id), at=at)).items()}


def assert_limit_problem(r, *, limit: str, usage: int | None, allowed: int | None, plan: str,
                         upgrade_to: str | None) -> dict[str, Any]:
    assert r.status_code == 402, r.text
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert body["type"].endswith("/plan-limit-reached"), body
    assert body["limit"] == limit and body["plan"] == plan and body.get("upgrade_to") == upgrade_to, body
    assert body.get("usage") == usage and body.get("allowed") == allowed, body
    return body


async def fill_month(owner_engine, agency_id: str, brand_id: str, account_id: str, at, n: int,
                     status: str = "scheduled") -> list[str]:
    """`n` posts at `at`, each with one variant in `status`, written straight into the
    database (scheduling itself is what the tests exercise)."""
    ids = []
    async with owner_engine.begin() as conn:
        for _ in range(n):
            post_id = str(uuid.uuid4())
            ids.append(post_id)
            await conn.execute(text(
                "INSERT INTO posts (id, agency_id, brand_id, title, labels, scheduled_at, time_zone, status, revision,"
                " content_hash, version, created_at, updated_at) VALUES (:id, :a, :b, 'filler', '{}', :at,"
                " 'Europe/Madrid', :status, 1, '', 1, now(), now())"),
                {"id": post_id, "a": agency_id, "b": brand_id, "at": at, "status": status})
            await conn.execute(text(
                "INSERT INTO post_variants (id, agency_id, post_id, social_account_id, network, position, text,"
                " options, status, content_hash, issues, created_at, updated_at) VALUES (:id, :a, :p, :acc, 'x', 0,"
                " 'hello', '{}', :status, '', '[]', now(), now())"),
                {"id": str(uuid.uuid4()), "a": agency_id, "p": post_id, "acc": account_id, "status": status})
    return ids


async def draft_post(tenant, brand_id: str, account_id: str, at) -> dict[str, Any]:
    r = await tenant.req("POST", f"/v1/brands/{brand_id}/posts", json={
        "title": "Planned", "scheduled_at": at.isoformat(),
        "variants": [{"social_account_id": account_id, "text": "Roscón de Reyes"}]})
    assert r.status_code == 201, r.text
    return r.json()
