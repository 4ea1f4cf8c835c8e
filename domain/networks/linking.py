"""Linking a brand's accounts by OAuth, and the accounts themselves.

`state` is single-use, short-lived and bound to the agency, brand and user that started
the link (RFC 9700); PKCE S256 wherever the provider takes it. Tokens go into the vault
before anything else touches them and never come back out through the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit
from uuid import UUID

import msgspec
from sqlalchemy import select

from domain.agencies.rules import Action
from domain.billing import entitlements
from domain.billing.plans import Limit
from domain.brands.models import Brand
from domain.brands.rules import BrandStatus
from domain.core.clock import now
from domain.core.context import Context
from domain.core.crypto import Vault
from domain.core.errors import ConflictError, DomainError, NotFoundError, PaymentRequiredError, ValidationFailedError
from domain.core.pagination import Page, PageRequest, paginate, resolve_sort
from domain.core.security import OpaqueToken
from domain.core.settings import Settings, sandbox_app
from domain.networks import identity
from domain.networks.catalog import CATALOG
from domain.networks.adapters.base import Network, NetworkError
from domain.networks.models import NetworkApp, OAuthLink, SocialAccount
from domain.networks.oauth import AppCredentials, OAuthFlow, TokenGrant, new_code_verifier

STATE_PREFIX = "cst"
STATE_TTL = timedelta(minutes=10)
ACCOUNT_SORTS = {"created_at": (SocialAccount.created_at, SocialAccount.id)}


class OAuthStateInvalidError(DomainError):
    status = 400
    slug = "oauth-state-invalid"
    title = "This linking attempt is unknown, expired or already used: start again"


class OAuthDeniedError(DomainError):
    status = 400
    slug = "oauth-denied"
    title = "The network did not grant access"


class NetworkRejectedError(DomainError):
    status = 502
    slug = "network-error"
    title = "The network refused or failed the request"


class NetworkNotConfiguredError(ConflictError):
    slug = "network-not-configured"
    title = "This network has no app credentials configured"


class ReconnectNotice(msgspec.Struct, kw_only=True):
    reason: str  # no_refresh, refresh_window_ends, refresh_refused
    message: str
    authorisation_ends_at: str | None = None


class AccountOut(msgspec.Struct, kw_only=True):
    id: UUID
    brand_id: UUID
    network: Network
    external_id: str
    account_kind: str
    handle: str
    display_name: str
    avatar_url: str | None
    scopes: list[str]
    status: str
    token_expires_at: str | None
    connected_at: str | None
    revoked_at: str | None
    # After an unlink: `revoked` (the provider withdrew Chorus's access), `not_offered` (the
    # network has no way, e.g. Facebook page tokens: remove the app in the page's Business
    # Integrations settings) or `failed` (the provider did not answer; tokens are forgotten anyway).
    provider_revoke: str | None = None
    # Set when the account's user must reconnect soon (the token sweep told the team): the
    # account keeps working until `authorisation_ends_at`.
    reconnect_notice: ReconnectNotice | None = None
    version: int


class LinkStarted(msgspec.Struct, kw_only=True):
    link_id: UUID
    network: Network
    authorize_url: str
    expires_at: str


class Candidate(msgspec.Struct, kw_only=True):
    external_id: str
    kind: str
    handle: str
    display_name: str
    avatar_url: str | None = None


class LinkOut(msgspec.Struct, kw_only=True):
    id: UUID
    brand_id: UUID
    network: Network
    status: str
    expires_at: str
    candidates: list[Candidate]


class LinkStart(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    network: Network
    # Where the callback sends the person back once done (the agency's own frontend), with
    # `link_id`, `network`, `status` and, on failure, `error` added to its query. Without it
    # the callback shows a small page of its own.
    return_url: str | None = msgspec.field(default=None)


class LinkChoice(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    external_ids: list[str] = msgspec.field(default_factory=list)


class AccountPage(msgspec.Struct, kw_only=True):
    items: list[AccountOut]
    next_cursor: str | None


def account_out(a: SocialAccount) -> AccountOut:
    return AccountOut(
        id=a.id, brand_id=a.brand_id, network=Network(a.network), external_id=a.external_id,
        account_kind=a.account_kind, handle=a.handle, display_name=a.display_name, avatar_url=a.avatar_url,
        scopes=list(a.scopes or []), status=a.status,
        token_expires_at=a.token_expires_at.isoformat() if a.token_expires_at else None,
        connected_at=a.connected_at.isoformat() if a.connected_at else None,
        revoked_at=a.revoked_at.isoformat() if a.revoked_at else None,
        provider_revoke=str((a.details or {}).get("provider_revoke", "")).split(":")[0] or None,
        reconnect_notice=_notice(a), version=a.version,
    )


def _notice(a: SocialAccount) -> ReconnectNotice | None:
    marker = (a.details or {}).get("reconnect") or {}
    flagged = marker.get("flagged_at")
    if not flagged or (a.connected_at is not None and datetime.fromisoformat(flagged) < a.connected_at):
        return None  # none, or from before the account was last connected
    return ReconnectNotice(reason=str(marker.get("reason", "")), message=str(marker.get("message", "")),
                           authorisation_ends_at=marker.get("authorisation_ends_at"))


def link_out(link: OAuthLink) -> LinkOut:
    return LinkOut(
        id=link.id, brand_id=link.brand_id, network=Network(link.network), status=link.status,
        expires_at=link.expires_at.isoformat(),
        candidates=[msgspec.convert(c, Candidate) for c in (link.candidates or [])],
    )


@dataclass
class NetworkSettings:
    api_base_url: str
    sandbox_base: str | None = None
    # Chorus's own app per network: {network: (client id, client secret)}.
    apps: dict[str, tuple[str, str]] = field(default_factory=dict)
    timeout_seconds: float = 10.0
    # Signs the public media links the publishing engine gives the networks (domain/media/links.py).
    media_link_key: bytes = field(default=b"", repr=False)


def network_settings(settings: Settings) -> NetworkSettings:
    """What linking, refreshing and publishing need from the settings: Chorus's app per
    network, and with the sandbox configured, the sandbox's app for every network left."""
    apps = {network: (client_id, secret) for network, client_id, secret in settings.network_apps}
    if settings.network_sandbox_url:
        for network in Network:
            apps.setdefault(network.value, sandbox_app(network.value))
    from domain.media.links import link_key

    return NetworkSettings(api_base_url=settings.api_base_url, sandbox_base=settings.network_sandbox_url, apps=apps,
                           timeout_seconds=settings.network_timeout_seconds,
                           media_link_key=link_key(settings.jwt_secret()))


