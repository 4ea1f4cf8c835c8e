"""Signed, expiring links to one media file, for networks that fetch media by URL.

A token carries the agency, the asset and the expiry, and an HMAC-SHA256 over them with a
key derived from the app's secret (never the secret itself, so a leaked link key cannot
sign access tokens). Nothing is stored: the link works until it expires or the asset is
deleted. The agency travels in the token because the public route has no credential to
learn the tenant from, and row-level security needs one to read the asset.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from uuid import UUID

_PURPOSE = b"chorus/media-links/v1"
_LAYOUT = struct.Struct(">16s16sQ")  # agency id, media id, expiry (unix seconds)
_MAC_BYTES = 32
# Exactly the unpadded base64url of layout + MAC: the decoder would skip stray characters.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{%d}" % ((_LAYOUT.size + _MAC_BYTES) * 4 // 3))


class LinkInvalidError(Exception):
    """Not a token we signed (tampered, truncated, made up): answered like a missing file."""


class LinkExpiredError(Exception):
    pass


def link_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def sign(key: bytes, agency_id: UUID, media_id: UUID, expires_at: int) -> str:
    payload = _LAYOUT.pack(agency_id.bytes, media_id.bytes, expires_at)
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def verify(key: bytes, token: str, now: int) -> tuple[UUID, UUID, int]:
    """(agency id, media id, expiry) of a token we signed that has not expired yet."""
    if not _TOKEN.fullmatch(token):
        raise LinkInvalidError()
    raw = base64.urlsafe_b64decode(token)
    payload, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size:]
    # Constant time, and before anything in the payload is trusted (a forged expiry is a 404).
    if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
        raise LinkInvalidError()
    agency, media, expires_at = _LAYOUT.unpack(payload)
    if expires_at <= now:
        raise LinkExpiredError()
    return UUID(bytes=agency), UUID(bytes=media), expires_at
