"""Approval reminders and expiry: one job per agency, and the sweep that sends them.

`chorus_agencies_with_pending_approvals()` (migration 0009, SECURITY DEFINER) names the
agencies with a reminder or an expiry due; the sweep sends each one job, which runs
`ApprovalService.remind_and_expire` under that agency as tenant, with no user.

Sweeping twice, or from two workers at once, is harmless: `remind_and_expire` takes the
pending requests it reminds with FOR UPDATE SKIP LOCKED and stamps `reminded_at` in the same
transaction (only `reminded_at IS NULL` rows qualify, re-checked once a concurrent run
commits), and it expires a request only after locking its post and re-reading the request
as still pending. A second run therefore skips or finds nothing left to do.
"""

from __future__ import annotations

import logging
from uuid import UUID

import dramatiq
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.agencies.rules import Principal
from domain.approvals.service import ApprovalService
from domain.core.context import Context
from workers.broker import JobContext, actor, agencies_due, send_each
from workers.scheduler import SWEEPS, SweepContext

log = logging.getLogger("chorus.workers.approvals")

REMIND_AND_EXPIRE = "approvals.remind_and_expire"


@actor(REMIND_AND_EXPIRE, max_retries=3, time_limit=300_000)
async def remind_and_expire(job: JobContext) -> None:
    if job.agency_id is None:
        raise ValueError("approvals.remind_and_expire needs an agency_id")
    ctx = Context(Principal(agency_id=job.agency_id, label="approval reminders"), session=job.session)
    # The notification emails it buffers go out after the job's commit, with the job's own.
    ctx.after_commit = job.after_commit
    counts = await ApprovalService(ctx).remind_and_expire()
    log.info("approval sweep", extra={"agency_id": str(job.agency_id), **counts})


async def due_agencies(engine: AsyncEngine) -> list[UUID]:
    """Agencies with an approval reminder or expiry due (ids only; runs as the app role)."""
    return await agencies_due(engine, "chorus_agencies_with_pending_approvals")


async def sweep(engine: AsyncEngine, broker: dramatiq.Broker) -> list[UUID]:
    """Send one remind-and-expire job per agency that has one due; returns those agencies."""
    agency_ids = await due_agencies(engine)
    await send_each(broker, REMIND_AND_EXPIRE, [{"agency_id": str(a)} for a in agency_ids])
    return agency_ids


async def _scheduled(ctx: SweepContext) -> list[UUID]:
    return await sweep(ctx.engine, ctx.broker)


# `chorus scheduler` runs it every CHORUS_APPROVAL_SWEEP_SECONDS (0: never).
SWEEPS.register(REMIND_AND_EXPIRE, every=lambda settings: settings.approval_sweep_seconds, fn=_scheduled)
