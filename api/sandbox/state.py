"""In-memory state of one sandbox app: apps, codes, grants, tokens, faults, the call log, the clock.

All mutations are synchronous (no await in between), so on one event loop they are atomic.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from api.sandbox.content import ContentStore
from api.sandbox.urls import NETWORKS

MAX_FAULT_SLEEP = 30.0  # every sleep the sandbox does is bounded by this many seconds


def default_client_id(network: str) -> str:
    return f"chorus-sandbox-{network}"


def default_client_secret(network: str) -> str:
    return f"sandbox-secret-{network}"


# Lifetimes in seconds (None: does not expire). Control API: POST /_sandbox/config.
DEFAULT_TTLS: dict[str, dict[str, float | None]] = {
    "x": {"code": 30, "access": 7200, "refresh": None},
    "facebook": {"code": 600, "access": 7200, "long_access": 5183944, "refresh": None},
    "instagram": {"code": 600, "access": 3600, "long_access": 5184000, "refresh": None},
    "tiktok": {"code": 600, "access": 7200, "refresh": 15552000},
    "youtube": {"code": 600, "access": 3599, "refresh": None},
    "linkedin": {"code": 1800, "access": 5183999, "refresh": 31535999},
    "threads": {"code": 600, "access": 3600, "long_access": 5184000, "refresh": None},
    "pinterest": {"code": 600, "access": 2592000, "refresh": 5184000},
}

# Meta long-lived tokens may be refreshed once they are this old (seconds).
META_REFRESH_MIN_AGE = 24 * 3600


class Clock:
    """Wall clock plus a controllable offset (POST /_sandbox/clock)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class ClientApp:
    network: str
    client_id: str
    client_secret: str
    redirect_uris: list[str] | None = None  # None: any http(s) redirect URI is accepted
    refresh_tokens: bool = True  # LinkedIn: refresh tokens are for partner apps only
    audited: bool = False  # TikTok: an unaudited app may only post SELF_ONLY


@dataclass
class AuthCode:
    code: str
    network: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    identity: str
    issued_at: float
    expires_at: float
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    offline: bool = False  # Google access_type=offline
    used: bool = False
    grant_id: str | None = None  # grant issued from this code (a reused code revokes it)


@dataclass
class Grant:
    """One consent: every token issued from one code (the refresh chain) belongs to it."""

    id: str
    network: str
    client_id: str
    identity: str
    scopes: list[str]
    created_at: float
    refresh_expires_at: float | None = None  # LinkedIn: fixed from first consent
    revoked: bool = False
    revoked_reason: str = ""


@dataclass
class Token:
    value: str
    kind: str  # access | refresh | page
    grant_id: str
    network: str
    issued_at: float
    expires_at: float | None
    long_lived: bool = False
    page_id: str | None = None
    used: bool = False  # a rotated refresh token that was spent
    revoked: bool = False


@dataclass
class Fault:
    id: int
    network: str
    match: str
    kind: str  # status | timeout | delay | invalid_grant | expired_token | processing_failed
    identity: str | None = None
    status: int | None = None
    body: Any = None
    headers: dict[str, str] | None = None
    seconds: float = 0.0
    effect: str = "applied"  # timeout: applied (handled, then slow answer) | not_applied (slow 504)
    times: int | None = 1  # None: until cleared
    retry_after: float = 900.0  # status 429: X's x-rate-limit-reset is now + this
    limit: int = 100  # status 429: X's x-rate-limit-limit
    hits: int = 0

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Call:
    seq: int
    at: float
    network: str
    method: str
    path: str
    kind: str
    identity: str | None
    client_id: str | None
    status: int = 0
    fault: int | None = None
    outcome: str = ""


