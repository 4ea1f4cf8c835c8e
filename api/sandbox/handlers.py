"""The provider endpoints the sandbox plays: authorize, token, revoke, profile, accounts.

Each route is (network, methods, path regex relative to the network prefix, kind, handler).
Paths follow the URL rule in urls.py; trailing slashes are ignored (TikTok's and
Pinterest's real URLs end in one). Meta paths accept any Graph version, or none.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from litestar import Request, Response

from api.sandbox import identities as ids
from api.sandbox.dialects import (
    CLIENT_ID_PARAM, KNOWN_SCOPES, META, PKCE_SUPPORTED, SCOPE_REQUIRED, SCOPE_SEPARATOR, TOKEN_SCOPE_JOIN,
    api_auth_error, api_forbidden, google_api_error, json_response, linkedin_error, log_id, meta_error, oauth2_error,
    pinterest_error, tiktok_api_error, token_error,
)
from api.sandbox.state import META_REFRESH_MIN_AGE, ClientApp, Grant, SandboxState, Token

GV = r"(?:/v\d+\.\d+)?"  # optional Graph API version


@dataclass
class Ctx:
    state: SandboxState
    request: Request
    network: str
    method: str
    path: str  # the sandbox path, e.g. /x/2/users/me
    rel: str  # after the network prefix, e.g. /2/users/me
    query: dict[str, str]
    form: dict[str, str]
    groups: dict[str, str] = field(default_factory=dict)
    kind: str = ""
    json: Any = None  # the parsed body of an application/json request (None otherwise or if not JSON)
    # Set by the `processing_failed` fault: the media this call creates, uploads, finalizes or polls
    # fails processing (the handlers that take media read it).
    fail_processing: bool = False

    @property
    def params(self) -> dict[str, str]:
        """Query and form together (form wins): only Meta's token endpoints read both."""
        return {**self.query, **self.form}

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)


Handler = Callable[[Ctx], Awaitable[Response]]


@dataclass
class Route:
    network: str
    methods: tuple[str, ...]
    pattern: re.Pattern[str]
    kind: str | Callable[[Ctx], str]
    handler: Handler


ROUTES: list[Route] = []


def route(network: str, methods: str, pattern: str, kind: str | Callable[[Ctx], str], *,
          first: bool = False) -> Callable[[Handler], Handler]:
    """Register a provider endpoint. `first` puts it ahead of the routes already registered, for a
    path that overlaps a more general one (a Facebook video id is a `/{node}` too)."""
    def deco(fn: Handler) -> Handler:
        r = Route(network, tuple(methods.split(",")), re.compile(f"^{pattern}$"), kind, fn)
        if first:
            ROUTES.insert(0, r)
        else:
            ROUTES.append(r)
        return fn

    return deco


def find_route(network: str, method: str, rel: str) -> tuple[Route | None, dict[str, str], bool]:
    """(route, groups, path_exists_with_other_method)."""
    other = False
    for r in ROUTES:
        if r.network != network:
            continue
        m = r.pattern.match(rel)
        if not m:
            continue
        if method in r.methods:
            return r, m.groupdict(), False
        other = True
    return None, {}, other


# --- helpers ---------------------------------------------------------------------------

def bearer(ctx: Ctx) -> str | None:
    auth = ctx.header("authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" or (ctx.network in META and scheme.lower() == "oauth"):
        return value.strip() or None
    if ctx.network in META or ctx.network == "youtube":
        return ctx.query.get("access_token") or None
    return None


def basic_auth(ctx: Ctx) -> tuple[str, str] | None:
    auth = ctx.header("authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    cid, sep, secret = raw.partition(":")
    if not sep:
        return None
    from urllib.parse import unquote_plus

    return unquote_plus(cid), unquote_plus(secret)


def with_params(uri: str, params: dict[str, str], fragment: str | None = None) -> str:
    parts = urlsplit(uri)
    q = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(q), fragment if fragment is not None else parts.fragment))


def redirect(location: str) -> Response:
    return Response(content=b"", status_code=302, headers={"Location": location, "Cache-Control": "no-store"})


def authorize_page_error(error: str, description: str) -> Response:
    """Errors the real providers show on their own page instead of redirecting (bad client or redirect URI)."""
    return json_response({"error": error, "error_description": description, "sandbox": "authorize page error, no redirect"},
                         400)


def pkce_ok(challenge: str, method: str | None, verifier: str) -> bool:
    if (method or "plain") == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
    return verifier == challenge


def scope_join(network: str, scopes: list[str]) -> str:
    return TOKEN_SCOPE_JOIN.get(network, ",").join(scopes)


def remaining(now: float, until: float | None) -> int | None:
    return None if until is None else max(0, int(until - now))


