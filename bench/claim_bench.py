"""How long one publishing claim takes with many variants due (the sweep's hot path: the
rate-limit/quota/concurrency gate, window functions bounding rows per account and network,
FOR UPDATE SKIP LOCKED through the partial index). Prints figures; asserts nothing.

    .venv/bin/python -m pytest -p tests.conftest bench/claim_bench.py -q -s -p no:cacheprovider

Seeds N due variants on A accounts (owner SQL), then times claim_due in a transaction that
is rolled back each round (so every round sees the same backlog)."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.publishing_load import Account, seed_due_posts

DUE = 10_000
ACCOUNTS = 20
ROUNDS = 15


class _Undo(Exception):
    pass


async def test_claim_with_a_large_backlog(tenant, owner_engine, app_engine):
    from domain.core.db import scoped_session, session_factory
    from domain.publishing.service import claim_due

    brand = await tenant.brand()
    accounts = []
    for i in range(ACCOUNTS):
        network = ("x", "linkedin", "facebook", "instagram")[i % 4]
        account_id = await _account(tenant, owner_engine, brand["id"], network)
        accounts.append(Account(account_id, network, account_id[:12], f"b{i}"))
    start = datetime.now(UTC) - timedelta(minutes=30)
    await seed_due_posts(owner_engine, agency_id=tenant.agency_id, brand_id=brand["id"], accounts=accounts, count=DUE,
                         marker=f"bench-{uuid.uuid4().hex[:6]}", due_at=[start + timedelta(milliseconds=i)
                                                                         for i in range(DUE)])
    async with owner_engine.begin() as conn:
        for table in ("posts", "post_variants", "publish_attempts"):
            await conn.execute(text(f"ANALYZE {table}"))
    agency = uuid.UUID(tenant.agency_id)
    factory = session_factory(app_engine)
    times, counts = [], []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        try:
            async with scoped_session(factory, agency_id=agency) as session, session.begin():
                claimed = await claim_due(session, agency)
                times.append(time.perf_counter() - began)
                counts.append(len(claimed))
                raise _Undo
        except _Undo:
            pass
    times.sort()
    print(f"\nclaim_due with {DUE} due variants on {ACCOUNTS} accounts (4 networks), batch 50, caps 4/account "
          f"25/network: claimed {counts[0]} per claim; median {statistics.median(times) * 1000:.1f} ms, "
          f"best {times[0] * 1000:.1f} ms, worst {times[-1] * 1000:.1f} ms over {ROUNDS} rounds (rolled back)")


async def _account(tenant, owner_engine, brand_id: str, network: str) -> str:
    account_id = str(uuid.uuid4())
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO social_accounts (id, agency_id, brand_id, network, external_id, account_kind, handle,"
            " display_name, scopes, status, details, version, created_at, updated_at, connected_at)"
            " VALUES (:id, :agency, :brand, :network, :ext, 'profile', 'h', 'H', '{}', 'connected', '{}', 1, now(),"
            " now(), now())"), {"id": account_id, "agency": tenant.agency_id, "brand": brand_id, "network": network,
                                "ext": uuid.uuid4().hex[:12]})
    return account_id

