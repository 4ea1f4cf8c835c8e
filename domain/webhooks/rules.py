"""Outbound webhooks: the event catalog, signatures, the retry schedule and which addresses
a delivery may reach. Pure functions, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

# Events an endpoint may subscribe to. `ping` is sent by the test route to one endpoint only.
EVENTS: dict[str, str] = {
    "post.published": "A post went out on a network (network post id and URL in data)",
    "post.failed": "Publishing a post to a network failed for good",
    "post.approved": "An approval request was approved (the post may now be scheduled)",
    "post.changes_requested": "A reviewer asked for changes on a post",
    "account.needs_reconnect": "A social account's authorisation was refused: it must be reconnected",
    "brand.publishing_paused": "A brand's publishing was paused (its due posts wait until it resumes)",
    "brand.publishing_resumed": "A brand's publishing resumed (its held posts go out now)",
}
PING = "ping"

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Chorus-Signature"
# Receivers should refuse signatures older than this (replay protection).
TOLERANCE_SECONDS = 300
# Retries: first wait, doubling, capped, for at most MAX_AGE after the delivery was made.
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=6)
MAX_AGE = timedelta(hours=24)
MAX_URL_LENGTH = 2000


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Chorus-Signature` header value: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def retry_delay(attempts: int, *, jitter: float | None = None) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 30 s doubling, capped at 6 h, with up
    to ±20 % jitter (`jitter` in [-1, 1]; random when None) so retries do not arrive in herds."""
    base = min(FIRST_RETRY * (2 ** max(0, attempts - 1)), LONGEST_WAIT)
    j = random.uniform(-1.0, 1.0) if jitter is None else jitter  # noqa: S311 - not a secret
    return base * (1 + 0.2 * j)


def next_attempt(created_at: datetime, at: datetime, attempts: int, *, jitter: float | None = None) -> datetime | None:
    """When to try again after `attempts` failures at `at`; None once past the 24 h window."""
    when = at + retry_delay(attempts, jitter=jitter)
    return when if when <= created_at + MAX_AGE else None


def lease_length(timeout_seconds: float, lease_seconds: float) -> timedelta:
    """How long a claimed attempt holds its delivery: the setting, but never less than the
    request's whole deadline (2 x timeout + 5 s) plus 30 s: a live request keeps its lease."""
    return timedelta(seconds=max(lease_seconds, 2 * timeout_seconds + 35))


def disable_reason(failures: int, failing_since: datetime | None, at: datetime, *, max_failures: int,
                   max_hours: float) -> str | None:
    """Why an endpoint whose last `failures` attempts all failed (the first at
    `failing_since`) should be disabled at `at`, or None to keep it."""
    if failures <= 0:
        return None
    if max_failures > 0 and failures >= max_failures:
        return f"Disabled after {failures} failed delivery attempts in a row"
    if max_hours > 0 and failing_since is not None and at - failing_since >= timedelta(hours=max_hours):
        hours = (at - failing_since).total_seconds() / 3600
        return f"Disabled after every delivery attempt failed for {hours:.0f} hours ({failures} attempts)"
    return None


class UnsafeUrlError(ValueError):
    """A URL a webhook may not target; the message says why (never echoes secrets)."""


def check_url(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable endpoint URL: https (http only when private
    targets are allowed for development), a host, no credentials in it."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrlError("The URL is too long")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrlError("The URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    allowed = {"https", "http"} if allow_private else {"https"}
    if scheme not in allowed:
        raise UnsafeUrlError("Webhook URLs must use https")
    if not parts.hostname:
        raise UnsafeUrlError("The URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrlError("The URL may not carry a user name or password")
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def forbidden_address(address: str) -> bool:
    """True for anything but a public unicast address: private, loopback, link-local,
    multicast, reserved, unspecified, shared (CGNAT), and IPv4-mapped or -compatible IPv6
    forms of those."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is None and ip.teredo:
            mapped = ip.teredo[1]
        if mapped is not None:
            return forbidden_address(str(mapped))
        if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64 of an IPv4 address
            return forbidden_address(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    return (not ip.is_global or ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local
            or ip.is_reserved or ip.is_unspecified)