@dataclass
class SandboxState:
    clock: Clock = field(default_factory=Clock)
    apps: dict[tuple[str, str], ClientApp] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    ttls: dict[str, dict[str, float | None]] = field(default_factory=dict)
    content: ContentStore = field(default_factory=ContentStore)  # the publish half (content.py)
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1))
    _fault_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.clock = Clock()
        self.apps.clear()
        self.codes.clear()
        self.grants.clear()
        self.tokens.clear()
        self.faults.clear()
        self.calls.clear()
        self.ttls = {n: dict(v) for n, v in DEFAULT_TTLS.items()}
        self.content.reset()
        self._seq = itertools.count(1)
        self._fault_ids = itertools.count(1)
        for n in NETWORKS:
            self.register_app(ClientApp(n, default_client_id(n), default_client_secret(n)))

    # --- apps -------------------------------------------------------------------------
    def register_app(self, app: ClientApp) -> None:
        self.apps[(app.network, app.client_id)] = app

    def app(self, network: str, client_id: str | None) -> ClientApp | None:
        if not client_id:
            return None
        return self.apps.get((network, client_id))

    # --- tokens -----------------------------------------------------------------------
    def ttl(self, network: str, what: str) -> float | None:
        return self.ttls[network].get(what)

    def new_code(self, **kw: Any) -> AuthCode:
        network = kw["network"]
        now = self.clock.now()
        code = AuthCode(code=_opaque(network, "code"), issued_at=now,
                        expires_at=now + float(self.ttl(network, "code") or 600), **kw)
        self.codes[code.code] = code
        return code

    def new_grant(self, network: str, client_id: str, identity: str, scopes: list[str]) -> Grant:
        now = self.clock.now()
        refresh_ttl = self.ttl(network, "refresh")
        g = Grant(id=secrets.token_hex(8), network=network, client_id=client_id, identity=identity,
                  scopes=list(scopes), created_at=now,
                  refresh_expires_at=(now + refresh_ttl) if refresh_ttl else None)
        self.grants[g.id] = g
        return g

    def issue(self, grant: Grant, kind: str, ttl: float | None, *, long_lived: bool = False,
              page_id: str | None = None, value: str | None = None) -> Token:
        now = self.clock.now()
        tok = Token(value=value or _opaque(grant.network, kind), kind=kind, grant_id=grant.id, network=grant.network,
                    issued_at=now, expires_at=(now + ttl) if ttl else None, long_lived=long_lived, page_id=page_id)
        self.tokens[tok.value] = tok
        return tok

    def revoke_grant(self, grant_id: str, reason: str) -> None:
        g = self.grants.get(grant_id)
        if g and not g.revoked:
            g.revoked = True
            g.revoked_reason = reason

    def token_status(self, value: str | None, network: str, kinds: tuple[str, ...] = ("access", "page")) -> tuple[str, Token | None]:
        """('ok'|'missing'|'invalid'|'expired'|'revoked', token)."""
        if not value:
            return "missing", None
        tok = self.tokens.get(value)
        if tok is None or tok.network != network or tok.kind not in kinds:
            return "invalid", None
        g = self.grants.get(tok.grant_id)
        if tok.revoked or g is None or g.revoked:
            return "revoked", tok
        if tok.expires_at is not None and self.clock.now() >= tok.expires_at:
            return "expired", tok
        return "ok", tok

    def grant_of(self, tok: Token | None) -> Grant | None:
        return self.grants.get(tok.grant_id) if tok else None

    # --- faults and calls ---------------------------------------------------------------
    def add_fault(self, **kw: Any) -> Fault:
        f = Fault(id=next(self._fault_ids), **kw)
        self.faults.append(f)
        return f

    def take_fault(self, network: str, kind: str, path: str, identity: str | None) -> Fault | None:
        for f in self.faults:
            if f.network != network:
                continue
            if f.identity is not None and f.identity != identity:
                continue
            if not match_kind(f.match, kind, network, path):
                continue
            f.hits += 1
            if f.times is not None:
                f.times -= 1
                if f.times <= 0:
                    self.faults.remove(f)
            return f
        return None

    def log_call(self, **kw: Any) -> Call:
        c = Call(seq=next(self._seq), at=self.clock.now(), **kw)
        self.calls.append(c)
        return c


TOKEN_KINDS = {"code", "refresh", "exchange"}


def match_kind(match: str, kind: str, network: str, path: str) -> bool:
    """A fault's `match`: "*", an endpoint kind, "token" (code|refresh|exchange), or a path.

    A path matches the sandbox path with or without the network prefix, trailing slash ignored.
    """
    if match in ("*", "any"):
        return True
    if match == kind:
        return True
    if match == "token" and kind in TOKEN_KINDS:
        return True
    if match.startswith("/"):
        m = match.rstrip("/") or "/"
        p = path.rstrip("/") or "/"
        return m == p or f"/{network}{m}" == p
    return False


_PREFIX = {
    ("x", "access"): "sbx-x-at-", ("x", "refresh"): "sbx-x-rt-",
    ("tiktok", "access"): "act.sbx", ("tiktok", "refresh"): "rft.sbx",
    ("youtube", "access"): "ya29.sbx-", ("youtube", "refresh"): "1//sbx-",
    ("facebook", "access"): "EAAsbx", ("facebook", "page"): "EAAsbxPAGE",
    ("instagram", "access"): "IGAAsbx", ("threads", "access"): "THAAsbx",
    ("linkedin", "access"): "AQsbx", ("linkedin", "refresh"): "AQRsbx",
    ("pinterest", "access"): "pina_sbx", ("pinterest", "refresh"): "pinr_sbx",
}


def _opaque(network: str, kind: str) -> str:
    prefix = _PREFIX.get((network, kind), f"sbx-{network}-{kind}-")
    return prefix + secrets.token_urlsafe(24)
