"""What the agency's plan allows, checked in the domain services, and freezing on downgrade.

Billing is on for an agency exactly when it has a `billing_accounts` row; without one every
function here is a no-op (self-hosted mode: nothing is limited, nothing is frozen).

Usage, per counted limit (`usage`):

- brands: brands not archived (frozen ones count);
- seats: memberships (frozen ones count) plus pending invitations (not accepted, not revoked,
  not expired);
- social_accounts: linked accounts, i.e. status `connected` or `needs_reconnect` (an unlinked
  account has status `revoked`); frozen ones count;
- scheduled_posts_per_month: posts whose `scheduled_at` falls in the calendar month (in the
  agency's time zone) and that have at least one variant scheduled, publishing or published.
  A post counts once however many networks it goes to; a post moved to another month counts
  in its new month only; unscheduling a post gives its slot back;
- share_links: links neither revoked nor expired (frozen ones count).

Frozen objects count, so a downgraded agency stays over its limit (and cannot add more)
until it frees room; `apply_plan` then thaws the oldest frozen objects that fit again.

Freezing (`apply_plan`): for each freezable kind, the oldest objects (by `created_at`) up to
the limit stay usable and the newer ones are frozen. Owners are never frozen; seats go to
members first (oldest first), pending invitations are never frozen but still count, so no
one new joins until the agency is under its limit. API keys are all frozen when the plan has
no API access. What a frozen object refuses (402 `frozen-by-plan`):

- a frozen brand: new posts, scheduling its posts, linking accounts to it, new share links,
  campaigns and media uploads
  (reading it and editing its drafts stay allowed);
- a frozen member: new tokens (sign-in, refresh, switch); freezing bumps the membership's
  version, so their current access token stops at the next request;
- a frozen social account: new posts scheduled on it;
- a frozen share link: answers like an inactive link (410) on the client page and API;
- a frozen API key: every request.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.billing.models import BillingAccount
from domain.billing.plans import COUNTED, FEATURES, LIMIT_TEXT, Limit, Plan, lifting_plan
from domain.billing.rules import Standing, standing
from domain.core.clock import now
from domain.core.errors import BillingReadOnlyError, FrozenByPlanError, PlanLimitError

SCHEDULED_STATES = ("scheduled", "publishing", "published")
LINKED_STATES = ("connected", "needs_reconnect")
FROZEN_KINDS = ("brands", "social_accounts", "members", "api_keys", "share_links")


async def load(session: AsyncSession, agency_id: UUID, at: datetime | None = None) -> Standing:
    account = await session.scalar(select(BillingAccount).where(BillingAccount.agency_id == agency_id))
    return standing(account, at or now())


# --- usage ------------------------------------------------------------------------------


async def _agency_zone(session: AsyncSession, agency_id: UUID) -> ZoneInfo:
    from domain.agencies.models import Agency

    name = await session.scalar(select(Agency.time_zone).where(Agency.id == agency_id))
    try:
        return ZoneInfo(name or "UTC")
    except Exception:  # noqa: BLE001 - a zone removed from tzdata: fall back to UTC
        return ZoneInfo("UTC")


def month_bounds(at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar month containing `at` in `zone`, as [start, end) instants."""
    local = at.astimezone(zone)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    # Rebuild with the zone so each bound gets its own UTC offset (DST).
    return (datetime(start.year, start.month, 1, tzinfo=zone), datetime(end.year, end.month, 1, tzinfo=zone))


def _scheduled_posts_stmt(agency_id: UUID, start: datetime, end: datetime, exclude: Iterable[UUID] = ()) -> Any:
    from domain.content.models import Post, PostVariant

    stmt = select(func.count(distinct(Post.id))).where(
        Post.agency_id == agency_id, Post.scheduled_at >= start, Post.scheduled_at < end,
        exists().where(PostVariant.post_id == Post.id, PostVariant.agency_id == agency_id,
                       PostVariant.status.in_(SCHEDULED_STATES)))
    excluded = list(exclude)
    if excluded:
        stmt = stmt.where(Post.id.not_in(excluded))
    return stmt


