from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class NotificationOut(msgspec.Struct, kw_only=True):
    id: UUID
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    read_at: datetime | None
    # When the email went to the SMTP server (null: not emailed, or not yet).
    emailed_at: datetime | None
    created_at: datetime


class NotificationPage(msgspec.Struct, kw_only=True):
    items: list[NotificationOut]
    next_cursor: str | None


class ReadAllOut(msgspec.Struct, kw_only=True):
    marked_read: int


def notification_out(row: object) -> NotificationOut:
    return NotificationOut(
        id=row.id, kind=row.kind, title=row.title, body=row.body, data=row.data or {},  # type: ignore[attr-defined]
        read_at=row.read_at, emailed_at=row.emailed_at, created_at=row.created_at,  # type: ignore[attr-defined]
    )
