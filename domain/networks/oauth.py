"""OAuth with the networks: authorize URL, code exchange and refresh, in each provider's
wire format. authlib speaks the standard parts; the providers' own variants (TikTok's
`client_key`, Meta's long-lived token exchanges) are spelled out where they differ."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from domain.core.clock import now
from domain.networks.adapters.base import AuthExpired, Network, NetworkSpec, Pkce, RateLimited, Rejected, Unknown
from domain.networks.hosts import resolve

warnings.filterwarnings("ignore", message=".*httpx2.*")

from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.httpx_client import AsyncOAuth2Client  # noqa: E402
from authlib.integrations.base_client.errors import OAuthError  # noqa: E402
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # noqa: E402

# Where the long-lived exchanges and refreshes of Meta's token flavours live (real hosts).
META_EXCHANGE = {
    Network.FACEBOOK: ("fb_exchange_token", None),
    Network.INSTAGRAM: ("ig_exchange_token", "ig_refresh_token"),
    Network.THREADS: ("th_exchange_token", "th_refresh_token"),
}
META_GRAPH = {
    Network.INSTAGRAM: "https://graph.instagram.com",
    Network.THREADS: "https://graph.threads.net",
}


@dataclass(frozen=True)
class AppCredentials:
    client_id: str
    client_secret: str


@dataclass
class TokenGrant:
    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    scopes: list[str] = field(default_factory=list)
    # Provider extras worth keeping (TikTok open_id, Instagram user_id...). No secrets.
    extras: dict[str, Any] = field(default_factory=dict)


def new_code_verifier() -> str:
    return generate_token(64)


def _expiry(seconds: Any) -> datetime | None:
    try:
        return now() + timedelta(seconds=int(seconds)) if seconds not in (None, "", 0) else None
    except (TypeError, ValueError):
        return None


def _grant(network: Network, body: Any) -> TokenGrant:
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise Unknown(network, "the token answer has no access_token")
    scope = body.get("scope") or ""
    scopes = scope if isinstance(scope, list) else [s for s in str(scope).replace(",", " ").split() if s]
    extras = {k: body[k] for k in ("open_id", "user_id", "id_token_present") if k in body}
    return TokenGrant(
        access_token=body["access_token"],
        refresh_token=body.get("refresh_token") or None,
        expires_at=_expiry(body.get("expires_in")),
        refresh_expires_at=_expiry(body.get("refresh_token_expires_in") or body.get("refresh_expires_in")),
        scopes=scopes,
        extras=extras,
    )


def _meta_retry_after(response: httpx.Response) -> float:
    """X-Business-Use-Case-Usage / X-App-Usage carry `estimated_time_to_regain_access` (minutes)."""
    import json

    for header in ("x-business-use-case-usage", "x-app-usage", "x-page-usage"):
        raw = response.headers.get(header)
        if not raw:
            continue
        try:
            usage = json.loads(raw)
        except ValueError:
            continue
        entries = [e for v in usage.values() for e in (v if isinstance(v, list) else [v])] if isinstance(usage, dict) else []
        minutes = [e.get("estimated_time_to_regain_access") for e in entries if isinstance(e, dict)]
        minutes = [m for m in minutes if isinstance(m, (int, float)) and m > 0]
        if minutes:
            return float(max(minutes) * 60)
    return 60.0


def raise_for(network: Network, response: httpx.Response, *, token_call: bool = False) -> None:
    """Provider failures, in the provider's shapes, as NetworkError subclasses."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error = body.get("error")
    # OAuth2 {"error": "..."}, Graph {"error": {"code", "message"}}, LinkedIn {"code", "message"},
    # X problem+json {"title", "detail"}: read whichever the provider sent.
    code = error if isinstance(error, str) else (error or {}).get("code") if isinstance(error, dict) else body.get("code")
    message = (
        body.get("error_description")
        or (error.get("message") if isinstance(error, dict) else None)
        or body.get("message")
        or body.get("detail")
        or body.get("title")
        or f"HTTP {response.status_code}"
    )
    # Meta answers throttling with HTTP 400 and one of these codes (NETWORKS.md).
    if isinstance(error, dict) and error.get("code") in (4, 9, 17, 32, 613):
        raise RateLimited(network, str(message), retry_after=_meta_retry_after(response), status=response.status_code,
                          code=str(error.get("code")))
    if response.status_code == 429:
        reset = response.headers.get("retry-after") or response.headers.get("x-rate-limit-reset")
        retry_after = 60.0
        if reset and reset.isdigit():
            value = float(reset)
            retry_after = max(1.0, value - now().timestamp()) if value > 1e9 else value
        raise RateLimited(network, str(message), retry_after=retry_after, status=429, code=str(code or "rate_limited"))
    if code == "invalid_grant" or (token_call and response.status_code == 401) or response.status_code == 401 or (
        isinstance(error, dict) and error.get("code") == 190
    ):
        raise AuthExpired(network, str(message), status=response.status_code, code=str(code or "expired"))
    if response.status_code >= 500:
        raise Unknown(network, str(message), status=response.status_code, code=str(code) if code else None)
    raise Rejected(network, str(message), status=response.status_code, code=str(code) if code else None)


