"""What `claim_due` may hand out: per-account rate-limit resets, per-account quotas and
concurrency caps.

- A rate limit (`RateLimited`, the provider's reset) is the account's, not one variant's:
  `account_rate_limited` stores it on `social_accounts.publish_not_before`, and every due
  variant of that account waits until then (`not_before`, `wait_reason = rate_limited`).
- Quotas: the networks' documented per-account caps (`LIMITS.publish_quotas` in each adapter,
  times `quota_scale`), counted from our own attempts that reached the provider or may have
  (sending, processing, unknown, published) in the rolling window. When one is used up the
  variant waits until the oldest counted attempt leaves the window (`wait_reason = quota`)
  instead of being sent into a 429.
- Concurrency: at most `account_concurrency` attempts `sending` per account and
  `network_concurrency` per network within the agency. Claims of one agency are serialised
  by a transaction-level advisory lock, so two sweeps never both count the same free slots.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.content.models import PostVariant
from domain.networks.adapters.base import Network, PublishQuota
from domain.networks.models import SocialAccount
from domain.publishing.models import PublishAttempt
from domain.publishing.rules import Outcome, PublishLimits

# Attempts that used a slot of the provider's quota (or may have).
COUNTED = (Outcome.SENDING.value, Outcome.PROCESSING.value, Outcome.UNKNOWN.value, Outcome.PUBLISHED.value)


def quotas_of(network: str, scale: float) -> list[PublishQuota]:
    from domain.networks.catalog import CATALOG

    if scale <= 0:
        return []
    spec = CATALOG.get(Network(network))
    return [PublishQuota(max(1, int(q.posts * scale)), q.window_seconds, q.source)
            for q in (spec.limits.publish_quotas if spec else ())]


def quota_free_at(times: list[datetime], claimed_now: int, quota: PublishQuota, at: datetime) -> datetime | None:
    """When the next slot of `quota` frees, given the start times of the counted attempts and
    how many this claim already added at `at`; None when a slot is free now."""
    window = timedelta(seconds=quota.window_seconds)
    inside = sorted(t for t in times if t > at - window)
    used = len(inside) + claimed_now
    if used < quota.posts:
        return None
    oldest = used - quota.posts  # this one must leave the window first
    return (inside[oldest] if oldest < len(inside) else at) + window


async def lock_claims(session: AsyncSession, agency_id: UUID) -> None:
    """One claim at a time per agency (until the transaction ends), so caps hold across sweeps."""
    await session.execute(select(func.pg_advisory_xact_lock(
        func.hashtextextended(f"chorus.publishing.claim:{agency_id}", 0))))


@dataclass
class Gate:
    agency_id: UUID
    limits: PublishLimits
    at: datetime
    sending_by_account: Counter[UUID] = field(default_factory=Counter)
    sending_by_network: Counter[str] = field(default_factory=Counter)
    _resets: dict[UUID, datetime | None] = field(default_factory=dict)
    _quota_times: dict[UUID, list[datetime]] = field(default_factory=dict)
    _claimed: Counter[UUID] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)

    @classmethod
    async def load(cls, session: AsyncSession, agency_id: UUID, limits: PublishLimits, at: datetime) -> Gate:
        gate = cls(agency_id, limits, at)
        rows = await session.execute(
            select(PostVariant.social_account_id, PostVariant.network, func.count())
            .join(PublishAttempt, PublishAttempt.variant_id == PostVariant.id)
            .where(PublishAttempt.agency_id == agency_id, PublishAttempt.finished_at.is_(None),
                   PublishAttempt.outcome == Outcome.SENDING.value)
            .group_by(PostVariant.social_account_id, PostVariant.network))
        for account_id, network, count in rows:
            gate.sending_by_account[account_id] += count
            gate.sending_by_network[network] += count
        return gate

    def full_accounts(self) -> list[UUID]:
        return [a for a, n in self.sending_by_account.items() if n >= self.limits.account_concurrency]

    def full_networks(self) -> list[str]:
        return [k for k, n in self.sending_by_network.items() if n >= self.limits.network_concurrency]

    async def prepare(self, session: AsyncSession, variants: list[PostVariant]) -> None:
        """Load the resets and quota usage of the accounts in this batch (two queries)."""
        accounts = list({v.social_account_id for v in variants})
        if not accounts:
            return
        for account_id, reset in await session.execute(
                select(SocialAccount.id, SocialAccount.publish_not_before).where(SocialAccount.id.in_(accounts))):
            self._resets[account_id] = reset
        windows = [q.window_seconds for v in variants for q in quotas_of(v.network, self.limits.quota_scale)]
        if not windows:
            return
        since = self.at - timedelta(seconds=max(windows))
        rows = await session.execute(
            select(PostVariant.social_account_id, PublishAttempt.started_at)
            .join(PublishAttempt, PublishAttempt.variant_id == PostVariant.id)
            .where(PostVariant.agency_id == self.agency_id, PostVariant.social_account_id.in_(accounts),
                   PublishAttempt.outcome.in_(COUNTED), PublishAttempt.started_at > since))
        for account_id, started_at in rows:
            self._quota_times.setdefault(account_id, []).append(started_at)

    def admit(self, variant: PostVariant) -> bool:
        """True: send it now (counted). False: it waits, with `not_before` and `wait_reason`
        set when the wait has a known end (a reset, a quota slot), or for a free send slot."""
        account_id = variant.social_account_id
        reset = self._resets.get(account_id)
        if reset is not None and reset > self.at:
            self._hold(variant, reset, "rate_limited")
            return False
        waits = [w for q in quotas_of(variant.network, self.limits.quota_scale)
                 if (w := quota_free_at(self._quota_times.get(account_id, []), self._claimed[account_id], q,
                                        self.at)) is not None]
        if waits:
            self._hold(variant, max(waits), "quota")
            return False
        if self.sending_by_account[account_id] >= self.limits.account_concurrency \
                or self.sending_by_network[variant.network] >= self.limits.network_concurrency:
            self.held["concurrency"] += 1
            return False  # a send slot frees when an attempt in flight finishes: next sweep
        self.sending_by_account[account_id] += 1
        self.sending_by_network[variant.network] += 1
        self._claimed[account_id] += 1
        variant.wait_reason = None
        return True

    def _hold(self, variant: PostVariant, until: datetime, reason: str) -> None:
        variant.not_before = until
        variant.wait_reason = reason
        self.held[reason] += 1


async def account_rate_limited(session: AsyncSession, account_id: UUID, until: datetime) -> None:
    """The provider's reset applies to the whole account: no variant of it is claimed before."""
    await session.execute(
        update(SocialAccount).where(SocialAccount.id == account_id)
        .values(publish_not_before=func.greatest(func.coalesce(SocialAccount.publish_not_before, until), until))
        .execution_options(synchronize_session=False))
