"""Publishing: the sweep that claims due variants, and the jobs that send them.

`chorus_agencies_with_due_publishing()` (migration 0010, SECURITY DEFINER, ids only) names
the agencies with a due scheduled variant or an unfinished attempt. The sweep sends each one
`publishing.sweep` job, which (under that agency as tenant) claims its due variants with
FOR UPDATE SKIP LOCKED, commits them as `publishing` with a new attempt each, and only then
sends one `publishing.publish_batch` job per CHORUS_PUBLISH_SEND_BATCH claimed variants (sent
concurrently, recorded in one transaction; `publishing.publish_variant` is a batch of one, for
jobs queued before); it also sends a
`publishing.check_attempt` job for each attempt that is processing (asynchronous publish, to
poll), unknown (to look up) or stuck (no live worker). Every job re-checks the attempt is
still the live one, so a redelivered or duplicated job changes nothing and never re-sends.
Scheduling never uses dramatiq's delay/eta: the database is the schedule.
"""

from __future__ import annotations

import logging
import time
from uuid import UUID

import dramatiq
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.publishing.rules import PublishLimits
from domain.publishing.service import Publisher, claim_due, network_settings, open_attempts
from workers.broker import JobContext, actor, agencies_due, send_each

log = logging.getLogger("chorus.workers.publishing")

SWEEP = "publishing.sweep"
PUBLISH_VARIANT = "publishing.publish_variant"
PUBLISH_BATCH = "publishing.publish_batch"
CHECK_ATTEMPT = "publishing.check_attempt"
_SWEEP_LOCK = 0x50554253  # the advisory lock class of publishing sweeps ("PUBS")


def _publisher(job: JobContext) -> Publisher:
    if job.agency_id is None:
        raise ValueError("publishing jobs need an agency_id")
    return Publisher(agency_id=job.agency_id, factory=job.runtime.session_factory(), vault=job.settings.vault(),
                     networks=network_settings(job.settings), after_commit=job.after_commit,
                     limits=PublishLimits.from_settings(job.settings))


@actor(SWEEP, max_retries=3, time_limit=300_000)
async def sweep_agency(job: JobContext, checks: bool = True) -> None:
    """Claim the agency's due variants (a full batch sends the next sweep at once, so a busy
    minute is not capped at one batch per tick) and, with `checks`, send the checks of its
    open attempts (the scheduler asks for those every CHORUS_PUBLISH_CHECK_SECONDS only)."""
    if job.agency_id is None:
        raise ValueError("publishing.sweep needs an agency_id")
    # One sweep of an agency at a time: the others (a tick every second, re-sweeps) would all
    # run the same claim query and skip each other's rows, taking every worker thread from
    # the publish jobs. The one running sends the next when its batch was full.
    if not await job.session.scalar(text("SELECT pg_try_advisory_xact_lock(:kind, hashtext(:agency))"),
                                    {"kind": _SWEEP_LOCK, "agency": str(job.agency_id)}):
        log.info("publishing sweep already running", extra={"agency_id": str(job.agency_id)})
        return
    limits = PublishLimits.from_settings(job.settings)
    claimed = await claim_due(job.session, job.agency_id, limits=limits)
    size = max(1, job.settings.publish_send_batch)
    for start in range(0, len(claimed), size):
        job.jobs.send(PUBLISH_BATCH, attempts=[[str(v), str(a)] for v, a in claimed[start:start + size]])
    if len(claimed) >= limits.claim_batch:
        job.jobs.send(SWEEP, checks=False)
    checks = await open_attempts(job.session, job.agency_id, limits) if checks else []
    for variant_id, attempt_id in checks:
        job.jobs.send(CHECK_ATTEMPT, variant_id=variant_id, attempt_id=attempt_id)
    counts = {"claimed": len(claimed), "checks": len(checks)}
    log.info("publishing sweep", extra={"agency_id": str(job.agency_id), **counts})


# A publish job is safe to run again (the attempt's dispatch stamp stops a second send), so
# dramatiq may retry one that failed before sending.
@actor(PUBLISH_VARIANT, max_retries=3, time_limit=300_000)
async def publish_variant(job: JobContext, variant_id: str, attempt_id: str) -> None:
    outcome = await _publisher(job).publish_attempt(UUID(str(variant_id)), UUID(str(attempt_id)))
    log.info("publish attempt", extra={"variant_id": str(variant_id), "attempt_id": str(attempt_id),
                                       "outcome": outcome})


# Each step of a batch is safe to run again (see Publisher.publish_batch): a redelivered or
# retried batch job finds the dispatch stamps and sends none of them twice.
@actor(PUBLISH_BATCH, max_retries=3, time_limit=300_000)
async def publish_batch(job: JobContext, attempts: list[list[str]]) -> None:
    pairs = [(UUID(str(v)), UUID(str(a))) for v, a in attempts]
    outcomes = await _publisher(job).publish_batch(pairs)
    if any(outcome != "skipped" for outcome in outcomes.values()):
        # Send slots (the per-account and per-network caps) are free again: claim the next
        # variants now rather than at the next tick, or a busy minute waits a tick per batch.
        job.jobs.send(SWEEP, checks=False)
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    log.info("publish batch", extra={"attempts": len(pairs), **{f"outcome_{k}": n for k, n in counts.items()}})


@actor(CHECK_ATTEMPT, max_retries=3, time_limit=300_000)
async def check_attempt(job: JobContext, variant_id: str, attempt_id: str) -> None:
    outcome = await _publisher(job).check_attempt(UUID(str(variant_id)), UUID(str(attempt_id)))
    log.info("publish attempt checked", extra={"variant_id": str(variant_id), "attempt_id": str(attempt_id),
                                               "outcome": outcome})


async def due_agencies(engine: AsyncEngine) -> list[UUID]:
    """Agencies with publishing work due (ids only; runs as the app role)."""
    return await agencies_due(engine, "chorus_agencies_with_due_publishing")


async def sweep(engine: AsyncEngine, broker: dramatiq.Broker, *, checks: bool = True) -> list[UUID]:
    """Send one publishing.sweep job per agency with work due; returns those agencies."""
    agency_ids = await due_agencies(engine)
    await send_each(broker, SWEEP, [{"agency_id": str(a), "checks": checks} for a in agency_ids])
    return agency_ids


_last_checks: dict[int, float] = {}


async def _scheduled(context) -> list[UUID]:  # noqa: ANN001 - workers.scheduler.SweepContext
    """Every CHORUS_PUBLISH_SWEEP_SECONDS (due variants are claimed within about that long of
    their time); open attempts are checked (polled, looked up) every CHORUS_PUBLISH_CHECK_SECONDS."""
    at = time.monotonic()
    checks = at - _last_checks.get(id(context), float("-inf")) >= context.settings.publish_check_seconds
    if checks:
        _last_checks[id(context)] = at
    return await sweep(context.engine, context.broker, checks=checks)


from workers.scheduler import SWEEPS  # noqa: E402 - `chorus scheduler` runs it every CHORUS_PUBLISH_SWEEP_SECONDS

SWEEPS.register(SWEEP, every=lambda settings: settings.publish_sweep_seconds, fn=_scheduled)
