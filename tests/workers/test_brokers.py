"""The Redis and RabbitMQ brokers, each end to end against a private server on loopback
(workers/local_servers.py): the API sends a job after its transaction commits, `chorus
worker` (a subprocess with CHORUS_BROKER_URL) runs the async actor, which writes to
PostgreSQL under row-level security as the job's agency; a worker killed with SIGKILL in
the middle of a job leaves the message to be redelivered to the next worker, and the job's
second run changes nothing.

The job is the notification email: its actor locks the notification row, sends through SMTP
and stamps `emailed_at`. The test's SMTP server holds the first delivery of a subject open
(the worker is then provably mid-job, its transaction open), so the kill lands mid-job."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from tests.workers.conftest import eventually, notify_route

CHORUS = Path(sys.executable).parent / "chorus"
ROOT = Path(__file__).resolve().parents[2]


class HoldingInbox:
    """An SMTP server (aiosmtpd on loopback) that keeps what it accepts, and holds the first
    delivery of a subject listed in `hold` open until `release()`, then refuses it (451):
    a client killed while held delivered nothing."""

    def __init__(self) -> None:
        self.accepted: list[Any] = []
        self.held: list[str] = []
        self.hold: set[str] = set()
        self._released = False

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        from email import message_from_bytes, policy

        message = message_from_bytes(envelope.content, policy=policy.default)
        subject = str(message["Subject"])
        held = next((s for s in self.hold if subject.endswith(s)), None)
        if held is not None:
            self.hold.discard(held)
            self.held.append(subject)
            while not self._released:
                await asyncio.sleep(0.05)
            return "451 4.3.0 held by the test"
        self.accepted.append(message)
        return "250 OK"

    def release(self) -> None:
        self._released = True

    def subjects(self, ending: str) -> list[str]:
        return [str(m["Subject"]) for m in self.accepted if str(m["Subject"]).endswith(ending)]


@pytest.fixture(scope="module")
def holding_inbox():
    from aiosmtpd.controller import Controller

    from workers.local_servers import free_port

    inbox = HoldingInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{port}?timeout=10"
    yield inbox
    inbox.release()
    controller.stop()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request) -> str:
    return request.getfixturevalue("redis_url" if request.param == "redis" else "rabbitmq_url")


@pytest.fixture
def broker_settings(settings, broker_url, holding_inbox):
    return dataclasses.replace(settings, broker_url=broker_url, smtp_url=holding_inbox.url)


@pytest.fixture
async def api(broker_settings) -> AsyncIterator[AsyncTestClient]:
    """The real app on the broker under test, plus the test route that calls notify()."""
    from api.app import create_app

    app = create_app(broker_settings)
    app.register(notify_route)
    async with AsyncTestClient(app, base_url="http://testserver.local") as c:
        yield c


class WorkerProcess:
    """`chorus worker` as operators run it, its output read on a thread."""

    def __init__(self, broker_settings, tmp_path: Path, name: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
        env.update({
            "CHORUS_DATABASE_URL": broker_settings.database_url, "CHORUS_BROKER_URL": broker_settings.broker_url,
            "CHORUS_SMTP_URL": broker_settings.smtp_url, "CHORUS_DATA_DIR": str(tmp_path / name),
            "CHORUS_LOG_LEVEL": "INFO", "CHORUS_LOG_JSON": "1", "PYTHONUNBUFFERED": "1",
            # Redis: a dead worker's messages come back after 3 s, maintenance on every command.
            "CHORUS_REDIS_HEARTBEAT_SECONDS": "3", "CHORUS_REDIS_MAINTENANCE_CHANCE": "1000000",
        })
        self.lines: list[str] = []
        self.proc = subprocess.Popen([str(CHORUS), "worker", "--threads", "2"], env=env, cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     stdin=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def said(self, *parts: str) -> list[str]:
        return [line for line in list(self.lines) if all(p in line for p in parts)]

    async def running(self) -> None:
        await eventually(lambda: self.said("worker running") or self.proc.poll() is not None, timeout=60,
                         what="the worker to start")
        assert self.said("worker running"), "".join(self.lines)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
                raise
        self._reader.join(timeout=10)
        return self.proc.returncode


async def _emailed_at(owner_engine, notification_id: str):
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT emailed_at FROM notifications WHERE id = :id"),
                                   {"id": notification_id})).scalar_one()


def _outcomes(worker: WorkerProcess, notification_id: str) -> list[str]:
    found = []
    for line in worker.said('"notification email"', notification_id):
        with_json = line[line.find("{"):]
        try:
            found.append(json.loads(with_json).get("outcome"))
        except ValueError:
            found.append(line)
    return found


async def test_a_job_survives_a_killed_worker_and_its_second_run_changes_nothing(
        api, broker_settings, holding_inbox, tenant, owner_engine, tmp_path):
    from workers.broker import build_broker, close_broker

    _, member = await tenant.member("analyst")
    first = WorkerProcess(broker_settings, tmp_path, "first")
    second = None
    try:
        await first.running()
        title = f"Broker test {uuid.uuid4().hex[:8]}"
        holding_inbox.hold.add(title)
        # An API request: notify() writes the notification and buffers the email job; the
        # job reaches the broker only once the request's transaction has committed.
        r = await api.post("/test/notify", headers=tenant.auth(), json={"user_ids": [member["user_id"]],
                                                                        "title": title})
        assert r.status_code == 201, r.text
        [notification_id] = r.json()["ids"]

        # The first worker took the job and is inside it: SMTP connected, row locked, no commit.
        await eventually(lambda: any(s.endswith(title) for s in holding_inbox.held), timeout=60,
                         what="the first worker to be mid-job")
        assert await _emailed_at(owner_engine, notification_id) is None
        first.kill()
        assert not holding_inbox.subjects(title)  # the held delivery was never accepted

        # The next worker gets the same message again (RabbitMQ: requeued when the killed
        # worker's connection dropped; Redis: by the maintenance once its heartbeat is stale).
        second = WorkerProcess(broker_settings, tmp_path, "second")
        await second.running()
        await eventually(lambda: holding_inbox.subjects(title), timeout=90, what="the redelivered job's email")
        # Written under RLS as the job's agency (the app role sees only that agency's rows).
        assert await eventually(lambda: _emailed_at(owner_engine, notification_id), what="emailed_at")
        stamped = await _emailed_at(owner_engine, notification_id)
        assert _outcomes(second, notification_id) == ["sent"]

        # The same job once more (a duplicate delivery): it runs and changes nothing.
        broker = build_broker(broker_settings)
        try:
            broker.get_actor("notifications.send_email").send_with_options(
                kwargs={"agency_id": tenant.agency_id, "notification_id": notification_id})
        finally:
            close_broker(broker)
        await eventually(lambda: len(_outcomes(second, notification_id)) == 2, timeout=60, what="the duplicate run")
        assert _outcomes(second, notification_id) == ["sent", "already sent"]
        assert len(holding_inbox.subjects(title)) == 1
        assert await _emailed_at(owner_engine, notification_id) == stamped
    finally:
        if first.proc.poll() is None:
            first.kill()
        if second is not None:
            code = second.stop()
            assert code == 0, "".join(second.lines[-40:])
            assert second.said("worker stopped")


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_private_servers_listen_on_loopback_and_leave_nothing_running():
    from workers.local_servers import rabbitmq_server, redis_server

    with redis_server() as redis, redis_server() as other:
        assert redis.port != other.port and _listening(redis.port) and _listening(other.port)
        pid, port, folder = redis.pid, redis.port, redis.directory
    assert not _alive(pid) and not _listening(port) and not folder.exists()

    with rabbitmq_server() as rabbit:
        epmd_port = int(rabbit.env["ERL_EPMD_PORT"])
        assert _listening(rabbit.port) and _listening(epmd_port)
        assert rabbit.node.endswith("@localhost") and rabbit.env["RABBITMQ_NODE_IP_ADDRESS"] == "127.0.0.1"
        status = rabbit.ctl("-q", "status")
        assert status.returncode == 0, status.stderr
        folder = rabbit.directory
    # The node, its private epmd and its folder are gone.
    assert not _listening(rabbit.port) and not _listening(epmd_port) and not folder.exists()
