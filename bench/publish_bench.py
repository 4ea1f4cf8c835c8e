"""Publishing benchmark: 10,000 variants due in the same minute, published by the real
`chorus scheduler` and `chorus worker` processes against the network sandbox (50 ms per call).

Run with `make bench-publish` (or `.venv/bin/python bench/publish_bench.py --help`). It starts
its own embedded PostgreSQL under .data/bench-publish, migrates it, seeds the demo agency,
serves the network sandbox in a subprocess on 127.0.0.1, links sandbox accounts through their
OAuth, then for each broker (PostgreSQL, the default; then RabbitMQ, a private server) starts
the scheduler and the workers exactly as `chorus scheduler` / `chorus worker` run in
production (settings from CHORUS_* variables only), writes the due variants with owner SQL and
measures, from the database, how late after its due time each one was published. See
bench/README.md.

Exit codes: 0 PASS, 1 FAIL (a target missed), 2 errors (setup failed, a variant failed or was
sent twice).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import api_bench as ab  # noqa: E402 - the shared machinery, next to this file

BENCH_DIR = ROOT / ".data" / "bench-publish"
PGDATA = BENCH_DIR / "pg"
DATABASE = "chorus_bench_publish"
HOST = "127.0.0.1"
CHORUS = Path(sys.executable).parent / "chorus"
NETWORKS = {"x": None, "facebook": "page", "linkedin": "organization"}

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


class BenchError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"• {message}", flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


class Procs:
    """Child processes (own process groups), their logs, and their CPU seconds."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = open(BENCH_DIR / f"{name}.log", "w")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.running.append((name, proc))
        return proc

    def wait_line(self, name: str, needle: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        path = BENCH_DIR / f"{name}.log"
        proc = dict(self.running)[name]
        while time.monotonic() < deadline:
            if path.exists() and needle in path.read_text(errors="replace"):
                return
            if proc.poll() is not None:
                raise BenchError(f"{name} exited ({proc.returncode}):\n{self.tail(name)}")
            time.sleep(0.2)
        raise BenchError(f"{name} did not say {needle!r} within {timeout:.0f}s:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        path = BENCH_DIR / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def cpu(self) -> dict[str, float]:
        import psutil

        out: dict[str, float] = {}
        for name, proc in self.running:
            try:
                t = psutil.Process(proc.pid).cpu_times()
                out[name] = t.user + t.system
            except psutil.Error:
                pass
        return out

    def stop(self, names: list[str] | None = None) -> None:
        chosen = [(n, p) for n, p in self.running if names is None or n in names]
        for _, proc in chosen:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        for _, proc in chosen:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.running = [(n, p) for n, p in self.running if (n, p) not in chosen]


def pg_cpu(server: Any) -> float:
    import psutil

    try:
        root = psutil.Process(server.get_pid())
    except Exception:  # noqa: BLE001 - best effort
        return float("nan")
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def setup_accounts(owner_url: str, settings: Any, sandbox: str, per_network: int) -> tuple[str, str, list]:
    from sqlalchemy import text

    from domain.core.db import create_engine
    from domain.core.settings import to_asyncpg
    from domain.networks.adapters.base import Network
    from tests.publishing_load import link_accounts

    engine = create_engine(to_asyncpg(owner_url), pool_size=2)
    try:
        async with engine.connect() as conn:
            agency_id, brand_id = (await conn.execute(text(
                "SELECT agency_id::text, id::text FROM brands ORDER BY created_at LIMIT 1"))).one()
        accounts = []
        for network, kind in NETWORKS.items():
            accounts.append(await link_accounts(engine, settings.vault(), sandbox, agency_id=agency_id,
                                                brand_id=brand_id, network=Network(network), kind=kind,
                                                count=per_network, prefix="bench"))
        return agency_id, brand_id, [a for group in zip(*accounts) for a in group]
    finally:
        await engine.dispose()


async def seed(owner_url: str, agency_id: str, brand_id: str, accounts: list, count: int, start: datetime,
               spread: float, marker: str) -> list[str]:
    from domain.core.db import create_engine
    from domain.core.settings import to_asyncpg
    from tests.publishing_load import seed_due_posts

    engine = create_engine(to_asyncpg(owner_url), pool_size=2)
    try:
        due = [start + timedelta(seconds=spread * i / count) for i in range(count)]
        texts = await seed_due_posts(engine, agency_id=agency_id, brand_id=brand_id, accounts=accounts, count=count,
                                     marker=marker, due_at=due)
        return list(texts)
    finally:
        await engine.dispose()


async def progress(owner_url: str, marker: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch("SELECT v.status, count(*) FROM post_variants v WHERE v.text LIKE $1 GROUP BY 1",
                                f"{marker}-%")
        return {r[0]: r[1] for r in rows}
    finally:
        await conn.close()


async def results(owner_url: str, marker: str) -> list[tuple[str, float | None, str | None, float | None]]:
    import asyncpg

    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch(
            "SELECT v.status, extract(epoch FROM v.published_at - p.scheduled_at) AS late, v.external_id,"
            " extract(epoch FROM v.published_at) AS at"
            " FROM post_variants v JOIN posts p ON p.id = v.post_id WHERE v.text LIKE $1", f"{marker}-%")
        return [(r[0], float(r[1]) if r[1] is not None else None, r[2], float(r[3]) if r[3] is not None else None)
                for r in rows]
    finally:
        await conn.close()


async def attempt_outcomes(owner_url: str, marker: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch(
            "SELECT coalesce(a.error->>'code', a.outcome), count(*) FROM publish_attempts a"
            " JOIN post_variants v ON v.id = a.variant_id WHERE v.text LIKE $1 GROUP BY 1", f"{marker}-%")
        return {r[0]: r[1] for r in rows}
    finally:
        await conn.close()


def sandbox_call(base: str, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    r = httpx.request(method, f"{base}{path}", timeout=30, **kwargs)
    if r.status_code >= 400:
        raise BenchError(f"sandbox {method} {path}: {r.status_code} {r.text[:300]}")
    return r.json() if r.content else None


def run_once(label: str, *, env: dict[str, str], owner_url: str, pg_server: Any, sandbox: str, settings: Any,
             args: argparse.Namespace, procs: Procs) -> tuple[bool, list[str]]:
    print(f"\n=== {label} ===", flush=True)
    started = time.monotonic()
    # Fresh accounts for each run: X's 15-minute quota (which Chorus keeps) must not carry over.
    agency_id, brand_id, accounts = asyncio.run(setup_accounts(owner_url, settings, sandbox, args.accounts))
    log(f"{len(accounts)} accounts linked through the sandbox's OAuth ({time.monotonic() - started:.1f}s)")
    sandbox_call(sandbox, "DELETE", "/_sandbox/calls")
    names = ["scheduler"] + [f"worker{i + 1}" for i in range(args.workers)]
    procs.start("scheduler", [str(CHORUS), "scheduler"], env)
    for name in names[1:]:
        procs.start(name, [str(CHORUS), "worker"], env)
    try:
        procs.wait_line("scheduler", "scheduler running")
        for name in names[1:]:
            procs.wait_line(name, "worker running")
        log(f"scheduler and {args.workers} worker process(es) running")
        marker = f"bench{uuid.uuid4().hex[:8]}"
        start = datetime.now(UTC) + timedelta(seconds=args.lead)
        started = time.monotonic()
        asyncio.run(seed(owner_url, agency_id, brand_id, accounts, args.variants, start, args.spread, marker))
        log(f"{args.variants} variants written ({time.monotonic() - started:.1f}s), due from "
            f"{start:%H:%M:%S} over {args.spread:g}s, on {len(accounts)} accounts")
        cpu0, pg0, t0 = procs.cpu(), pg_cpu(pg_server), time.monotonic()
        deadline = start + timedelta(seconds=args.spread + args.timeout)
        last = 0.0
        while True:
            counts = asyncio.run(progress(owner_url, marker))
            done = counts.get("published", 0) + counts.get("failed", 0)
            now = datetime.now(UTC)
            if time.monotonic() - last >= 5 or done == args.variants:
                last = time.monotonic()
                log(f"t={(now - start).total_seconds():+6.1f}s after the first due time: {counts}")
            if done == args.variants or now > deadline:
                break
            time.sleep(1)
        wall = time.monotonic() - t0
        cpu1, pg1 = procs.cpu(), pg_cpu(pg_server)
    finally:
        procs.stop(names)
    rows = asyncio.run(results(owner_url, marker))
    calls = sandbox_call(sandbox, "GET", "/_sandbox/calls", params={"kind": "publish"})["count"]
    published = [late for status, late, _, _ in rows if status == "published" and late is not None]
    instants = [at for status, _, _, at in rows if status == "published" and at is not None]
    failed = sum(1 for row in rows if row[0] == "failed")
    pending = len(rows) - len(published) - failed
    ids = [row[2] for row in rows if row[0] == "published"]
    lines = []
    cpu = {n: cpu1.get(n, 0) - cpu0.get(n, 0) for n in cpu1}
    workers_cpu = sum(v for n, v in cpu.items() if n.startswith("worker"))
    print(f"  cpu while publishing ({wall:.0f}s wall): workers {100 * workers_cpu / wall:.0f}%, scheduler "
          f"{100 * cpu.get('scheduler', 0) / wall:.0f}%, sandbox {100 * cpu.get('sandbox', 0) / wall:.0f}%, "
          f"postgresql {100 * (pg1 - pg0) / wall:.0f}% (of one core)")
    print(f"  sandbox publish calls: {calls}; published variants: {len(published)}; failed: {failed}; "
          f"not settled: {pending}; distinct external ids: {len(set(ids))}")
    outcomes = asyncio.run(attempt_outcomes(owner_url, marker))
    print(f"  attempts by outcome: {outcomes}")
    ok = not pending  # still waiting at the timeout: slow, not wrong
    if failed or calls < len(published) or len(set(ids)) != len(ids):
        ok = False
        lines.append(f"{label}: ERROR - failed {failed}, {calls} publish calls for {len(published)} published "
                     f"variants, {len(ids) - len(set(ids))} external ids repeated")
    if pending:
        lines.append(f"{label}: {pending} variants were not published {args.timeout:g}s after the last due time")
    if published:
        p50, p99, worst = statistics.median(published), pct(published, 0.99), max(published)
        throughput = len(instants) / max(1e-9, max(instants) - min(instants))
        print(f"  lateness after the due time: p50 {p50:.1f}s  p90 {pct(published, 0.9):.1f}s  p99 {p99:.1f}s  "
              f"max {worst:.1f}s  (min {min(published):.1f}s)")
        print(f"  throughput: {throughput:.0f} variants/s from the first publish to the last "
              f"({max(instants) - min(instants):.1f}s)")
        verdict = worst <= 60 and p50 < 10 and ok
        lines.append(f"{label}: {len(published)}/{args.variants} published at {throughput:.0f}/s, lateness p50 "
                     f"{p50:.1f}s, p99 {p99:.1f}s, max {worst:.1f}s; target every one within 60 s and p50 < 10 s: "
                     f"{'PASS' if verdict else 'FAIL'}")
        return verdict, lines
    return False, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=10_000, help="due variants (10000)")
    parser.add_argument("--spread", type=float, default=60.0,
                        help="their due times are spread evenly over this many seconds: 60 = one minute (0 = all "
                             "due at the same instant)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="sandbox latency per provider call (50)")
    parser.add_argument("--accounts", type=int, default=40,
                        help="sandbox accounts per network, X/Facebook/LinkedIn (40: X allows 100 posts per 15 min each)")
    parser.add_argument("--workers", type=int, default=1, help="`chorus worker` processes (1)")
    parser.add_argument("--threads", type=int, default=16,
                        help="CHORUS_WORKER_THREADS of each worker: jobs in flight per process (16)")
    parser.add_argument("--brokers", default="postgresql,rabbitmq",
                        help="comma-separated: postgresql (default broker), rabbitmq (a private server)")
    parser.add_argument("--lead", type=float, default=5.0, help="seconds from seeding to the first due time (5)")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="stop waiting this long after the last due time (180)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a CHORUS_* setting for the scheduler and workers (repeatable), e.g. "
                             "--set CHORUS_WORKER_THREADS=8")
    args = parser.parse_args(argv)
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    if any(b not in ("postgresql", "rabbitmq") for b in brokers) or not brokers:
        parser.error("--brokers takes postgresql and/or rabbitmq")

    def on_sigterm(signum: int, frame: Any) -> None:
        raise SystemExit(EXIT_ERROR)

    signal.signal(signal.SIGTERM, on_sigterm)
    print("Chorus publishing benchmark")
    for line in ab.machine_info():
        print(f"  {line}")
    print(f"  load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  plan: {args.variants} variants due over {args.spread:g}s, sandbox latency {args.latency_ms:g} ms per "
          f"call, {args.workers} worker process(es) x {args.threads} threads, brokers: {', '.join(brokers)}")
    print(flush=True)

    procs = Procs()
    pg_server = None
    code = EXIT_ERROR
    try:
        if BENCH_DIR.exists():
            ab.stop_stale_postgres(PGDATA)
            shutil.rmtree(BENCH_DIR)
        BENCH_DIR.mkdir(parents=True)
        from cryptography.fernet import Fernet

        from domain.core import embedded_db, migrate
        from domain.core.settings import Settings, get_settings
        from domain.seed import seed_demo

        started = time.monotonic()
        pg_server, owner_url = embedded_db.start(PGDATA, database=DATABASE)
        log(f"embedded PostgreSQL up ({time.monotonic() - started:.1f}s)")
        migrate.upgrade(owner_url)
        port = ab.free_port()
        sandbox = f"http://{HOST}:{port}"
        base_env = {
            "CHORUS_DATABASE_URL": owner_url, "CHORUS_SECRET_KEY": secrets.token_urlsafe(48),
            "CHORUS_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "CHORUS_LOG_LEVEL": "WARNING",
            "CHORUS_DATA_DIR": str(BENCH_DIR), "CHORUS_NETWORK_SANDBOX_URL": sandbox,
            "CHORUS_WORKER_THREADS": str(args.threads),
        }
        for item in args.set:
            name, _, value = item.partition("=")
            if not name.startswith("CHORUS_") or not _:
                parser.error(f"--set takes CHORUS_NAME=value, not {item!r}")
            base_env[name] = value
        for name in [n for n in os.environ if n.startswith("CHORUS_")]:
            del os.environ[name]  # the developer's own settings must not leak into the bench
        os.environ.update(base_env)
        get_settings.cache_clear()
        settings = Settings.from_env()
        asyncio.run(seed_demo(settings))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
        env.update(base_env)
        env["PYTHONUNBUFFERED"] = "1"
        procs.start("sandbox", [sys.executable, "-m", "uvicorn", "api.sandbox.app:create_sandbox_app", "--factory",
                                "--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log"], env)
        deadline = time.monotonic() + 60
        while True:
            try:
                sandbox_call(sandbox, "GET", "/_sandbox/clock")
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise BenchError(f"the sandbox did not start:\n{procs.tail('sandbox')}") from None
                time.sleep(0.2)
        for network in NETWORKS:
            sandbox_call(sandbox, "POST", "/_sandbox/config", json={"network": network, "publish": {
                "latency_ms": args.latency_ms, "rate_limit": 1_000_000, "duplicate_window_seconds": 0}})
        log(f"sandbox on {sandbox} ({args.latency_ms:g} ms per call)")
        shown = {k: v for k, v in base_env.items() if k not in ("CHORUS_SECRET_KEY", "CHORUS_ENCRYPTION_KEYS",
                                                                "CHORUS_DATABASE_URL")}
        log(f"settings of the scheduler and workers: {shown} (others: defaults)")
        verdicts, lines = [], []
        for broker in brokers:
            with ExitStack() as stack:
                run_env = dict(env)
                if broker == "rabbitmq":
                    from workers.local_servers import rabbitmq_server

                    started = time.monotonic()
                    rabbit = stack.enter_context(rabbitmq_server())
                    run_env["CHORUS_BROKER_URL"] = rabbit.url
                    log(f"private RabbitMQ up on {rabbit.url} ({time.monotonic() - started:.1f}s)")
                else:
                    stack.enter_context(nullcontext())
                label = "PostgreSQL broker (default)" if broker == "postgresql" else "RabbitMQ broker"
                ok, out = run_once(label, env=run_env, owner_url=owner_url, pg_server=pg_server, sandbox=sandbox,
                                   settings=settings, args=args, procs=procs)
                verdicts.append(ok)
                lines += out
        print()
        for line in lines:
            print(line)
        print(f"load average at the end (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        errors = any("ERROR" in line for line in lines)
        code = EXIT_ERROR if errors else EXIT_PASS if all(verdicts) else EXIT_FAIL
        print("publishing benchmark:", "PASS" if code == EXIT_PASS else "FAIL")
    except BenchError as err:
        print(f"\nbenchmark error: {err}", file=sys.stderr)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        code = EXIT_ERROR
    finally:
        procs.stop()
        if pg_server is not None:
            try:
                pg_server.cleanup()
            except Exception:  # noqa: BLE001
                pass
        ab.stop_stale_postgres(PGDATA)
        shutil.rmtree(BENCH_DIR, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
