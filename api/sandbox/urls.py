"""The URL rule of the network sandbox, and the real provider URLs it plays.

Rule (fixed; adapters rely on it): for a real provider URL ``U`` of network ``N`` the
sandbox URL is ``{sandbox_base}/{N}{path of U}``, query string kept. The host is dropped,
so one network's several hosts (www.facebook.com, graph.facebook.com...) share one prefix;
their paths do not collide.

The real URLs below are copied from the adapter modules' ``OAUTH`` and ``SPEC`` (a test
checks they still agree), so the sandbox does not import the adapters at run time.
"""

from __future__ import annotations

from urllib.parse import urlsplit

NETWORKS: tuple[str, ...] = ("x", "facebook", "instagram", "tiktok", "youtube", "linkedin", "threads", "pinterest")

GRAPH_VERSION = "v24.0"

# network -> {"authorize", "token", "revoke" (or None), "api_base"}; plus extra hosts the
# sandbox plays where the adapter's SPEC does not name them.
REAL_URLS: dict[str, dict[str, str | None]] = {
    "x": {
        "authorize": "https://x.com/i/oauth2/authorize",
        "token": "https://api.x.com/2/oauth2/token",
        "revoke": "https://api.x.com/2/oauth2/revoke",
        "api_base": "https://api.x.com",
    },
    "facebook": {
        "authorize": f"https://www.facebook.com/{GRAPH_VERSION}/dialog/oauth",
        "token": f"https://graph.facebook.com/{GRAPH_VERSION}/oauth/access_token",
        "revoke": None,
        "api_base": f"https://graph.facebook.com/{GRAPH_VERSION}",
    },
    "instagram": {
        "authorize": "https://www.instagram.com/oauth/authorize",
        "token": "https://api.instagram.com/oauth/access_token",
        "revoke": None,
        "api_base": "https://graph.instagram.com",
        "exchange": "https://graph.instagram.com/access_token",
        "refresh": "https://graph.instagram.com/refresh_access_token",
    },
    "tiktok": {
        "authorize": "https://www.tiktok.com/v2/auth/authorize/",
        "token": "https://open.tiktokapis.com/v2/oauth/token/",
        "revoke": "https://open.tiktokapis.com/v2/oauth/revoke/",
        "api_base": "https://open.tiktokapis.com",
    },
    "youtube": {
        "authorize": "https://accounts.google.com/o/oauth2/v2/auth",
        "token": "https://oauth2.googleapis.com/token",
        "revoke": "https://oauth2.googleapis.com/revoke",
        "api_base": "https://www.googleapis.com",
    },
    "linkedin": {
        "authorize": "https://www.linkedin.com/oauth/v2/authorization",
        "token": "https://www.linkedin.com/oauth/v2/accessToken",
        "revoke": "https://www.linkedin.com/oauth/v2/revoke",
        "api_base": "https://api.linkedin.com",
    },
    "threads": {
        "authorize": "https://threads.com/oauth/authorize",
        "token": "https://graph.threads.net/oauth/access_token",
        "revoke": None,
        "api_base": "https://graph.threads.net/v1.0",
        "exchange": "https://graph.threads.net/access_token",
        "refresh": "https://graph.threads.net/refresh_access_token",
    },
    "pinterest": {
        "authorize": "https://www.pinterest.com/oauth/",
        "token": "https://api.pinterest.com/v5/oauth/token",
        "revoke": None,
        "api_base": "https://api.pinterest.com/v5",
    },
}


def _network_value(network: object) -> str:
    value = getattr(network, "value", network)
    if not isinstance(value, str) or value not in NETWORKS:
        raise ValueError(f"unknown network: {network!r}")
    return value


def sandbox_path(network: object, real_url: str) -> str:
    """The sandbox path (with query) for a real provider URL: ``/{network}{path}[?query]``."""
    parts = urlsplit(real_url)
    path = parts.path
    if path and not path.startswith("/"):
        path = "/" + path
    out = f"/{_network_value(network)}{path}"
    if parts.query:
        out += "?" + parts.query
    return out


def sandbox_url(network: object, real_url: str, base: str) -> str:
    """``{base}/{network}{path of real_url}``, query string kept, fragment dropped.

    A bare host (``https://api.x.com``) maps to ``{base}/x``, so ``+ "/2/users/me"`` works as on the real host.

    >>> sandbox_url("x", "https://api.x.com/2/oauth2/token", "http://127.0.0.1:9000")
    'http://127.0.0.1:9000/x/2/oauth2/token'
    """
    return base.rstrip("/") + sandbox_path(network, real_url)