async def _count(session: AsyncSession, agency_id: UUID, limit: Limit, at: datetime) -> int:
    from domain.agencies.models import Invitation, Membership
    from domain.approvals.models import ShareLink
    from domain.brands.models import Brand
    from domain.networks.models import SocialAccount

    if limit is Limit.BRANDS:
        stmt = select(func.count()).where(Brand.agency_id == agency_id, Brand.status != "archived")
    elif limit is Limit.SEATS:
        members = select(func.count()).where(Membership.agency_id == agency_id).scalar_subquery()
        pending = select(func.count()).where(
            Invitation.agency_id == agency_id, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None),
            Invitation.expires_at > at).scalar_subquery()
        stmt = select(members + pending)
    elif limit is Limit.SOCIAL_ACCOUNTS:
        stmt = select(func.count()).where(SocialAccount.agency_id == agency_id,
                                          SocialAccount.status.in_(LINKED_STATES))
    elif limit is Limit.SHARE_LINKS:
        stmt = select(func.count()).where(ShareLink.agency_id == agency_id, ShareLink.revoked_at.is_(None),
                                          ShareLink.expires_at > at)
    elif limit is Limit.SCHEDULED_POSTS_PER_MONTH:
        start, end = month_bounds(at, await _agency_zone(session, agency_id))
        stmt = _scheduled_posts_stmt(agency_id, start, end)
    else:
        raise ValueError(f"{limit} is not counted")
    return int(await session.scalar(stmt) or 0)


async def usage(session: AsyncSession, agency_id: UUID, *, at: datetime | None = None) -> dict[Limit, int]:
    """Current usage of each counted limit (see the module's docstring for what counts)."""
    moment = at or now()
    return {limit: await _count(session, agency_id, limit, moment) for limit in COUNTED}


# --- checks -----------------------------------------------------------------------------


def _limit_error(plan: Plan, limit: Limit, used: int | None, adding: int) -> PlanLimitError:
    if limit in FEATURES:
        lifting = lifting_plan(plan, limit, 1)
        detail = f"The {plan.name} plan does not include {LIMIT_TEXT[limit]}."
        detail += f" The {lifting.name} plan does." if lifting else ""
        return PlanLimitError(detail, limit=limit.value, plan=plan.key, upgrade_to=lifting.key if lifting else None)
    allowed = plan.allows(limit)
    assert isinstance(allowed, int) and used is not None
    lifting = lifting_plan(plan, limit, used + adding)
    detail = f"The {plan.name} plan allows {allowed} {LIMIT_TEXT[limit]}; the agency has {used}."
    if lifting is not None:
        lifted = lifting.allows(limit)
        detail += f" The {lifting.name} plan allows {'any number' if lifted is None else lifted}."
    else:
        detail += " No larger plan allows more: contact us."
    return PlanLimitError(detail, limit=limit.value, usage=used, allowed=allowed, plan=plan.key,
                          upgrade_to=lifting.key if lifting else None)


async def _serialize(session: AsyncSession, agency_id: UUID, limit: Limit) -> None:
    # Two requests adding at once must not both see room for one: count under a per-agency,
    # per-limit lock held until the transaction ends (an advisory lock, so Stripe's updates
    # of the billing row are never blocked by it).
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                          {"key": f"chorus-limit:{agency_id}:{limit.value}"})


async def check(
    session: AsyncSession, agency_id: UUID, limit: Limit, *, adding: int = 1, at: datetime | None = None
) -> None:
    """Raise PlanLimitError (402) unless the plan has room for `adding` more of `limit`."""
    moment = at or now()
    current = await load(session, agency_id, moment)
    if not current.enabled:
        return
    await _check_with(session, agency_id, current.plan, limit, adding=adding, at=moment)


async def _check_with(session: AsyncSession, agency_id: UUID, plan: Plan, limit: Limit, *, adding: int,
                      at: datetime, exclude_posts: Iterable[UUID] = ()) -> None:
    if limit in FEATURES:
        if not plan.allows(limit):
            raise _limit_error(plan, limit, None, adding)
        return
    if plan.allows(limit) is None:
        return
    await _serialize(session, agency_id, limit)
    if limit is Limit.SCHEDULED_POSTS_PER_MONTH:
        start, end = month_bounds(at, await _agency_zone(session, agency_id))
        used = int(await session.scalar(_scheduled_posts_stmt(agency_id, start, end, exclude_posts)) or 0)
    else:
        used = await _count(session, agency_id, limit, at)
    if not plan.room(limit, used, adding):
        raise _limit_error(plan, limit, used, adding)


async def require_schedulable(session: AsyncSession, agency_id: UUID) -> None:
    """BillingReadOnlyError (402) while the agency is read-only for new scheduling."""
    current = await load(session, agency_id)
    _require_writable(current)


