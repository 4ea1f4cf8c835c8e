"""One way to call a provider: a timeout on every call, failures mapped to NetworkError.

A request that may have reached the provider and got no clear answer is `Unknown`: a
publish in that state is looked up, never sent again. One that never left is `Unreachable`.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx

from domain.networks.adapters.base import Network, Unknown, Unreachable
from domain.networks.hosts import resolve
from domain.networks.oauth import raise_for


@lru_cache(maxsize=1)
def tls() -> ssl.SSLContext:
    """One verifying TLS context per process, shared by every call: building one loads the CA
    bundle (~50 ms of CPU), which was most of a publish's cost."""
    return httpx.create_ssl_context()


class ProviderClient:
    """Where a network client sends its calls (real host or sandbox) and how long it waits."""

    network: Network
    api_base_url: str

    def __init__(self, sandbox_base: str | None = None, timeout: float = 10.0) -> None:
        self.base = resolve(self.api_base_url, self.network.value, sandbox_base)
        self.timeout = timeout


async def call(
    network: Network,
    method: str,
    url: str,
    token: str | None,
    *,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    all_headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), verify=tls()) as http:
        try:
            response = await http.request(method, url, headers=all_headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            raise Unreachable(network, f"{method} did not reach the provider: {type(err).__name__}") from None
        except httpx.HTTPError as err:
            raise Unknown(network, f"{method} got no clear answer: {type(err).__name__}") from None
    raise_for(network, response)
    return response


async def find(network: Network, url: str, token: str | None, **kwargs: Any) -> httpx.Response | None:
    """A GET that looks something up: a 404 means it is not there (None), not a failure."""
    from domain.networks.adapters.base import Rejected

    try:
        return await call(network, "GET", url, token, **kwargs)
    except Rejected as err:
        if err.status == 404:
            return None
        raise


def json_of(network: Network, response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise Unknown(network, "the answer is not JSON") from None


async def fetch_media(network: Network, url: str, *, timeout: float, max_bytes: int) -> tuple[bytes, str]:
    """Read a media file from Chorus's own signed link, to upload it to a network."""
    from domain.networks.adapters.base import Rejected

    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), verify=tls()) as http:
        try:
            response = await http.get(url)
        except httpx.HTTPError as err:
            raise Rejected(network, f"the media could not be read: {type(err).__name__}") from None
    if response.status_code != 200:
        raise Rejected(network, f"the media could not be read (HTTP {response.status_code})")
    if len(response.content) > max_bytes:
        raise Rejected(network, f"the media is larger than {max_bytes} bytes")
    return response.content, response.headers.get("content-type", "application/octet-stream").split(";")[0]


VIDEO_EXTENSIONS = (".mp4", ".mov")


def looks_like_video(url: str) -> bool:
    """For networks that pull media from its link (Chorus sends no bytes): a video is told by the
    link's file extension, the query string aside."""
    return urlsplit(url).path.lower().endswith(VIDEO_EXTENSIONS)
