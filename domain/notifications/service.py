"""Telling members what needs them: a row in their in-app feed and, where asked, an email
sent by a worker (`notifications.send_email`) after the transaction commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.agencies.rules import Action
from domain.core.clock import now
from domain.core.context import Context
from domain.core.errors import NotFoundError, PermissionDeniedError
from domain.core.mail import Mailer
from domain.core.pagination import Page, PageRequest, paginate, resolve_sort
from domain.notifications.models import Notification
from domain.notifications.rules import render_email
from domain.notifications.schemas import NotificationOut, ReadAllOut, notification_out

SEND_EMAIL = "notifications.send_email"


async def notify(ctx: Context, *, user_ids: Sequence[UUID], kind: str, title: str, body: str = "",
                 data: dict[str, Any] | None = None, email: bool = True) -> list[Notification]:
    """One notification per member (deduplicated, never the actor themselves). `kind` is a
    stable dotted name (approval.requested, approval.decided, approval.changes_requested,
    comment.mention...). With `email`, one email job per notification is sent once the
    change commits (nothing is sent if it rolls back)."""
    actor = ctx.principal.user_id
    rows = [Notification(agency_id=ctx.agency_id, user_id=user_id, kind=kind, title=title[:300], body=body,
                         data=data or {})
            for user_id in dict.fromkeys(user_ids) if user_id != actor]
    ctx.session.add_all(rows)
    if rows:
        await ctx.session.flush()
    if email:
        for row in rows:
            ctx.jobs.send(SEND_EMAIL, notification_id=row.id)
    return rows


async def deliver_email(session: AsyncSession, agency_id: UUID | None, notification_id: UUID, *, mailer: Mailer,
                        frontend_base_url: str | None) -> str:
    """The email job's work, in the job's transaction. The row is locked while the message
    goes out and stamped `emailed_at`, so a redelivered or concurrent job sends nothing."""
    from domain.agencies.models import Agency, Membership, User

    notification = await session.scalar(
        select(Notification).where(Notification.agency_id == agency_id, Notification.id == notification_id)
        .with_for_update()
    )
    if notification is None:
        return "gone"
    if notification.emailed_at is not None:
        return "already sent"
    recipient = (await session.execute(
        select(User.email, User.name, Agency.name.label("agency_name"))
        .join(Membership, Membership.user_id == User.id)
        .join(Agency, Agency.id == Membership.agency_id)
        .where(Membership.agency_id == agency_id, Membership.user_id == notification.user_id)
    )).first()
    if recipient is None:
        return "no longer a member"
    await mailer.send(render_email(
        to=recipient.email, recipient_name=recipient.name, agency_name=recipient.agency_name, kind=notification.kind,
        title=notification.title, body=notification.body, data=notification.data or {},
        frontend_base_url=frontend_base_url,
    ))
    notification.emailed_at = now()
    return "sent"


_SORTS = {"created_at": (Notification.created_at, Notification.id)}


class NotificationService:
    """A member's own feed. API keys act for no person and have none (403)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _mine(self) -> Any:
        self.ctx.require(Action.NOTIFICATIONS_READ)
        user_id = self.ctx.principal.user_id
        if user_id is None:
            raise PermissionDeniedError("Notifications belong to people; an API key has none")
        return self.ctx.select(Notification).where(Notification.user_id == user_id)

    async def list(self, page: PageRequest, *, unread: bool | None = None) -> Page[NotificationOut]:
        stmt = self._mine()
        if unread is True:
            stmt = stmt.where(Notification.read_at.is_(None))
        elif unread is False:
            stmt = stmt.where(Notification.read_at.is_not(None))
        found = await paginate(self.ctx.session, stmt, resolve_sort(_SORTS, "-created_at"), page)
        return Page([notification_out(n) for n in found.items], found.next_cursor)

    async def read(self, notification_id: UUID) -> NotificationOut:
        stmt = self._mine().where(Notification.id == notification_id)
        notification = await self.ctx.session.scalar(stmt.with_for_update())
        if notification is None:
            raise NotFoundError("No such notification")
        if notification.read_at is None:
            notification.read_at = now()
            await self.ctx.session.flush()
        return notification_out(notification)

    async def read_all(self) -> ReadAllOut:
        self._mine()
        result = await self.ctx.session.execute(
            update(Notification)
            .where(Notification.agency_id == self.ctx.agency_id, Notification.user_id == self.ctx.principal.user_id,
                   Notification.read_at.is_(None))
            .values(read_at=now())
        )
        return ReadAllOut(marked_read=result.rowcount or 0)
