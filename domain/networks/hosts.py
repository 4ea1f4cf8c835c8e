"""Where the adapters send requests: the real hosts, or the network sandbox.

Sandbox rule: a real URL `https://host/path?q` of network N becomes `{sandbox}/N/path?q`,
so pointing Chorus at the sandbox is configuration only.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def resolve(url: str, network: str, sandbox_base: str | None) -> str:
    if not sandbox_base:
        return url
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{sandbox_base.rstrip('/')}/{network}{parts.path}{query}"
