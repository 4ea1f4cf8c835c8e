"""Private Redis and RabbitMQ servers on loopback, for tests and benchmarks.

    with redis_server() as redis:          # redis.url == "redis://127.0.0.1:PORT/0"
        ...
    with rabbitmq_server() as rabbit:      # rabbit.url == "amqp://guest:guest@127.0.0.1:PORT/%2F"
        ...

Each server runs from Debian's packages (`apt-get install redis-server rabbitmq-server`;
`make test` installs them as root) in a temporary folder of its own, on free loopback
ports, so parallel runs (several worktrees, CI) never collide: the RabbitMQ node has its
own node name, data and log folders, AMQP and distribution ports, Erlang cookie and a
private epmd (the Erlang port mapper) on a port of its own, which is stopped with it.
Nothing is left running when the `with` block ends, also when it ends by an exception.

Importable outside the test suite (bench/ uses it): it depends only on the standard library.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RABBITMQ_SBIN = Path("/usr/lib/rabbitmq/bin")  # Debian's scripts, without the su-to-rabbitmq wrapper


class ServerUnavailable(RuntimeError):
    """The server's program is not installed (the message says how to install it)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s{_tail(log)}")
        time.sleep(0.05)


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    return "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _stop_group(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the process group `proc` leads, SIGKILL it if it outlives `timeout`."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything of the group still there
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


# -- Redis ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisServer:
    port: int
    directory: Path
    pid: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.contextmanager
def redis_server(*, startup_timeout: float = 30.0) -> Iterator[RedisServer]:
    """A private redis-server on a free loopback port, no persistence, in a temp folder."""
    program = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(program).exists():
        raise ServerUnavailable("redis-server is not installed: apt-get install -y redis-server (or `make test` as root)")
    directory = Path(tempfile.mkdtemp(prefix="chorus-redis-"))
    log = directory / "redis.log"
    port = free_port()
    proc = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--logfile", str(log), "--protected-mode", "yes"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _wait_port(port, proc, startup_timeout, "redis-server", log)
        _redis_ping(port, startup_timeout)
        yield RedisServer(port, directory, proc.pid)
    finally:
        _stop_group(proc)
        shutil.rmtree(directory, ignore_errors=True)


def _redis_ping(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(64).startswith(b"+PONG"):
                return
        if time.monotonic() > deadline:
            raise TimeoutError("redis-server does not answer PING")
        time.sleep(0.05)


# -- RabbitMQ ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RabbitmqServer:
    port: int
    node: str
    directory: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run `rabbitmqctl -n NODE ARGS...` against this node (its cookie, its epmd)."""
        return subprocess.run([str(RABBITMQ_SBIN / "rabbitmqctl"), "-n", self.node, *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@contextlib.contextmanager
def rabbitmq_server(*, startup_timeout: float = 120.0) -> Iterator[RabbitmqServer]:
    """A private RabbitMQ node on free loopback ports, its data and logs in a temp folder.

    Started in the foreground as our child (its own process group), waited for with
    `rabbitmqctl await_startup`, stopped with `rabbitmqctl stop`, and its private epmd with
    `epmd -kill` on that epmd's port; whatever is left of the group is killed."""
    if not (RABBITMQ_SBIN / "rabbitmq-server").exists():
        raise ServerUnavailable(
            "rabbitmq-server is not installed: apt-get install -y rabbitmq-server (or `make test` as root)")
    directory = Path(tempfile.mkdtemp(prefix="chorus-rabbitmq-"))
    os.chmod(directory, 0o700)
    name = f"chorus{os.getpid()}{secrets.token_hex(3)}"
    node = f"{name}@localhost"
    port, dist_port, epmd_port = free_port(), free_port(), free_port()
    for sub in ("mnesia", "log", "home"):
        (directory / sub).mkdir()
    (directory / "rabbitmq-env.conf").write_text("")
    (directory / "enabled_plugins").write_text("[].\n")
    (directory / "rabbitmq.conf").write_text(
        "loopback_users.guest = true\n"
        # A test machine's disk may be nearly full: do not block publishers for it.
        "disk_free_limit.absolute = 1MB\n"
    )
    cookie = directory / "home" / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(16))
    os.chmod(cookie, 0o400)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
    env.update({
        "HOME": str(directory / "home"),
        "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_USE_LONGNAME": "false",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
        "RABBITMQ_LOG_BASE": str(directory / "log"),
        "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid"),
        "RABBITMQ_LOGS": str(directory / "log" / "rabbit.log"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_EPMD_PORT": str(epmd_port),
    })
    out = directory / "server.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen([str(RABBITMQ_SBIN / "rabbitmq-server")], env=env, cwd=directory,
                                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = RabbitmqServer(port, node, directory, env)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {proc.returncode}{_tail(out)}{_tail(directory / 'log' / 'rabbit.log')}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"RabbitMQ did not start within {startup_timeout:.0f} s{_tail(out)}")
            try:
                done = server.ctl("-q", "await_startup", "--timeout", str(max(5, int(remaining))),
                                  timeout=remaining + 10)
            except subprocess.TimeoutExpired:
                continue
            if done.returncode == 0:
                break
            time.sleep(0.5)  # the node is not up enough to be asked yet
        _wait_port(port, proc, max(5.0, deadline - time.monotonic()), "RabbitMQ", out)
        yield server
    finally:
        if proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.ctl("-q", "stop", timeout=60)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        _stop_group(proc)
        epmd = shutil.which("epmd", path=os.environ.get("PATH", "") + ":/usr/bin:/usr/lib/erlang/bin") or "epmd"
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([epmd, "-port", str(epmd_port), "-kill"], env=env, capture_output=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        shutil.rmtree(directory, ignore_errors=True)