_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def check_return_url(value: str | None) -> str | None:
    """An absolute https address (http only on this machine), no credentials, no fragment."""
    if value is None:
        return None
    problem = None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or not host or parts.scheme not in ("https", "http"):
        problem = "must be an absolute https:// address"
    elif parts.scheme == "http" and host.lower() not in _LOOPBACK:
        problem = "must use https (http only for localhost)"
    elif parts.username or parts.password:
        problem = "must not carry credentials"
    elif parts.fragment:
        problem = "must not have a #fragment (the query parameters are added to the address)"
    elif len(value) > 2000 or any(ord(c) < 33 for c in value):
        problem = "must be at most 2,000 characters, without spaces or control characters"
    if problem:
        raise ValidationFailedError.field("return_url", f"return_url {problem}")
    return value


def return_address(link: OAuthLink, error: DomainError | None) -> str:
    """The agency's frontend address with the outcome in its query."""
    parts = urlsplit(link.return_url or "")
    outcome = {"link_id": str(link.id), "network": link.network, "status": link.status}
    if error is not None:
        outcome["error"] = error.slug
    query = "&".join(p for p in (parts.query, urlencode(outcome)) if p)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@dataclass
class LinkingService:
    ctx: Context
    vault: Vault
    networks: NetworkSettings
    consumed: OAuthLink | None = field(default=None, init=False)  # the attempt a callback's state named

    @property
    def session(self):  # noqa: ANN201
        return self.ctx.session

    def redirect_uri(self, network: Network) -> str:
        return f"{self.networks.api_base_url.rstrip('/')}/v1/oauth/callback/{network.value}"

    async def flow(self, network: Network) -> OAuthFlow:
        return OAuthFlow(CATALOG[network], await self._credentials(network), self.networks.sandbox_base,
                         self.networks.timeout_seconds)

    async def _credentials(self, network: Network) -> AppCredentials:
        return await app_credentials(self.session, self.vault, self.networks, self.ctx.agency_id, network)

    # -- linking

    async def start(self, brand_id: UUID, data: LinkStart) -> LinkStarted:
        self.ctx.require(Action.ACCOUNTS_WRITE)
        brand = await self._brand(brand_id)
        network = data.network
        return_url = check_return_url(data.return_url)
        await entitlements.require_not_frozen(self.session, self.ctx.agency_id, brand_ids=[brand.id])
        # Reconnecting an account that needs it takes no new slot; otherwise one more is needed.
        reconnecting = await self.session.scalar(self.ctx.select(SocialAccount, SocialAccount.id).where(
            SocialAccount.brand_id == brand.id, SocialAccount.network == network.value,
            SocialAccount.status == "needs_reconnect").limit(1))
        await entitlements.check(self.session, self.ctx.agency_id, Limit.SOCIAL_ACCOUNTS,
                                 adding=0 if reconnecting else 1)
        flow = await self.flow(network)
        state = OpaqueToken.new(STATE_PREFIX, self.ctx.agency_id)
        verifier = new_code_verifier() if flow.uses_pkce else None
        link = OAuthLink(
            agency_id=self.ctx.agency_id, brand_id=brand.id, user_id=self.ctx.principal.user_id,
            network=network.value, state_hash=state.hashed,
            code_verifier_enc=self.vault.encrypt(verifier) if verifier else None,
            redirect_uri=self.redirect_uri(network), return_url=return_url, status="started", expires_at=now() + STATE_TTL,
            candidates=[],
        )
        self.session.add(link)
        await self.session.flush()
        await self.ctx.audit("social_account.link_started", "brand", brand.id, {"network": network.value})
        return LinkStarted(
            link_id=link.id, network=network,
            authorize_url=flow.authorize_url(redirect_uri=link.redirect_uri, state=state.value, code_verifier=verifier),
            expires_at=link.expires_at.isoformat(),
        )

    async def callback(self, network: str, state: str | None, code: str | None, error: str | None) -> OAuthLink:
        """The provider sent the browser back. Every failure still consumes the state."""
        link = await self._consume(network, state)
        if error or not code:
            link.status = "denied"
            raise OAuthDeniedError(f"The network answered {error or 'without a code'}", keep_changes=True)
        flow = await self.flow(Network(link.network))
        verifier = self.vault.decrypt(link.code_verifier_enc) if link.code_verifier_enc else None
        try:
            grant = await flow.exchange_code(code=code, redirect_uri=link.redirect_uri, code_verifier=verifier)
            found = await identity.targets(Network(link.network), grant.access_token, self.networks.sandbox_base,
                                           grant.extras, self.networks.timeout_seconds)
        except NetworkError as err:
            link.status = "failed"
            raise NetworkRejectedError(str(err), keep_changes=True) from None
        if not found:
            link.status = "failed"
            raise NetworkRejectedError("This login can act for no account on the network", keep_changes=True)
        if len(found) == 1:
            try:
                await self._connect(link, grant, found)
            except PaymentRequiredError as err:
                link.status = "failed"  # nothing else was written: _connect checks first
                raise type(err)(err.detail, keep_changes=True, **err.extensions) from None
            link.status = "connected"
        else:
            link.status = "awaiting_choice"
            link.candidates = [t.public() for t in found]
            link.grant_enc = self.vault.encrypt(json.dumps(_sealable(grant, found)))
        return link

    async def get_link(self, link_id: UUID) -> OAuthLink:
        self.ctx.require(Action.ACCOUNTS_READ)
        link = await self.ctx.get(OAuthLink, link_id, what="link")
        if not self.ctx.principal.sees_brand(link.brand_id):
            raise NotFoundError("No such link")
        return link

    async def choose(self, link_id: UUID, data: LinkChoice) -> list[SocialAccount]:
        self.ctx.require(Action.ACCOUNTS_WRITE)
        link = await self.get_link(link_id)
        if link.status != "awaiting_choice" or not link.grant_enc or link.expires_at <= now():
            raise ConflictError("This link has nothing to choose from (any more)")
        stored = json.loads(self.vault.decrypt(link.grant_enc))
        wanted = set(data.external_ids)
        offered = {t["external_id"] for t in stored["targets"]}
        if not wanted or not wanted <= offered:
            raise ValidationFailedError.field("external_ids", "Choose one or more of the link's candidates")
        sealed = stored["grant"]
        grant = TokenGrant(
            access_token=sealed["access_token"], refresh_token=sealed["refresh_token"], scopes=sealed["scopes"],
            extras=sealed["extras"],
            expires_at=datetime.fromisoformat(sealed["expires_at"]) if sealed["expires_at"] else None,
            refresh_expires_at=(
                datetime.fromisoformat(sealed["refresh_expires_at"]) if sealed["refresh_expires_at"] else None
            ),
        )
        chosen = [identity.Target(**t) for t in stored["targets"] if t["external_id"] in wanted]
        accounts = await self._connect(link, grant, chosen)
        link.status, link.grant_enc = "connected", None
        return accounts

    async def _connect(self, link: OAuthLink, grant: TokenGrant, found: list[identity.Target]) -> list[SocialAccount]:
        # The plan's limit first, before anything is written: accounts already linked (or
        # needing a reconnect) take no new slot; new and unlinked ones do.
        await entitlements.require_not_frozen(self.session, self.ctx.agency_id, brand_ids=[link.brand_id])
        linked = set((await self.session.scalars(self.ctx.select(SocialAccount, SocialAccount.external_id).where(
            SocialAccount.brand_id == link.brand_id, SocialAccount.network == link.network,
            SocialAccount.external_id.in_([t.external_id for t in found]),
            SocialAccount.status.in_(entitlements.LINKED_STATES)))).all())
        adding = len({t.external_id for t in found} - linked)
        if adding:
            await entitlements.check(self.session, self.ctx.agency_id, Limit.SOCIAL_ACCOUNTS, adding=adding)
        accounts = []
        for target in found:
            account = await self.session.scalar(
                self.ctx.select(SocialAccount).where(
                    SocialAccount.brand_id == link.brand_id, SocialAccount.network == link.network,
                    SocialAccount.external_id == target.external_id,
                ).with_for_update()
            )
            created = account is None
            if account is None:
                account = SocialAccount(agency_id=self.ctx.agency_id, brand_id=link.brand_id, network=link.network,
                                        external_id=target.external_id, details={})
                self.session.add(account)
            token = target.access_token or grant.access_token
            account.account_kind, account.handle, account.display_name = target.kind, target.handle, target.display_name
            account.avatar_url = target.avatar_url
            account.scopes = grant.scopes
            account.access_token_enc = self.vault.encrypt(token)
            # A reconnect without a refresh token keeps the one we have (providers often omit it).
            if grant.refresh_token and not target.access_token:
                account.refresh_token_enc = self.vault.encrypt(grant.refresh_token)
            account.token_expires_at = None if target.access_token else grant.expires_at
            account.refresh_expires_at = grant.refresh_expires_at or account.refresh_expires_at
            account.status, account.revoked_at = "connected", None
            account.connected_at, account.connected_by_id = now(), link.user_id
            account.details = {**(account.details or {}), **target.details}
            await self.session.flush()
            await self.ctx.audit("social_account.connected" if created else "social_account.reconnected",
                                 "social_account", account.id, {"network": link.network, "external_id": target.external_id})
            accounts.append(account)
        return accounts

    async def _consume(self, network: str, state: str | None) -> OAuthLink:
        from domain.core.db import set_tenant

        token = OpaqueToken.parse(state or "", STATE_PREFIX)
        if token is None:
            raise OAuthStateInvalidError()
        await set_tenant(self.session, agency_id=token.agency_id)
        link = await self.session.scalar(
            select(OAuthLink).where(OAuthLink.state_hash == token.hashed).with_for_update()
        )
        if link is None or link.network != network:
            raise OAuthStateInvalidError()
        if link.used_at is not None or link.expires_at <= now():
            raise OAuthStateInvalidError()
        self.consumed = link
        link.used_at = now()
        await self.session.flush()
        return link

    async def _brand(self, brand_id: UUID) -> Brand:
        if not self.ctx.principal.sees_brand(brand_id):
            raise NotFoundError("No such brand")
        brand = await self.ctx.get(Brand, brand_id, what="brand")
        if brand.status == BrandStatus.ARCHIVED.value:
            raise ConflictError("The brand is archived")
        return brand

    # -- accounts

    async def list_accounts(self, page: PageRequest, brand_id: UUID | None, network: str | None,
                            status: str | None) -> Page[AccountOut]:
        self.ctx.require(Action.ACCOUNTS_READ)
        stmt = self.ctx.visible_brands(self.ctx.select(SocialAccount), SocialAccount.brand_id)
        if brand_id:
            stmt = stmt.where(SocialAccount.brand_id == brand_id)
        if network:
            stmt = stmt.where(SocialAccount.network == network)
        if status:
            stmt = stmt.where(SocialAccount.status == status)
        result = await paginate(self.session, stmt, resolve_sort(ACCOUNT_SORTS, page.sort or "created_at"), page)
        return Page([account_out(a) for a in result.items], result.next_cursor)

    async def get_account(self, account_id: UUID, *, lock: bool = False) -> SocialAccount:
        self.ctx.require(Action.ACCOUNTS_READ)
        account = await self.ctx.get(SocialAccount, account_id, lock=lock, what="social account")
        if not self.ctx.principal.sees_brand(account.brand_id):
            raise NotFoundError("No such social account")
        return account

    async def unlink(self, account_id: UUID) -> SocialAccount:
        """Revoke at the provider where it can, forget the tokens and mark the account
        revoked; published history stays. A provider that fails does not block the unlink."""
        self.ctx.require(Action.ACCOUNTS_WRITE)
        account = await self.get_account(account_id, lock=True)
        if account.status == "revoked":
            return account
        provider = "not_offered"
        if account.access_token_enc:
            try:
                flow = await self.flow(Network(account.network))
                revoked = await flow.revoke(self.vault.decrypt(account.access_token_enc))
                provider = "revoked" if revoked else "not_offered"
            except (NetworkError, DomainError) as err:
                provider = f"failed: {type(err).__name__}"
        account.status, account.revoked_at = "revoked", now()
        account.access_token_enc = account.refresh_token_enc = None
        account.details = {**(account.details or {}), "provider_revoke": provider}
        await self.ctx.audit("social_account.unlinked", "social_account", account.id,
                             {"network": account.network, "provider_revoke": provider})
        await self.session.flush()
        await entitlements.thaw_after_freeing(self.session, self.ctx.agency_id)
        return account


