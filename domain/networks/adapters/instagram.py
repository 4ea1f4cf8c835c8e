"""Instagram business and creator accounts. Publishing is two steps (container, then
media_publish) and media must sit at a public URL."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind, PublishQuota

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
    # 50 or 100 depending on the source (NETWORKS.md): the lower one until content_publishing_limit is read.
    publish_quotas=(PublishQuota(50, 24 * 3600, "API-published posts per 24 hours (content_publishing_limit)"),),
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

from datetime import datetime  # noqa: E402

from domain.networks.adapters.base import AccountRef, PublishRequest, PublishResult, Rejected, RemotePost, matches  # noqa: E402
from domain.networks.adapters.meta import ContainerClient, remote  # noqa: E402


class InstagramClient(ContainerClient):
    """Instagram Login (graph.instagram.com): container, status, media_publish."""

    api_base_url = SPEC.api_base_url
    network = Network.INSTAGRAM
    container_path = "/media"
    publish_path = "/media_publish"
    status_field = "status_code"
    metrics = "reach,likes,comments,saved,shares,views"

    text_field = "caption"
    list_path = "/media"

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        """A container per the placement (feed image or carousel, reel, story), then media_publish
        once it is FINISHED (a video is processed first: the engine polls publish_status)."""
        media = request.media
        if not media:
            raise Rejected(self.network, "an Instagram post needs at least one image or video")
        single_video = len(media) == 1 and media[0].is_video
        placement = str(request.options.get("placement") or ("reel" if single_video else "feed"))
        for m in media:
            if not m.is_video and m.mime and m.mime not in LIMITS.image_formats:
                raise Rejected(self.network, f"Instagram takes JPEG images, not {m.mime}", code="image_format")
        if placement == "story":
            if len(media) != 1:
                raise Rejected(self.network, "an Instagram story is one image or one video")
            form = {"media_type": "STORIES", **{k: v for k, v in self._media_form(media[0], "STORIES").items()
                                                if k != "alt_text"}}
        elif placement == "reel" or single_video:
            if not single_video:
                raise Rejected(self.network, "an Instagram reel is exactly one video")
            form = {"caption": request.text, "media_type": "REELS", "video_url": media[0].url}
            if isinstance(request.options.get("share_reel_to_feed"), bool):
                form["share_to_feed"] = "true" if request.options["share_reel_to_feed"] else "false"
        elif len(media) == 1:
            form = {"caption": request.text, **self._media_form(media[0], "VIDEO")}
        else:
            if len(media) > LIMITS.carousel_max:  # type: ignore[operator]
                raise Rejected(self.network, f"an Instagram carousel takes at most {LIMITS.carousel_max} items")
            children = [await self._container(account, is_carousel_item="true", **self._media_form(m, "VIDEO"))
                        for m in media]
            form = {"caption": request.text, "media_type": "CAROUSEL", "children": ",".join(children)}
        return await self.publish_status(account, await self._container(account, **form))

    async def lookup(self, account: AccountRef, external_id: str) -> RemotePost | None:
        data = await self._lookup(account, external_id, "id,caption,permalink,timestamp,like_count,comments_count")
        return remote(data, "caption", "permalink", {"likes": "like_count", "comments": "comments_count"}) if data else None

    async def comments(self, account: AccountRef, external_id: str) -> list[dict[str, object]]:
        return list((await self._get(account, f"/{external_id}/comments", fields="id,text,timestamp,username")).get("data", []))

    async def find_reply(self, account: AccountRef, media_id: str, text: str, since: datetime) -> str | None:
        """A comment with this text on the media (the first comment, after an unclear answer)."""
        body = await self._get(account, f"/{media_id}/comments", fields="id,text,timestamp,username")
        for comment in body.get("data") or []:
            if matches(comment.get("text"), comment.get("timestamp"), text, since):
                return str(comment["id"])
        return None

    async def comment_on(self, account: AccountRef, media_id: str, text: str) -> PublishResult:
        """A comment on the account's own media (POST /{media_id}/comments): the first comment."""
        body = await self._post(account, f"/{media_id}/comments", message=text)
        return PublishResult("published", external_id=str(body["id"]))

    async def reply(self, account: AccountRef, comment_id: str, text: str) -> PublishResult:
        body = await self._post(account, f"/{comment_id}/replies", message=text)
        return PublishResult("published", external_id=str(body["id"]))
