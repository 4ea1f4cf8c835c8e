"""Sending one webhook request to a user-given URL, safely (OWASP API7, SSRF).

The host is resolved here (with a timeout) and every address it resolves to is checked:
one private, loopback, link-local, multicast or reserved address refuses the whole URL.
The connection then goes to the checked address itself (the URL's host travels in the
`Host` header and as the TLS server name, so certificates are verified against it): a DNS
answer that changes between the check and the connection cannot redirect the request.
Redirects are never followed, the response is read up to a few KiB only, and every step
has a timeout. CHORUS_WEBHOOKS_ALLOW_PRIVATE=true (development) lifts the address check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from domain.webhooks.rules import UnsafeUrlError, check_url, forbidden_address

RESPONSE_EXCERPT_BYTES = 2048
USER_AGENT = "Chorus-Webhooks/1.0 (+https://chorus.dev/docs/webhooks)"


async def resolve(url: str, *, allow_private: bool, timeout: float = 5.0) -> tuple[str, str, int, str]:
    """(scheme, host, port, address) of `url`, or UnsafeUrlError."""
    scheme, host, port = check_url(url, allow_private=allow_private)
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
        except (TimeoutError, OSError, UnicodeError, ValueError):
            raise UnsafeUrlError("The host name does not resolve") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise UnsafeUrlError("The host name does not resolve")
    if not allow_private and any(forbidden_address(a) for a in addresses):
        raise UnsafeUrlError("The URL resolves to a private, loopback or reserved address")
    return scheme, host, port, addresses[0]


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: int
    error: str
    excerpt: str

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def total_deadline(timeout: float) -> float:
    """The most one `post` takes, whatever the receiver does (a slow trickle included)."""
    return 2 * timeout + 5


async def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool,
               timeout: float = 10.0) -> Outcome:
    """POST `body` to `url` pinned to a checked address. Never raises for the receiver's
    failures: they come back in the Outcome. Takes at most `total_deadline(timeout)`."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(total_deadline(timeout)):
            return await _post(url, body, headers, allow_private=allow_private, timeout=timeout, started=started)
    except TimeoutError:
        return Outcome(None, int((time.monotonic() - started) * 1000), "timeout", "")


async def _post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool, timeout: float,
                started: float) -> Outcome:

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port, address = await resolve(url, allow_private=allow_private, timeout=min(timeout, 5.0))
    except UnsafeUrlError as exc:
        return Outcome(None, elapsed(), f"refused: {exc}", "")
    parts = urlsplit(url)
    ip_host = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((scheme, f"{ip_host}:{port}", parts.path or "/", parts.query, ""))
    default_port = 443 if scheme == "https" else 80
    named = f"[{host}]" if ":" in host else host
    host_header = named if port == default_port else f"{named}:{port}"
    request_headers = {**headers, "Host": host_header, "User-Agent": USER_AGENT, "Content-Type": "application/json"}
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False) as client:
            request = client.build_request("POST", pinned, content=body, headers=request_headers,
                                           extensions={"sni_hostname": host} if scheme == "https" else {})
            response = await client.send(request, stream=True)
            try:
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= RESPONSE_EXCERPT_BYTES:
                        break
            finally:
                await response.aclose()
            excerpt = b"".join(chunks)[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace")[:500]
            return Outcome(response.status_code, elapsed(), "", excerpt)
    except httpx.TimeoutException:
        return Outcome(None, elapsed(), "timeout", "")
    except httpx.HTTPError as exc:
        return Outcome(None, elapsed(), f"{type(exc).__name__}: {str(exc)[:200]}", "")