def pick_fields(obj: dict[str, Any], fields: str | None, default: str, always: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    wanted = [f.strip() for f in (fields or default).split(",") if f.strip()]
    out = {k: obj[k] for k in always if k in obj}
    for f in wanted:
        if f in obj:
            out[f] = obj[f]
    return out


# --- authorize (all networks) ------------------------------------------------------------

DENY = {
    "facebook": {"error": "access_denied", "error_code": "200", "error_description": "Permissions error",
                 "error_reason": "user_denied"},
    "instagram": {"error": "access_denied", "error_reason": "user_denied",
                  "error_description": "The user denied your request."},
    "threads": {"error": "access_denied", "error_reason": "user_denied",
                "error_description": "The user denied your request."},
    "linkedin": {"error": "user_cancelled_authorize", "error_description": "The user cancelled the authorization"},
    "tiktok": {"error": "access_denied", "error_description": "The user denied the authorization."},
    "youtube": {"error": "access_denied"},
    "x": {"error": "access_denied", "error_description": "The user denied the authorization."},
    "pinterest": {"error": "access_denied", "error_description": "The user denied the authorization."},
}
# Meta appends a fragment to the callback URL; clients must ignore it.
REDIRECT_FRAGMENT = {"facebook": "_=_", "instagram": "_", "threads": "_"}


async def authorize(ctx: Ctx) -> Response:
    n, q, st = ctx.network, ctx.query, ctx.state
    cid_param = CLIENT_ID_PARAM.get(n, "client_id")
    client_id = q.get(cid_param)
    app = st.app(n, client_id)
    if app is None:
        return authorize_page_error("invalid_client", f"unknown {cid_param} {client_id!r}")
    redirect_uri = q.get("redirect_uri") or ""
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        return authorize_page_error("invalid_request", "redirect_uri missing or not an absolute http(s) URI")
    if app.redirect_uris is not None and redirect_uri not in app.redirect_uris:
        return authorize_page_error("invalid_request", "redirect_uri is not registered for this app")
    state_param = q.get("state")

    def fail(error: str, description: str) -> Response:
        return redirect(with_params(redirect_uri, {"error": error, "error_description": description, "state": state_param}))

    if q.get("response_type") != "code":
        return fail("unsupported_response_type", "response_type must be code")
    if n == "x" and not state_param:
        return authorize_page_error("invalid_request", "state is required")
    raw_scope = q.get("scope", "")
    if not raw_scope and n in SCOPE_REQUIRED:
        return fail("invalid_scope", "scope is required")
    sep = SCOPE_SEPARATOR[n]
    scopes = [s for s in raw_scope.split(sep) if s != ""] if raw_scope else []
    unknown = [s for s in scopes if s not in KNOWN_SCOPES[n]]
    if unknown:
        return fail("invalid_scope", f"Invalid scopes: {', '.join(unknown)} (scopes are separated by {sep!r})")
    challenge = q.get("code_challenge")
    method = q.get("code_challenge_method")
    if n == "x" and (not challenge or method != "S256"):
        return authorize_page_error("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
    if n in PKCE_SUPPORTED and challenge:
        if (method or "plain") not in ("S256", "plain"):
            return fail("invalid_request", "code_challenge_method must be S256 or plain")
    else:
        challenge = method = None
    identity = q.get("sandbox_identity") or ids.DEFAULT_IDENTITY
    if not ids.IDENTITY_RE.match(identity):
        return authorize_page_error("invalid_request", "sandbox_identity must match [A-Za-z0-9_.-]{1,40}")
    if q.get("sandbox_deny", "").lower() in ("1", "true", "yes"):
        params = dict(DENY[n])
        params["state"] = state_param  # type: ignore[assignment]
        return redirect(with_params(redirect_uri, params, REDIRECT_FRAGMENT.get(n)))
    code = st.new_code(network=n, client_id=app.client_id, redirect_uri=redirect_uri, scopes=scopes, identity=identity,
                       code_challenge=challenge, code_challenge_method=(method or "plain") if challenge else None,
                       offline=q.get("access_type") == "offline")
    return redirect(with_params(redirect_uri, {"code": code.code, "state": state_param}, REDIRECT_FRAGMENT.get(n)))


# --- token endpoint ------------------------------------------------------------------------

def token_params(ctx: Ctx) -> dict[str, str]:
    # Meta's hosts take the exchange parameters in the query string (GET or POST) too.
    return ctx.params if ctx.network in META else ctx.form


def token_kind(ctx: Ctx) -> str:
    gt = token_params(ctx).get("grant_type")
    if gt in ("refresh_token", "ig_refresh_token", "th_refresh_token"):
        return "refresh"
    if gt in ("fb_exchange_token", "ig_exchange_token", "th_exchange_token"):
        return "exchange"
    return "code"


def client_auth(ctx: Ctx, p: dict[str, str]) -> tuple[ClientApp | None, Response | None]:
    """Authenticate the app the way the network does."""
    n, st = ctx.network, ctx.state
    if n in ("x", "pinterest"):
        creds = basic_auth(ctx)
        if creds is None:
            return None, token_error(n, "missing_client_auth")
    elif n == "youtube":
        creds = basic_auth(ctx) or ((p["client_id"], p.get("client_secret", "")) if p.get("client_id") else None)
        if creds is None:
            return None, token_error(n, "missing_client_auth")
    else:
        cid_param = CLIENT_ID_PARAM.get(n, "client_id")
        if not p.get(cid_param):
            return None, token_error(n, "missing_client_auth")
        creds = (p[cid_param], p.get("client_secret", ""))
    app = st.app(n, creds[0])
    if app is None:
        return None, token_error(n, "invalid_client", "id")
    if creds[1] != app.client_secret:
        return None, token_error(n, "invalid_client", "secret")
    return app, None


def code_answer(ctx: Ctx, app: ClientApp, grant: Grant, offline: bool) -> dict[str, Any]:
    n, st = ctx.network, ctx.state
    now = st.clock.now()
    access = st.issue(grant, "access", st.ttl(n, "access"))
    if n == "x":
        body: dict[str, Any] = {"token_type": "bearer", "expires_in": int(st.ttl(n, "access") or 0),
                                "access_token": access.value, "scope": scope_join(n, grant.scopes)}
        if "offline.access" in grant.scopes:
            body["refresh_token"] = st.issue(grant, "refresh", st.ttl(n, "refresh")).value
        return body
    if n == "facebook":
        return {"access_token": access.value, "token_type": "bearer", "expires_in": int(st.ttl(n, "access") or 0)}
    if n == "instagram":
        user = ids.instagram_user(grant.identity)
        return {"access_token": access.value, "user_id": user["user_id"], "permissions": ",".join(grant.scopes)}
    if n == "threads":
        return {"access_token": access.value, "user_id": ids.threads_user(grant.identity)["id"]}
    if n == "tiktok":
        refresh = st.issue(grant, "refresh", st.ttl(n, "refresh"))
        return {"access_token": access.value, "expires_in": int(st.ttl(n, "access") or 0),
                "open_id": ids.tiktok_user(grant.identity)["open_id"],
                "refresh_expires_in": remaining(now, refresh.expires_at), "refresh_token": refresh.value,
                "scope": scope_join(n, grant.scopes), "token_type": "Bearer"}
    if n == "youtube":
        body = {"access_token": access.value, "expires_in": int(st.ttl(n, "access") or 0)}
        if offline:
            body["refresh_token"] = st.issue(grant, "refresh", st.ttl(n, "refresh")).value
        body.update({"scope": scope_join(n, grant.scopes), "token_type": "Bearer"})
        return body
    if n == "linkedin":
        body = {"access_token": access.value, "expires_in": int(st.ttl(n, "access") or 0)}
        if app.refresh_tokens:
            refresh = st.issue(grant, "refresh", None)
            refresh.expires_at = grant.refresh_expires_at
            body["refresh_token"] = refresh.value
            body["refresh_token_expires_in"] = remaining(now, grant.refresh_expires_at)
        body["scope"] = scope_join(n, grant.scopes)
        return body
    if n == "pinterest":
        refresh = st.issue(grant, "refresh", st.ttl(n, "refresh"))
        return {"access_token": access.value, "refresh_token": refresh.value, "response_type": "authorization_code",
                "token_type": "bearer", "expires_in": int(st.ttl(n, "access") or 0),
                "refresh_token_expires_in": remaining(now, refresh.expires_at),
                "refresh_token_expires_at": int(refresh.expires_at or 0), "scope": scope_join(n, grant.scopes)}
    raise ValueError(n)


async def exchange_code(ctx: Ctx, p: dict[str, str], app: ClientApp) -> Response:
    n, st = ctx.network, ctx.state
    value = p.get("code")
    if not value:
        return token_error(n, "missing_param", "Missing required parameter: code")
    code = st.codes.get(value)
    if code is None or code.network != n:
        return token_error(n, "bad_code")
    if code.used:
        return token_error(n, "used_code")
    if st.clock.now() >= code.expires_at:
        return token_error(n, "expired_code")
    if code.client_id != app.client_id:
        return token_error(n, "bad_code")
    if p.get("redirect_uri") != code.redirect_uri:
        return token_error(n, "redirect_mismatch")
    if code.code_challenge:
        verifier = p.get("code_verifier")
        if not verifier:
            return token_error(n, "pkce_missing")
        if not pkce_ok(code.code_challenge, code.code_challenge_method, verifier):
            return token_error(n, "pkce_mismatch")
    code.used = True
    grant = st.new_grant(n, app.client_id, code.identity, code.scopes)
    code.grant_id = grant.id
    return json_response(code_answer(ctx, app, grant, code.offline), headers={"Cache-Control": "no-store"})


async def refresh_grant(ctx: Ctx, p: dict[str, str], app: ClientApp) -> Response:
    n, st = ctx.network, ctx.state
    if n in META:
        return token_error(n, "unsupported_grant", p.get("grant_type", ""))
    if n == "linkedin" and not app.refresh_tokens:
        return token_error(n, "refresh_not_allowed")
    value = p.get("refresh_token")
    if not value:
        return token_error(n, "missing_param", "Missing required parameter: refresh_token")
    tok = st.tokens.get(value)
    if tok is None or tok.network != n or tok.kind != "refresh":
        return token_error(n, "bad_refresh")
    grant = st.grants[tok.grant_id]
    if grant.client_id != app.client_id:
        return token_error(n, "bad_refresh")
    if grant.revoked or tok.revoked:
        return token_error(n, "bad_refresh")
    now = st.clock.now()
    if tok.expires_at is not None and now >= tok.expires_at:
        return token_error(n, "bad_refresh")
    if n in ("x", "tiktok"):  # rotation: a spent refresh token used again revokes the whole chain
        if tok.used:
            st.revoke_grant(grant.id, "refresh token reused")
            return token_error(n, "reused_refresh")
        tok.used = True
        access = st.issue(grant, "access", st.ttl(n, "access"))
        new_refresh = st.issue(grant, "refresh", st.ttl(n, "refresh"))
        if n == "x":
            body: dict[str, Any] = {"token_type": "bearer", "expires_in": int(st.ttl(n, "access") or 0),
                                    "access_token": access.value, "scope": scope_join(n, grant.scopes),
                                    "refresh_token": new_refresh.value}
        else:
            body = {"access_token": access.value, "expires_in": int(st.ttl(n, "access") or 0),
                    "open_id": ids.tiktok_user(grant.identity)["open_id"],
                    "refresh_expires_in": remaining(now, new_refresh.expires_at), "refresh_token": new_refresh.value,
                    "scope": scope_join(n, grant.scopes), "token_type": "Bearer"}
        return json_response(body, headers={"Cache-Control": "no-store"})
    access = st.issue(grant, "access", st.ttl(n, "access"))
    if n == "youtube":
        body = {"access_token": access.value, "expires_in": int(st.ttl(n, "access") or 0),
                "scope": scope_join(n, grant.scopes), "token_type": "Bearer"}
    elif n == "linkedin":  # same refresh token, its life counts from the first consent
        body = {"access_token": access.value, "expires_in": int(st.ttl(n, "access") or 0), "refresh_token": tok.value,
                "refresh_token_expires_in": remaining(now, tok.expires_at), "scope": scope_join(n, grant.scopes)}
    elif n == "pinterest":  # continuous refresh: a new refresh token with a fresh 60-day window
        new_refresh = st.issue(grant, "refresh", st.ttl(n, "refresh"))
        body = {"access_token": access.value, "refresh_token": new_refresh.value, "response_type": "refresh_token",
                "token_type": "bearer", "expires_in": int(st.ttl(n, "access") or 0),
                "refresh_token_expires_in": remaining(now, new_refresh.expires_at),
                "refresh_token_expires_at": int(new_refresh.expires_at or 0), "scope": scope_join(n, grant.scopes)}
    else:
        raise ValueError(n)
    return json_response(body, headers={"Cache-Control": "no-store"})


def long_lived_answer(ctx: Ctx, grant: Grant, *, permissions: bool = False) -> Response:
    st, n = ctx.state, ctx.network
    ttl = st.ttl(n, "long_access")
    tok = st.issue(grant, "access", ttl, long_lived=True)
    body: dict[str, Any] = {"access_token": tok.value, "token_type": "bearer", "expires_in": int(ttl or 0)}
    if permissions:
        body["permissions"] = ",".join(grant.scopes)
    return json_response(body)


async def fb_exchange(ctx: Ctx, p: dict[str, str], app: ClientApp) -> Response:
    status, tok = ctx.state.token_status(p.get("fb_exchange_token"), "facebook", kinds=("access",))
    if status != "ok" or tok is None:
        return meta_error("Invalid OAuth access token - Cannot parse access token" if status == "invalid"
                          else "Error validating access token: Session has expired." if status == "expired"
                          else "Error validating access token.", 190, subcode=463 if status == "expired" else None)
    grant = ctx.state.grants[tok.grant_id]
    if grant.client_id != app.client_id:
        return meta_error("Error validating access token: the token was not issued to this application.", 190)
    return long_lived_answer(ctx, grant)


@route("x", "POST", r"/2/oauth2/token", token_kind)
@route("tiktok", "POST", r"/v2/oauth/token", token_kind)
@route("youtube", "POST", r"/token", token_kind)
@route("linkedin", "POST", r"/oauth/v2/accessToken", token_kind)
@route("pinterest", "POST", r"/v5/oauth/token", token_kind)
@route("instagram", "POST", r"/oauth/access_token", token_kind)
@route("threads", "GET,POST", r"/oauth/access_token", token_kind)
@route("facebook", "GET,POST", GV + r"/oauth/access_token", token_kind)
async def token_endpoint(ctx: Ctx) -> Response:
    n = ctx.network
    p = token_params(ctx)
    grant_type = p.get("grant_type")
    if n == "facebook" and grant_type is None and "code" in p:
        grant_type = "authorization_code"  # Facebook's code exchange sends no grant_type
    if not grant_type:
        return token_error(n, "missing_param", "Missing required parameter: grant_type")
    app, err = client_auth(ctx, p)
    if err is not None or app is None:
        return err  # type: ignore[return-value]
    if grant_type == "authorization_code":
        return await exchange_code(ctx, p, app)
    if grant_type == "refresh_token":
        return await refresh_grant(ctx, p, app)
    if n == "facebook" and grant_type == "fb_exchange_token":
        return await fb_exchange(ctx, p, app)
    return token_error(n, "unsupported_grant", grant_type)


# Instagram (graph.instagram.com) and Threads (graph.threads.net): long-lived tokens.

@route("instagram", "GET", GV + r"/access_token", "exchange")
@route("threads", "GET", GV + r"/access_token", "exchange")
async def meta_exchange(ctx: Ctx) -> Response:
    n, st, p = ctx.network, ctx.state, ctx.params
    expected = "ig_exchange_token" if n == "instagram" else "th_exchange_token"
    if p.get("grant_type") != expected:
        return meta_error(f"grant_type must be {expected}", 100)
    status, tok = st.token_status(bearer(ctx) or p.get("access_token"), n, kinds=("access",))
    if status != "ok" or tok is None:
        return api_auth_error(n, status)
    grant = st.grants[tok.grant_id]
    app = st.app(n, grant.client_id)
    if app is None or p.get("client_secret") != app.client_secret:
        return meta_error("Error validating client secret.", 1)
    if tok.long_lived:
        return meta_error("The access token is already long-lived.", 100)
    return long_lived_answer(ctx, grant)


@route("instagram", "GET", GV + r"/refresh_access_token", "refresh")
@route("threads", "GET", GV + r"/refresh_access_token", "refresh")
async def meta_refresh(ctx: Ctx) -> Response:
    n, st, p = ctx.network, ctx.state, ctx.params
    expected = "ig_refresh_token" if n == "instagram" else "th_refresh_token"
    if p.get("grant_type") != expected:
        return meta_error(f"grant_type must be {expected}", 100)
    status, tok = st.token_status(bearer(ctx) or p.get("access_token"), n, kinds=("access",))
    if status != "ok" or tok is None:
        return api_auth_error(n, status)
    if not tok.long_lived:
        return meta_error("Only long-lived access tokens can be refreshed.", 190)
    if st.clock.now() - tok.issued_at < META_REFRESH_MIN_AGE:
        return meta_error("The access token can be refreshed only once it is at least 24 hours old.", 190)
    return long_lived_answer(ctx, st.grants[tok.grant_id], permissions=(n == "instagram"))


# --- revoke -----------------------------------------------------------------------------------

@route("x", "POST", r"/2/oauth2/revoke", "revoke")
@route("tiktok", "POST", r"/v2/oauth/revoke", "revoke")
@route("youtube", "POST", r"/revoke", "revoke")
@route("linkedin", "POST", r"/oauth/v2/revoke", "revoke")
async def revoke(ctx: Ctx) -> Response:
    """Revoking any token of a grant ends the whole grant: every token of that login stops working."""
    n, st = ctx.network, ctx.state
    p = {**ctx.query, **ctx.form} if n == "youtube" else ctx.form
    if n != "youtube":  # Google's revoke needs no client authentication
        app, err = client_auth(ctx, p)
        if err is not None:
            return err
    value = p.get("token")
    tok = st.tokens.get(value or "")
    if n == "youtube":
        status, _ = st.token_status(value, n, kinds=("access", "refresh"))
        if tok is None or status in ("invalid", "revoked", "missing"):
            return oauth2_error("invalid_token", "Token expired or revoked")
    if tok is not None and tok.network == n:
        st.revoke_grant(tok.grant_id, "revoked by the app")
    if n == "x":
        return json_response({"revoked": True})
    if n == "tiktok":
        return json_response({"error": "", "error_description": "", "log_id": log_id()})
    if n == "youtube":
        return json_response({})
    return Response(content=b"", status_code=200)


@route("facebook", "DELETE", GV + r"/me/permissions", "revoke")
async def facebook_deauthorize(ctx: Ctx) -> Response:
    status, tok = ctx.state.token_status(bearer(ctx), "facebook", kinds=("access",))
    if status != "ok" or tok is None:
        return api_auth_error("facebook", status)
    ctx.state.revoke_grant(tok.grant_id, "app removed by the user")
    return json_response({"success": True})


# --- profile and accounts -----------------------------------------------------------------

def authed(ctx: Ctx, kinds: tuple[str, ...] = ("access",)) -> tuple[Token | None, Grant | None, Response | None]:
    status, tok = ctx.state.token_status(bearer(ctx), ctx.network, kinds=kinds)
    if status != "ok" or tok is None:
        return None, None, api_auth_error(ctx.network, status)
    return tok, ctx.state.grants[tok.grant_id], None


X_USER_FIELDS = ("profile_image_url", "created_at", "description", "verified", "protected")


@route("x", "GET", r"/2/users/me", "profile")
async def x_me(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    if not {"users.read", "tweet.read"} <= set(grant.scopes):
        return api_forbidden("x", "users.read and tweet.read")
    user = ids.x_user(grant.identity)
    data = {"id": user["id"], "name": user["name"], "username": user["username"]}
    for f in (ctx.query.get("user.fields") or "").split(","):
        if f in X_USER_FIELDS:
            data[f] = user[f]
    return json_response({"data": data})


@route("facebook", "GET", GV + r"/me", "profile")
async def facebook_me(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx, kinds=("access", "page"))
    if err:
        return err
    assert tok and grant
    if tok.kind == "page":
        page = next((pg for pg in ids.facebook_pages(grant.identity) if pg["id"] == tok.page_id), None)
        if page is None:
            return api_auth_error("facebook", "revoked")
        return json_response(pick_fields(page, ctx.query.get("fields"), "id,name"))
    user = ids.facebook_user(grant.identity)
    if "email" not in grant.scopes:
        user.pop("email", None)
    return json_response(pick_fields(user, ctx.query.get("fields"), "id,name"))


def page_token(ctx: Ctx, grant: Grant, user_token: Token, page_id: str) -> Token:
    """One page token per (grant, page, expiry). From a long-lived user token it never expires;
    from a short-lived one it expires with the user token (as on Facebook)."""
    st = ctx.state
    expires_at = None if user_token.long_lived else user_token.expires_at
    for t in st.tokens.values():
        if t.kind == "page" and t.grant_id == grant.id and t.page_id == page_id and t.expires_at == expires_at:
            return t
    tok = st.issue(grant, "page", None, page_id=page_id)
    tok.expires_at = expires_at
    return tok


@route("facebook", "GET", GV + r"/me/accounts", "accounts")
async def facebook_accounts(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx, kinds=("access", "page"))
    if err:
        return err
    assert tok and grant
    if tok.kind == "page":
        return meta_error("(#100) Tried accessing nonexisting field (accounts) on node type (Page)", 100)
    if "pages_show_list" not in grant.scopes:
        return json_response({"data": []})
    data = []
    for page in ids.facebook_pages(grant.identity):
        full = dict(page)
        full["access_token"] = page_token(ctx, grant, tok, page["id"]).value
        data.append(pick_fields(full, ctx.query.get("fields"), "access_token,category,category_list,name,id,tasks"))
    body: dict[str, Any] = {"data": data}
    if data:
        body["paging"] = {"cursors": {"before": base64.urlsafe_b64encode(data[0]["id"].encode()).decode(),
                                      "after": base64.urlsafe_b64encode(data[-1]["id"].encode()).decode()}}
    return json_response(body)


@route("facebook", "GET", GV + r"/(?P<node>\d+)", "profile")
async def facebook_node(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx, kinds=("access", "page"))
    if err:
        return err
    assert tok and grant
    node = ctx.groups["node"]
    pages = {pg["id"]: pg for pg in ids.facebook_pages(grant.identity)}
    user = ids.facebook_user(grant.identity)
    if tok.kind == "page" and node == tok.page_id or tok.kind == "access" and node in pages:
        return json_response(pick_fields(pages[node], ctx.query.get("fields"), "id,name"))
    if tok.kind == "access" and node == user["id"]:
        return json_response(pick_fields(user, ctx.query.get("fields"), "id,name"))
    return meta_error(f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded due to missing "
                      "permissions, or does not support this operation.", 100, subcode=33)


@route("instagram", "GET", GV + r"/me", "profile")
async def instagram_me(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    return json_response(pick_fields(ids.instagram_user(grant.identity), ctx.query.get("fields"), "id"))


@route("threads", "GET", GV + r"/me", "profile")
async def threads_me(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    return json_response(pick_fields(ids.threads_user(grant.identity), ctx.query.get("fields"), "id"))


TIKTOK_FIELD_SCOPES = {
    "open_id": "user.info.basic", "union_id": "user.info.basic", "avatar_url": "user.info.basic",
    "avatar_url_100": "user.info.basic", "avatar_large_url": "user.info.basic", "display_name": "user.info.basic",
    "bio_description": "user.info.profile", "profile_deep_link": "user.info.profile", "is_verified": "user.info.profile",
    "username": "user.info.profile", "follower_count": "user.info.stats", "following_count": "user.info.stats",
    "likes_count": "user.info.stats", "video_count": "user.info.stats",
}


@route("tiktok", "GET", r"/v2/user/info", "profile")
async def tiktok_user_info(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    fields = [f.strip() for f in (ctx.query.get("fields") or "").split(",") if f.strip()]
    if not fields:
        return tiktok_api_error(400, "invalid_params", "The fields parameter is required.")
    unknown = [f for f in fields if f not in TIKTOK_FIELD_SCOPES]
    if unknown:
        return tiktok_api_error(400, "invalid_params", f"Invalid fields: {','.join(unknown)}")
    if any(TIKTOK_FIELD_SCOPES[f] not in grant.scopes for f in fields):
        return api_forbidden("tiktok", "user info fields")
    user = ids.tiktok_user(grant.identity)
    return json_response({"data": {"user": {f: user[f] for f in fields}},
                          "error": {"code": "ok", "message": "", "log_id": log_id()}})


YT_READ_SCOPES = {"https://www.googleapis.com/auth/youtube", "https://www.googleapis.com/auth/youtube.readonly",
                  "https://www.googleapis.com/auth/youtube.force-ssl"}


@route("youtube", "GET", r"/youtube/v3/channels", "accounts")
async def youtube_channels(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    part = ctx.query.get("part")
    if not part:
        return google_api_error(400, "Required parameter: part", "required", "INVALID_ARGUMENT",
                                extra={"location": "part", "locationType": "parameter"})
    if ctx.query.get("mine") != "true":
        return google_api_error(400, "No filter selected. Expected one of: forHandle, forUsername, id, managedByMe, mine",
                                "missingRequiredParameter", "INVALID_ARGUMENT", domain="youtube.parameter")
    if not YT_READ_SCOPES & set(grant.scopes):
        return api_forbidden("youtube", "channels.list")
    channel = ids.youtube_channel(grant.identity)
    body: dict[str, Any] = {"kind": "youtube#channelListResponse", "etag": ids.alnum(27, "yt-list", grant.identity),
                            "pageInfo": {"totalResults": 1 if channel else 0, "resultsPerPage": 5}}
    if channel:
        parts = {p.strip() for p in part.split(",")}
        item = {"kind": channel["kind"], "etag": channel["etag"], "id": channel["id"]}
        if "snippet" in parts:
            item["snippet"] = channel["snippet"]
        if "contentDetails" in parts:
            item["contentDetails"] = {"relatedPlaylists": {"likes": "", "uploads": "UU" + channel["id"][2:]}}
        if "statistics" in parts:
            item["statistics"] = {"viewCount": "0", "subscriberCount": "0", "hiddenSubscriberCount": False,
                                  "videoCount": "0"}
        body["items"] = [item]
    return json_response(body)


@route("linkedin", "GET", r"/v2/userinfo", "profile")
async def linkedin_userinfo(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    if not {"openid", "profile"} <= set(grant.scopes):
        return api_forbidden("linkedin", "userinfo.GET.NO_VERSION")
    member = ids.linkedin_member(grant.identity)
    if "email" not in grant.scopes:
        member.pop("email")
        member.pop("email_verified")
    return json_response(member)


def linkedin_version_error(ctx: Ctx) -> Response | None:
    if ctx.rel.startswith("/rest/") and not re.fullmatch(r"\d{6}(\.\d{2})?", ctx.header("linkedin-version") or ""):
        return linkedin_error(400, "A version must be present. Please specify a version by adding the LinkedIn-Version "
                              "header.", code="VERSION_MISSING")
    return None


@route("linkedin", "GET", r"/(?:rest|v2)/organizationAcls", "accounts")
async def linkedin_org_acls(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    if (e := linkedin_version_error(ctx)) is not None:
        return e
    if ctx.query.get("q") != "roleAssignee":
        return linkedin_error(400, "Invalid query parameters passed to request", code="ILLEGAL_ARGUMENT")
    if not {"rw_organization_admin", "r_organization_admin"} & set(grant.scopes):
        return api_forbidden("linkedin", "organizationAcls.FINDER-roleAssignee")
    member = ids.linkedin_member(grant.identity)
    role, state = ctx.query.get("role"), ctx.query.get("state")
    elements = []
    for org in ids.linkedin_orgs(grant.identity):
        if role and org["role"] != role or state and state != "APPROVED":
            continue
        elements.append({"roleAssignee": f"urn:li:person:{member['sub']}", "state": "APPROVED", "role": org["role"],
                         "organization": f"urn:li:organization:{org['id']}",
                         "lastModified": {"actor": f"urn:li:person:{member['sub']}", "time": 1577836800000},
                         "created": {"actor": f"urn:li:person:{member['sub']}", "time": 1577836800000}})
    start = int(ctx.query.get("start") or 0)
    count = int(ctx.query.get("count") or 10)
    page = elements[start:start + count]
    return json_response({"paging": {"start": start, "count": count, "links": [], "total": len(elements)},
                          "elements": page})


@route("linkedin", "GET", r"/(?:rest|v2)/organizations/(?P<org>\d+)", "accounts")
async def linkedin_organization(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    if (e := linkedin_version_error(ctx)) is not None:
        return e
    org = next((o for o in ids.linkedin_orgs(grant.identity) if str(o["id"]) == ctx.groups["org"]), None)
    if org is None:
        return api_forbidden("linkedin", "organizations.GET")
    return json_response({"id": org["id"], "localizedName": org["localizedName"], "vanityName": org["vanityName"],
                          "name": {"localized": {"en_US": org["localizedName"]},
                                   "preferredLocale": {"country": "US", "language": "en"}},
                          "primaryOrganizationType": "NONE", "organizationType": "PRIVATELY_HELD"})


@route("pinterest", "GET", r"/v5/user_account", "profile")
async def pinterest_user_account(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    if "user_accounts:read" not in grant.scopes:
        return api_forbidden("pinterest", "user_account")
    return json_response(ids.pinterest_user(grant.identity))


@route("pinterest", "GET", r"/v5/boards", "accounts")
async def pinterest_boards(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    if "boards:read" not in grant.scopes:
        return api_forbidden("pinterest", "boards")
    boards = ids.pinterest_boards(grant.identity)
    if "boards:read_secret" not in grant.scopes:
        boards = [b for b in boards if b["privacy"] != "SECRET"]
    privacy = ctx.query.get("privacy")
    if privacy and privacy != "ALL":
        boards = [b for b in boards if b["privacy"] == privacy]
    try:
        size = int(ctx.query.get("page_size") or 25)
        start = int(base64.urlsafe_b64decode((ctx.query.get("bookmark") or "MA==").encode()).decode() or 0)
    except ValueError:
        return pinterest_error(400, 1, "Invalid parameters.")
    if not 1 <= size <= 250:
        return pinterest_error(400, 1, "page_size must be between 1 and 250.")
    items = boards[start:start + size]
    nxt = start + size
    bookmark = base64.urlsafe_b64encode(str(nxt).encode()).decode() if nxt < len(boards) else None
    return json_response({"items": items, "bookmark": bookmark})


# --- who is calling (for faults and the call log) -------------------------------------------

def peek(ctx: Ctx) -> tuple[str | None, str | None]:
    """(identity, client_id) of a call, if the sandbox can tell before handling it."""
    st = ctx.state
    if ctx.kind == "authorize":
        ident = ctx.query.get("sandbox_identity") or ids.DEFAULT_IDENTITY
        return ident, ctx.query.get(CLIENT_ID_PARAM.get(ctx.network, "client_id"))
    p = ctx.params
    code = st.codes.get(p.get("code") or "")
    if code is not None:
        return code.identity, code.client_id
    for value in (p.get("refresh_token"), p.get("fb_exchange_token"), p.get("token"), bearer(ctx), p.get("access_token")):
        tok = st.tokens.get(value or "")
        if tok is not None:
            g = st.grants.get(tok.grant_id)
            if g:
                return g.identity, g.client_id
    return None, None


def _register_authorize() -> None:
    from api.sandbox.urls import REAL_URLS

    for n, urls in REAL_URLS.items():
        path = urlsplit(urls["authorize"] or "").path.rstrip("/")
        if n == "facebook":
            path = GV + re.escape(re.sub(r"^/v\d+\.\d+", "", path))
        else:
            path = re.escape(path)
        ROUTES.append(Route(n, ("GET",), re.compile(f"^{path}$"), "authorize", authorize))


_register_authorize()
