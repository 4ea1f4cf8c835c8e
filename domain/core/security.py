"""Passwords (argon2id), opaque secrets and access tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from domain.core.clock import now


class Passwords:
    def __init__(self, time_cost: int = 3, memory_kib: int = 65_536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verifying against this keeps sign-in time flat when the email is unknown.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, hashed: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(hashed or self._dummy, password) and hashed is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def hash_secret(secret: str) -> str:
    """Opaque tokens have 256 bits of entropy, so a plain SHA-256 is enough to store them."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class OpaqueToken:
    """`<prefix>_<agency hex>_<random>`: the agency part routes the lookup under RLS,
    the hash of the whole token is the authority."""

    prefix: str
    agency_id: UUID
    secret: str

    @property
    def value(self) -> str:
        return f"{self.prefix}_{self.agency_id.hex}_{self.secret}"

    @property
    def hashed(self) -> str:
        return hash_secret(self.value)

    @classmethod
    def new(cls, prefix: str, agency_id: UUID) -> OpaqueToken:
        return cls(prefix, agency_id, secrets.token_urlsafe(32))

    @classmethod
    def derived(cls, prefix: str, agency_id: UUID, key: str, label: str) -> OpaqueToken:
        """A stable token (demo seed): the same key and label give the same secret."""
        digest = hmac.new(key.encode(), f"{label}:{agency_id}".encode(), hashlib.sha256).digest()
        return cls(prefix, agency_id, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())

    @classmethod
    def parse(cls, value: str, prefix: str) -> OpaqueToken | None:
        parts = value.split("_", 2)
        if len(parts) != 3 or parts[0] != prefix or len(parts[2]) < 32 or len(value) > 200:
            return None
        try:
            agency = UUID(hex=parts[1])
        except ValueError:
            return None
        return cls(prefix, agency, parts[2])


@dataclass(frozen=True)
class AccessClaims:
    """What an access token says. The database checks `membership_version` on every
    request, so role and brand limits here are never staler than the membership."""

    user_id: UUID
    agency_id: UUID
    session_id: UUID
    expires_at: datetime
    role: str
    membership_version: int
    brand_ids: tuple[UUID, ...] | None
    email: str


class AccessTokens:
    algorithm = "HS256"
    # Verified tokens are remembered (they cannot change), so a client's burst of calls
    # pays for the signature check once. Expiry is still checked on every use.
    cache_size = 10_000

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._verified: dict[str, AccessClaims] = {}

    def issue(
        self,
        *,
        user_id: UUID,
        agency_id: UUID,
        session_id: UUID,
        role: str = "owner",
        membership_version: int = 1,
        brand_ids: list[UUID] | None = None,
        email: str = "",
    ) -> tuple[str, datetime]:
        expires = now() + timedelta(seconds=self.ttl_seconds)
        payload = {
            "sub": str(user_id),
            "agy": str(agency_id),
            "sid": str(session_id),
            "rol": role,
            "mv": membership_version,
            "brs": [str(b) for b in brand_ids] if brand_ids is not None else None,
            "eml": email,
            "exp": int(expires.timestamp()),
            "iat": int(now().timestamp()),
            "typ": "access",
        }
        return jwt.encode(payload, self._secret, algorithm=self.algorithm), expires

    def verify(self, token: str) -> AccessClaims | None:
        claims = self._verified.get(token)
        if claims is not None:
            if claims.expires_at > now():
                return claims
            del self._verified[token]
            return None
        claims = self._decode(token)
        if claims is not None:
            if len(self._verified) >= self.cache_size:
                self._verified.clear()
            self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> AccessClaims | None:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                options={"require": ["exp", "sub", "agy", "sid", "rol", "mv"]},
            )
            if payload.get("typ") != "access" or not isinstance(payload["mv"], int):
                return None
            brand_ids = payload.get("brs")
            return AccessClaims(
                user_id=UUID(payload["sub"]),
                agency_id=UUID(payload["agy"]),
                session_id=UUID(payload["sid"]),
                expires_at=datetime.fromtimestamp(payload["exp"], UTC),
                role=str(payload["rol"]),
                membership_version=payload["mv"],
                brand_ids=tuple(UUID(b) for b in brand_ids) if brand_ids is not None else None,
                email=str(payload.get("eml", "")),
            )
        except (jwt.PyJWTError, ValueError, KeyError, TypeError):
            return None