async def app_credentials(
    session: Any, vault: Vault, networks: NetworkSettings, agency_id: UUID, network: Network
) -> AppCredentials:
    """The agency's own app wins over Chorus's ("bring your own app")."""
    own = await session.scalar(
        select(NetworkApp).where(NetworkApp.agency_id == agency_id, NetworkApp.network == network.value)
    )
    if own is not None:
        return AppCredentials(own.client_id, vault.decrypt(own.client_secret_enc))
    app = networks.apps.get(network.value)
    if app is None:
        raise NetworkNotConfiguredError(f"Set CHORUS_{network.value.upper()}_CLIENT_ID and _CLIENT_SECRET")
    return AppCredentials(*app)


def _sealable(grant: TokenGrant, found: list[identity.Target]) -> dict[str, Any]:
    return {
        "grant": {
            "access_token": grant.access_token, "refresh_token": grant.refresh_token,
            "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
            "refresh_expires_at": grant.refresh_expires_at.isoformat() if grant.refresh_expires_at else None,
            "scopes": grant.scopes, "extras": grant.extras,
        },
        "targets": [
            {"external_id": t.external_id, "kind": t.kind, "handle": t.handle, "display_name": t.display_name,
             "avatar_url": t.avatar_url, "access_token": t.access_token, "details": t.details}
            for t in found
        ],
    }
