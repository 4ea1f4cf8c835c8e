"""Threads API: containers then threads_publish, like Instagram."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind, PublishQuota, TextCounting

LIMITS = Limits(
    text_max=500,
    text_counting=TextCounting.UTF8_BYTES,  # emoji count as their UTF-8 bytes
    media_required=False,
    images_max=20,
    carousel_min=2,
    carousel_max=20,
    videos_max=20,
    mixed_media=True,
    image_max_bytes=8 * 1024 * 1024,
    video_max_seconds=300,
    publish_quotas=(PublishQuota(250, 24 * 3600, "posts per 24 hours (threads_publishing_limit)"),),
    quotas=("250 posts and 1,000 replies per 24 hours: read threads_publishing_limit",),
)

OAUTH = OAuthEndpoints(
    authorize_url="https://threads.com/oauth/authorize",
    token_url="https://graph.threads.net/oauth/access_token",
    revoke_url=None,
    scopes=("threads_basic", "threads_content_publish", "threads_manage_replies", "threads_read_replies",
            "threads_manage_insights"),
    pkce=Pkce.NONE,
    scope_separator=",",
    access_token_lifetime="1 hour, exchanged for 60 days (th_exchange_token)",
    refresh="th_refresh_token once the token is at least 24 hours old",
)

SPEC = NetworkSpec(
    network=Network.THREADS,
    name="Threads",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url="https://graph.threads.net/v1.0",
    post_kinds=(PostKind.TEXT, PostKind.IMAGE, PostKind.CAROUSEL, PostKind.VIDEO, PostKind.THREAD),
    thread_parts=True,
    needs_public_media_url=True,
)


# --- the client -----------------------------------------------------------------------

from datetime import datetime  # noqa: E402

from domain.networks.adapters.base import AccountRef, PublishRequest, PublishResult, Rejected, RemotePost, matches  # noqa: E402
from domain.networks.adapters.meta import ContainerClient, remote  # noqa: E402


class ThreadsClient(ContainerClient):
    api_base_url = SPEC.api_base_url
    network = Network.THREADS
    container_path = "/threads"
    publish_path = "/threads_publish"
    status_field = "status"
    metrics = "views,likes,replies,reposts,quotes"

    text_field = "text"
    list_path = "/threads"

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        """TEXT, IMAGE or VIDEO container (or a CAROUSEL of item containers), then threads_publish
        once it is FINISHED (a video is processed first: the engine polls publish_status)."""
        media = request.media
        if len(media) > (LIMITS.carousel_max or 0):
            raise Rejected(self.network, f"a Threads carousel takes at most {LIMITS.carousel_max} items")
        if len(media) > 1:
            children = [await self._container(account, is_carousel_item="true",
                                              **self._media_form(m, "VIDEO"),
                                              **({} if m.is_video else {"media_type": "IMAGE"}))
                        for m in media]
            form = {"media_type": "CAROUSEL", "children": ",".join(children), "text": request.text}
        elif media:
            form = {"text": request.text, **self._media_form(media[0], "VIDEO")}
            form.setdefault("media_type", "IMAGE")
        else:
            form = {"media_type": "TEXT", "text": request.text}
        if request.reply_to:
            form["reply_to_id"] = request.reply_to
        return await self.publish_status(account, await self._container(account, **form))

    async def find_reply(self, account: AccountRef, root_id: str, text: str, since: datetime) -> str | None:
        """A reply with this text anywhere in the conversation under `root_id`."""
        body = await self._get(account, f"/{root_id}/conversation", fields="id,text,timestamp,username")
        for reply in body.get("data") or []:
            if matches(reply.get("text"), reply.get("timestamp"), text, since):
                return str(reply["id"])
        return None

    async def lookup(self, account: AccountRef, external_id: str) -> RemotePost | None:
        data = await self._lookup(account, external_id, "id,permalink,text,timestamp")
        return remote(data, "text", "permalink", {}) if data else None

    async def comments(self, account: AccountRef, external_id: str) -> list[dict[str, object]]:
        return list((await self._get(account, f"/{external_id}/replies", fields="id,text,timestamp,username")).get("data", []))

    async def reply(self, account: AccountRef, comment_id: str, text: str) -> PublishResult:
        return await self.publish(account, PublishRequest(text=text, reply_to=comment_id))
