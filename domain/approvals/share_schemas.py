"""Share links in and out: the team's API, and the public view an agency's own portal reads."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

from domain.core.schemas import Email, Input, Name, ShortText
from domain.networks.adapters.base import Network

MAX_EXPIRY_DAYS = 90
DEFAULT_EXPIRY_DAYS = 30
MAX_POSTS = 100
MAX_RANGE_DAYS = 92

CommentBody = Annotated[str, msgspec.Meta(min_length=1, max_length=5_000)]


class SharePermission(StrEnum):
    VIEW = "view"
    COMMENT = "comment"
    APPROVE = "approve"


class ClientDecision(StrEnum):
    """What a client may decide (rejecting outright stays with the team)."""

    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"


class DateRange(Input):
    from_: date = msgspec.field(name="from")
    to: date


class ShareLinkCreate(Input):
    posts: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=MAX_POSTS,
                                              description="Chosen posts (or give `range`)")] | None = None
    range: Annotated[DateRange, msgspec.Meta(
        description=f"A date range in the brand's zone, at most {MAX_RANGE_DAYS} days: the client sees the "
                    "calendar and every post scheduled in it")] | None = None
    permission: SharePermission = SharePermission.VIEW
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=MAX_EXPIRY_DAYS)] = DEFAULT_EXPIRY_DAYS
    label: ShortText = ""
    emails: Annotated[list[Email], msgspec.Meta(
        max_length=20, description="Who the link is for: each gets it by email, in the agency's name, once "
                                   "the link is created (only its hash is kept, so it cannot be re-sent later)")] = []


class ShareDecisionOut(msgspec.Struct, kw_only=True):
    post_id: UUID
    decision: str
    comment: str
    reviewer_name: str
    reviewer_email: str
    created_at: datetime


class ShareReviewerOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    email: str
    created_at: datetime


class ShareLinkOut(msgspec.Struct, kw_only=True):
    id: UUID
    brand_id: UUID
    label: str
    permission: SharePermission
    post_ids: list[UUID]
    range_from: date | None
    range_to: date | None
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_by_id: UUID | None
    created_at: datetime
    state: Annotated[str, msgspec.Meta(description="active, expired or revoked")]


class ShareLinkDetail(ShareLinkOut, kw_only=True):
    reviewers: list[ShareReviewerOut]
    decisions: list[ShareDecisionOut]


class ShareLinkCreated(ShareLinkOut, kw_only=True):
    url: Annotated[str, msgspec.Meta(description="The page for the client. Shown this once: only its hash is kept")]


class ShareLinkPage(msgspec.Struct, kw_only=True):
    items: list[ShareLinkOut]
    next_cursor: str | None


# --- the public side ---------------------------------------------------------------------


class ReviewerIn(Input):
    name: Name
    email: Email


class ReviewerCreated(msgspec.Struct, kw_only=True):
    name: str
    email: str
    reviewer_token: Annotated[str, msgspec.Meta(
        description="Send it as `X-Share-Reviewer` with decisions and comments on this link")]


class SharedDecisionIn(Input):
    decision: ClientDecision
    comment: CommentBody | None = None


class SharedCommentIn(Input):
    body: CommentBody
    variant_id: UUID | None = None
    parent_id: UUID | None = None


class SharedBranding(msgspec.Struct, kw_only=True):
    agency_name: str
    logo_url: str | None
    primary_color: str
    secondary_color: str
    white_label: bool


class SharedMedia(msgspec.Struct, kw_only=True):
    kind: str
    url: Annotated[str, msgspec.Meta(description="A short-lived signed address on this server")]
    alt_text: str
    width: int | None
    height: int | None


class SharedVariant(msgspec.Struct, kw_only=True):
    id: UUID
    network: Network
    network_name: str
    display_name: str
    handle: str
    initials: str
    text: str
    first_comment: str | None
    media: list[SharedMedia]


class SharedComment(msgspec.Struct, kw_only=True):
    id: UUID
    author: str
    body: str
    created_at: datetime
    parent_id: UUID | None
    variant_id: UUID | None


class SharedPost(msgspec.Struct, kw_only=True):
    id: UUID
    title: str
    status: str
    scheduled_at: datetime | None
    local_date: date | None
    local_time: Annotated[str | None, msgspec.Meta(description="HH:MM in the brand's zone")]
    local_label: str | None
    variants: list[SharedVariant]
    awaiting_client: bool
    decisions: list[ShareDecisionOut]
    comments: list[SharedComment]


class ShareCalendarDay(msgspec.Struct, kw_only=True):
    day: date | None
    in_range: bool
    post_ids: list[UUID]


class ShareCalendarMonth(msgspec.Struct, kw_only=True):
    title: str
    weeks: list[list[ShareCalendarDay]]


class SharedView(msgspec.Struct, kw_only=True):
    brand_name: str
    time_zone: str
    branding: SharedBranding
    permission: SharePermission
    expires_at: datetime
    range_from: date | None
    range_to: date | None
    posts: list[SharedPost]
    calendar: list[ShareCalendarMonth]


class SharedDecisionResult(msgspec.Struct, kw_only=True):
    post_id: UUID
    decision: ClientDecision
    comment: str
    request_status: Annotated[str, msgspec.Meta(description="The approval request's status after the decision")]
    reviewer_name: str
    reviewer_email: str
