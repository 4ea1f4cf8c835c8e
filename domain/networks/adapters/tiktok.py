"""TikTok Content Posting API. Init, upload, then poll the publish status."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind, PublishQuota, TextCounting

LIMITS = Limits(
    text_max=2_200,  # video title, in UTF-16 code units
    text_counting=TextCounting.UTF16_UNITS,
    title_max=90,  # photo post title
    description_max=4_000,  # photo post description
    media_required=True,
    images_max=35,
    videos_max=1,
    mixed_media=False,
    video_max_bytes=4 * 1024 * 1024 * 1024,
    publish_quotas=(PublishQuota(6, 60, "publish init: 6 per minute per user token"),
                    PublishQuota(15, 24 * 3600, "about 15 posts per creator per 24 hours through the API")),
    quotas=("publish init 6 per minute per token", "status fetch 30 per minute",
            "unaudited apps can only post privately"),
)

OAUTH = OAuthEndpoints(
    authorize_url="https://www.tiktok.com/v2/auth/authorize/",
    token_url="https://open.tiktokapis.com/v2/oauth/token/",
    revoke_url="https://open.tiktokapis.com/v2/oauth/revoke/",
    scopes=("user.info.basic", "user.info.profile", "video.publish", "video.upload", "video.list"),
    pkce=Pkce.NONE,  # PKCE is for TikTok's mobile and desktop apps only
    scope_separator=",",
    client_id_param="client_key",
    access_token_lifetime="expires_in from the token answer (documented as 24 hours, now 2 hours)",
    refresh="refresh_expires_in from the token answer; refresh tokens rotate",
    refresh_rotates=True,
)

SPEC = NetworkSpec(
    network=Network.TIKTOK,
    name="TikTok",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url="https://open.tiktokapis.com",
    post_kinds=(PostKind.VIDEO, PostKind.CAROUSEL),
    notes=("creator_info/query before every post: privacy options and limits come from there",),
)


# --- the client -----------------------------------------------------------------------

from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

from domain.networks.adapters.base import AccountRef, PublishRequest, PublishResult, Rejected, RemotePost, matches  # noqa: E402
from domain.networks.http import ProviderClient, call, json_of  # noqa: E402

_VIDEO_FIELDS = "id,title,create_time,share_url,view_count,like_count,comment_count,share_count"


class TikTokClient(ProviderClient):
    """Content Posting API: creator info, init (the provider pulls the video from its public
    URL), then the status is polled until PUBLISH_COMPLETE or FAILED."""

    api_base_url = SPEC.api_base_url
    network = Network.TIKTOK

    async def _post(self, account: AccountRef, path: str, body: dict[str, Any], **params: str) -> dict[str, Any]:
        response = await call(self.network, "POST", f"{self.base}{path}", account.access_token, json=body,
                              params=params or None, timeout=self.timeout)
        answer = json_of(self.network, response)
        error = answer.get("error") or {}
        if error.get("code") not in (None, "", "ok"):
            raise Rejected(self.network, str(error.get("message") or error["code"]), code=str(error["code"]))
        return answer.get("data") or {}

    async def creator_info(self, account: AccountRef) -> dict[str, Any]:
        return await self._post(account, "/v2/post/publish/creator_info/query/", {})

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        media = request.media
        if not media:
            raise Rejected(self.network, "a TikTok post needs a video")
        if len(media) != 1 or not media[0].is_video:
            raise Rejected(self.network, "Chorus publishes one video per TikTok post (photo posts are not supported "
                                         "yet)", code="media_unsupported")
        info = await self.creator_info(account)
        options = info.get("privacy_level_options") or ["SELF_ONLY"]
        # TikTok's sharing guidelines: the person chooses the privacy; there is no default.
        privacy = str(request.options.get("privacy") or "")
        if not privacy:
            raise Rejected(self.network, f"choose a privacy level: {', '.join(options)}", code="privacy_required")
        if privacy not in options:
            raise Rejected(self.network, f"privacy {privacy} is not offered to this creator: {', '.join(options)}")
        post_info: dict[str, Any] = {"title": request.text, "privacy_level": privacy}
        for switch in ("disable_comment", "disable_duet", "disable_stitch"):
            if isinstance(request.options.get(switch), bool):
                post_info[switch] = request.options[switch]
        data = await self._post(account, "/v2/post/publish/video/init/", {
            "post_info": post_info,
            "source_info": {"source": "PULL_FROM_URL", "video_url": media[0].url},
        })
        return PublishResult("processing", pending_ref=str(data["publish_id"]))

    async def find_recent(self, account: AccountRef, text: str, since: datetime) -> RemotePost | None:
        """The creator's recent videos (POST /v2/video/list/): the one with this title, if any."""
        data = await self._post(account, "/v2/video/list/", {"max_count": 20}, fields="id,title,create_time,share_url")
        for video in data.get("videos") or []:
            if matches(video.get("title"), video.get("create_time"), text, since):
                return RemotePost(external_id=str(video["id"]), url=video.get("share_url"), text=video.get("title"),
                                  created_at=str(video.get("create_time") or ""))
        return None

    async def publish_status(self, account: AccountRef, pending_ref: str) -> PublishResult:
        data = await self._post(account, "/v2/post/publish/status/fetch/", {"publish_id": pending_ref})
        status = data.get("status")
        if status == "FAILED":
            raise Rejected(self.network, f"TikTok failed the post: {data.get('fail_reason')}", code=data.get("fail_reason"))
        if status != "PUBLISH_COMPLETE":
            return PublishResult("processing", pending_ref=pending_ref)
        public_ids = data.get("publicaly_available_post_id") or []  # sic: TikTok's spelling
        post_id = str(public_ids[0]) if public_ids else None
        return PublishResult("published", external_id=post_id or pending_ref, pending_ref=pending_ref,
                             url=None if not post_id else f"https://www.tiktok.com/video/{post_id}")

    async def lookup(self, account: AccountRef, external_id: str) -> RemotePost | None:
        data = await self._post(account, "/v2/video/query/", {"filters": {"video_ids": [external_id]}},
                                fields=_VIDEO_FIELDS)
        videos = data.get("videos") or []
        if not videos:
            return None
        video = videos[0]
        return RemotePost(
            external_id=str(video["id"]), url=video.get("share_url"), text=video.get("title"),
            created_at=str(video.get("create_time")) if video.get("create_time") else None,
            metrics={k.removesuffix("_count"): int(v) for k, v in video.items() if k.endswith("_count")},
        )

    async def insights(self, account: AccountRef, external_id: str) -> dict[str, int]:
        post = await self.lookup(account, external_id)
        return post.metrics if post else {}
