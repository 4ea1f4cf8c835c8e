"""The broker and the actor wrapper.

The broker comes from CHORUS_BROKER_URL: unset or postgresql://... is dramatiq-postgres
(unset: the app's own database, as the app role; its `dramatiq` schema comes with
`chorus db upgrade`), redis://... a RedisBroker and amqp://... a RabbitmqBroker.

Actors are declared with `@actor("<context>.<verb>")` on an async function taking a
`JobContext` and the job's ids. The wrapper opens one transaction with the job's agency as
tenant (row-level security applies, as for a request), commits when the function returns
and rolls back when it raises (dramatiq then retries). Jobs the actor itself sends are sent
after that commit, like a request's. Actors reload their rows and re-check state: a job may
run twice (a redelivery after a crash, a retry), and the second run must change nothing.

Actors are kept in a registry and declared on each broker `build_broker` makes, so the API,
the worker and the tests each get a broker of their own without a global set at import.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import dramatiq
from dramatiq.middleware import AsyncIO, Middleware
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.core.db import create_engine, scoped_session, session_factory
from domain.core.jobs import Job, JobBuffer, Sender
from domain.core.mail import Mailer, mailer_for
from domain.core.settings import Settings

log = logging.getLogger("chorus.workers")

# The modules whose import declares actors (one per context).
ACTOR_MODULES = ("workers.notifications", "workers.approvals", "workers.webhooks", "workers.tokens", "workers.publishing",
                 "workers.billing")


@dataclass(frozen=True)
class ActorSpec:
    name: str
    fn: Callable[..., Awaitable[Any]]
    queue: str
    options: dict[str, Any]


ACTORS: dict[str, ActorSpec] = {}


def actor(name: str, *, queue: str | None = None, **options: Any) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Register an actor named "<context>.<verb>"; its queue defaults to the context."""
    context, _, verb = name.partition(".")
    if not context or not verb:
        raise ValueError(f"actor names are '<context>.<verb>', not {name!r}")

    def register(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        if not asyncio.iscoroutinefunction(fn):
            raise TypeError(f"actor {name} must be an async function")
        ACTORS[name] = ActorSpec(name, fn, queue or context, options)
        return fn

    return register


class Runtime:
    """What the actors of one process share: settings, a database engine (made on first
    use, on the worker's event loop, connecting as the app role) and the mailer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mailer: Mailer = mailer_for(settings.smtp_url, settings.mail_from, settings.data_dir / "outbox")
        self._engine: AsyncEngine | None = None
        self._factory: async_sessionmaker[AsyncSession] | None = None

    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        if self._factory is None:
            self._engine = create_engine(self.settings.app_url(), pool_size=max(2, self.settings.worker_threads),
                                         statement_timeout_ms=self.settings.db_statement_timeout_ms)
            self._factory = session_factory(self._engine)
        return self._factory

    async def dispose(self) -> None:
        engine, self._engine, self._factory = self._engine, None, None
        if engine is not None:
            await engine.dispose()


@dataclass
class JobContext:
    """What an actor runs with: its transaction (tenant set), the agency, and a job
    buffer whose jobs are sent after the commit."""

    session: AsyncSession
    agency_id: UUID | None
    runtime: Runtime
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def jobs(self) -> JobBuffer:
        if not hasattr(self, "_jobs"):
            self._jobs = JobBuffer(self.after_commit, self.agency_id)
        return self._jobs


def _wrap(spec: ActorSpec, runtime: Runtime) -> Callable[..., Awaitable[Any]]:
    async def run(agency_id: str | None = None, **ids: Any) -> Any:
        tenant = UUID(agency_id) if agency_id else None
        job = JobContext(session=None, agency_id=tenant, runtime=runtime)  # type: ignore[arg-type]
        async with scoped_session(runtime.session_factory(), agency_id=tenant) as session:
            job.session = session
            async with session.begin():
                result = await spec.fn(job, **ids)
        for task in job.after_commit:
            await task()
        return result

    run.__name__ = spec.fn.__name__
    run.__qualname__ = spec.fn.__qualname__
    return run


class _DisposeRuntime(Middleware):
    """Close the worker's database connections on its own event loop before it stops."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            try:
                loop_thread.run_coroutine(self.runtime.dispose())
            except Exception:  # noqa: BLE001 - shutting down: report, keep stopping
                log.exception("closing the worker's database engine failed")


def _load_actor_modules() -> None:
    import importlib

    for module in ACTOR_MODULES:
        importlib.import_module(module)


async def agencies_due(engine: AsyncEngine, function: str) -> list[UUID]:
    """The agency ids a cross-agency SECURITY DEFINER function names (the app role sees no
    other agency's rows, so each sweep asks its own function)."""
    async with engine.connect() as conn:
        return [row[0] for row in await conn.execute(text(f"SELECT * FROM {function}()"))]


async def send_each(broker: dramatiq.Broker, actor_name: str, jobs: Sequence[dict[str, str]]) -> None:
    """One message per kwargs dict, for the sweeps that fan work out (the brokers' clients
    block, so off the event loop)."""
    if not jobs:
        return

    def send() -> None:
        actor_ = broker.get_actor(actor_name)
        for kwargs in jobs:
            actor_.send_with_options(kwargs=kwargs)

    await asyncio.to_thread(send)


def broker_kind(settings: Settings) -> str:
    url = settings.broker_url or ""
    scheme = url.split(":", 1)[0].lower() if url else "postgresql"
    if scheme in {"postgresql", "postgres"}:
        return "postgresql"
    if scheme in {"redis", "rediss"}:
        return "redis"
    if scheme in {"amqp", "amqps"}:
        return "rabbitmq"
    raise ValueError(f"CHORUS_BROKER_URL: unsupported scheme {scheme!r} (postgresql://, redis:// or amqp://)")


def build_broker(settings: Settings) -> dramatiq.Broker:
    """A broker with every actor declared on it. Building one does no I/O; the PostgreSQL
    broker opens connections on first use."""
    kind = broker_kind(settings)
    if kind == "postgresql":
        from dramatiq_postgres import PostgresBroker

        # No results backend: actors report through the database rows they change.
        broker: dramatiq.Broker = PostgresBroker(url=settings.broker_database_url(), results=False)
    elif kind == "redis":
        from dramatiq.brokers.redis import RedisBroker

        # A killed worker's unfinished messages come back once its heartbeat is this old.
        broker = RedisBroker(url=settings.broker_url, heartbeat_timeout=int(settings.redis_heartbeat_seconds * 1000),
                             maintenance_chance=settings.redis_maintenance_chance)
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Publisher confirms: a job sent after a commit is on the broker's disk when send()
        # returns. A killed worker's unacknowledged messages are requeued when its
        # connection drops.
        broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True)
    broker.add_middleware(AsyncIO())
    runtime = Runtime(settings)
    broker.add_middleware(_DisposeRuntime(runtime))
    broker.runtime = runtime  # type: ignore[attr-defined]
    _load_actor_modules()
    for spec in ACTORS.values():
        dramatiq.actor(_wrap(spec, runtime), actor_name=spec.name, queue_name=spec.queue, broker=broker, **spec.options)
    return broker


