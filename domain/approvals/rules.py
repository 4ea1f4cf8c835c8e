"""The approval state machine. Pure functions; every transition, legal and illegal, is
tested exhaustively (tests/unit/test_approval_rules.py).

A request walks one post revision through the workflow's steps in order. At each step an
eligible reviewer approves, requests changes or rejects. A step with rule `any` passes on
its first approval; `all` when every named member has approved. The last step's pass
approves the request. An edit of the post supersedes a pending or approved request (the
approval was for another revision); a request left pending too long expires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Decision(StrEnum):
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    REJECT = "reject"


class Event(StrEnum):
    """What can happen to a request."""

    APPROVE = "approve"  # an eligible reviewer approves the current step
    REQUEST_CHANGES = "request_changes"
    REJECT = "reject"
    EDIT = "edit"  # the post's content changed (a new revision)
    EXPIRE = "expire"  # pending past the workflow's expiry
    CANCEL = "cancel"  # the team withdraws it


class StepKind(StrEnum):
    INTERNAL = "internal"
    CLIENT = "client"


class StepRule(StrEnum):
    ANY = "any"
    ALL = "all"


TERMINAL = frozenset({RequestStatus.CHANGES_REQUESTED, RequestStatus.REJECTED, RequestStatus.SUPERSEDED,
                      RequestStatus.EXPIRED, RequestStatus.CANCELLED})


class TransitionError(Exception):
    def __init__(self, status: RequestStatus, event: Event):
        super().__init__(f"A {status.value} request cannot take {event.value}")
        self.status, self.event = status, event


@dataclass(frozen=True)
class Outcome:
    status: RequestStatus
    step: int
    step_passed: bool = False


def transition(status: RequestStatus, event: Event, *, step: int, steps: int,
               step_passes: bool = True) -> Outcome:
    """The next state. `step_passes`: whether this approval completes the current step
    (always for rule `any`; for `all`, when the last named member approves)."""
    if status is RequestStatus.PENDING:
        if event is Event.APPROVE:
            if not step_passes:
                return Outcome(RequestStatus.PENDING, step)
            if step + 1 >= steps:
                return Outcome(RequestStatus.APPROVED, step, step_passed=True)
            return Outcome(RequestStatus.PENDING, step + 1, step_passed=True)
        if event is Event.REQUEST_CHANGES:
            return Outcome(RequestStatus.CHANGES_REQUESTED, step)
        if event is Event.REJECT:
            return Outcome(RequestStatus.REJECTED, step)
        if event is Event.EDIT:
            return Outcome(RequestStatus.SUPERSEDED, step)
        if event is Event.EXPIRE:
            return Outcome(RequestStatus.EXPIRED, step)
        if event is Event.CANCEL:
            return Outcome(RequestStatus.CANCELLED, step)
    if status is RequestStatus.APPROVED and event is Event.EDIT:
        # Approved content changed: the approval does not carry over to the new revision.
        return Outcome(RequestStatus.SUPERSEDED, step)
    raise TransitionError(status, event)


def event_for(decision: Decision) -> Event:
    return {Decision.APPROVE: Event.APPROVE, Decision.REQUEST_CHANGES: Event.REQUEST_CHANGES,
            Decision.REJECT: Event.REJECT}[decision]


def may_review(step: dict[str, object], *, role: str | None, user_id: str | None, client: bool) -> bool:
    """Whether this person may decide at this step: a client reviewer (through a share link
    with the approve permission) only on client steps; a member on internal steps by role
    or by name."""
    if step.get("kind") == StepKind.CLIENT:
        return client
    if client:
        return False
    members = [str(m) for m in step.get("member_ids") or []]
    roles = [str(r) for r in step.get("roles") or []]
    return (user_id is not None and user_id in members) or (role is not None and role in roles)


def step_passes(step: dict[str, object], approvers: set[str]) -> bool:
    """Whether the approvals so far (user ids, or client reviewer keys) complete the step."""
    if step.get("rule", StepRule.ANY) == StepRule.ANY:
        return bool(approvers)
    members = {str(m) for m in step.get("member_ids") or []}
    if not members:  # `all` over roles alone: the first approval, as no fixed list exists
        return bool(approvers)
    return members <= approvers


def awaiting(status: str, steps: list[dict[str, object]], current_step: int) -> str | None:
    """Who the request waits for: `internal`, `client`, or nobody once decided."""
    if status != RequestStatus.PENDING or not 0 <= current_step < len(steps):
        return None
    return str(steps[current_step].get("kind", StepKind.INTERNAL))


def reminder_due(waiting_since: datetime, at: datetime, remind_after_hours: int | None,
                 reminded_at: datetime | None) -> bool:
    """One reminder per step: the step has waited `remind_after_hours` and nobody was reminded
    since it began (a step that moves clears `reminded_at`)."""
    if remind_after_hours is None or reminded_at is not None:
        return False
    return at - waiting_since >= timedelta(hours=remind_after_hours)


_MENTION = re.compile(r"@\[([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\]")


def mentions_in(body: str) -> list[UUID]:
    """Members mentioned as @[user-id] in a comment, in order, once each."""
    return list(dict.fromkeys(UUID(m) for m in _MENTION.findall(body)))
