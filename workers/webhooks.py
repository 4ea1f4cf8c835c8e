"""Outbound webhook deliveries: the `webhooks.deliver` actor (one attempt at one delivery)
and the sweep that sends a job for every delivery whose retry is due.

`chorus_due_webhook_deliveries(at, max)` (migration 0011, SECURITY DEFINER) names due
deliveries across agencies (ids only): the app role cannot see other agencies' rows. The
database is the schedule (`next_attempt_at`, a partial index on pending rows): long waits
never use dramatiq's own delay. A delivery swept twice, or whose first job is still queued,
gets a second job that finds it leased, done or not due, and does nothing. While an attempt
is in flight its lease (`leased_until`) is also its `next_attempt_at`: a worker that died
mid-request leaves the delivery due again once the lease runs out, and the sweep retries it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

import dramatiq
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.core.clock import now
from domain.core.db import scoped_session
from domain.webhooks.service import DELIVER, claim, record, send
from workers.broker import JobContext, actor, send_each

log = logging.getLogger("chorus.workers.webhooks")

SWEEP_BATCH = 500


# Failures of the receiver are recorded and retried through the sweep, not by dramatiq; a
# crash (database gone) raises and dramatiq retries a few times, and the sweep after that.
@actor(DELIVER, max_retries=3, time_limit=120_000)
async def deliver_job(job: JobContext, delivery_id: str) -> None:
    """One attempt in three steps: claim it (the job's own transaction: lock, stamp the
    attempt and its lease, commit), POST with no transaction open, then record the result
    in a new short transaction. A run that finds the delivery leased, done or not due does
    nothing; one that dies mid-request leaves the lease to run out and the sweep to retry."""
    claimed = await claim(job.session, job.agency_id, UUID(delivery_id), settings=job.settings)
    if isinstance(claimed, str):
        log.info("webhook delivery", extra={"delivery_id": delivery_id, "outcome": claimed})
        return

    async def send_and_record() -> None:
        outcome = await send(claimed, settings=job.settings)
        after = JobContext(session=None, agency_id=job.agency_id, runtime=job.runtime)  # type: ignore[arg-type]
        async with scoped_session(job.runtime.session_factory(), agency_id=job.agency_id) as session:
            async with session.begin():
                result = await record(session, claimed, outcome, settings=job.settings,
                                      after_commit=after.after_commit)
        for task in after.after_commit:
            await task()
        log.info("webhook delivery", extra={"delivery_id": delivery_id, "attempt": claimed.attempt,
                                            "status_code": outcome.status_code, "outcome": result})

    job.after_commit.append(send_and_record)


async def due_deliveries(engine: AsyncEngine, at: datetime | None = None,
                         limit: int = SWEEP_BATCH) -> list[tuple[UUID, UUID]]:
    """(agency id, delivery id) of pending deliveries due at `at` (default: now)."""
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT agency_id, delivery_id FROM chorus_due_webhook_deliveries(:at, :n)"),
                                  {"at": at or now(), "n": limit})
        return [(row[0], row[1]) for row in rows]


async def sweep(engine: AsyncEngine, broker: dramatiq.Broker, at: datetime | None = None) -> list[tuple[UUID, UUID]]:
    """Send one `webhooks.deliver` job per delivery due at `at`; returns them."""
    due = await due_deliveries(engine, at)
    await send_each(broker, DELIVER, [{"agency_id": str(a), "delivery_id": str(d)} for a, d in due])
    return due


async def _scheduled(ctx) -> int:  # noqa: ANN001 - workers.scheduler.SweepContext
    return len(await sweep(ctx.engine, ctx.broker))


def _register_sweep() -> None:
    """`chorus scheduler` runs the sweep every CHORUS_WEBHOOK_SWEEP_SECONDS (0: never). This
    module is imported with the actors whenever a broker is built, which the scheduler does
    before it reads its registry."""
    try:
        from workers.scheduler import SWEEPS
    except ImportError:  # a tree without the scheduler: nothing to register with
        return
    SWEEPS.register("webhooks.deliver_due", every=lambda settings: settings.webhook_sweep_seconds, fn=_scheduled)


_register_sweep()
