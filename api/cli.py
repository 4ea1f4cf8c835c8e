"""The `chorus` command: run, worker, scheduler, db upgrade, seed, openapi."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from pathlib import Path

from domain.core.settings import ROOT, Settings, get_settings


def _ensure_database(settings: Settings) -> Settings:
    """With no CHORUS_DATABASE_URL, start the embedded PostgreSQL and point at it."""
    if settings.database_url:
        return settings
    from domain.core import embedded_db

    _, url = embedded_db.start(settings.data_dir / "pg")
    os.environ["CHORUS_DATABASE_URL"] = url
    print(f"• embedded PostgreSQL running (data in {settings.data_dir / 'pg'})")
    return _reload()


def _ensure_secret(settings: Settings) -> Settings:
    """Development only: keep a signing secret and a vault key in the data folder."""
    from domain.core.crypto import new_key

    for variable, filename, make in (
        ("CHORUS_SECRET_KEY", "secret.key", lambda: secrets.token_urlsafe(48)),
        ("CHORUS_ENCRYPTION_KEYS", "encryption.keys", new_key),
    ):
        if os.environ.get(variable):
            continue
        path = settings.data_dir / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(make())
            path.chmod(0o600)
        os.environ[variable] = path.read_text().strip()
    return _reload()


def cmd_keys_new() -> None:
    from domain.core.crypto import new_key

    print(new_key())


def cmd_keys_rotate(settings: Settings) -> None:
    from domain.core.keys import rotate_all

    counts = asyncio.run(rotate_all(settings))
    unreadable = counts.pop("unreadable", 0)
    total = sum(counts.values())
    print(f"• re-encrypted {total} secret(s) under key {settings.vault().current_id}")
    for name, count in sorted(counts.items()):
        print(f"    {name}: {count}")
    if unreadable:
        print(f"• {unreadable} secret(s) were made with a key that is no longer configured; add it back and rerun")
        raise SystemExit(1)


def _reload() -> Settings:
    get_settings.cache_clear()
    return get_settings()


def cmd_db_upgrade(settings: Settings, revision: str = "head") -> None:
    from domain.core import migrate

    migrate.upgrade(settings.owner_url(), revision)
    print(f"• database migrated to {revision}")


def cmd_seed(settings: Settings) -> None:
    from domain.seed import seed_demo

    info = asyncio.run(seed_demo(settings))
    print("• demo data ready")
    print(f"    sign in:  POST /v1/auth/token  {{\"email\": \"{info['email']}\", \"password\": \"{info['password']}\"}}")
    print(f"    API key:  Authorization: Bearer {info['api_key']}")
    print(f"    brand:    {info['brand_name']} ({info['brand_id']})")


def cmd_openapi(settings: Settings, out: Path) -> None:
    from api.app import create_app

    document = create_app(settings).openapi_schema.to_schema()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"• wrote {out}")


def _with_sandbox(settings: Settings) -> Settings:
    """With no network app configured, `chorus run` serves the network sandbox itself and
    points every adapter at it, so linking works on a machine with no internet."""
    # Providers send people back to this very server.
    os.environ.setdefault("CHORUS_API_BASE_URL", f"http://{settings.host}:{settings.port}")
    if settings.network_sandbox_url or settings.network_apps:
        return _reload()
    os.environ["CHORUS_MOUNT_SANDBOX"] = "1"
    os.environ["CHORUS_NETWORK_SANDBOX_URL"] = f"http://{settings.host}:{settings.port}/sandbox"
    return _reload()


def cmd_worker(settings: Settings, threads: int | None = None) -> None:
    import signal
    import threading

    from domain.core import logs
    from workers.broker import InProcessWorker

    logs.configure(settings.log_level, settings.log_json)
    worker = InProcessWorker(settings, threads)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    worker.start()
    queues = ", ".join(sorted(worker.broker.get_declared_queues()))
    print(f"• worker running ({threads or settings.worker_threads} threads; queues: {queues}); Ctrl-C stops it")
    try:
        stopping.wait()
    finally:
        worker.stop()
        print("• worker stopped")


def cmd_scheduler(settings: Settings) -> None:
    import signal
    import threading

    from domain.core import logs
    from workers.scheduler import Scheduler

    logs.configure(settings.log_level, settings.log_json)
    scheduler = Scheduler(settings)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    scheduler.start()
    sweeps = ", ".join(f"{name}" for name in scheduler.names) or "none"
    print(f"• scheduler running (sweeps: {sweeps}); Ctrl-C stops it")
    try:
        stopping.wait()
    finally:
        scheduler.stop()
        print("• scheduler stopped")


def cmd_run(settings: Settings, reload_code: bool = False) -> None:
    import uvicorn

    from api.app import create_app

    settings = _with_sandbox(settings)
    cmd_db_upgrade(settings)
    cmd_seed(settings)
    # The worker and the scheduler run in this process beside the API: one command, one Ctrl-C.
    from workers.broker import InProcessWorker
    from workers.scheduler import Scheduler

    worker = InProcessWorker(settings)
    worker.start()
    print(f"• worker running beside the API ({settings.worker_threads} threads)")
    scheduler = Scheduler(settings, broker=worker.broker)
    scheduler.start()
    print(f"• scheduler running beside the API (sweeps: {', '.join(scheduler.names) or 'none'})")
    base = f"http://{settings.host}:{settings.port}"
    print(f"• Chorus API on {base}   docs: {base}/docs   OpenAPI: {base}/docs/openapi.json")
    if settings.mount_sandbox:
        print(f"• network sandbox at {base}/sandbox: linking an account signs in as a sandbox test user")
    if not settings.smtp_url:
        print(f"• emails (invitations, notifications) are written to {settings.data_dir / 'outbox'}; "
              "set CHORUS_SMTP_URL to send them")
    print("  Ctrl-C stops everything this command started.")
    try:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False)
    finally:
        scheduler.stop()
        worker.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="chorus", description="Chorus API")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="migrate, seed the demo agency, serve the API, run the worker and the scheduler")
    worker = sub.add_parser("worker", help="run the background jobs (dramatiq actors)")
    worker.add_argument("--threads", type=int, default=None, help="worker threads (default CHORUS_WORKER_THREADS)")
    sub.add_parser("scheduler", help="run the periodic sweeps (they send jobs to the workers)")
    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations to CHORUS_DATABASE_URL")
    up.add_argument("revision", nargs="?", default="head")
    sub.add_parser("seed", help="create the demo agency (idempotent)")
    keys = sub.add_parser("keys", help="vault keys for secrets at rest")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser("new", help="print a new key (put it first in CHORUS_ENCRYPTION_KEYS)")
    keys_sub.add_parser("rotate", help="re-encrypt every secret under the newest key")
    openapi = sub.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument("--out", type=Path, default=ROOT / "openapi" / "openapi.json")
    args = parser.parse_args(argv)

    settings = get_settings()
    if args.command == "keys" and args.keys_command == "new":
        cmd_keys_new()
        return
    if args.command == "openapi":
        # The document does not depend on the database or secrets.
        os.environ.setdefault("CHORUS_SECRET_KEY", "openapi-generation")
        os.environ.setdefault("CHORUS_ENCRYPTION_KEYS", "b3BlbmFwaS1nZW5lcmF0aW9uLW9ubHktMzItYnl0ZXM=")
        os.environ.setdefault("CHORUS_DATABASE_URL", "postgresql://unused@localhost/unused")
        cmd_openapi(_reload(), args.out)
        return
    settings = _ensure_secret(_ensure_database(settings))
    if args.command == "run":
        cmd_run(settings)
    elif args.command == "worker":
        cmd_worker(settings, args.threads)
    elif args.command == "scheduler":
        cmd_scheduler(settings)
    elif args.command == "db":
        cmd_db_upgrade(settings, args.revision)
    elif args.command == "seed":
        cmd_seed(settings)
    elif args.command == "keys":
        cmd_keys_rotate(settings)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
