from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.agencies.rules import Action, Principal
from domain.core.errors import NotFoundError, PermissionDeniedError


@dataclass
class Context:
    """What a use case runs with: one transaction, who is acting, and the request id."""

    session: AsyncSession
    principal: Principal
    request_id: str | None = None
    # Work that must only happen once the transaction is committed (emails, later jobs);
    # dropped on rollback.
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def agency_id(self) -> UUID:
        return self.principal.agency_id

    def select(self, model: Any, *columns: Any) -> Select[Any]:
        """The one home of tenant scoping in queries (RLS enforces the same rule below)."""
        stmt = select(*columns) if columns else select(model)
        return stmt.where(model.agency_id == self.agency_id)

    async def get(self, model: Any, object_id: UUID, *, lock: bool = False, what: str = "resource") -> Any:
        stmt = self.select(model).where(model.id == object_id)
        found = await self.session.scalar(stmt.with_for_update() if lock else stmt)
        if found is None:
            raise NotFoundError(f"No such {what}")
        return found

    def require(self, action: Action) -> None:
        if not self.principal.can(action):
            raise PermissionDeniedError(f"This credential may not perform {action.value}")

    async def audit(
        self, action: str, object_type: str, object_id: UUID | None, changes: dict[str, Any] | None = None
    ) -> None:
        from domain.agencies.models import AuditEvent

        self.session.add(
            AuditEvent(
                agency_id=self.agency_id,
                actor_type=self.principal.actor_type,
                actor_id=self.principal.actor_id,
                actor_label=self.principal.label,
                action=action,
                object_type=object_type,
                object_id=object_id,
                changes=_jsonable(changes or {}),
                request_id=self.request_id,
            )
        )


def _jsonable(value: Any) -> Any:
    import msgspec

    return msgspec.json.decode(msgspec.json.encode(value))
