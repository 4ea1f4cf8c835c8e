"""Who hears about a publish failure, and how often.

A failure reaches the people who can act on it: the post's author and the members who see
the brand and whose role may manage it (`Action.BRANDS_WRITE`: owners, admins, managers
today, read from the role table), each once. A failure because the account needs
reconnecting is the account's problem, not the post's: it is told once per account (the
members whose role may reconnect it, `Action.ACCOUNTS_WRITE`, plus the author of the post
that found out), using the same `details.reconnect` marker as the token sweep
(workers/tokens.py), so neither tells the team again until the account is reconnected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.agencies.models import Membership
from domain.agencies.rules import Action, Role, role_allows
from domain.content.models import Post, PostVariant
from domain.core.clock import now
from domain.core.context import Context
from domain.networks.models import SocialAccount


async def members_who_may(session: AsyncSession, agency_id: UUID, brand_id: UUID, action: Action) -> list[UUID]:
    """Members who see the brand and whose role allows `action`."""
    members = (await session.scalars(select(Membership).where(Membership.agency_id == agency_id))).all()
    return [m.user_id for m in members
            if role_allows(Role(m.role), action) and (m.brand_ids is None or brand_id in (m.brand_ids or []))]


def reconnect_flagged(account: SocialAccount) -> bool:
    """The team was told this account must be reconnected since it was last connected (the
    token sweep's rule)."""
    flagged_at = ((account.details or {}).get("reconnect") or {}).get("flagged_at")
    if not flagged_at:
        return False
    return account.connected_at is None or datetime.fromisoformat(flagged_at) >= account.connected_at


async def notify_failure(ctx: Context, post: Post, variant: PostVariant, message: str) -> None:
    from domain.notifications.service import notify

    session = ctx.session
    if (variant.error or {}).get("code") == "needs_reconnect":
        await _reconnect_notice(ctx, post, variant, message)
        return
    team = await members_who_may(session, ctx.agency_id, post.brand_id, Action.BRANDS_WRITE)
    authors = [post.created_by_id] if post.created_by_id else []
    await notify(ctx, user_ids=[*authors, *team], kind="publish.failed",
                 title=f"A post could not be published on {variant.network}", body=message[:1000],
                 data={"post_id": str(post.id), "variant_id": str(variant.id), "brand_id": str(post.brand_id)})


async def _reconnect_notice(ctx: Context, post: Post, variant: PostVariant, message: str) -> None:
    from domain.notifications.service import notify

    session = ctx.session
    # Locked: concurrent failures of one account's variants tell the team once.
    account = await session.scalar(select(SocialAccount).where(SocialAccount.id == variant.social_account_id)
                                   .with_for_update().execution_options(populate_existing=True))
    if account is None or reconnect_flagged(account):
        return
    account.details = {**(account.details or {}), "reconnect": {
        "reason": "publish_refused", "message": message[:1000], "flagged_at": now().isoformat(),
        "authorisation_ends_at": None}}
    team = await members_who_may(session, ctx.agency_id, account.brand_id, Action.ACCOUNTS_WRITE)
    authors = [post.created_by_id] if post.created_by_id else []
    name = account.handle or account.display_name or account.external_id
    data: dict[str, Any] = {"social_account_id": str(account.id), "brand_id": str(account.brand_id),
                            "reason": "publish_refused", "post_id": str(post.id), "variant_id": str(variant.id)}
    await notify(ctx, user_ids=[*authors, *team], kind="account.needs_reconnect",
                 title=f"Reconnect {name} on {account.network}: posts cannot go out",
                 body=f"{message[:900]} Posts on this account fail until it is reconnected.", data=data)
