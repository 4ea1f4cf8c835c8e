"""What Facebook Pages, Instagram and Threads share: Graph-style calls, containers that are
created, checked and then published, comments and insights answered in the same shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.networks.adapters.base import AccountRef, BeforeCreate, MediaRef, PublishResult, Rejected, RemotePost, matches
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

    async def _publish_container(self, account: AccountRef, container_id: str,
                                 before_create: BeforeCreate | None = None) -> PublishResult:
        status = await self._get(account, f"/{container_id}", fields=self.status_field)
        state = status.get(self.status_field) or status.get("status")
        if state in CONTAINER_FAILED:
            raise Rejected(self.network, f"the media container is {state}", code=str(state))
        if state not in CONTAINER_DONE:
            return PublishResult("processing", pending_ref=container_id)
        if before_create is not None:
            await before_create()  # the engine records that the post is being created
        body = await self._post(account, f"/{account.external_id}{self.publish_path}", creation_id=container_id)
        return PublishResult("published", external_id=str(body["id"]), url=None)

    async def publish_status(self, account: AccountRef, pending_ref: str,
                             before_create: BeforeCreate | None = None) -> PublishResult:
        result = await self._publish_container(account, pending_ref, before_create)
        if result.state == "published" and result.external_id:
            post = await self.lookup(account, result.external_id)  # type: ignore[attr-defined]
            return PublishResult("published", external_id=result.external_id, url=post.url if post else None)
        return result

    async def _container(self, account: AccountRef, **form: str) -> str:
        body = await self._post(account, f"/{account.external_id}{self.container_path}", **form)
        return str(body["id"])

    @staticmethod
    def _media_form(media: MediaRef, video_type: str) -> dict[str, str]:
        form = {"video_url": media.url, "media_type": video_type} if media.is_video else {"image_url": media.url}
        if media.alt_text and not media.is_video:
            form["alt_text"] = media.alt_text
        return form

    text_field = "text"
    list_path = ""

    async def find_recent(self, account: AccountRef, text: str, since: datetime) -> RemotePost | None:
        """The account's recent posts (its media or threads edge): the one with this text, if any."""
        body = await self._get(account, f"/{account.external_id}{self.list_path}",
                               fields=f"id,{self.text_field},timestamp,permalink", limit="50")
        for post in body.get("data") or []:
            if matches(post.get(self.text_field), post.get("timestamp"), text, since):
                return remote(post, self.text_field, "permalink", {})
        return None


def remote(data: dict[str, Any], text_key: str, url_key: str, metrics: dict[str, str]) -> RemotePost:
    return RemotePost(
        external_id=str(data["id"]),
        url=data.get(url_key),
        text=data.get(text_key),
        created_at=data.get("created_time") or data.get("timestamp"),
        metrics={name: int(data[key]) for name, key in metrics.items() if isinstance(data.get(key), (int, float))},
    )
