"""Calendar benchmark: GET /v1/calendar for one brand-quarter of 1,000 posts with 3 variants
each, against the `SELECT 1` ceiling, in one run.

Run with `make bench-calendar` (or `.venv/bin/python bench/calendar_bench.py --help`). It
reuses bench/api_bench.py's machinery: its own embedded PostgreSQL (under
.data/bench-calendar-pg), the API served by one uvicorn worker on 127.0.0.1, and `wrk` when
installed, else the asyncio keep-alive client. See bench/README.md.

Exit codes: 0 PASS (p99 under the target), 1 FAIL, 2 errors (non-200 responses, setup failure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, time as clock, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_bench as ab  # noqa: E402 - the shared machinery, next to this file

ab.BENCH_DIR = ab.ROOT / ".data" / "bench-calendar-pg"
ab.PGDATA = ab.BENCH_DIR / "pg"
ab.SERVER_LOG = ab.BENCH_DIR / "server.log"

POSTS = 1_000
VARIANTS = ("x", "instagram", "facebook")
IDEAS = 50
CONNECTIONS = 16
TARGET_P99_MS = 100.0
ZONE = ZoneInfo("Europe/Madrid")
# A busy brand's week: X three times on weekdays, Instagram and Facebook once a day.
SLOTS = ([("x", d, t) for d in range(1, 6) for t in ("09:00", "13:30", "19:00")]
         + [("instagram", d, "12:00") for d in range(1, 8)] + [("facebook", d, "18:00") for d in range(1, 8)])


class GzipEndpoint(ab.Endpoint):
    """A request as a browser sends it: Accept-Encoding: gzip."""

    def request_bytes(self, port: int) -> bytes:
        return super().request_bytes(port).replace(b"\r\n\r\n", b"\r\nAccept-Encoding: gzip\r\n\r\n", 1)


def next_quarter(today: date) -> tuple[date, date]:
    from domain.calendar.rules import View, view_range

    return view_range(View.QUARTER, view_range(View.QUARTER, today)[1] + timedelta(days=1))


async def seed_plan(owner_url: str, brand_id: str, campaign_id: str | None, first: date, last: date) -> dict[str, int]:
    """1,000 posts x 3 variants spread over the quarter (08:00-21:45 Madrid, 15-minute steps),
    50 ideas without a time, and the weekly slots: inserted in bulk as the owner role."""
    from sqlalchemy import insert, text

    from domain.calendar.models import PostingSlot
    from domain.content.models import Post, PostVariant
    from domain.core.db import create_engine
    from domain.core.settings import to_asyncpg
    from domain.networks.models import SocialAccount

    rng = random.Random(20270101)
    engine = create_engine(to_asyncpg(owner_url), pool_size=1)
    stamp = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            agency_id = (await conn.execute(text("SELECT agency_id FROM brands WHERE id = :b"), {"b": brand_id})).scalar()
            accounts = {}
            for network in VARIANTS:
                account_id = uuid.uuid4()
                accounts[network] = account_id
                await conn.execute(insert(SocialAccount.__table__).values(
                    id=account_id, agency_id=agency_id, brand_id=brand_id, network=network,
                    external_id=uuid.uuid4().hex[:12], account_kind="profile", handle=f"sol_{network}",
                    display_name="Panadería Sol", scopes=[], status="connected", details={}, version=1,
                    created_at=stamp, updated_at=stamp, connected_at=stamp))
            await conn.execute(insert(PostingSlot.__table__), [
                {"id": uuid.uuid4(), "agency_id": agency_id, "brand_id": brand_id, "network": n, "weekday": d,
                 "local_time": clock.fromisoformat(t), "created_at": stamp, "updated_at": stamp} for n, d, t in SLOTS])
            days = (last - first).days + 1
            posts: list[dict[str, Any]] = []
            variants: list[dict[str, Any]] = []
            for i in range(POSTS + IDEAS):
                post_id = uuid.uuid4()
                scheduled = None
                if i < POSTS:
                    day = first + timedelta(days=rng.randrange(days))
                    local = datetime.combine(day, clock(rng.randrange(8, 22), rng.choice((0, 15, 30, 45))), tzinfo=ZONE)
                    scheduled = local.astimezone(UTC)
                status = rng.choice(("draft", "draft", "scheduled", "scheduled", "in_review", "approved"))
                if scheduled is None:
                    status = "draft"
                broken = rng.random() < 0.05
                posts.append({
                    "id": post_id, "agency_id": agency_id, "brand_id": brand_id,
                    "campaign_id": campaign_id if rng.random() < 0.3 else None, "title": f"Post {i + 1}: roscón del día",
                    "labels": rng.sample(["roscon", "navidad", "launch", "promo", "receta"], k=rng.randrange(0, 3)),
                    "scheduled_at": scheduled, "time_zone": "Europe/Madrid", "status": status, "revision": 1,
                    "content_hash": secrets.token_hex(32), "version": 1, "created_at": stamp, "updated_at": stamp})
                for position, network in enumerate(VARIANTS):
                    issues = ([{"rule": "text_too_long", "field": "text", "message": "x: 297 of 280 weighted characters",
                                "severity": "error", "count": 297, "limit": 280}]
                              if broken and network == "x" else [])
                    variants.append({
                        "id": uuid.uuid4(), "agency_id": agency_id, "post_id": post_id,
                        "social_account_id": accounts[network], "network": network, "position": position,
                        "text": f"Roscón de Reyes recién hecho, pedido {i} para {network}. " * 3, "options": {},
                        "status": status, "content_hash": secrets.token_hex(32), "issues": issues,
                        "created_at": stamp, "updated_at": stamp})
            await conn.execute(insert(Post.__table__), posts)
            await conn.execute(insert(PostVariant.__table__), variants)
        # A database in use has been vacuumed and analysed long since; without this autovacuum
        # would do it in the middle of the first measurement.
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("posts", "post_variants", "posting_slots", "social_accounts"):
                await conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    finally:
        await engine.dispose()
    return {"posts": POSTS, "variants": POSTS * len(VARIANTS), "ideas": IDEAS, "slots": len(SLOTS)}


def gzip_size(port: int, path: str, token: str) -> int:
    """The compressed answer's size; also checks that it is gzip and decodes to the same JSON."""
    import gzip
    import http.client

    conn = http.client.HTTPConnection(ab.HOST, port, timeout=15)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"})
        response = conn.getresponse()
        raw = response.read()
        if response.status != 200 or response.getheader("Content-Encoding") != "gzip":
            raise ab.BenchError(f"GET {path} with Accept-Encoding: gzip: HTTP {response.status}, "
                                f"Content-Encoding {response.getheader('Content-Encoding')!r}")
        json.loads(gzip.decompress(raw))
        return len(raw)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per endpoint per round (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each measurement (2)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over both endpoints (2)")
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help=f"concurrent requests ({CONNECTIONS})")
    parser.add_argument("--target-p99", type=float, default=TARGET_P99_MS, help="p99 target in ms (100)")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--pool-size", type=int, default=None,
                        help="CHORUS_DB_POOL_SIZE for the API (default: --connections, so no request waits for a "
                             "new PostgreSQL connection; the app's default is 10 plus 10 overflow, opened and "
                             "closed on demand)")
    parser.add_argument("--profile-server", type=Path, metavar="OUT.prof",
                        help="run the API under cProfile and write its stats here (slows it; for diagnosis only)")
    args = parser.parse_args(argv)
    if args.profile_server:
        args.profile_server = args.profile_server.resolve()
    if args.duration <= 0 or args.warmup < 0 or args.rounds < 1 or args.connections < 1:
        parser.error("--duration > 0, --warmup >= 0, --rounds >= 1 and --connections >= 1 please")
    wrk = shutil.which("wrk") if args.generator in ("auto", "wrk") else None
    if args.generator == "wrk" and not wrk:
        parser.error("--generator wrk, but wrk is not on PATH")

    def on_sigterm(signum: int, frame: Any) -> None:
        raise SystemExit(ab.EXIT_ERROR)

    signal.signal(signal.SIGTERM, on_sigterm)
    print("Chorus calendar benchmark")
    for line in ab.machine_info():
        print(f"  {line}")
    print(f"  load generator: {f'wrk ({wrk}, 1 thread)' if wrk else 'built-in python asyncio client'}")
    print(f"  plan: {args.rounds} rounds x 3 endpoints, {args.connections} connections, "
          f"{args.warmup:g}s warm-up + {args.duration:g}s measured each, "
          f"DB pool {args.pool_size or args.connections} per API process")
    print(flush=True)

    pg_server = None
    proc: subprocess.Popen[bytes] | None = None
    code = ab.EXIT_ERROR
    try:
        ab.reset_bench_dir()
        from domain.core import embedded_db

        started = time.monotonic()
        pg_server, owner_url = embedded_db.start(ab.PGDATA, database=ab.DATABASE)
        ab.log(f"embedded PostgreSQL up in {ab.PGDATA} ({time.monotonic() - started:.1f}s)")
        planned = args.rounds * 3 * (args.warmup + args.duration + 5)
        env, info = ab.seed_and_env(secrets.token_urlsafe(48), owner_url, token_ttl=int(max(900, 2 * planned + 600)))
        env["CHORUS_DB_POOL_SIZE"] = str(args.pool_size or args.connections)
        first, last = next_quarter(datetime.now(ZONE).date())
        started = time.monotonic()
        counts = asyncio.run(seed_plan(owner_url, info["brand_id"], None, first, last))
        ab.log(f"seeded {counts['posts']} posts x {len(VARIANTS)} variants over {first}..{last}, {counts['ideas']} "
               f"ideas, {counts['slots']} weekly slots ({time.monotonic() - started:.1f}s)")

        port = ab.free_port()
        proc = ab.start_server(port, env, args.profile_server)
        ab.log(f"API starting: uvicorn on http://{ab.HOST}:{port}, 1 worker (pid {proc.pid})")
        ab.log(f"GET /readyz answered 200 after {ab.wait_ready(proc, port):.1f}s")
        jwt = ab.sign_in(port, info["email"], info["password"])
        path = f"/v1/calendar?brand_id={info['brand_id']}&view=quarter&date={first.isoformat()}"
        endpoints = [
            ab.Endpoint("ceiling", "ceiling: GET /bench/select1", "/bench/select1"),
            GzipEndpoint("calendar", "GET /v1/calendar quarter (gzip)", path, jwt),
            ab.Endpoint("calendar_plain", "GET /v1/calendar quarter (identity)", path, jwt),
        ]
        status, body = ab.http_call(port, "GET", path, token=jwt)
        data = ab.expect(status, body, (200,), f"GET {path}")
        shown = [p for d in data["days"] for p in d["posts"]]
        slots = sum(len(d["slots"]) for d in data["days"])
        if len(shown) != POSTS or any(len(p["variants"]) != len(VARIANTS) for p in shown):
            raise ab.BenchError(f"the calendar should show {POSTS} posts with {len(VARIANTS)} variants each: "
                                f"{len(shown)} posts")
        ab.log(f"the quarter answers 200: {len(data['days'])} days, {len(shown)} posts, {slots} slots, "
               f"{len(data['conflicts'])} conflicts, {len(data['unscheduled'])} ideas, {len(body) / 1024:.0f} KiB")
        sizes = {"ceiling": len(ab.http_call(port, "GET", "/bench/select1")[1]), "calendar_plain": len(body),
                 "calendar": gzip_size(port, path, jwt)}

        meter = ab.CpuMeter(proc.pid, pg_server.get_pid())
        script: Path | None = None
        if wrk:
            script = ab.BENCH_DIR / "count_status.lua"
            script.write_text(ab.WRK_LUA)
        results: dict[str, list[ab.RunResult]] = {ep.key: [] for ep in endpoints}
        print()
        for round_no in range(args.rounds):
            order = endpoints if round_no % 2 == 0 else list(reversed(endpoints))
            for ep in order:
                if proc.poll() is not None:
                    raise ab.BenchError(f"the API process died (code {proc.returncode}):\n{ab.server_log_tail()}")
                if wrk:
                    res = ab.run_wrk(wrk, script, port, ep, args.connections, args.warmup, args.duration, meter)  # type: ignore[arg-type]
                else:
                    res = ab.run_python(port, ep, args.connections, args.warmup, args.duration, meter)
                results[ep.key].append(res)
                errors = f", ERRORS {res.errors}" if res.errors else ""
                print(f"  round {round_no + 1}  {ep.label:<34} {res.rps:8.0f} req/s  p50 {ab.fmt_ms(res.p50_ms).strip()} ms"
                      f"  p99 {ab.fmt_ms(res.p99_ms).strip()} ms  (api {res.cpu_server:.0f}% pg {res.cpu_pg:.0f}% "
                      f"gen {res.cpu_gen:.0f}%){errors}", flush=True)
                for sample in res.error_samples:
                    print(f"      e.g. {sample}")

        ab.report(endpoints, results, sizes, 0.0, "calendar")
        ceiling = statistics.mean(r.rps for r in results["ceiling"])
        total_errors = sum(r.error_count for runs in results.values() for r in runs)
        print()
        if total_errors:
            print(f"ERROR: {total_errors} requests failed (non-200 or socket errors); the numbers are not valid.")
        else:
            print("No errors: every counted response was HTTP 200.")
        verdicts = {}
        for key, what in (("calendar", "gzip, as browsers ask"), ("calendar_plain", "identity")):
            runs = results[key]
            rps = statistics.mean(r.rps for r in runs)
            p50 = statistics.median(r.p50_ms for r in runs if r.p50_ms is not None)
            p99 = max((r.p99_ms for r in runs if r.p99_ms is not None), default=float("inf"))
            verdicts[key] = p99 < args.target_p99
            print(f"calendar quarter ({what}): {rps:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                  f"{rps / ceiling:.3f} x ceiling ({ceiling:.0f} req/s), {args.connections} concurrent: "
                  f"p99 < {args.target_p99:.0f} ms {'PASS' if verdicts[key] else 'FAIL'}")
        code = ab.EXIT_ERROR if total_errors else (ab.EXIT_PASS if verdicts["calendar"] else ab.EXIT_FAIL)
        print(f"calendar quarter p99 (gzip) < {args.target_p99:.0f} ms: {'PASS' if verdicts['calendar'] else 'FAIL'}")
    except ab.BenchError as err:
        print(f"\nERROR: {err}", file=sys.stderr)
        code = ab.EXIT_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    finally:
        ab.stop_server(proc, profiling=bool(args.profile_server))
        if pg_server is not None:
            try:
                pg_server.cleanup()
            except Exception as err:  # noqa: BLE001
                print(f"warning: stopping PostgreSQL failed: {err!r}", file=sys.stderr)
        if ab.BENCH_DIR.exists():
            shutil.rmtree(ab.BENCH_DIR, ignore_errors=True)
        print(f"• cleaned up: API process stopped, PostgreSQL stopped, {ab.BENCH_DIR.relative_to(ab.ROOT)} removed",
              flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
