from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from api.problems import problems
from domain.networks import schemas as s
from domain.networks.service import get_network, list_networks

# Static facts, the same for everyone: public, so integrators can read them before they have a key.
PUBLIC = {"public": True}


class NetworkController(Controller):
    path = "/v1/networks"
    tags = ["Networks"]

    @get("/", operation_id="listNetworks", summary="Networks with their capabilities and limits",
         description="What each network accepts (text length and how it is counted, media counts, sizes, "
         "durations, aspect ratios), so a frontend can validate as the user types.",
         opt=PUBLIC, responses=problems(429))
    async def list_networks(self) -> s.NetworkList:
        return list_networks()

    @get("/{network:str}", operation_id="getNetwork", summary="One network's capabilities and limits",
         opt=PUBLIC, responses=problems(400, 404, 429))
    async def get_network(self, network: FromPath[str]) -> s.NetworkOut:
        return get_network(network)
