"""The plans: what each one allows, and how it is priced.

This module is the configuration of plans. Limits are here; Stripe price ids come from the
settings (`CHORUS_STRIPE_PRICE_<PLAN>`), so the same code runs against test and live
Stripe accounts. `None` as a limit means unlimited. A plan is priced `flat` (quantity 1),
`per_brand` or `per_seat`: for the last two the subscription item's quantity follows the
agency's active brands or members (at least `min_quantity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Limit(StrEnum):
    BRANDS = "brands"
    SEATS = "seats"
    SOCIAL_ACCOUNTS = "social_accounts"
    SCHEDULED_POSTS_PER_MONTH = "scheduled_posts_per_month"
    SHARE_LINKS = "share_links"
    API_ACCESS = "api_access"
    WHITE_LABEL = "white_label"


COUNTED = (Limit.BRANDS, Limit.SEATS, Limit.SOCIAL_ACCOUNTS, Limit.SCHEDULED_POSTS_PER_MONTH, Limit.SHARE_LINKS)
FEATURES = (Limit.API_ACCESS, Limit.WHITE_LABEL)

LIMIT_TEXT = {
    Limit.BRANDS: "active brands",
    Limit.SEATS: "seats (members and pending invitations)",
    Limit.SOCIAL_ACCOUNTS: "linked social accounts",
    Limit.SCHEDULED_POSTS_PER_MONTH: "posts scheduled in one calendar month",
    Limit.SHARE_LINKS: "active share links",
    Limit.API_ACCESS: "API keys",
    Limit.WHITE_LABEL: "white-label branding",
}


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    pricing: str  # flat | per_brand | per_seat
    brands: int | None
    seats: int | None
    social_accounts: int | None
    scheduled_posts_per_month: int | None
    share_links: int | None
    api_access: bool
    white_label: bool
    min_quantity: int = 1

    def allows(self, limit: Limit) -> int | bool | None:
        return getattr(self, limit.value)

    def room(self, limit: Limit, usage: int, adding: int = 1) -> bool:
        allowed = self.allows(limit)
        if limit in FEATURES:
            return bool(allowed)
        return allowed is None or usage + adding <= allowed  # type: ignore[operator]

    def quantity(self, brands: int, seats: int) -> int:
        if self.pricing == "per_brand":
            return max(self.min_quantity, brands)
        if self.pricing == "per_seat":
            return max(self.min_quantity, seats)
        return 1


PLANS: tuple[Plan, ...] = (
    Plan("starter", "Starter", "flat", brands=3, seats=3, social_accounts=12, scheduled_posts_per_month=150,
         share_links=10, api_access=False, white_label=False),
    Plan("growth", "Growth", "flat", brands=10, seats=10, social_accounts=50, scheduled_posts_per_month=1000,
         share_links=100, api_access=True, white_label=False),
    Plan("agency", "Agency", "per_brand", brands=50, seats=30, social_accounts=300, scheduled_posts_per_month=10000,
         share_links=None, api_access=True, white_label=True, min_quantity=5),
    Plan("enterprise", "Enterprise", "per_seat", brands=None, seats=None, social_accounts=None,
         scheduled_posts_per_month=None, share_links=None, api_access=True, white_label=True, min_quantity=10),
)
PLANS_BY_KEY = {plan.key: plan for plan in PLANS}
PLAN_KEYS = tuple(PLANS_BY_KEY)

# Self-hosted (no Stripe key) and the operator's own agencies: nothing is limited.
UNLIMITED = Plan("unlimited", "Unlimited (billing off)", "flat", brands=None, seats=None, social_accounts=None,
                 scheduled_posts_per_month=None, share_links=None, api_access=True, white_label=True)


def plan(key: str | None) -> Plan | None:
    return PLANS_BY_KEY.get(key or "")


def lifting_plan(current: Plan | None, limit: Limit, needed: int) -> Plan | None:
    """The smallest plan above `current` (or any, without one) that allows `needed` of `limit`."""
    start = PLANS.index(current) + 1 if current in PLANS else 0
    for candidate in PLANS[start:]:
        if candidate.room(limit, needed, adding=0):
            return candidate
    return None
