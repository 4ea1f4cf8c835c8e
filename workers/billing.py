"""Billing jobs: Stripe events, the subscription quantity, and the dunning/trial sweep.

- `billing.handle_event(event_row_id)`: one stored Stripe event (domain/billing/events.py).
  The job starts with no tenant (an event names a Stripe customer); the handler finds the
  agency and sets it before touching its rows. A Stripe outage raises: dramatiq retries,
  and the sweep re-sends jobs for events still unhandled after five minutes.
- `billing.sync_quantity()`: per-brand or per-seat pricing follows the usage.
- `billing.review()`: reminders while a trial or grace period runs out, then read-only.
- The sweep (`chorus scheduler`, every CHORUS_BILLING_SWEEP_SECONDS) finds both through
  `chorus_billing_due(now)` (migration 0017, SECURITY DEFINER, ids only), and sends a
  quantity check to every per-unit subscription (`chorus_billing_per_unit`, migration 0019).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from sqlalchemy import text

from domain.agencies.rules import Principal
from domain.billing.events import HANDLE, handle, review, unhandled
from domain.billing.plans import PLANS
from domain.billing.service import SYNC_QUANTITY, sync_quantity
from domain.core.clock import now
from domain.core.context import Context
from domain.core.db import scoped_session, session_factory
from workers.broker import JobContext, actor, send_each
from workers.scheduler import SWEEPS, SweepContext

log = logging.getLogger("chorus.workers.billing")

REVIEW = "billing.review"
RESEND_AFTER = timedelta(minutes=5)


@actor(HANDLE, max_retries=8, min_backoff=5_000, max_backoff=600_000, time_limit=120_000)
async def handle_event_job(job: JobContext, event_row_id: str) -> None:
    outcome, agency_id, after = await handle(job.session, UUID(event_row_id), job.settings)
    job.after_commit.extend(after)
    log.info("stripe event", extra={"event_row_id": event_row_id, "agency_id": str(agency_id) if agency_id else None,
                                    "outcome": outcome})


@actor(SYNC_QUANTITY, max_retries=8, min_backoff=5_000, max_backoff=600_000, time_limit=120_000)
async def sync_quantity_job(job: JobContext) -> None:
    ctx = Context(Principal(agency_id=job.agency_id, label="billing"), session=job.session)  # type: ignore[arg-type]
    outcome = await sync_quantity(ctx, job.settings)
    job.after_commit.extend(ctx.after_commit)
    log.info("billing quantity", extra={"agency_id": str(job.agency_id), "outcome": outcome})


@actor(REVIEW, max_retries=3, time_limit=60_000)
async def review_job(job: JobContext) -> None:
    outcome, after = await review(job.session, job.agency_id, job.settings)  # type: ignore[arg-type]
    job.after_commit.extend(after)
    log.info("billing review", extra={"agency_id": str(job.agency_id), "outcome": outcome})


async def sweep(ctx: SweepContext) -> tuple[list[UUID], list[UUID]]:
    """Reviews for trials and grace periods running out, jobs again for Stripe events left
    unhandled, and a quantity check for every per-brand or per-seat subscription (a no-op
    without a change: it compares usage with the stored quantity before calling Stripe)."""
    per_unit = [p.key for p in PLANS if p.pricing != "flat"]
    async with ctx.engine.connect() as conn:
        agencies = list((await conn.execute(text("SELECT * FROM chorus_billing_due(:at)"), {"at": now()})).scalars())
        priced_per_unit = list((await conn.execute(text("SELECT * FROM chorus_billing_per_unit(:plans)"),
                                                   {"plans": per_unit})).scalars())
    async with scoped_session(session_factory(ctx.engine)) as session:
        stale = await unhandled(session, older_than=RESEND_AFTER)
    await send_each(ctx.broker, REVIEW, [{"agency_id": str(a)} for a in agencies])
    await send_each(ctx.broker, HANDLE, [{"event_row_id": str(e)} for e in stale])
    await send_each(ctx.broker, SYNC_QUANTITY, [{"agency_id": str(a)} for a in priced_per_unit])
    return agencies, stale


SWEEPS.register("billing.dunning", every=lambda settings: settings.billing_sweep_seconds, fn=sweep)
