"""The sweep registry and `chorus scheduler`: sweeps run at their own intervals in one loop
thread, a failing sweep is logged and never stops the others, and the command starts and
stops on Ctrl-C as operators run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.workers.conftest import eventually

CHORUS = Path(sys.executable).parent / "chorus"
ROOT = Path(__file__).resolve().parents[2]


def test_registering_is_one_line_and_checked():
    from workers.scheduler import SweepRegistry

    registry = SweepRegistry()

    async def tick(ctx):
        return None

    sweep = registry.register("publishing.claim", every=5, fn=tick)
    assert [s.name for s in registry] == ["publishing.claim"] and sweep.interval(None) == 5
    registry.register("publishing.claim", every=lambda settings: 7, fn=tick)  # replaces, by name
    assert [s.interval(None) for s in registry] == [7]
    with pytest.raises(TypeError):
        registry.register("sync", every=1, fn=lambda ctx: None)
    with pytest.raises(ValueError):
        registry.register("jittery", every=1, fn=tick, jitter=1.5)


def test_every_application_sweep_is_registered():
    from workers.scheduler import SWEEPS, load_sweep_modules

    load_sweep_modules()
    names = {s.name for s in SWEEPS}
    assert {"approvals.remind_and_expire", "accounts.token_refresh"} <= names


def test_intervals_are_jittered_within_their_fraction():
    from workers.scheduler import Scheduler, Sweep

    async def tick(ctx):
        return None

    sweep = Sweep("x", 100, tick, jitter=0.1)
    offsets = []
    for _ in range(200):
        before = time.monotonic()
        offsets.append(Scheduler._next(sweep, 100) - before)
    assert all(89.9 <= o <= 110.1 for o in offsets)
    assert max(offsets) - min(offsets) > 1  # spread, not a constant


async def test_sweeps_run_at_their_intervals_and_a_failing_one_never_stops_the_loop(settings, caplog):
    from workers.scheduler import Scheduler, SweepRegistry

    registry = SweepRegistry()
    seen: dict[str, list] = {"fast": [], "slow": [], "failing": []}

    async def fast(ctx):
        async with ctx.engine.connect() as conn:  # the app role: row-level security applies
            seen["fast"].append((await conn.execute(text("SELECT current_user"))).scalar())

    async def slow(ctx):
        seen["slow"].append(1)

    async def failing(ctx):
        seen["failing"].append(1)
        raise RuntimeError("the provider is down")

    registry.register("test.fast", every=0.05, fn=fast)
    registry.register("test.slow", every=3600, fn=slow)
    registry.register("test.failing", every=0.05, fn=failing)
    registry.register("test.off", every=0, fn=slow)
    scheduler = Scheduler(settings, registry=registry)
    assert sorted(scheduler.names) == ["test.failing", "test.fast", "test.slow"]
    scheduler.start()
    try:
        await eventually(lambda: len(seen["failing"]) >= 5 and len(seen["fast"]) >= 5, what="sweeps to repeat")
        assert scheduler.is_alive()
    finally:
        scheduler.stop()
    assert not scheduler.is_alive()
    assert set(seen["fast"]) == {"chorus_app"}
    assert seen["slow"] == []  # its first turn is an hour away
    stats = scheduler.stats
    assert stats["test.failing"].failures == stats["test.failing"].runs >= 5
    assert stats["test.failing"].last_error == "RuntimeError: the provider is down"
    assert stats["test.fast"].failures == 0
    assert any(r.getMessage() == "sweep failed" and getattr(r, "sweep", None) == "test.failing" for r in caplog.records)


async def test_stop_interrupts_a_long_wait(settings):
    from workers.scheduler import Scheduler, SweepRegistry

    registry = SweepRegistry()

    async def never(ctx):
        raise AssertionError("not due")

    registry.register("test.hourly", every=3600, fn=never)
    scheduler = Scheduler(settings, registry=registry)
    scheduler.start()
    await eventually(lambda: scheduler._wake is not None, what="the loop to start")
    scheduler.stop(timeout=30)
    assert not scheduler.is_alive()
    assert scheduler.stats["test.hourly"].runs == 0


def test_chorus_scheduler_starts_and_stops_on_ctrl_c(database_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env.update({"CHORUS_DATABASE_URL": database_url, "CHORUS_DATA_DIR": str(tmp_path), "CHORUS_LOG_LEVEL": "WARNING",
                "CHORUS_TOKEN_SWEEP_SECONDS": "0.2", "CHORUS_APPROVAL_SWEEP_SECONDS": "0.2"})
    proc = subprocess.Popen([str(CHORUS), "scheduler"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        for _ in range(50):
            line = proc.stdout.readline()
            if not line or "scheduler running" in line:
                break
        assert "scheduler running" in line, line
        assert "approvals.remind_and_expire" in line and "accounts.token_refresh" in line, line
        time.sleep(1)  # a few sweeps run (and must not fail) before Ctrl-C
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    rest = proc.stdout.read()
    assert proc.returncode == 0, rest
    assert "scheduler stopped" in rest
    assert "sweep failed" not in rest, rest
