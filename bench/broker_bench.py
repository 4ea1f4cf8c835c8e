"""Job throughput of the three brokers: PostgreSQL (dramatiq-postgres, the default), Redis and
RabbitMQ, each measured the same way on this machine.

    .venv/bin/python bench/broker_bench.py [--messages 2000] [--threads 4] [--brokers postgresql,redis,rabbitmq]

It starts an embedded PostgreSQL under .data/bench-broker-pg (migrated), a private
redis-server and a private RabbitMQ node (workers/local_servers.py; Debian's packages, as
`make test` installs them), then per broker: one InProcessWorker (the same worker `chorus
worker` runs) with --threads threads, sends --messages jobs with the real sender, and waits
until every job has run. The job is the real `notifications.send_email` actor for a
notification that does not exist: each run is one PostgreSQL transaction under the job's
agency (tenant set, a SELECT ... FOR UPDATE, commit) and no email, so the figure is the
broker's plus the job wrapper's cost, not SMTP's.

Prints, per broker: send rate (jobs/s the sender hands to the broker, publisher confirms
included for RabbitMQ) and end to end rate (jobs/s from the first send to the last job
done). Informational: there is no pass/fail target. Exit 2 if a job is missing at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import secrets
import shutil
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PGDATA = ROOT / ".data" / "bench-broker-pg" / "pg"


def log(message: str) -> None:
    print(f"• {message}", flush=True)


def measure(settings, messages: int, threads: int) -> tuple[float, float]:
    from dramatiq.middleware import Middleware

    from domain.core.jobs import Job
    from workers.broker import InProcessWorker, sender_for

    done = threading.Semaphore(0)

    class Count(Middleware):
        def after_process_message(self, broker, message, *, result=None, exception=None):
            done.release()

        def after_skip_message(self, broker, message):
            done.release()

    worker = InProcessWorker(settings, threads=threads)
    worker.broker.add_middleware(Count())
    agency = str(uuid.uuid4())
    jobs = [Job("notifications.send_email", {"agency_id": agency, "notification_id": str(uuid.uuid4())})
            for _ in range(messages)]
    # Warm up: declare queues, open connections, one job through.
    worker.start()
    try:
        asyncio.run(sender_for(worker.broker)(jobs[:1]))
        if not done.acquire(timeout=120):
            raise RuntimeError("the warm-up job did not run")
        start = time.perf_counter()
        asyncio.run(sender_for(worker.broker)(jobs[1:]))
        sent = time.perf_counter() - start
        for _ in range(messages - 1):
            if not done.acquire(timeout=300):
                raise RuntimeError("jobs went missing")
        total = time.perf_counter() - start
    finally:
        worker.stop(timeout_ms=10_000)
    return (messages - 1) / sent, (messages - 1) / total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--brokers", default="postgresql,redis,rabbitmq")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.brokers.split(",") if k.strip()]

    from domain.core import embedded_db, migrate
    from domain.core.crypto import new_key
    from domain.core.settings import Settings
    from workers.local_servers import rabbitmq_server, redis_server

    shutil.rmtree(PGDATA.parent, ignore_errors=True)
    pg, owner_url = embedded_db.start(PGDATA, database="chorus_bench")
    results: list[tuple[str, float, float]] = []
    try:
        migrate.upgrade(owner_url)
        base = Settings(database_url=owner_url, encryption_keys=new_key(), secret_key=secrets.token_urlsafe(32),
                        log_level="WARNING", data_dir=ROOT / ".data" / "bench-broker")
        with ExitStack() as stack:
            urls = {"postgresql": None}
            if "redis" in kinds:
                urls["redis"] = stack.enter_context(redis_server()).url
            if "rabbitmq" in kinds:
                t = time.perf_counter()
                urls["rabbitmq"] = stack.enter_context(rabbitmq_server()).url
                log(f"RabbitMQ node up in {time.perf_counter() - t:.1f} s")
            for kind in kinds:
                settings = dataclasses.replace(base, broker_url=urls[kind])
                log(f"{kind}: {args.messages} jobs, {args.threads} worker threads")
                send_rate, e2e_rate = measure(settings, args.messages, args.threads)
                results.append((kind, send_rate, e2e_rate))
                log(f"{kind}: send {send_rate:,.0f} jobs/s, end to end {e2e_rate:,.0f} jobs/s")
    except RuntimeError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2
    finally:
        pg.cleanup()
    print()
    print(f"{'broker':<12} {'send jobs/s':>12} {'end to end jobs/s':>18}")
    for kind, send_rate, e2e_rate in results:
        print(f"{kind:<12} {send_rate:>12,.0f} {e2e_rate:>18,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
