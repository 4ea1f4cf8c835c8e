from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class AttemptOut(msgspec.Struct, kw_only=True):
    id: UUID
    number: int
    started_at: datetime
    finished_at: datetime | None
    # sending | processing | unknown | published | rate_limited | rejected | auth_failed | unreachable
    # | not_publishable | abandoned | retry_requested
    outcome: str
    message: str
    # The provider's answer, summarised: external_id, url, retry_after, reconciled, first comment.
    response: dict[str, Any]
    error: dict[str, Any] | None


class AttemptList(msgspec.Struct, kw_only=True):
    items: list[AttemptOut]


_SHOWN = ("external_id", "url", "retry_after", "reconciled", "first_comment_id", "first_comment_error", "dispatched_at")


def attempt_out(attempt: Any) -> AttemptOut:
    return AttemptOut(id=attempt.id, number=attempt.number, started_at=attempt.started_at,
                      finished_at=attempt.finished_at, outcome=attempt.outcome, message=attempt.message,
                      response={k: v for k, v in (attempt.response or {}).items() if k in _SHOWN},
                      error=attempt.error)