def sender_for(broker: dramatiq.Broker) -> Sender:
    """Sends buffered jobs to `broker` (in a thread: the brokers' clients block)."""

    def enqueue_all(jobs: Sequence[Job]) -> None:
        for job in jobs:
            broker.get_actor(job.actor).send_with_options(kwargs=job.kwargs)

    async def send(jobs: Sequence[Job]) -> None:
        await asyncio.to_thread(enqueue_all, list(jobs))

    return send


def close_broker(broker: dramatiq.Broker) -> None:
    try:
        broker.close()
    except Exception:  # noqa: BLE001 - shutting down
        log.exception("closing the broker failed")


class InProcessWorker:
    """A dramatiq Worker in this process: its consumer and worker threads run beside
    whatever else the process does (the API and the scheduler under `chorus run`). It runs
    actors only; the periodic sweeps are `workers.scheduler.Scheduler`'s."""

    def __init__(self, settings: Settings, threads: int | None = None) -> None:
        from domain.core import jobs

        self.broker = build_broker(settings)
        # Jobs an actor sends go to the same broker, after the actor's commit.
        self._sender = sender_for(self.broker)
        self._previous_sender = jobs.current_sender()
        jobs.use_sender(self._sender)
        self.worker = dramatiq.Worker(self.broker, worker_threads=threads or settings.worker_threads,
                                      worker_timeout=500)

    def start(self) -> None:
        self.worker.start()

    def stop(self, timeout_ms: int = 10_000) -> None:
        from domain.core import jobs

        # Messages in progress get `timeout_ms` to finish; the rest stay queued (or are
        # requeued by the broker) for the next worker.
        self.worker.stop(timeout=timeout_ms)
        close_broker(self.broker)
        if jobs.current_sender() is self._sender:
            jobs.use_sender(self._previous_sender)