class OAuthFlow:
    def __init__(
        self, spec: NetworkSpec, credentials: AppCredentials, sandbox_base: str | None = None, timeout: float = 10.0
    ) -> None:
        self.spec = spec
        # Every call to a provider has a timeout; a publish that times out is looked up, never re-sent.
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self.network = spec.network
        self.credentials = credentials
        self.sandbox_base = sandbox_base
        oauth = spec.oauth
        self.authorize_endpoint = resolve(oauth.authorize_url, self.network.value, sandbox_base)
        self.token_endpoint = resolve(oauth.token_url, self.network.value, sandbox_base)
        self.revoke_endpoint = resolve(oauth.revoke_url, self.network.value, sandbox_base) if oauth.revoke_url else None

    @property
    def uses_pkce(self) -> bool:
        return self.spec.oauth.pkce is not Pkce.NONE

    def url(self, real: str) -> str:
        return resolve(real, self.network.value, self.sandbox_base)

    def _client(self, redirect_uri: str | None = None) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.credentials.client_id,
            client_secret=self.credentials.client_secret,
            token_endpoint_auth_method=self.spec.oauth.token_auth,
            revocation_endpoint_auth_method=self.spec.oauth.token_auth,
            scope=self.spec.oauth.scope_separator.join(self.spec.oauth.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout,
        )

    def authorize_url(self, *, redirect_uri: str, state: str, code_verifier: str | None) -> str:
        oauth = self.spec.oauth
        extra = dict(oauth.extra_authorize_params)
        if oauth.client_id_param != "client_id":
            # TikTok names the client `client_key`; authlib only knows client_id.
            params = {
                oauth.client_id_param: self.credentials.client_id,
                "response_type": "code",
                "scope": oauth.scope_separator.join(oauth.scopes),
                "redirect_uri": redirect_uri,
                "state": state,
                **extra,
            }
            if code_verifier and self.uses_pkce:
                params |= {"code_challenge": create_s256_code_challenge(code_verifier), "code_challenge_method": "S256"}
            return f"{self.authorize_endpoint}?{urlencode(params)}"
        client = self._client(redirect_uri)
        url, _ = client.create_authorization_url(
            self.authorize_endpoint, state=state, code_verifier=code_verifier if self.uses_pkce else None, **extra
        )
        return url

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None) -> TokenGrant:
        if self.network is Network.TIKTOK:
            grant = await self._form_token({
                "client_key": self.credentials.client_id,
                "client_secret": self.credentials.client_secret,
                "code": code,
                "grant_type": "authorization_code",
                "redirect_uri": redirect_uri,
            })
        else:
            async with self._client(redirect_uri) as client:
                try:
                    kwargs: dict[str, Any] = {"code": code, "grant_type": "authorization_code"}
                    if code_verifier and self.uses_pkce:
                        kwargs["code_verifier"] = code_verifier
                    token = await client.fetch_token(self.token_endpoint, **kwargs)
                except OAuthError as err:
                    raise AuthExpired(self.network, err.description or err.error, code=err.error) from None
                except httpx.HTTPError as err:
                    raise Unknown(self.network, f"token call failed: {type(err).__name__}") from None
            grant = _grant(self.network, dict(token))
        if self.network in META_EXCHANGE:
            grant = await self._meta_long_lived(grant)
        return grant

    async def refresh(self, refresh_token: str | None, access_token: str | None = None) -> TokenGrant:
        if self.network in (Network.INSTAGRAM, Network.THREADS):
            _, grant_type = META_EXCHANGE[self.network]
            path = "/refresh_access_token"
            return await self._get_token(self.url(META_GRAPH[self.network] + path),
                                         {"grant_type": grant_type, "access_token": access_token or ""})
        if not refresh_token:
            raise AuthExpired(self.network, "no refresh token: reconnect the account", code="no_refresh_token")
        if self.network is Network.TIKTOK:
            return await self._form_token({
                "client_key": self.credentials.client_id,
                "client_secret": self.credentials.client_secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            })
        async with self._client() as client:
            try:
                token = await client.refresh_token(self.token_endpoint, refresh_token=refresh_token)
            except OAuthError as err:
                raise AuthExpired(self.network, err.description or err.error, code=err.error) from None
            except httpx.HTTPError as err:
                raise Unknown(self.network, f"refresh failed: {type(err).__name__}") from None
        return _grant(self.network, dict(token))

    async def revoke(self, token: str) -> bool:
        """Revoke at the provider where it offers a way; False where it does not."""
        if self.revoke_endpoint is None:
            return False
        if self.network is Network.TIKTOK:
            form = {"client_key": self.credentials.client_id, "client_secret": self.credentials.client_secret,
                    "token": token}
            async with httpx.AsyncClient(timeout=self.timeout) as http:
                try:
                    response = await http.post(self.revoke_endpoint, data=form)
                except httpx.HTTPError as err:
                    raise Unknown(self.network, f"revoke failed: {type(err).__name__}") from None
            raise_for(self.network, response)
            return True
        async with self._client() as client:
            try:
                response = await client.revoke_token(self.revoke_endpoint, token=token, token_type_hint="access_token")
            except httpx.HTTPError as err:
                raise Unknown(self.network, f"revoke failed: {type(err).__name__}") from None
        raise_for(self.network, response)
        return True

    async def _form_token(self, form: dict[str, str]) -> TokenGrant:
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            try:
                response = await http.post(self.token_endpoint, data=form)
            except httpx.HTTPError as err:
                raise Unknown(self.network, f"token call failed: {type(err).__name__}") from None
        raise_for(self.network, response, token_call=True)
        body = response.json()
        if isinstance(body, dict) and body.get("error") and body.get("error") != "ok" and "access_token" not in body:
            raise AuthExpired(self.network, str(body.get("error_description") or body["error"]), code=str(body["error"]))
        return _grant(self.network, body.get("data") if isinstance(body.get("data"), dict) else body)

    async def _get_token(self, url: str, params: dict[str, str]) -> TokenGrant:
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            try:
                response = await http.get(url, params=params)
            except httpx.HTTPError as err:
                raise Unknown(self.network, f"token call failed: {type(err).__name__}") from None
        raise_for(self.network, response, token_call=True)
        return _grant(self.network, response.json())

    async def _meta_long_lived(self, short: TokenGrant) -> TokenGrant:
        """Meta's login gives a short-lived token; trade it for the long-lived one at once."""
        grant_type, _ = META_EXCHANGE[self.network]
        params = {"grant_type": grant_type, "client_secret": self.credentials.client_secret}
        if self.network is Network.FACEBOOK:
            url = self.token_endpoint
            params |= {"client_id": self.credentials.client_id, "fb_exchange_token": short.access_token}
        else:
            url = self.url(META_GRAPH[self.network] + "/access_token")
            params["access_token"] = short.access_token
        long = await self._get_token(url, params)
        long.scopes = long.scopes or short.scopes
        long.extras = {**short.extras, **long.extras}
        return long
