"""The network catalog as the API shows it: capabilities and limits, so a frontend can
validate as the user types. Static facts; no tenant data."""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache

import msgspec

from domain.core.errors import NotFoundError
from domain.networks.catalog import CATALOG
from domain.networks.adapters.base import Network, NetworkSpec
from domain.networks.schemas import LimitsOut, NetworkList, NetworkOut, OAuthOut, OptionOut, SizeOut


def network_out(spec: NetworkSpec) -> NetworkOut:
    from domain.content.rules import OPTIONS, RECOMMENDED_SIZES  # the rules posts are checked by
    oauth = spec.oauth
    return NetworkOut(
        id=spec.network,
        name=spec.name,
        post_kinds=list(spec.post_kinds),
        account_kinds=list(spec.account_kinds),
        thread_parts=spec.thread_parts,
        first_comment=spec.first_comment,
        native_scheduling=spec.native_scheduling,
        needs_public_media_url=spec.needs_public_media_url,
        limits=msgspec.convert(asdict(spec.limits), LimitsOut),
        options=[OptionOut(name=name, kind=o.kind, description=o.description, choices=list(o.choices),
                           max_length=o.max_length, required=o.required)
                 for name, o in OPTIONS.get(spec.network, {}).items()],
        recommended_sizes=[SizeOut(kind=k, width=w, height=h)
                           for k, (w, h) in RECOMMENDED_SIZES.get(spec.network, {}).items()],
        oauth=OAuthOut(
            pkce=oauth.pkce,
            scopes=list(oauth.scopes),
            access_token_lifetime=oauth.access_token_lifetime,
            refresh=oauth.refresh,
            refresh_rotates=oauth.refresh_rotates,
        ),
        notes=list(spec.notes),
    )


@lru_cache(maxsize=1)
def list_networks() -> NetworkList:
    return NetworkList(items=[network_out(spec) for spec in CATALOG.values()])


def get_network(network: str) -> NetworkOut:
    try:
        return network_out(CATALOG[Network(network)])
    except ValueError:
        raise NotFoundError(f"No network {network!r}; see GET /v1/networks") from None
