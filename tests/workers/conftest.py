"""A second app on the same database with one extra route that calls `notify` (the
request boundary, the job buffer and the broker are all the real ones), and a real
dramatiq Worker on the PostgreSQL broker, started and stopped inside the test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import msgspec
import pytest
from litestar import post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from api.auth import requires
from domain.agencies.rules import Action
from domain.core.context import Context
from domain.core.errors import ConflictError
from domain.notifications.service import notify


class NotifyIn(msgspec.Struct):
    user_ids: list[UUID]
    title: str
    body: str = ""
    post_id: UUID | None = None
    fail: bool = False


@post("/test/notify", **requires(Action.NOTIFICATIONS_READ), status_code=201)
async def notify_route(ctx: NamedDependency[Context], data: JSONBody[NotifyIn]) -> dict[str, Any]:
    rows = await notify(ctx, user_ids=data.user_ids, kind="approval.requested", title=data.title, body=data.body,
                        data={"post_id": str(data.post_id)} if data.post_id else {})
    if data.fail:
        raise ConflictError("Rolled back on purpose, after notify() buffered its jobs")
    return {"ids": [str(r.id) for r in rows]}


@pytest.fixture
async def notify_client(settings) -> AsyncIterator[AsyncTestClient]:
    from api.app import create_app

    app = create_app(settings)
    app.register(notify_route)
    async with AsyncTestClient(app, base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
def worker_settings(settings):
    import dataclasses

    return dataclasses.replace(settings, worker_threads=2, frontend_base_url="https://app.chorus.test/agency")


@pytest.fixture
def worker(worker_settings):
    from workers.broker import InProcessWorker

    running = InProcessWorker(worker_settings, threads=2)
    running.start()
    yield running
    running.stop(timeout_ms=5_000)


async def eventually(check, *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `check` (sync or async) until it returns something truthy, at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def queued_jobs(owner_engine, agency_id: str) -> list[dict[str, Any]]:
    """Messages in the PostgreSQL broker's queue for one agency (any state)."""
    async with owner_engine.connect() as conn:
        rows = await conn.execute(text(
            "SELECT message, state::text AS state FROM dramatiq.queue WHERE message->'kwargs'->>'agency_id' = :agency"
        ), {"agency": agency_id})
        return [{"message": r.message, "state": r.state} for r in rows]
