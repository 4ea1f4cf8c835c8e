"""A real OAuth consent against the network sandbox, for tests that need live tokens:
authorize as a test identity, exchange the code, and read what the login can act for."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from domain.core.settings import sandbox_app
from domain.networks import identity
from domain.networks.adapters.base import Network
from domain.networks.catalog import CATALOG
from domain.networks.oauth import AppCredentials, OAuthFlow, TokenGrant, new_code_verifier


async def consent(base: str, network: Network, who: str, kind: str | None = None) -> tuple[TokenGrant, Any]:
    """(the login's grant, the first target of `kind` it can act for)."""
    flow = OAuthFlow(CATALOG[network], AppCredentials(*sandbox_app(network.value)), base, timeout=2)
    verifier = new_code_verifier() if flow.uses_pkce else None
    redirect = "http://127.0.0.1:1/callback"
    url = flow.authorize_url(redirect_uri=redirect, state="s" * 24, code_verifier=verifier)
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.get(f"{url}&sandbox_identity={who}")
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    grant = await flow.exchange_code(code=code, redirect_uri=redirect, code_verifier=verifier)
    found = await identity.targets(network, grant.access_token, base, grant.extras)
    return grant, next(t for t in found if kind is None or t.kind == kind)
