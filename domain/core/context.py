from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from domain.agencies.rules import Action, Principal
from domain.core.db import TENANT_READY_KEY
from domain.core.errors import NotFoundError, PermissionDeniedError
from domain.core.jobs import JobBuffer


class Context:
    """What a use case runs with: one transaction, who is acting, and the request id.

    A request's transaction lives on a connection whose tenant is already set. Reads that
    need no ORM (`read`) run on it directly; the ORM session is made on first use and
    joins the same transaction, so writes and reads see one consistent state.
    """

    def __init__(
        self,
        principal: Principal,
        *,
        session: AsyncSession | None = None,
        connection: AsyncConnection | None = None,
        request_id: str | None = None,
        wrote: bool = False,
    ) -> None:
        if session is None and connection is None:
            raise ValueError("a Context needs a session or a connection")
        self.principal = principal
        self.request_id = request_id
        self.connection = connection
        self._session = session
        # Writes go through the ORM session; anything written on the bare connection
        # (the API key's last-use stamp) says so here. A request that wrote nothing ends
        # its transaction with the rollback the pool does anyway, one call fewer.
        self.wrote = wrote
        # Work that must only happen once the transaction is committed (emails, later
        # jobs); dropped on rollback.
        self.after_commit: list[Callable[[], Awaitable[None]]] = []
        self._jobs: JobBuffer | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = AsyncSession(
                bind=self.connection,
                expire_on_commit=False,
                join_transaction_mode="conditional_savepoint",
                info={TENANT_READY_KEY: True},
            )
        return self._session

    @property
    def jobs(self) -> JobBuffer:
        """Background jobs sent once this transaction commits (dropped on rollback)."""
        if self._jobs is None:
            self._jobs = JobBuffer(self.after_commit, self.principal.agency_id)
        return self._jobs

    @property
    def has_session(self) -> bool:
        return self._session is not None

    @property
    def needs_commit(self) -> bool:
        return self.wrote or self._session is not None

    @property
    def agency_id(self) -> UUID:
        return self.principal.agency_id

    def select(self, model: Any, *columns: Any) -> Select[Any]:
        """The one home of tenant scoping in queries (RLS enforces the same rule below)."""
        stmt = select(*columns) if columns else select(model)
        return stmt.where(model.agency_id == self.agency_id)

    def visible_brands(self, stmt: Select[Any], brand_column: Any) -> Select[Any]:
        """Narrow a query to the brands a member limited to some brands may see."""
        brand_ids = self.principal.brand_ids
        return stmt if brand_ids is None else stmt.where(brand_column.in_(brand_ids))

    async def read(self, stmt: Any, params: dict[str, Any] | None = None) -> Result[Any]:
        """Core read for hot paths: rows, not ORM objects, straight on the connection."""
        if self._session is not None or self.connection is None:
            return await self.session.execute(stmt, params)
        return await self.connection.execute(stmt, params)

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
