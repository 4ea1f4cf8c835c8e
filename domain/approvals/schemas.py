from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from domain.agencies.rules import Role
from domain.approvals.rules import Decision, StepKind, StepRule
from domain.core.schemas import Input

StepName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["Account manager"])]
Hours = Annotated[int, msgspec.Meta(ge=1, le=24 * 90, description="Hours after submission")]
CommentText = Annotated[str, msgspec.Meta(max_length=5_000)]
CommentBody = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]


class StepIn(Input):
    name: StepName
    kind: StepKind
    # Internal steps: who may decide, by role and/or by person (members' user_id, as in listMembers).
    roles: Annotated[list[Role], msgspec.Meta(max_length=5)] = []
    member_ids: Annotated[list[UUID], msgspec.Meta(max_length=50)] = []
    # any: the first approval passes the step; all: every named member must approve.
    rule: StepRule = StepRule.ANY


class WorkflowIn(Input):
    steps: Annotated[list[StepIn], msgspec.Meta(min_length=1, max_length=10)]
    remind_after_hours: Hours | None = None
    expire_after_hours: Hours | None = None


class StepOut(msgspec.Struct, kw_only=True):
    name: str
    kind: str
    roles: list[str]
    member_ids: list[UUID]
    rule: str


class WorkflowOut(msgspec.Struct, kw_only=True):
    id: UUID
    brand_id: UUID
    steps: list[StepOut]
    remind_after_hours: int | None
    expire_after_hours: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class SubmitIn(Input):
    # Once approved, schedule at the post's time (it must have one, in the future).
    then_schedule: bool = False


class BatchSubmitIn(Input):
    post_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=100)]
    then_schedule: bool = False


class DecisionIn(Input):
    decision: Decision
    # Required to request changes or reject: what should change, or why.
    comment: CommentText = ""


class DecisionOut(msgspec.Struct, kw_only=True):
    id: UUID
    step: int
    step_name: str
    decision: str
    comment: str
    revision: int
    content_hash: str
    reviewer_type: str
    user_id: UUID | None
    share_link_id: UUID | None
    reviewer_name: str
    reviewer_email: str
    ip: str
    user_agent: str
    created_at: datetime


class RequestOut(msgspec.Struct, kw_only=True):
    id: UUID
    brand_id: UUID
    post_id: UUID
    # The revision and content hash the request (and every decision on it) is bound to.
    revision: int
    content_hash: str
    status: str
    current_step: int
    # internal or client while pending; null once decided.
    awaiting: Literal["internal", "client"] | None
    steps: list[StepOut]
    then_schedule: bool
    submitted_by_id: UUID | None
    submitted_label: str
    decided_at: datetime | None
    reminded_at: datetime | None
    expires_at: datetime | None
    # The audit trail: every decision, oldest first.
    decisions: list[DecisionOut]
    version: int
    created_at: datetime
    updated_at: datetime


class RequestPage(msgspec.Struct, kw_only=True):
    items: list[RequestOut]
    next_cursor: str | None


class RequestList(msgspec.Struct, kw_only=True):
    items: list[RequestOut]


class CommentIn(Input):
    body: CommentBody
    visibility: Literal["internal", "client"] = "internal"
    parent_id: UUID | None = None
    variant_id: UUID | None = None
    # Members to notify (user ids), besides any written as @[user-id] in the body.
    mentions: Annotated[list[UUID], msgspec.Meta(max_length=20)] = []


class CommentOut(msgspec.Struct, kw_only=True):
    id: UUID
    post_id: UUID
    variant_id: UUID | None
    parent_id: UUID | None
    body: str
    visibility: str
    author_type: str
    author_name: str
    user_id: UUID | None
    mentions: list[UUID]
    revision: int | None
    created_at: datetime


class CommentPage(msgspec.Struct, kw_only=True):
    items: list[CommentOut]
    next_cursor: str | None
