"""A member's in-app notification feed (their own only; API keys have none: 403)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from api.auth import requires
from api.controllers.common import Cursor, Limit, page_out, page_request
from api.problems import LIST, READ, SECURED, problems
from domain.agencies.rules import Action
from domain.core.context import Context
from domain.notifications.schemas import NotificationOut, NotificationPage, ReadAllOut
from domain.notifications.service import NotificationService

_PEOPLE_ONLY = "Your own notifications; an API key acts for no person and is refused (403)."


class NotificationController(Controller):
    path = "/v1/notifications"
    tags = ["Notifications"]
    security = SECURED

    @get("/", operation_id="listNotifications", summary="Your notifications, newest first",
         **requires(Action.NOTIFICATIONS_READ, _PEOPLE_ONLY), responses=problems(*LIST))
    async def list_notifications(
        self, ctx: NamedDependency[Context], limit: Limit = 50, cursor: Cursor = None,
        unread: Annotated[bool | None, QueryParameter(description="true: only unread; false: only read")] = None,
    ) -> NotificationPage:
        page = await NotificationService(ctx).list(page_request(limit, cursor), unread=unread)
        return page_out(NotificationPage, page)

    @post("/{notification_id:uuid}/read", operation_id="markNotificationRead", summary="Mark one notification read",
          **requires(Action.NOTIFICATIONS_READ, _PEOPLE_ONLY), responses=problems(*READ), status_code=200)
    async def mark_read(self, ctx: NamedDependency[Context], notification_id: FromPath[UUID]) -> NotificationOut:
        return await NotificationService(ctx).read(notification_id)

    @post("/read-all", operation_id="markAllNotificationsRead", summary="Mark all your notifications read",
          **requires(Action.NOTIFICATIONS_READ, _PEOPLE_ONLY), responses=problems(400, 401, 402, 403, 429), status_code=200)
    async def mark_all_read(self, ctx: NamedDependency[Context]) -> ReadAllOut:
        return await NotificationService(ctx).read_all()
