"""`chorus scheduler`: the periodic sweeps, in one loop thread.

A sweep is a name, an interval and an async function. Each context registers its own in
one line, in its worker module:

    SWEEPS.register("approvals.remind_and_expire", every=lambda s: s.approval_sweep_seconds, fn=sweep_job)

`every` is seconds, or a function of the settings giving seconds (0 or less: the sweep is
off). The function gets a `SweepContext`: the settings, an engine connecting as the app role
(row-level security applies: cross-agency listings go through SECURITY DEFINER functions
that return ids only) and the broker to send jobs to. Sweeps only find work and send jobs;
the actors do the work, one transaction each.

One thread runs one event loop; sweeps run one at a time. The first run of each sweep is one
(jittered) interval after start, then every interval +/- `jitter` (a fraction), so several
schedulers started together spread out. A sweep that raises is logged and runs again at its
next turn; it never stops the loop or the other sweeps. Running two schedulers is harmless
(every sweep and actor tolerates running twice), just wasteful.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.core.db import create_engine
from domain.core.settings import Settings

log = logging.getLogger("chorus.scheduler")

# The modules whose import registers sweeps, besides every actor module (workers.broker's
# ACTOR_MODULES): a context with actors registers its sweep in the same module.
SWEEP_MODULES: tuple[str, ...] = ("workers.approvals", "workers.tokens")


@dataclass
class SweepContext:
    settings: Settings
    engine: AsyncEngine
    broker: dramatiq.Broker


SweepFn = Callable[[SweepContext], Awaitable[Any]]
Interval = float | Callable[[Settings], float]


@dataclass(frozen=True)
class Sweep:
    name: str
    every: Interval
    fn: SweepFn
    jitter: float = 0.1

    def interval(self, settings: Settings) -> float:
        return float(self.every(settings) if callable(self.every) else self.every)


@dataclass
class SweepRegistry:
    sweeps: dict[str, Sweep] = field(default_factory=dict)

    def register(self, name: str, *, every: Interval, fn: SweepFn, jitter: float = 0.1) -> Sweep:
        """Register (or replace) the sweep `name`: `fn` runs every `every` seconds."""
        if not asyncio.iscoroutinefunction(fn):
            raise TypeError(f"sweep {name} must be an async function")
        if not 0 <= jitter < 1:
            raise ValueError("jitter is a fraction of the interval, in [0, 1)")
        sweep = Sweep(name, every, fn, jitter)
        self.sweeps[name] = sweep
        return sweep

    def __iter__(self):
        return iter(list(self.sweeps.values()))


SWEEPS = SweepRegistry()


def load_sweep_modules() -> None:
    from workers.broker import ACTOR_MODULES

    for module in dict.fromkeys((*ACTOR_MODULES, *SWEEP_MODULES)):
        importlib.import_module(module)


@dataclass
class SweepStats:
    runs: int = 0
    failures: int = 0
    last_error: str | None = None


class Scheduler:
    """Runs the registry's sweeps (those with an interval > 0) in one thread until stopped."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker | None = None,
                 registry: SweepRegistry | None = None) -> None:
        if registry is None:
            load_sweep_modules()
            registry = SWEEPS
        self.settings = settings
        self._own_broker = broker is None
        if broker is None:
            from workers.broker import build_broker

            broker = build_broker(settings)
        self.broker = broker
        self.sweeps = [(s, s.interval(settings)) for s in registry]
        self.sweeps = [(s, every) for s, every in self.sweeps if every > 0]
        self.stats: dict[str, SweepStats] = {s.name: SweepStats() for s, _ in self.sweeps}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chorus-scheduler", daemon=True)

    @property
    def names(self) -> list[str]:
        return [s.name for s, _ in self.sweeps]

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the sweep in progress (if any) ends; at most `timeout` seconds."""
        self._stopping.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop already closed
                pass
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._own_broker:
            from workers.broker import close_broker

            close_broker(self.broker)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # noqa: BLE001 - the loop itself failed (not a sweep): say so
            log.exception("scheduler loop stopped")

    @staticmethod
    def _next(sweep: Sweep, every: float) -> float:
        spread = every * sweep.jitter
        return time.monotonic() + every + random.uniform(-spread, spread)

    async def _main(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        if self._stopping.is_set():
            return
        engine = create_engine(self.settings.app_url(), pool_size=2,
                               statement_timeout_ms=self.settings.db_statement_timeout_ms)
        context = SweepContext(self.settings, engine, self.broker)
        due = {s.name: self._next(s, every) for s, every in self.sweeps}
        try:
            while not self._stopping.is_set():
                if not self.sweeps:
                    await self._wake.wait()
                    break
                wait = max(0.0, min(due.values()) - time.monotonic())
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                    break  # woken: stopping
                except TimeoutError:
                    pass
                for sweep, every in self.sweeps:
                    if self._stopping.is_set():
                        break
                    if due[sweep.name] > time.monotonic():
                        continue
                    await self._run_one(sweep, context)
                    due[sweep.name] = self._next(sweep, every)
        finally:
            await engine.dispose()

    async def _run_one(self, sweep: Sweep, context: SweepContext) -> None:
        stats = self.stats[sweep.name]
        started = time.monotonic()
        try:
            result = await sweep.fn(context)
        except Exception as err:  # noqa: BLE001 - a failed sweep runs again at its next turn
            stats.failures += 1
            stats.last_error = f"{type(err).__name__}: {err}"
            log.exception("sweep failed", extra={"sweep": sweep.name})
        else:
            stats.last_error = None
            if result:
                log.info("sweep ran", extra={"sweep": sweep.name, "result": _summary(result),
                                             "seconds": round(time.monotonic() - started, 3)})
        finally:
            stats.runs += 1


def _summary(result: Any) -> Any:
    if isinstance(result, (list, tuple, set)):
        return len(result)
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if isinstance(v, (int, float, str))}
    return str(result)[:200]
