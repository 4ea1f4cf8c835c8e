"""The broker choice and the actor wrapper: one transaction per job, under the job's tenant."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from sqlalchemy import select, text

from tests.api.test_notifications import add_notifications


def test_the_default_broker_is_postgresql_on_the_apps_database_as_the_app_role(settings):
    from dramatiq_postgres import PostgresBroker

    from workers.broker import broker_kind, build_broker, close_broker

    assert settings.broker_url is None and broker_kind(settings) == "postgresql"
    from sqlalchemy.engine import make_url

    url = make_url(settings.broker_database_url())
    app = make_url(settings.app_url())
    assert (url.drivername, url.username) == ("postgresql", "chorus_app")  # libpq's scheme, not asyncpg's
    assert (url.database, url.query, url.host) == (app.database, app.query, app.host)
    broker = build_broker(settings)
    try:
        assert isinstance(broker, PostgresBroker)
        actor = broker.get_actor("notifications.send_email")
        assert actor.queue_name == "notifications"
    finally:
        close_broker(broker)


def test_broker_urls_by_scheme(settings):
    from workers.broker import broker_kind

    for url, kind in (("redis://cache:6379/0", "redis"), ("amqp://guest:guest@mq:5672/", "rabbitmq"),
                      ("postgresql://jobs@db/jobs", "postgresql")):
        assert broker_kind(dataclasses.replace(settings, broker_url=url)) == kind
    other = dataclasses.replace(settings, broker_url="postgresql://jobs@db/jobs")
    assert other.broker_database_url() == "postgresql://jobs@db/jobs"
    with pytest.raises(ValueError):
        broker_kind(dataclasses.replace(settings, broker_url="mysql://db/jobs"))


def test_actor_names_are_context_dot_verb():
    from workers.broker import actor

    with pytest.raises(ValueError):
        actor("send_email")


async def test_the_wrapper_commits_on_success_rolls_back_on_error_and_sets_the_tenant(
        settings, tenant, other_tenant, owner_engine):
    from domain.core.clock import now
    from domain.notifications.models import Notification
    from workers.broker import ActorSpec, Runtime, _wrap

    owner = (await tenant.req("GET", "/v1/members")).json()["items"][0]["user_id"]
    [mine] = await add_notifications(owner_engine, tenant.agency_id, owner)
    other_owner = (await other_tenant.req("GET", "/v1/members")).json()["items"][0]["user_id"]
    [theirs] = await add_notifications(owner_engine, other_tenant.agency_id, other_owner)

    async def mark(job, notification_id: str, fail: bool = False) -> None:
        found = await job.session.scalar(select(Notification).where(Notification.id == uuid.UUID(notification_id)))
        if found is None:
            raise LookupError("not visible under this tenant")
        found.read_at = now()
        await job.session.flush()
        if fail:
            raise RuntimeError("boom")

    runtime = Runtime(settings)
    run = _wrap(ActorSpec("tests.mark", mark, "tests", {}), runtime)
    try:
        with pytest.raises(RuntimeError):
            await run(agency_id=tenant.agency_id, notification_id=mine, fail=True)
        assert await _read_at(owner_engine, mine) is None  # rolled back
        # Row-level security: the job's agency cannot see another agency's rows.
        with pytest.raises(LookupError):
            await run(agency_id=tenant.agency_id, notification_id=theirs)
        await run(agency_id=tenant.agency_id, notification_id=mine)
        assert await _read_at(owner_engine, mine) is not None  # committed
    finally:
        await runtime.dispose()


async def _read_at(owner_engine, notification_id: str):
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT read_at FROM notifications WHERE id = :id"),
                                   {"id": notification_id})).scalar_one()
