"""Actors of the notifications context."""

from __future__ import annotations

import logging
from uuid import UUID

from domain.notifications.service import deliver_email
from workers.broker import JobContext, actor

log = logging.getLogger("chorus.workers.notifications")


# SMTP failures raise, the transaction rolls back and dramatiq retries with backoff.
@actor("notifications.send_email", max_retries=8, time_limit=120_000)
async def send_email(job: JobContext, notification_id: str) -> None:
    outcome = await deliver_email(
        job.session, job.agency_id, UUID(notification_id), mailer=job.runtime.mailer,
        frontend_base_url=job.settings.frontend_base_url,
    )
    log.info("notification email", extra={"notification_id": notification_id, "outcome": outcome})
