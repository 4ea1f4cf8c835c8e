"""What Facebook Pages, Instagram and Threads share: Graph-style calls, containers that are
created, checked and then published, comments and insights answered in the same shapes."""

from __future__ import annotations

from typing import Any

from domain.networks.adapters.base import AccountRef, PublishResult, Rejected, RemotePost
from domain.networks.http import ProviderClient, call, json_of

CONTAINER_DONE = {"FINISHED"}
CONTAINER_FAILED = {"ERROR", "EXPIRED"}


class GraphClient(ProviderClient):
    async def _get(self, account: AccountRef, path: str, **params: str) -> Any:
        response = await call(self.network, "GET", f"{self.base}{path}", account.access_token, params=params,
                              timeout=self.timeout)
        return json_of(self.network, response)

    async def _post(self, account: AccountRef, path: str, **form: str) -> Any:
        response = await call(self.network, "POST", f"{self.base}{path}", account.access_token, data=form,
                              timeout=self.timeout)
        return json_of(self.network, response)

    async def _lookup(self, account: AccountRef, external_id: str, fields: str) -> dict[str, Any] | None:
        try:
            return await self._get(account, f"/{external_id}", fields=fields)
        except Rejected as err:
            if err.status in (400, 404) and err.code in ("100", "803", None):
                return None  # Graph: "(#100) ... does not exist" / unknown object
            raise

    async def insights(self, account: AccountRef, external_id: str) -> dict[str, int]:
        body = await self._get(account, f"/{external_id}/insights", metric=self.metrics)
        out: dict[str, int] = {}
        for item in body.get("data", []):
            values = item.get("values") or [{}]
            value = values[-1].get("value")
            if isinstance(value, (int, float)):
                out[item["name"]] = int(value)
        return out

    metrics = ""


class ContainerClient(GraphClient):
    """Instagram and Threads: create a container, wait for it, publish it."""

    container_path = ""
    publish_path = ""
    status_field = "status_code"

    async def _publish_container(self, account: AccountRef, container_id: str) -> PublishResult:
        status = await self._get(account, f"/{container_id}", fields=self.status_field)
        state = status.get(self.status_field) or status.get("status")
        if state in CONTAINER_FAILED:
            raise Rejected(self.network, f"the media container is {state}", code=str(state))
        if state not in CONTAINER_DONE:
            return PublishResult("processing", pending_ref=container_id)
        body = await self._post(account, f"/{account.external_id}{self.publish_path}", creation_id=container_id)
        return PublishResult("published", external_id=str(body["id"]), url=None)

    async def publish_status(self, account: AccountRef, pending_ref: str) -> PublishResult:
        result = await self._publish_container(account, pending_ref)
        if result.state == "published" and result.external_id:
            post = await self.lookup(account, result.external_id)  # type: ignore[attr-defined]
            return PublishResult("published", external_id=result.external_id, url=post.url if post else None)
        return result


def remote(data: dict[str, Any], text_key: str, url_key: str, metrics: dict[str, str]) -> RemotePost:
    return RemotePost(
        external_id=str(data["id"]),
        url=data.get(url_key),
        text=data.get(text_key),
        created_at=data.get("created_time") or data.get("timestamp"),
        metrics={name: int(data[key]) for name, key in metrics.items() if isinstance(data.get(key), (int, float))},
    )
