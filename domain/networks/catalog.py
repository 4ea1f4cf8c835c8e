"""The catalog: adding a network means adding its adapter module here."""

from domain.networks.adapters import facebook, instagram, linkedin, pinterest, threads, tiktok, x, youtube
from domain.networks.adapters.base import Network, NetworkSpec

CATALOG: dict[Network, NetworkSpec] = {
    module.SPEC.network: module.SPEC
    for module in (x, facebook, instagram, tiktok, youtube, linkedin, threads, pinterest)
}
