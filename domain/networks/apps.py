"""An agency's own app on a network ("bring your own app"): its client id, and its secret
sealed in the vault. The secret is written, never read back through the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec

from domain.agencies.rules import Action
from domain.core.context import Context
from domain.core.crypto import Vault
from domain.core.errors import NotFoundError
from domain.networks.adapters.base import Network
from domain.networks.models import NetworkApp


class NetworkAppIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    client_secret: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class NetworkAppOut(msgspec.Struct, kw_only=True):
    network: Network
    client_id: str
    has_secret: bool
    updated_at: datetime


class NetworkAppList(msgspec.Struct, kw_only=True):
    items: list[NetworkAppOut]


def app_out(app: NetworkApp) -> NetworkAppOut:
    return NetworkAppOut(network=Network(app.network), client_id=app.client_id, has_secret=bool(app.client_secret_enc),
                         updated_at=app.updated_at)


@dataclass
class NetworkAppService:
    ctx: Context
    vault: Vault

    async def list(self) -> NetworkAppList:
        self.ctx.require(Action.AGENCY_READ)
        apps = (await self.ctx.session.scalars(self.ctx.select(NetworkApp).order_by(NetworkApp.network))).all()
        return NetworkAppList(items=[app_out(a) for a in apps])

    async def put(self, network: Network, data: NetworkAppIn) -> NetworkApp:
        self.ctx.require(Action.AGENCY_UPDATE)
        app = await self._find(network, lock=True)
        created = app is None
        if app is None:
            app = NetworkApp(agency_id=self.ctx.agency_id, network=network.value, client_id="", client_secret_enc="")
            self.ctx.session.add(app)
        app.client_id = data.client_id
        app.client_secret_enc = self.vault.encrypt(data.client_secret)
        await self.ctx.session.flush()
        await self.ctx.audit("network_app.created" if created else "network_app.updated", "network_app", app.id,
                             {"network": network.value, "client_id": data.client_id})
        return app

    async def delete(self, network: Network) -> None:
        self.ctx.require(Action.AGENCY_UPDATE)
        app = await self._find(network, lock=True)
        if app is None:
            raise NotFoundError(f"The agency has no own {network.value} app")
        await self.ctx.session.delete(app)
        await self.ctx.audit("network_app.deleted", "network_app", app.id, {"network": network.value})

    async def _find(self, network: Network, lock: bool = False) -> NetworkApp | None:
        stmt = self.ctx.select(NetworkApp).where(NetworkApp.network == network.value)
        return await self.ctx.session.scalar(stmt.with_for_update() if lock else stmt)
