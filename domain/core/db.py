"""Database base classes, engines and the per-transaction tenant setting.

Row-level security reads `app.agency_id` and `app.user_id`. They are always set with
`set_config(..., true)`, local to the transaction, so a pooled connection never carries
one request's tenant into the next. Three ways in:

- `enter_request` (a person's API call): BEGIN plus `chorus_enter()` in one round trip;
- `begin_api_key_request` (an integrator's call): BEGIN, then `chorus_begin_request()`,
  which sets the tenant and reads the key under the policies it just armed;
- `scoped_session` (sign-in, seeds, middleware): the `after_begin` hook sets the tenant
  from `session.info` at the start of every transaction.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from advanced_alchemy.base import UUIDv7AuditBase, orm_registry
from sqlalchemy import ForeignKey, String, Uuid, bindparam, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column
from sqlalchemy.util.concurrency import await_

from domain.core.errors import AccessTokenStaleError

Base = UUIDv7AuditBase
metadata = orm_registry.metadata

TENANT_KEY = "agency_id"
USER_KEY = "user_id"
# Set on sessions that join a connection whose transaction already has its tenant.
TENANT_READY_KEY = "tenant_ready"


class TenantMixin:
    """Every tenant-owned row carries `agency_id`; RLS policies key on it."""

    @declared_attr
    def agency_id(cls) -> Mapped[UUID]:  # noqa: N805
        return mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), index=True, nullable=False)


_SET_CONTEXT = text("SELECT set_config('app.agency_id', :agency, true), set_config('app.user_id', :user, true)")
_BEGIN_REQUEST = text("SELECT * FROM chorus_begin_request(:agency, :user, :key_hash)").bindparams(
    bindparam("agency", type_=Uuid), bindparam("user", type_=Uuid), bindparam("key_hash", type_=String)
)


@event.listens_for(Session, "after_begin")
def _set_tenant(session: Session, transaction: Any, connection: Any) -> None:
    info = session.info
    if info.get(TENANT_READY_KEY):
        return
    agency, user = info.get(TENANT_KEY), info.get(USER_KEY)
    connection.execute(_SET_CONTEXT, {"agency": str(agency) if agency else "", "user": str(user) if user else ""})


def create_engine(url: str, *, pool_size: int = 10, statement_timeout_ms: int = 15_000) -> AsyncEngine:
    engine = create_async_engine(
        url,
        # msgspec reads and writes JSONB several times faster than the json module.
        json_serializer=lambda value: msgspec.json.encode(value).decode(),
        json_deserializer=msgspec.json.decode,
        # Statement parameters (password hashes, token hashes) stay out of error messages.
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_timeout=10,
        connect_args={
            "timeout": 10,
            "command_timeout": max(statement_timeout_ms / 1000 + 5, 10),
            "server_settings": {
                "statement_timeout": str(statement_timeout_ms),
                "idle_in_transaction_session_timeout": "60000",
                "application_name": "chorus",
            },
        },
    )
    event.listen(engine.sync_engine.pool, "reset", _never_pool_an_open_transaction)
    return engine


def _never_pool_an_open_transaction(dbapi_connection: Any, connection_record: Any, reset_state: Any) -> None:
    # Backstop: whatever happened to the request, a connection goes back to the pool with
    # no transaction (and so no tenant) left open on the server.
    raw = getattr(dbapi_connection, "driver_connection", None)
    if raw is not None and not raw.is_closed() and raw.is_in_transaction():
        await_(raw.execute("ROLLBACK"))
        # And SQLAlchemy's adapter forgets it too, so its next BEGIN starts afresh.
        if getattr(dbapi_connection, "_transaction", None) is not None:
            dbapi_connection._transaction = None


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


def scoped_session(
    factory: async_sessionmaker[AsyncSession],
    *,
    agency_id: UUID | None = None,
    user_id: UUID | None = None,
) -> AsyncSession:
    session = factory()
    session.info[TENANT_KEY] = agency_id
    session.info[USER_KEY] = user_id
    return session


class _OpenedTransaction:
    """Stands in for asyncpg's Transaction inside SQLAlchemy's asyncpg adapter once we
    have sent BEGIN ourselves, so SQLAlchemy commits and rolls back as usual."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    async def commit(self) -> None:
        await self._raw.execute("COMMIT")

    async def rollback(self) -> None:
        await self._raw.execute("ROLLBACK")


def _enter(sync_connection: Any, agency_id: UUID, user_id: UUID, membership_version: int) -> None:
    # BEGIN and chorus_enter() travel in one simple-protocol message: the request's first
    # round trip opens the transaction, sets the tenant and checks the token's membership
    # version. The values are typed (UUID, int), so formatting them in is safe.
    sql = (
        "BEGIN ISOLATION LEVEL READ COMMITTED; "
        f"SELECT chorus_enter('{UUID(str(agency_id))}'::uuid, '{UUID(str(user_id))}'::uuid, {int(membership_version)})"
    )
    fairy = sync_connection.connection
    raw = fairy.driver_connection
    try:
        await_(raw.execute(sql))
    except BaseException as err:
        if raw.is_in_transaction():
            await_(raw.execute("ROLLBACK"))
        if getattr(err, "sqlstate", None) == "28000":
            raise AccessTokenStaleError() from None
        raise
    fairy.dbapi_connection._transaction = _OpenedTransaction(raw)
    sync_connection.begin()


async def enter_request(engine: AsyncEngine, *, agency_id: UUID, user_id: UUID, membership_version: int) -> AsyncConnection:
    """The request's connection, in a transaction whose tenant is set, for a person whose
    token still matches their membership (else AccessTokenStaleError)."""
    connection = await engine.connect()
    try:
        await connection.run_sync(_enter, agency_id, user_id, membership_version)
    except BaseException:
        await connection.close()
        raise
    return connection


async def begin_api_key_request(engine: AsyncEngine, *, agency_id: UUID, api_key_hash: str) -> tuple[AsyncConnection, Any]:
    """Open the request's transaction with its tenant set and read the API key row (None
    if there is no such key in that agency). The caller owns the connection: commit or
    roll back, then close."""
    params = {"agency": agency_id, "user": None, "key_hash": api_key_hash}

    def start(sync_connection: Any) -> Any:
        # BEGIN and the first statement in one hop through the greenlet bridge.
        sync_connection.begin()
        return sync_connection.execute(_BEGIN_REQUEST, params).first()

    connection = await engine.connect()
    try:
        row = await connection.run_sync(start)
    except BaseException:
        await connection.close()
        raise
    return connection, row


async def set_tenant(session: AsyncSession, *, agency_id: UUID | None, user_id: UUID | None = None) -> None:
    """Change the tenant inside an open transaction (sign-in learns the agency midway)."""
    session.info[TENANT_KEY] = agency_id
    if user_id is not None:
        session.info[USER_KEY] = user_id
    await session.execute(
        _SET_CONTEXT,
        {"agency": str(agency_id) if agency_id else "", "user": str(session.info.get(USER_KEY) or "")},
    )