def _require_writable(current: Standing) -> None:
    if current.read_only:
        raise BillingReadOnlyError(current.reason or BillingReadOnlyError.title, billing_status=current.status,
                                   plan=current.plan.key)


async def check_post_schedule(
    session: AsyncSession,
    agency_id: UUID,
    *,
    post_id: UUID,
    brand_id: UUID,
    counted_at: datetime | None,
    new_at: datetime | None,
    account_ids: Iterable[UUID] = (),
) -> None:
    """One post about to be scheduled, or moved while scheduled, to `new_at`. Call it before
    changing anything. `counted_at`: the post's current time if it already counts (one of
    its variants is scheduled, publishing or published), else None. Refuses (402) a
    read-only agency, a frozen brand or account, and a month with no room; a post that
    already counts and stays in its month takes no new room."""
    current = await load(session, agency_id)
    if not current.enabled:
        return
    _require_writable(current)
    await require_not_frozen(session, agency_id, brand_ids=[brand_id], account_ids=account_ids)
    if new_at is None:
        return
    zone = await _agency_zone(session, agency_id)
    if counted_at is not None and month_bounds(counted_at, zone) == month_bounds(new_at, zone):
        return
    await _check_with(session, agency_id, current.plan, Limit.SCHEDULED_POSTS_PER_MONTH, adding=1,
                      at=new_at, exclude_posts=[post_id])


def counted_at(scheduled_at: datetime | None, variant_states: Iterable[str]) -> datetime | None:
    """The post's time when it counts against the monthly limit now, else None."""
    return scheduled_at if scheduled_at is not None and any(v in SCHEDULED_STATES for v in variant_states) else None


async def require_not_frozen(
    session: AsyncSession, agency_id: UUID, *, brand_ids: Iterable[UUID] = (), account_ids: Iterable[UUID] = ()
) -> None:
    """FrozenByPlanError (402) when one of these brands or social accounts is frozen."""
    from domain.brands.models import Brand
    from domain.networks.models import SocialAccount

    brands, accounts = list(set(brand_ids)), list(set(account_ids))
    if brands:
        frozen = await session.scalar(select(Brand.name).where(
            Brand.agency_id == agency_id, Brand.id.in_(brands), Brand.frozen_at.is_not(None)).limit(1))
        if frozen is not None:
            raise await _frozen_error(session, agency_id, f"The brand {frozen!r} is frozen: it is over the plan's "
                                      "brand limit. Archive another brand or upgrade the plan to use it again.",
                                      Limit.BRANDS)
    if accounts:
        frozen = await session.scalar(select(SocialAccount.handle).where(
            SocialAccount.agency_id == agency_id, SocialAccount.id.in_(accounts),
            SocialAccount.frozen_at.is_not(None)).limit(1))
        if frozen is not None:
            raise await _frozen_error(session, agency_id, f"The social account {frozen!r} is frozen: it is over the "
                                      "plan's limit of linked accounts. Unlink another account or upgrade the plan.",
                                      Limit.SOCIAL_ACCOUNTS)


async def _frozen_error(session: AsyncSession, agency_id: UUID, detail: str, limit: Limit) -> FrozenByPlanError:
    moment = now()
    current = await load(session, agency_id, moment)
    used = await _count(session, agency_id, limit, moment)
    lifting = lifting_plan(current.plan, limit, used)
    allowed = current.plan.allows(limit)
    return FrozenByPlanError(detail, limit=limit.value, plan=current.plan.key, usage=used,
                             allowed=allowed if isinstance(allowed, int) else None,
                             upgrade_to=lifting.key if lifting else None)


def frozen_member_error() -> FrozenByPlanError:
    return FrozenByPlanError(
        "Your membership is frozen: the agency has more members than its plan allows. An owner must free a seat "
        "(remove a member or revoke an invitation) or upgrade the plan.", limit=Limit.SEATS.value)


def frozen_api_key_error() -> FrozenByPlanError:
    return FrozenByPlanError(
        "This API key is frozen: the agency's plan does not include API access. An owner must upgrade the plan.",
        limit=Limit.API_ACCESS.value)


# --- freezing ---------------------------------------------------------------------------


