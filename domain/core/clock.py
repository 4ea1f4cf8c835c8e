from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """Instants are stored and compared in UTC."""
    return datetime.now(UTC)
