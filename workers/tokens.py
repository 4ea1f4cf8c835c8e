"""Keeping linked accounts' tokens alive: the token sweep and its per-account job.

Every CHORUS_TOKEN_SWEEP_SECONDS `chorus_social_accounts_due_for_tokens()` (migration 0012,
SECURITY DEFINER, ids only) names the connected accounts that need attention, and the sweep
sends each one `accounts.refresh_token` job. The job, under the account's agency as tenant:

- when the account will need its user within NOTICE_WITHIN (an access token that cannot be
  refreshed - Facebook user tokens after ~60 days - or the end of the refresh window -
  LinkedIn's `refresh_expires_at`): locks the row, records the reason in
  `details["reconnect"]` (the account stays connected and keeps publishing until then), and
  notifies the agency's owners, admins and managers who see
  the brand - once per connection (a reconnect starts a new one);
- otherwise, when the access token expires within REFRESH_WITHIN (or a quarter of its
  lifetime, if shorter): refreshes through `domain.networks.tokens.fresh_access_token`, the
  serialised refresh (row lock, re-read, store before use). The same rule, `refresh_due`,
  is judged again on the locked row, so ten racing jobs make one provider call. When the
  provider refuses (`invalid_grant`), the account is marked needs_reconnect there and the
  team notified here, once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from uuid import UUID

import dramatiq
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.agencies.models import Membership
from domain.agencies.rules import Principal, Role
from domain.brands.models import Brand
from domain.core.clock import now
from domain.core.context import Context
from domain.core.db import scoped_session
from domain.networks.adapters.base import Network
from domain.networks.models import SocialAccount
from domain.networks.oauth import META_EXCHANGE
from domain.networks.tokens import AccountNeedsReconnectError, fresh_access_token
from domain.notifications.service import notify
from workers.broker import JobContext, actor, send_each
from workers.scheduler import SWEEPS, SweepContext

log = logging.getLogger("chorus.workers.tokens")

REFRESH_TOKEN = "accounts.refresh_token"
# Refresh when the access token expires within this, or within a quarter of its lifetime
# if that is shorter (X's 2-hour tokens: in their last 30 minutes), never less than 5 minutes.
REFRESH_WITHIN = timedelta(hours=24)
MIN_REFRESH_WITHIN = timedelta(minutes=5)
# Tell the team this long before an account stops working without its user.
NOTICE_WITHIN = timedelta(hours=72)
# Networks that refresh with the access token itself (no refresh token): ig_/th_refresh_token.
ACCESS_REFRESH_NETWORKS = frozenset(n.value for n, (_, grant) in META_EXCHANGE.items() if grant)
NOTIFY_ROLES = (Role.OWNER.value, Role.ADMIN.value, Role.MANAGER.value)


def refreshable(account: SocialAccount) -> bool:
    return bool(account.refresh_token_enc) or account.network in ACCESS_REFRESH_NETWORKS


def authorisation_ends(account: SocialAccount) -> datetime | None:
    """When the account stops working unless its user reconnects (None: not foreseeable)."""
    return account.refresh_expires_at if refreshable(account) else account.token_expires_at


def needs_user_soon(account: SocialAccount, at: datetime | None = None) -> bool:
    ends = authorisation_ends(account)
    return ends is not None and ends <= (at or now()) + NOTICE_WITHIN


def refresh_due(account: SocialAccount, at: datetime | None = None) -> bool:
    """The sweep's refresh rule (the SQL function's twin), on the locked row."""
    expires = account.token_expires_at
    if not refreshable(account) or expires is None:
        return False
    since = account.last_refreshed_at or account.connected_at or expires - REFRESH_WITHIN
    within = min(REFRESH_WITHIN, max(MIN_REFRESH_WITHIN, (expires - since) / 4))
    return expires <= (at or now()) + within


async def due_accounts(engine: AsyncEngine) -> list[tuple[UUID, UUID]]:
    """(agency id, account id) of the accounts due for a refresh or a reconnect notice."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT agency_id, account_id FROM chorus_social_accounts_due_for_tokens(:r, :n, :nets)"),
            {"r": REFRESH_WITHIN, "n": NOTICE_WITHIN, "nets": sorted(ACCESS_REFRESH_NETWORKS)})
        return [(row.agency_id, row.account_id) for row in rows]


async def sweep(engine: AsyncEngine, broker: dramatiq.Broker) -> list[tuple[UUID, UUID]]:
    """Send one `accounts.refresh_token` job per account due; returns them."""
    due = await due_accounts(engine)
    await send_each(broker, REFRESH_TOKEN, [{"agency_id": str(a), "account_id": str(c)} for a, c in due])
    return due


async def _scheduled(ctx: SweepContext) -> list[tuple[UUID, UUID]]:
    return await sweep(ctx.engine, ctx.broker)