async def apply_plan(session: AsyncSession, agency_id: UUID, *, at: datetime | None = None) -> dict[str, list[UUID]]:
    """Recompute what is frozen against the plan in the agency's billing account (everything
    thaws when billing is off). Returns what is frozen now, by kind. Each change is audited
    with actor `system`. Idempotent; call it after anything that frees room."""
    from domain.agencies.models import ApiKey, Membership
    from domain.approvals.models import ShareLink
    from domain.brands.models import Brand
    from domain.networks.models import SocialAccount

    moment = at or now()
    current = await load(session, agency_id, moment)
    plan = current.plan
    # Serialize with the checks of every counted limit and with other apply_plan calls.
    for limit in COUNTED:
        if limit is not Limit.SCHEDULED_POSTS_PER_MONTH:
            await _serialize(session, agency_id, limit)
    result: dict[str, list[UUID]] = {}
    changes: list[tuple[str, str, UUID, bool]] = []

    async def settle(kind: str, object_type: str, model: Any, counted: Any, allowed: int | None,
                     keep_first: Any = None) -> None:
        rows = list((await session.scalars(select(model).where(model.agency_id == agency_id)
                                           .order_by(model.created_at, model.id))).all())
        live = [r for r in rows if counted(r)]
        kept: set[UUID] = set()
        if keep_first is not None:
            kept |= {r.id for r in live if keep_first(r)}
        for r in live:
            if allowed is not None and len(kept) >= allowed:
                break
            kept.add(r.id)
        frozen: list[UUID] = []
        for r in rows:
            freeze = counted(r) and allowed is not None and r.id not in kept
            if freeze and r.frozen_at is None:
                r.frozen_at = moment
                changes.append((kind, object_type, r.id, True))
            elif not freeze and r.frozen_at is not None:
                r.frozen_at = None
                changes.append((kind, object_type, r.id, False))
            if freeze:
                frozen.append(r.id)
        result[kind] = frozen

    await settle("brands", "brand", Brand, lambda b: b.status != "archived", plan.brands)
    await settle("social_accounts", "social_account", SocialAccount, lambda a: a.status in LINKED_STATES,
                 plan.social_accounts)
    await settle("members", "membership", Membership, lambda m: True, plan.seats,
                 keep_first=lambda m: m.role == "owner")
    await settle("api_keys", "api_key", ApiKey,
                 lambda k: k.revoked_at is None and (k.expires_at is None or k.expires_at > moment),
                 None if plan.api_access else 0)
    await settle("share_links", "share_link", ShareLink,
                 lambda s: s.revoked_at is None and s.expires_at > moment, plan.share_links)
    if changes:
        await session.flush()  # bumps frozen members' versions: their access tokens stop now
        await _audit(session, agency_id, plan, changes)
    return result


async def _audit(session: AsyncSession, agency_id: UUID, plan: Plan, changes: list[tuple[str, str, UUID, bool]]) -> None:
    from domain.agencies.models import AuditEvent

    for _kind, object_type, object_id, frozen in changes:
        session.add(AuditEvent(
            agency_id=agency_id, actor_type="system", actor_id=None, actor_label="billing",
            action=f"{object_type}.{'frozen' if frozen else 'unfrozen'}", object_type=object_type,
            object_id=object_id, changes={"plan": plan.key}, request_id=None))
    await session.flush()


async def frozen_report(session: AsyncSession, agency_id: UUID) -> dict[str, list[UUID]]:
    """What is frozen now, by kind (oldest first)."""
    from domain.agencies.models import ApiKey, Membership
    from domain.approvals.models import ShareLink
    from domain.brands.models import Brand
    from domain.networks.models import SocialAccount

    report: dict[str, list[UUID]] = {}
    for kind, model in zip(FROZEN_KINDS, (Brand, SocialAccount, Membership, ApiKey, ShareLink), strict=True):
        report[kind] = list((await session.scalars(
            select(model.id).where(model.agency_id == agency_id, model.frozen_at.is_not(None))
            .order_by(model.created_at, model.id))).all())
    return report


async def thaw_after_freeing(session: AsyncSession, agency_id: UUID) -> None:
    """Called by the services after something frees room (archiving a brand, removing a
    member, unlinking an account, revoking a share link or an invitation): frozen objects
    that fit again thaw. A no-op (one read) while billing is off and nothing is frozen."""
    if await session.scalar(select(BillingAccount.id).where(BillingAccount.agency_id == agency_id)) is None:
        if not any((await frozen_report(session, agency_id)).values()):
            return
    await apply_plan(session, agency_id)


__all__ = [
    "FROZEN_KINDS", "apply_plan", "check", "check_post_schedule", "counted_at", "frozen_report", "require_not_frozen",
    "require_schedulable", "thaw_after_freeing", "usage",
]
