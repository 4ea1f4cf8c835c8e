"""Publishing limits, in one place. Retries are few and bounded in age: a post that goes out
hours late is worse than one that fails loudly (RELIABILITY.md, "Publishing exactly once")."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

# Attempts per variant (each claim is one), after which it fails.
MAX_ATTEMPTS = 5
# A variant not out this long after its scheduled time fails instead of going out late.
MAX_LATENESS = timedelta(hours=2)
# How many due variants one sweep claims per agency.
CLAIM_BATCH = 50
# An attempt still `sending` this long after it started has no live worker: reconcile it.
STUCK_AFTER = timedelta(minutes=10)
# An outcome-unknown attempt is looked up once the provider has had this long to show it.
UNKNOWN_GRACE = timedelta(minutes=2)
# An asynchronous publish (container, upload) still processing after this fails.
PROCESSING_MAX_AGE = timedelta(hours=1)
# The back-off when the request never reached the provider (safe to send again).
UNREACHABLE_BACKOFF = timedelta(minutes=1)


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

# How often the scheduler looks for due variants and open attempts (seconds).
SWEEP_SECONDS = 15.0
