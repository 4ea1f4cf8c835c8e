"""Instagram business and creator accounts. Publishing is two steps (container, then
media_publish) and media must sit at a public URL."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind

LIMITS = Limits(
    text_max=2_200,
    hashtags_max=30,
    mentions_max=20,
    media_required=True,
    images_max=10,
    carousel_min=2,
    carousel_max=10,
    videos_max=10,
    mixed_media=True,
    image_formats=("image/jpeg",),
    image_max_bytes=8 * 1024 * 1024,
    video_min_seconds=3,
    video_max_seconds=15 * 60,
    aspect_ratio_min=4 / 5,
    aspect_ratio_max=1.91,
    quotas=("publishing cap per 24 hours: read content_publishing_limit, do not hard-code it",),
)

OAUTH = OAuthEndpoints(
    authorize_url="https://www.instagram.com/oauth/authorize",
    token_url="https://api.instagram.com/oauth/access_token",
    revoke_url=None,
    scopes=("instagram_business_basic", "instagram_business_content_publish",
            "instagram_business_manage_comments", "instagram_business_manage_insights"),
    pkce=Pkce.NONE,
    scope_separator=",",
    access_token_lifetime="1 hour, exchanged for 60 days (ig_exchange_token)",
    refresh="ig_refresh_token once the token is at least 24 hours old",
)

SPEC = NetworkSpec(
    network=Network.INSTAGRAM,
    name="Instagram",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url="https://graph.instagram.com",
    post_kinds=(PostKind.IMAGE, PostKind.CAROUSEL, PostKind.REEL, PostKind.STORY),
    account_kinds=("business_account",),
    first_comment=True,
    needs_public_media_url=True,
)


# --- the client -----------------------------------------------------------------------

from domain.networks.adapters.base import AccountRef, PublishRequest, PublishResult, Rejected, RemotePost  # noqa: E402
from domain.networks.adapters.meta import ContainerClient, remote  # noqa: E402
from domain.networks.http import looks_like_video  # noqa: E402


class InstagramClient(ContainerClient):
    """Instagram Login (graph.instagram.com): container, status, media_publish."""

    api_base_url = SPEC.api_base_url
    network = Network.INSTAGRAM
    container_path = "/media"
    publish_path = "/media_publish"
    status_field = "status_code"
    metrics = "reach,likes,comments,saved,shares,views"

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        if not request.media_urls:
            raise Rejected(self.network, "an Instagram post needs at least one image or video")
        url = request.media_urls[0]
        is_video = looks_like_video(url)
        form = {"caption": request.text, ("video_url" if is_video else "image_url"): url}
        if is_video:
            form["media_type"] = "REELS"
        container = await self._post(account, f"/{account.external_id}{self.container_path}", **form)
        return await self.publish_status(account, str(container["id"]))

    async def lookup(self, account: AccountRef, external_id: str) -> RemotePost | None:
        data = await self._lookup(account, external_id, "id,caption,permalink,timestamp,like_count,comments_count")
        return remote(data, "caption", "permalink", {"likes": "like_count", "comments": "comments_count"}) if data else None

    async def comments(self, account: AccountRef, external_id: str) -> list[dict[str, object]]:
        return list((await self._get(account, f"/{external_id}/comments", fields="id,text,timestamp,username")).get("data", []))

    async def reply(self, account: AccountRef, comment_id: str, text: str) -> PublishResult:
        body = await self._post(account, f"/{comment_id}/replies", message=text)
        return PublishResult("published", external_id=str(body["id"]))
