from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from domain.brands.rules import BrandStatus, CampaignObjective, CampaignStatus
from domain.core.schemas import Input, LanguageTag, LongText, Name, ShortText, Slug, TimeZone

Word = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Hashtag = Annotated[str, msgspec.Meta(pattern=r"^#?[^\s#]{1,100}$", examples=["#roscon"])]
Url = Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^https?://\S+$")]
Items = Annotated[list[ShortText], msgspec.Meta(max_length=50)]


class Persona(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    description: LongText = ""
    age_range: ShortText | None = None
    locations: Items = []
    interests: Items = []
    pain_points: Items = []


class Swot(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    strengths: Items = []
    weaknesses: Items = []
    opportunities: Items = []
    threats: Items = []


class Competitor(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    website: Url | None = None
    # Network name -> handle, for example {"instagram": "@hornosanjose"}.
    handles: dict[Annotated[str, msgspec.Meta(max_length=30)], ShortText] = {}
    notes: LongText = ""


class HashtagSet(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    hashtags: Annotated[list[Hashtag], msgspec.Meta(max_length=60)]


class BrandProfile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What the agency knows about its client."""

    mission: LongText = ""
    vision: LongText = ""
    history: LongText = ""
    values: Items = []
    voice: LongText = ""
    tone_guidelines: LongText = ""
    do_words: Annotated[list[Word], msgspec.Meta(max_length=200)] = []
    dont_words: Annotated[list[Word], msgspec.Meta(max_length=200)] = []
    audiences: Annotated[list[Persona], msgspec.Meta(max_length=20)] = []
    swot: Swot = msgspec.field(default_factory=Swot)
    competitors: Annotated[list[Competitor], msgspec.Meta(max_length=50)] = []
    hashtag_sets: Annotated[list[HashtagSet], msgspec.Meta(max_length=50)] = []


class BrandProfileUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Each field given replaces that part of the profile; the others stay."""

    mission: LongText | msgspec.UnsetType = msgspec.UNSET
    vision: LongText | msgspec.UnsetType = msgspec.UNSET
    history: LongText | msgspec.UnsetType = msgspec.UNSET
    values: Items | msgspec.UnsetType = msgspec.UNSET
    voice: LongText | msgspec.UnsetType = msgspec.UNSET
    tone_guidelines: LongText | msgspec.UnsetType = msgspec.UNSET
    do_words: Annotated[list[Word], msgspec.Meta(max_length=200)] | msgspec.UnsetType = msgspec.UNSET
    dont_words: Annotated[list[Word], msgspec.Meta(max_length=200)] | msgspec.UnsetType = msgspec.UNSET
    audiences: Annotated[list[Persona], msgspec.Meta(max_length=20)] | msgspec.UnsetType = msgspec.UNSET
    swot: Swot | msgspec.UnsetType = msgspec.UNSET
    competitors: Annotated[list[Competitor], msgspec.Meta(max_length=50)] | msgspec.UnsetType = msgspec.UNSET
    hashtag_sets: Annotated[list[HashtagSet], msgspec.Meta(max_length=50)] | msgspec.UnsetType = msgspec.UNSET


class BrandCreate(Input):
    name: Name
    time_zone: TimeZone
    language: LanguageTag
    slug: Slug | None = None
    profile: BrandProfile = msgspec.field(default_factory=BrandProfile)


class BrandUpdate(Input):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    slug: Slug | msgspec.UnsetType = msgspec.UNSET
    time_zone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    language: LanguageTag | msgspec.UnsetType = msgspec.UNSET
    status: BrandStatus | msgspec.UnsetType = msgspec.UNSET
    profile: BrandProfileUpdate | msgspec.UnsetType = msgspec.UNSET


class PublishingPause(msgspec.Struct, kw_only=True):
    """Set while the brand's publishing is paused: its due posts wait (held) until it resumes."""

    paused_at: datetime
    reason: str
    # The member who paused it; null for the crisis code or an API key.
    paused_by_id: UUID | None
    source: Literal["manual", "crisis"]


class BrandOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    slug: str
    time_zone: str
    language: str
    status: BrandStatus
    profile: BrandProfile
    version: int
    created_at: datetime
    updated_at: datetime
    # null while the brand publishes normally (see pauseBrandPublishing).
    publishing_pause: PublishingPause | None = None


class PauseIn(Input):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500, examples=["Waiting for the client's statement"])]


class HeldVariantOut(msgspec.Struct, kw_only=True):
    variant_id: UUID
    post_id: UUID
    network: str
    social_account_id: UUID
    # When it became due (its post's time, or later if it also waits for a rate limit).
    due_at: datetime


class PublishingReport(msgspec.Struct, kw_only=True):
    brand_id: UUID
    paused: bool
    pause: PublishingPause | None
    # Variants due while paused, earliest first (at most 500; held_count counts them all).
    held: list[HeldVariantOut]
    held_count: int


class BrandPage(msgspec.Struct, kw_only=True):
    items: list[BrandOut]
    next_cursor: str | None


class Kpi(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    metric: Annotated[str, msgspec.Meta(min_length=1, max_length=60, examples=["reach", "engagement_rate"])]
    target: Annotated[float, msgspec.Meta(ge=0)]
    unit: Annotated[str, msgspec.Meta(max_length=20, examples=["count", "percent", "EUR"])] = "count"


class CampaignCreate(Input):
    brand_id: UUID
    name: Name
    objective: CampaignObjective
    start_date: date
    end_date: date
    description: LongText = ""
    target_kpis: Annotated[list[Kpi], msgspec.Meta(max_length=30)] = []
    status: CampaignStatus = CampaignStatus.DRAFT


class CampaignUpdate(Input):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    objective: CampaignObjective | msgspec.UnsetType = msgspec.UNSET
    start_date: date | msgspec.UnsetType = msgspec.UNSET
    end_date: date | msgspec.UnsetType = msgspec.UNSET
    description: LongText | msgspec.UnsetType = msgspec.UNSET
    target_kpis: Annotated[list[Kpi], msgspec.Meta(max_length=30)] | msgspec.UnsetType = msgspec.UNSET
    status: CampaignStatus | msgspec.UnsetType = msgspec.UNSET


class CampaignOut(msgspec.Struct, kw_only=True):
    id: UUID
    brand_id: UUID
    name: str
    objective: CampaignObjective
    description: str
    start_date: date
    end_date: date
    target_kpis: list[Kpi]
    status: CampaignStatus
    version: int
    created_at: datetime
    updated_at: datetime


class CampaignPage(msgspec.Struct, kw_only=True):
    items: list[CampaignOut]
    next_cursor: str | None
