"""Brand and campaign rules. Pure: no I/O."""

from __future__ import annotations

from enum import StrEnum


class BrandStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    PLANNED = "planned"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class CampaignObjective(StrEnum):
    AWARENESS = "awareness"
    ENGAGEMENT = "engagement"
    TRAFFIC = "traffic"
    LEADS = "leads"
    SALES = "sales"
    COMMUNITY = "community"
    LAUNCH = "launch"
    RETENTION = "retention"


CAMPAIGN_TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.DRAFT: frozenset({CampaignStatus.PLANNED, CampaignStatus.ACTIVE, CampaignStatus.CANCELLED}),
    CampaignStatus.PLANNED: frozenset({CampaignStatus.DRAFT, CampaignStatus.ACTIVE, CampaignStatus.CANCELLED}),
    CampaignStatus.ACTIVE: frozenset({CampaignStatus.PAUSED, CampaignStatus.COMPLETED, CampaignStatus.CANCELLED}),
    CampaignStatus.PAUSED: frozenset({CampaignStatus.ACTIVE, CampaignStatus.COMPLETED, CampaignStatus.CANCELLED}),
    CampaignStatus.COMPLETED: frozenset(),
    CampaignStatus.CANCELLED: frozenset(),
}


def can_move_campaign(current: CampaignStatus, new: CampaignStatus) -> bool:
    return current == new or new in CAMPAIGN_TRANSITIONS[current]


def normalize_hashtag(tag: str) -> str:
    return "#" + tag.strip().lstrip("#")
