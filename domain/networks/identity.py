"""Who a login is, and what it can act for (pages, boards, channels, organizations), read
from each provider in its own wire format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from domain.networks.adapters.base import Network, Unknown
from domain.networks.adapters.facebook import SPEC as FACEBOOK
from domain.networks.adapters.linkedin import API_VERSION as LINKEDIN_VERSION
from domain.networks.adapters.linkedin import SPEC as LINKEDIN
from domain.networks.adapters.pinterest import SPEC as PINTEREST
from domain.networks.adapters.threads import SPEC as THREADS
from domain.networks.adapters.tiktok import SPEC as TIKTOK
from domain.networks.adapters.x import SPEC as X
from domain.networks.adapters.youtube import SPEC as YOUTUBE
from domain.networks.hosts import resolve
from domain.networks.oauth import META_GRAPH, raise_for


@dataclass
class Target:
    """Something the login can publish as. `access_token` is set only where the provider
    gives each target its own token (Facebook pages); it is a secret."""

    external_id: str
    kind: str
    handle: str
    display_name: str
    avatar_url: str | None = None
    access_token: str | None = field(default=None, repr=False)
    details: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"external_id": self.external_id, "kind": self.kind, "handle": self.handle,
                "display_name": self.display_name, "avatar_url": self.avatar_url}


async def _get(network: Network, http: httpx.AsyncClient, url: str, token: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    try:
        response = await http.get(url, headers=headers, **kwargs)
    except httpx.HTTPError as err:
        raise Unknown(network, f"profile call failed: {type(err).__name__}") from None
    raise_for(network, response)
    try:
        return response.json()
    except ValueError:
        raise Unknown(network, "the profile answer is not JSON") from None


async def targets(
    network: Network, access_token: str, sandbox: str | None, extras: dict[str, Any], timeout: float = 10.0
) -> list[Target]:
    """Every account this login can connect. One for most networks; several for pages,
    boards, channels and organizations, where the user picks."""

    def url(real: str) -> str:
        return resolve(real, network.value, sandbox)

    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0))) as http:
        if network is Network.X:
            body = await _get(network, http, url(f"{X.api_base_url}/2/users/me"), access_token,
                              params={"user.fields": "profile_image_url"})
            user = body["data"]
            return [Target(user["id"], "profile", user.get("username", ""), user.get("name", ""),
                           user.get("profile_image_url"))]
        if network is Network.FACEBOOK:
            body = await _get(network, http, url(f"{FACEBOOK.api_base_url}/me/accounts"), access_token,
                              params={"fields": "id,name,access_token,category,picture"})
            return [
                Target(page["id"], "page", page.get("name", ""), page.get("name", ""),
                       ((page.get("picture") or {}).get("data") or {}).get("url"), page.get("access_token"),
                       {"category": page.get("category")})
                for page in body.get("data", [])
            ]
        if network is Network.INSTAGRAM:
            body = await _get(network, http, url(f"{META_GRAPH[Network.INSTAGRAM]}/me"), access_token,
                              params={"fields": "user_id,username,name,profile_picture_url,account_type"})
            return [Target(str(body.get("user_id") or body.get("id")), "business_account", body.get("username", ""),
                           body.get("name", ""), body.get("profile_picture_url"),
                           details={"account_type": body.get("account_type")})]
        if network is Network.THREADS:
            body = await _get(network, http, url(f"{THREADS.api_base_url}/me"), access_token,
                              params={"fields": "id,username,name,threads_profile_picture_url"})
            return [Target(str(body["id"]), "profile", body.get("username", ""), body.get("name", ""),
                           body.get("threads_profile_picture_url"))]
        if network is Network.TIKTOK:
            body = await _get(network, http, url(f"{TIKTOK.api_base_url}/v2/user/info/"), access_token,
                              params={"fields": "open_id,union_id,avatar_url,display_name,username"})
            user = (body.get("data") or {}).get("user") or {}
            return [Target(str(user.get("open_id") or extras.get("open_id")), "profile", user.get("username", ""),
                           user.get("display_name", ""), user.get("avatar_url"))]
        if network is Network.YOUTUBE:
            body = await _get(network, http, url(f"{YOUTUBE.api_base_url}/youtube/v3/channels"), access_token,
                              params={"part": "snippet", "mine": "true"})
            return [
                Target(item["id"], "channel", (item.get("snippet") or {}).get("customUrl", ""),
                       (item.get("snippet") or {}).get("title", ""),
                       (((item.get("snippet") or {}).get("thumbnails") or {}).get("default") or {}).get("url"))
                for item in body.get("items", [])
            ]
        if network is Network.LINKEDIN:
            me = await _get(network, http, url(f"{LINKEDIN.api_base_url}/v2/userinfo"), access_token)
            found = [Target(f"urn:li:person:{me['sub']}", "member", me.get("email", ""), me.get("name", ""),
                            me.get("picture"))]
            acls = await _get(network, http, url(f"{LINKEDIN.api_base_url}/rest/organizationAcls"), access_token,
                              params={"q": "roleAssignee"},
                              headers={"LinkedIn-Version": LINKEDIN_VERSION, "X-Restli-Protocol-Version": "2.0.0"})
            for element in acls.get("elements", []):
                if element.get("state", "APPROVED") == "APPROVED":
                    org = element["organization"]
                    found.append(Target(org, "organization", org.rsplit(":", 1)[-1], element.get("organizationName", org),
                                        details={"role": element.get("role")}))
            return found
        if network is Network.PINTEREST:
            account = await _get(network, http, url(f"{PINTEREST.api_base_url}/user_account"), access_token)
            boards = await _get(network, http, url(f"{PINTEREST.api_base_url}/boards"), access_token,
                                params={"page_size": "100"})
            owner = account.get("username", "")
            return [
                Target(board["id"], "board", owner, board.get("name", ""), account.get("profile_image"),
                       details={"privacy": board.get("privacy")})
                for board in boards.get("items", [])
            ]
    raise Unknown(network, "no identity reader for this network")
