"""Every (status, event) pair of the approval state machine: the legal ones go where the
table says, every other one is refused."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.approvals.rules import (
    Event,
    Outcome,
    RequestStatus,
    TransitionError,
    awaiting,
    may_review,
    mentions_in,
    reminder_due,
    step_passes,
    transition,
)

S, E = RequestStatus, Event
# (status, event, step, steps, step_passes) -> outcome
LEGAL = {
    (S.PENDING, E.APPROVE, 0, 1, True): Outcome(S.APPROVED, 0, True),
    (S.PENDING, E.APPROVE, 0, 2, True): Outcome(S.PENDING, 1, True),
    (S.PENDING, E.APPROVE, 1, 2, True): Outcome(S.APPROVED, 1, True),
    (S.PENDING, E.APPROVE, 0, 2, False): Outcome(S.PENDING, 0, False),
    (S.PENDING, E.REQUEST_CHANGES, 0, 2, True): Outcome(S.CHANGES_REQUESTED, 0),
    (S.PENDING, E.REJECT, 1, 2, True): Outcome(S.REJECTED, 1),
    (S.PENDING, E.EDIT, 1, 2, True): Outcome(S.SUPERSEDED, 1),
    (S.PENDING, E.EXPIRE, 0, 1, True): Outcome(S.EXPIRED, 0),
    (S.PENDING, E.CANCEL, 0, 1, True): Outcome(S.CANCELLED, 0),
    (S.APPROVED, E.EDIT, 1, 2, True): Outcome(S.SUPERSEDED, 1),
}


@pytest.mark.parametrize(("key", "outcome"), list(LEGAL.items()), ids=str)
def test_legal_transitions(key, outcome):
    status, event, step, steps, passes = key
    assert transition(status, event, step=step, steps=steps, step_passes=passes) == outcome


@pytest.mark.parametrize(("status", "event"), [
    (s, e) for s, e in itertools.product(RequestStatus, Event)
    if not any(k[0] is s and k[1] is e for k in LEGAL)
], ids=str)
def test_every_other_transition_is_refused(status, event):
    with pytest.raises(TransitionError):
        transition(status, event, step=0, steps=2)


def test_the_table_covers_every_pair():
    legal = {(k[0], k[1]) for k in LEGAL}
    assert len(legal) + sum(1 for s, e in itertools.product(RequestStatus, Event) if (s, e) not in legal) == \
        len(RequestStatus) * len(Event)


def test_who_may_review_a_step():
    internal = {"kind": "internal", "roles": ["manager"], "member_ids": ["u1"], "rule": "any"}
    client = {"kind": "client", "rule": "any"}
    assert may_review(internal, role="manager", user_id="u9", client=False)
    assert may_review(internal, role="editor", user_id="u1", client=False)
    assert not may_review(internal, role="editor", user_id="u2", client=False)
    assert not may_review(internal, role=None, user_id=None, client=True)
    assert may_review(client, role=None, user_id=None, client=True)
    assert not may_review(client, role="owner", user_id="u1", client=False)


def test_step_rules():
    assert step_passes({"rule": "any"}, {"u1"}) and not step_passes({"rule": "any"}, set())
    everyone = {"rule": "all", "member_ids": ["u1", "u2"]}
    assert not step_passes(everyone, {"u1"}) and step_passes(everyone, {"u1", "u2", "u3"})


def test_who_a_request_awaits():
    steps = [{"kind": "internal"}, {"kind": "client"}]
    assert awaiting("pending", steps, 0) == "internal" and awaiting("pending", steps, 1) == "client"
    assert awaiting("approved", steps, 1) is None and awaiting("pending", steps, 2) is None


def test_one_reminder_per_step_after_the_delay():
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert not reminder_due(start, start + timedelta(hours=23, minutes=59), 24, None)
    assert reminder_due(start, start + timedelta(hours=24), 24, None)
    assert not reminder_due(start, start + timedelta(hours=30), 24, start + timedelta(hours=24))
    assert not reminder_due(start, start + timedelta(days=30), None, None)


def test_mentions_are_read_from_the_body_once_each():
    a, b = uuid4(), uuid4()
    assert mentions_in(f"@[{a}] mira esto, @[{b}] y @[{a}]") == [a, b]
    assert mentions_in("@[not-a-uuid] @ [x] email@example.com") == []
