"""Telling members what needs them: a row in their in-app feed and, where asked, an email
sent by a worker after the transaction commits (see the workers groundwork)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from domain.core.context import Context
from domain.notifications.models import Notification


async def notify(ctx: Context, *, user_ids: Sequence[UUID], kind: str, title: str, body: str = "",
                 data: dict[str, Any] | None = None, email: bool = True) -> list[Notification]:
    """One notification per member (deduplicated, never the actor themselves). `kind` is a
    stable dotted name (approval.requested, approval.decided, approval.changes_requested,
    comment.mention...). With `email`, the members are also emailed once the change commits."""
    actor = ctx.principal.user_id
    rows = [Notification(agency_id=ctx.agency_id, user_id=user_id, kind=kind, title=title[:300], body=body,
                         data=data or {})
            for user_id in dict.fromkeys(user_ids) if user_id != actor]
    ctx.session.add_all(rows)
    if rows:
        await ctx.session.flush()
    # Email delivery is wired by the workers groundwork (an after-commit job per notification).
    return rows
