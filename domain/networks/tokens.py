"""Keeping an account's access token fresh.

Refreshes are serialised per account by a row lock; after the lock the row is read again,
so of ten concurrent callers one refreshes and nine find a fresh token. The new tokens are
committed before anyone uses them, and a stored refresh token is never replaced by an
empty one. `invalid_grant` (or any AuthExpired) marks the account needs_reconnect.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.core.clock import now
from domain.core.crypto import Vault
from domain.core.db import scoped_session
from domain.core.errors import ConflictError, NotFoundError
from domain.networks.catalog import CATALOG
from domain.networks.adapters.base import AuthExpired, Network
from domain.networks.linking import NetworkSettings, app_credentials
from domain.networks.models import SocialAccount
from domain.networks.oauth import OAuthFlow

# Refresh a little before the provider would refuse the token.
MARGIN = timedelta(minutes=5)


class AccountNeedsReconnectError(ConflictError):
    slug = "account-needs-reconnect"
    title = "The network no longer accepts this account's authorisation: reconnect it"


async def fresh_access_token(
    factory: async_sessionmaker[AsyncSession],
    vault: Vault,
    networks: NetworkSettings,
    *,
    agency_id: UUID,
    account_id: UUID,
    force: bool = False,
    due: Callable[[SocialAccount], bool] | None = None,
) -> str:
    """The account's access token, refreshed first when it expires within MARGIN (or when
    `due(account)` says so, judged on the locked, re-read row; or always with `force`)."""
    from domain.core.jobs import JobBuffer

    after_commit: list = []
    reconnect_jobs = JobBuffer(after_commit, agency_id)
    async with scoped_session(factory, agency_id=agency_id) as session, session.begin():
        account = await session.scalar(
            select(SocialAccount)
            .where(SocialAccount.agency_id == agency_id, SocialAccount.id == account_id)
            .with_for_update()
        )
        if account is None:
            raise NotFoundError("No such social account")
        if account.status != "connected" or not account.access_token_enc:
            raise AccountNeedsReconnectError()
        access = vault.decrypt(account.access_token_enc)
        expires = account.token_expires_at
        if force:
            needed = True
        elif due is not None:
            needed = due(account)
        else:
            needed = expires is not None and expires <= now() + MARGIN
        if not needed:
            return access
        network = Network(account.network)
        flow = OAuthFlow(CATALOG[network], await app_credentials(session, vault, networks, agency_id, network),
                         networks.sandbox_base, networks.timeout_seconds)
        refresh = vault.decrypt(account.refresh_token_enc) if account.refresh_token_enc else None
        try:
            grant = await flow.refresh(refresh, access)
        except AuthExpired:
            account.status = "needs_reconnect"
            return_error = AccountNeedsReconnectError()
            from domain.webhooks.service import emit_in

            await emit_in(session, agency_id, reconnect_jobs, "account.needs_reconnect", {
                "social_account_id": account.id, "brand_id": account.brand_id, "network": account.network,
                "handle": account.handle})
        else:
            account.access_token_enc = vault.encrypt(grant.access_token)
            if grant.refresh_token:  # never overwrite a stored refresh token with an empty one
                account.refresh_token_enc = vault.encrypt(grant.refresh_token)
            account.token_expires_at = grant.expires_at
            if grant.refresh_expires_at:
                account.refresh_expires_at = grant.refresh_expires_at
            account.last_refreshed_at = now()
            return_error = None
    # Committed: the new token is stored (or the account marked) before anyone uses it.
    for task in after_commit:  # the account.needs_reconnect webhook deliveries
        await task()
    if return_error is not None:
        raise return_error
    return grant.access_token
