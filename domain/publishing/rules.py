"""Publishing limits, in one place. Retries are few and bounded in age: a post that goes out
hours late is worse than one that fails loudly (RELIABILITY.md, "Publishing exactly once")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from domain.core.settings import Settings



@dataclass(frozen=True)
class PublishLimits:
    """The engine's limits, from the settings (CHORUS_PUBLISH_*; defaults in Settings)."""

    # Attempts per variant (each claim is one), after which it fails.
    max_attempts: int
    # A variant not out this long after its scheduled time fails instead of going out late.
    max_lateness: timedelta
    # How many due variants one sweep claims per agency.
    claim_batch: int
    # An attempt still `sending` this long after it started has no live worker: reconcile it.
    stuck_after: timedelta
    # An outcome-unknown attempt is looked up once the provider has had this long to show it.
    unknown_grace: timedelta
    # An asynchronous publish (container, upload) still processing after this fails.
    processing_max_age: timedelta
    # The back-off when the request never reached the provider (safe to send again).
    unreachable_backoff: timedelta

    # Sends in flight at once per social account, and per network within an agency.
    account_concurrency: int = 4
    network_concurrency: int = 100
    # Multiplies the networks' per-account publishing quotas; 0 turns them off.
    quota_scale: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PublishLimits:
        return cls(max_attempts=settings.publish_max_attempts,
                   max_lateness=timedelta(seconds=settings.publish_max_lateness_seconds),
                   claim_batch=settings.publish_claim_batch,
                   stuck_after=timedelta(seconds=settings.publish_stuck_after_seconds),
                   unknown_grace=timedelta(seconds=settings.publish_unknown_grace_seconds),
                   processing_max_age=timedelta(seconds=settings.publish_processing_max_age_seconds),
                   unreachable_backoff=timedelta(seconds=settings.publish_unreachable_backoff_seconds),
                   account_concurrency=settings.publish_account_concurrency,
                   network_concurrency=settings.publish_network_concurrency,
                   quota_scale=settings.publish_quota_scale)


# The defaults, for callers without settings at hand (tests calling the service directly).
DEFAULT_LIMITS = PublishLimits.from_settings(Settings())


class Outcome(StrEnum):
    SENDING = "sending"  # committed before the call; live while unfinished
    PROCESSING = "processing"  # the provider accepted it and is still working (polled)
    UNKNOWN = "unknown"  # timeout / 5xx after sending: looked up, never re-sent blindly
    PUBLISHED = "published"
    RATE_LIMITED = "rate_limited"
    REJECTED = "rejected"
    AUTH_FAILED = "auth_failed"
    UNREACHABLE = "unreachable"
    NOT_PUBLISHABLE = "not_publishable"
    ABANDONED = "abandoned"  # cancelled, too late, too many attempts, or not found on the provider
    RETRY_REQUESTED = "retry_requested"  # a person asked again: lateness and attempts count from here


UNFINISHED = frozenset({Outcome.SENDING, Outcome.PROCESSING, Outcome.UNKNOWN})
