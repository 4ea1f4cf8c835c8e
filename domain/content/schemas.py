from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain.core.schemas import ShortText
from domain.networks.adapters.base import Network

Label = Annotated[str, msgspec.Meta(min_length=1, max_length=50, pattern=r"^[^\s,][^,]*$", examples=["roscon"])]
Labels = Annotated[list[Label], msgspec.Meta(max_length=20)]
Copy = Annotated[str, msgspec.Meta(max_length=70_000)]
AltText = Annotated[str, msgspec.Meta(max_length=1_500)]
Options = Annotated[dict[Annotated[str, msgspec.Meta(max_length=50)], Any], msgspec.Meta(
    description="Network options; see `options` of each network in getNetwork. For example "
                "{\"placement\": \"reel\", \"first_comment\": \"#roscon\"} for Instagram, "
                "{\"title\": \"...\", \"privacy\": \"public\"} for YouTube, {\"board_id\": \"...\"} for Pinterest, "
                "{\"privacy\": \"PUBLIC_TO_EVERYONE\"} for TikTok, {\"thread\": [\"part 2\", ...]} for X and Threads.")]


class MediaRef(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    media_id: UUID
    alt_text: AltText = ""


MediaList = Annotated[list[MediaRef], msgspec.Meta(max_length=35)]


class VariantIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    social_account_id: UUID
    text: Copy = ""
    options: Options = {}
    media: MediaList = []


class VariantUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: Copy | msgspec.UnsetType = msgspec.UNSET
    options: Options | msgspec.UnsetType = msgspec.UNSET
    media: MediaList | msgspec.UnsetType = msgspec.UNSET


class PostCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: ShortText = ""
    labels: Labels = []
    campaign_id: UUID | None = None
    scheduled_at: datetime | None = msgspec.field(default=None)
    variants: Annotated[list[VariantIn], msgspec.Meta(max_length=20)] = []


class PostUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: ShortText | msgspec.UnsetType = msgspec.UNSET
    labels: Labels | msgspec.UnsetType = msgspec.UNSET
    campaign_id: UUID | None | msgspec.UnsetType = msgspec.UNSET
    scheduled_at: datetime | None | msgspec.UnsetType = msgspec.UNSET


class ScheduleIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Without it, the post's planned time is used.
    scheduled_at: datetime | None = None


class IssueOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    rule: str
    field: str
    message: str
    severity: str
    count: int | None = None
    limit: int | None = None


class VariantOut(msgspec.Struct, kw_only=True):
    id: UUID
    social_account_id: UUID
    network: Network
    text: str
    options: dict[str, Any]
    media: list[MediaRef]
    status: str
    content_hash: str
    issues: list[IssueOut]
    external_id: str | None
    external_url: str | None
    published_at: datetime | None
    # A scheduled variant held past its time: until when, and why (rate_limited: its account's
    # rate-limit reset; quota: the network's per-account publishing cap is used up until then).
    not_before: datetime | None = None
    wait_reason: str | None = None


class ReviewOut(msgspec.Struct, kw_only=True):
    """What this call did to the post's approval (brands with an approval workflow)."""

    request_id: UUID | None
    status: str  # pending: sent (back) to review; approved: scheduled on an approval; superseded
    message: str


class PostOut(msgspec.Struct, kw_only=True):
    id: UUID
    brand_id: UUID
    campaign_id: UUID | None
    title: str
    labels: list[str]
    # The instant, in UTC, and the same moment on the brand's wall clock.
    scheduled_at: datetime | None
    time_zone: str
    local_scheduled_at: str | None
    status: str
    revision: int
    content_hash: str
    # False while any variant has an error-level issue; the issues say what to fix.
    ready: bool
    variants: list[VariantOut]
    version: int
    created_at: datetime
    updated_at: datetime
    # Set when this call changed the post's review: an edit of an approved or in-review post sent it
    # back to review, or scheduling sent it for approval first. null otherwise.
    review: ReviewOut | None = None


class PostPage(msgspec.Struct, kw_only=True):
    items: list[PostOut]
    next_cursor: str | None


class RevisionOut(msgspec.Struct, kw_only=True):
    number: int
    content_hash: str
    author: str
    created_at: datetime


class RevisionDetail(RevisionOut, kw_only=True):
    snapshot: dict[str, Any]


class RevisionPage(msgspec.Struct, kw_only=True):
    items: list[RevisionOut]
    next_cursor: str | None


class Change(msgspec.Struct, kw_only=True):
    path: str
    before: Any
    after: Any


class RevisionDiff(msgspec.Struct, kw_only=True):
    post_id: UUID
    from_number: int
    to_number: int
    changes: list[Change]


class VariantCheck(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A variant as it is being typed: nothing is saved."""

    network: Network
    brand_id: UUID | None = None  # needed to look media up
    text: Copy = ""
    options: Options = {}
    media: MediaList = []


class CheckResult(msgspec.Struct, kw_only=True):
    network: Network
    ready: bool
    issues: list[IssueOut]
    # Text length as the network counts it, and its limit: for a live counter.
    length: int
    limit: int
    unit: str


class CopyRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Start a variant's copy from another variant, or from the brand's hashtag sets."""

    network: Network
    from_variant_id: UUID | None = None
    text: Copy | None = None
    hashtag_sets: Annotated[list[ShortText], msgspec.Meta(max_length=10)] = []


class CopySuggestion(msgspec.Struct, kw_only=True):
    network: Network
    text: str
    # What was done to fit the network, for example "shortened to 280 weighted characters".
    adaptations: list[str]
    # The brand's voice, tone and do/don't words, to adapt by hand.
    guidelines: list[str]
    issues: list[IssueOut]
