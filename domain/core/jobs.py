"""The after-commit job buffer: services say which background job to run; the job is sent
only once the transaction that asked for it has committed, and never if it rolled back.

A job is an actor name ("<context>.<verb>") and keyword arguments that are ids and plain
values, never objects: the actor reloads its rows. The agency travels with every job so
the worker opens its transaction under the same tenant (row-level security).

The domain does not import dramatiq: whoever runs the process (the API, the worker, a
test) installs the sender with `use_sender`, which `workers.broker` provides.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

log = logging.getLogger("chorus.jobs")

_PLAIN = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Job:
    actor: str
    kwargs: dict[str, Any] = field(default_factory=dict)


Sender = Callable[[Sequence[Job]], Awaitable[None]]
_sender: Sender | None = None


def use_sender(sender: Sender | None) -> None:
    global _sender
    _sender = sender


def current_sender() -> Sender | None:
    return _sender


def _plain(name: str, value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(name, item) for item in value]
    raise TypeError(f"job argument {name!r} must be an id or a plain value, not {type(value).__name__}")


class JobBuffer:
    """Jobs of one transaction. The first `send` registers one after-commit task that
    sends them all; a rollback discards that list of tasks, and the jobs with it."""

    def __init__(self, after_commit: list[Callable[[], Awaitable[None]]], agency_id: UUID | None) -> None:
        self._after_commit = after_commit
        self._agency_id = agency_id
        self.pending: list[Job] = []

    def send(self, actor: str, /, **kwargs: Any) -> Job:
        if "." not in actor:
            raise ValueError(f"actor names are '<context>.<verb>', not {actor!r}")
        arguments = {"agency_id": _plain("agency_id", self._agency_id)} if self._agency_id else {}
        arguments |= {name: _plain(name, value) for name, value in kwargs.items()}
        job = Job(actor, arguments)
        if not self.pending:
            self._after_commit.append(self.flush)
        self.pending.append(job)
        return job

    async def flush(self) -> None:
        jobs, self.pending = self.pending, []
        if not jobs:
            return
        sender = _sender
        if sender is None:
            # A process that never installed a sender (a script): say so rather than hide it.
            log.error("no job sender installed; %d job(s) not sent: %s", len(jobs), [j.actor for j in jobs])
            return
        await sender(jobs)