# `chorus scheduler` runs it every CHORUS_TOKEN_SWEEP_SECONDS (0: never).
SWEEPS.register("accounts.token_refresh", every=lambda settings: settings.token_sweep_seconds, fn=_scheduled)


def _already_flagged(account: SocialAccount) -> bool:
    """Flagged (and the team told) since the account was last connected."""
    marker = (account.details or {}).get("reconnect") or {}
    flagged_at = marker.get("flagged_at")
    if not flagged_at:
        return False
    return account.connected_at is None or datetime.fromisoformat(flagged_at) >= account.connected_at


async def _lock(job: JobContext, account_id: UUID) -> SocialAccount | None:
    return await job.session.scalar(
        select(SocialAccount).where(SocialAccount.agency_id == job.agency_id, SocialAccount.id == account_id)
        .with_for_update().execution_options(populate_existing=True))


async def _flag(job: JobContext, account: SocialAccount, reason: str, message: str) -> bool:
    """Record on the (locked) account why its user must reconnect, and tell the team, once.
    The status is left as it is: an account flagged ahead of time keeps publishing until its
    authorisation really ends (then the refresh or the publish marks it needs_reconnect)."""
    if _already_flagged(account):
        return False
    ends = authorisation_ends(account)
    account.details = {**(account.details or {}), "reconnect": {
        "reason": reason, "message": message, "flagged_at": now().isoformat(),
        "authorisation_ends_at": ends.isoformat() if ends else None}}
    ctx = Context(Principal(agency_id=job.agency_id, label="token sweep"), session=job.session)  # type: ignore[arg-type]
    ctx.after_commit = job.after_commit  # its email jobs go out after the job's commit
    brand = await job.session.get(Brand, account.brand_id)
    members = (await job.session.scalars(
        select(Membership).where(Membership.agency_id == job.agency_id, Membership.role.in_(NOTIFY_ROLES)))).all()
    user_ids = [m.user_id for m in members if m.brand_ids is None or account.brand_id in (m.brand_ids or [])]
    name = account.handle or account.display_name or account.external_id
    network = Network(account.network).value
    await notify(ctx, user_ids=user_ids, kind="account.needs_reconnect",
                 title=f"Reconnect {name} on {network} ({brand.name if brand else 'brand'})",
                 body=message, data={"social_account_id": str(account.id), "brand_id": str(account.brand_id),
                                     "reason": reason})
    return True


def _notice(account: SocialAccount) -> tuple[str, str]:
    ends = authorisation_ends(account)
    when = ends.strftime("%Y-%m-%d %H:%M UTC") if ends else "soon"
    if refreshable(account):
        return ("refresh_window_ends",
                f"The network's authorisation for this account ends on {when} and cannot be renewed "
                "without its user: reconnect it before then.")
    return ("no_refresh",
            f"This account's access token expires on {when} and the network offers no way to renew it "
            "without its user: reconnect it before then.")


@actor(REFRESH_TOKEN, max_retries=3, time_limit=120_000)
async def refresh_token(job: JobContext, account_id: str) -> None:
    if job.agency_id is None:
        raise ValueError(f"{REFRESH_TOKEN} needs an agency_id")
    outcome = await _look_after(job, UUID(account_id))
    log.info("token sweep job", extra={"account_id": account_id, "outcome": outcome})


async def _look_after(job: JobContext, account_id: UUID) -> str:
    from domain.networks.linking import network_settings

    runtime = job.runtime
    # A first look in a short transaction of its own: the job's transaction (its connection)
    # is only used once the refresh below has returned its own, so a job never holds two.
    async with scoped_session(runtime.session_factory(), agency_id=job.agency_id) as look, look.begin():
        account = await look.get(SocialAccount, account_id)
        if account is None or account.status != "connected":
            return "nothing to do"
        # Told once; after that the account is only named again for a refresh.
        notice, due = needs_user_soon(account) and not _already_flagged(account), refresh_due(account)
    if notice:
        account = await _lock(job, account_id)
        if account is None or account.status != "connected" or not needs_user_soon(account):
            return "nothing to do"
        reason, message = _notice(account)
        return "flagged: " + reason if await _flag(job, account, reason, message) else "already flagged"
    if not due:
        return "fresh"
    # The serialised refresh (row lock, re-read, `refresh_due` judged again on the locked
    # row, the new token committed before use) in its own transaction.
    try:
        await fresh_access_token(runtime.session_factory(), runtime.settings.vault(),
                                 network_settings(runtime.settings),
                                 agency_id=job.agency_id, account_id=account_id, due=refresh_due)  # type: ignore[arg-type]
    except AccountNeedsReconnectError:
        account = await _lock(job, account_id)
        if account is not None and account.status == "needs_reconnect":
            await _flag(job, account, "refresh_refused",
                        "The network refused to renew this account's authorisation: reconnect it.")
        return "needs reconnect"
    return "refreshed or already fresh"
