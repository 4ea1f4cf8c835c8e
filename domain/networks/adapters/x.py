"""X (API v2). A URL counts 23 and emoji/CJK count 2 of 280 weighted characters."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind, PublishQuota, TextCounting

LIMITS = Limits(
    text_max=280,
    text_counting=TextCounting.X_WEIGHTED,
    media_required=False,
    images_max=4,
    videos_max=1,
    mixed_media=False,
    image_formats=("image/jpeg", "image/png", "image/gif", "image/webp"),
    image_max_bytes=5 * 1024 * 1024,
    video_min_seconds=0.5,
    video_max_seconds=140,
    aspect_ratio_min=1 / 3,
    aspect_ratio_max=3.0,
    publish_quotas=(PublishQuota(100, 15 * 60, "create post: 100 per 15 minutes per user"),),
    quotas=("100 posts per 15 minutes per user", "10,000 posts per 24 hours per app",
            "x-rate-limit-* headers, no Retry-After"),
)

OAUTH = OAuthEndpoints(
    authorize_url="https://x.com/i/oauth2/authorize",
    token_url="https://api.x.com/2/oauth2/token",
    revoke_url="https://api.x.com/2/oauth2/revoke",
    scopes=("tweet.read", "tweet.write", "users.read", "media.write", "offline.access"),
    pkce=Pkce.REQUIRED,
    token_auth="client_secret_basic",
    access_token_lifetime="2 hours",
    refresh="refresh token only with offline.access; it rotates on every use",
    refresh_rotates=True,
)

SPEC = NetworkSpec(
    network=Network.X,
    name="X",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url="https://api.x.com",
    post_kinds=(PostKind.TEXT, PostKind.IMAGE, PostKind.VIDEO, PostKind.THREAD),
    thread_parts=True,
    notes=("media upload: /2/media/upload/initialize, /{id}/append, /{id}/finalize",),
)


# --- the client -----------------------------------------------------------------------

import json  # noqa: E402

from datetime import datetime  # noqa: E402

from domain.networks.adapters.base import (  # noqa: E402
    AccountRef,
    BeforeCreate,
    MediaRef,
    PublishRequest,
    PublishResult,
    Rejected,
    RemotePost,
    matches,
)
from domain.networks.http import ProviderClient, call, fetch_media, find, json_of  # noqa: E402

_TWEET_FIELDS = "created_at,public_metrics,conversation_id,author_id,text"
SEGMENT_BYTES = 4 * 1024 * 1024
VIDEO_MAX_BYTES = 512 * 1024 * 1024
ALT_TEXT_MAX = 1_000  # POST /2/media/metadata


class XClient(ProviderClient):
    api_base_url = SPEC.api_base_url
    network = Network.X

    async def upload(self, account: AccountRef, media: MediaRef | str) -> tuple[str, str | None]:
        """initialize, append (in segments), finalize: X's chunked upload. Returns the media id
        and its processing state (None when it is ready at once, as images are)."""
        if isinstance(media, str):
            media = MediaRef.from_url(media)
        data, served_type = await fetch_media(self.network, media.url, timeout=self.timeout * 6,
                                              max_bytes=VIDEO_MAX_BYTES)
        is_video = media.is_video
        media_type = media.mime or served_type
        if not is_video and media_type not in LIMITS.image_formats:
            raise Rejected(self.network, f"X takes {', '.join(LIMITS.image_formats)} images or a video, not {media_type}")
        if not is_video and len(data) > (LIMITS.image_max_bytes or 0):
            raise Rejected(self.network, "the image is larger than X accepts")
        category = "tweet_video" if is_video else "tweet_gif" if media_type == "image/gif" else "tweet_image"
        started = await call(self.network, "POST", f"{self.base}/2/media/upload/initialize", account.access_token,
                             json={"media_type": media_type, "total_bytes": len(data), "media_category": category},
                             timeout=self.timeout)
        media_id = str(json_of(self.network, started)["data"]["id"])
        for index, start in enumerate(range(0, len(data), SEGMENT_BYTES)):
            segment = data[start : start + SEGMENT_BYTES]
            await call(self.network, "POST", f"{self.base}/2/media/upload/{media_id}/append", account.access_token,
                       data={"segment_index": str(index)}, files={"media": ("media", segment, media_type)},
                       timeout=self.timeout * 3)
        finished = json_of(self.network, await call(
            self.network, "POST", f"{self.base}/2/media/upload/{media_id}/finalize", account.access_token,
            timeout=self.timeout))
        state = ((finished.get("data") or {}).get("processing_info") or {}).get("state")
        if media.alt_text and not is_video:
            await call(self.network, "POST", f"{self.base}/2/media/metadata", account.access_token,
                       json={"id": media_id, "metadata": {"alt_text": {"text": media.alt_text[:ALT_TEXT_MAX]}}},
                       timeout=self.timeout)
        return media_id, None if state in (None, "succeeded") else str(state)

    async def media_state(self, account: AccountRef, media_id: str) -> str:
        response = await call(self.network, "GET", f"{self.base}/2/media/upload", account.access_token,
                              params={"media_id": media_id, "command": "STATUS"}, timeout=self.timeout)
        info = (json_of(self.network, response).get("data") or {}).get("processing_info") or {}
        return str(info.get("state") or "succeeded")

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        body: dict[str, object] = {"text": request.text}
        if request.reply_to:
            body["reply"] = {"in_reply_to_tweet_id": request.reply_to}
        if request.media:
            if len(request.media) > LIMITS.images_max:
                raise Rejected(self.network, f"X takes at most {LIMITS.images_max} images")
            if len(request.media) > 1 and any(m.is_video for m in request.media):
                raise Rejected(self.network, "X takes up to 4 images, or one video, in a post")
            uploads = [await self.upload(account, m) for m in request.media]
            if len(uploads) > 1 and any(state for _, state in uploads):
                raise Rejected(self.network, "X takes up to 4 images, or one video, in a post")
            if any(state for _, state in uploads):
                # A video is processed first: the post goes out from publish_status once it is ready.
                pending = {"text": request.text, "reply_to": request.reply_to, "media_ids": [m for m, _ in uploads]}
                return PublishResult("processing", pending_ref=json.dumps(pending))
            body["media"] = {"media_ids": [m for m, _ in uploads]}
        return await self._post(account, body)

    async def publish_status(self, account: AccountRef, pending_ref: str,
                             before_create: BeforeCreate | None = None) -> PublishResult:
        pending = json.loads(pending_ref)
        states = [await self.media_state(account, media_id) for media_id in pending["media_ids"]]
        if "failed" in states:
            raise Rejected(self.network, "X could not process the media", code="media_failed")
        if any(state != "succeeded" for state in states):
            return PublishResult("processing", pending_ref=pending_ref)
        if before_create is not None:
            await before_create()  # the engine records that the post is being created
        body: dict[str, object] = {"text": pending["text"], "media": {"media_ids": pending["media_ids"]}}
        if pending.get("reply_to"):
            body["reply"] = {"in_reply_to_tweet_id": pending["reply_to"]}
        return await self._post(account, body)

    async def _post(self, account: AccountRef, body: dict[str, object]) -> PublishResult:
        response = await call(self.network, "POST", f"{self.base}/2/tweets", account.access_token, json=body,
                              timeout=self.timeout)
        data = json_of(self.network, response).get("data") or {}
        if "id" not in data:
            raise Rejected(self.network, "the answer has no post id")
        return PublishResult("published", external_id=data["id"], url=f"https://x.com/i/web/status/{data['id']}")

    async def find_recent(self, account: AccountRef, text: str, since: datetime) -> RemotePost | None:
        """The account's recent posts (GET /2/users/{id}/tweets): the one with this text, if any."""
        response = await call(self.network, "GET", f"{self.base}/2/users/{account.external_id}/tweets",
                              account.access_token, params={"tweet.fields": "created_at,text", "max_results": 100},
                              timeout=self.timeout)
        for tweet in json_of(self.network, response).get("data") or []:
            if matches(tweet.get("text"), tweet.get("created_at"), text, since):
                return RemotePost(external_id=str(tweet["id"]), url=f"https://x.com/i/web/status/{tweet['id']}",
                                  text=tweet.get("text"), created_at=tweet.get("created_at"))
        return None

    async def find_reply(self, account: AccountRef, root_id: str, text: str, since: datetime) -> str | None:
        """The account's own post with this text in the conversation of `root_id` (recent search)."""
        response = await call(self.network, "GET", f"{self.base}/2/tweets/search/recent", account.access_token,
                              params={"query": f"conversation_id:{root_id}", "tweet.fields": "created_at,text,author_id",
                                      "max_results": 100}, timeout=self.timeout)
        for tweet in json_of(self.network, response).get("data") or []:
            if tweet.get("author_id") in (None, account.external_id) \
                    and matches(tweet.get("text"), tweet.get("created_at"), text, since):
                return str(tweet["id"])
        return None

    async def lookup(self, account: AccountRef, external_id: str) -> RemotePost | None:
        response = await find(self.network, f"{self.base}/2/tweets/{external_id}", account.access_token,
                              params={"tweet.fields": _TWEET_FIELDS}, timeout=self.timeout)
        if response is None:
            return None
        data = json_of(self.network, response).get("data")
        if not data:  # X answers a deleted or unknown post with 200 and {"errors": [...]}
            return None
        return RemotePost(external_id=data["id"], url=f"https://x.com/i/web/status/{data['id']}", text=data.get("text"),
                          created_at=data.get("created_at"), metrics=dict(data.get("public_metrics") or {}))

    async def insights(self, account: AccountRef, external_id: str) -> dict[str, int]:
        post = await self.lookup(account, external_id)
        return post.metrics if post else {}

    async def comments(self, account: AccountRef, external_id: str) -> list[dict[str, object]]:
        response = await call(self.network, "GET", f"{self.base}/2/tweets/search/recent", account.access_token,
                              params={"query": f"conversation_id:{external_id}", "tweet.fields": _TWEET_FIELDS},
                              timeout=self.timeout)
        return list(json_of(self.network, response).get("data") or [])

    async def reply(self, account: AccountRef, comment_id: str, text: str) -> PublishResult:
        return await self.publish(account, PublishRequest(text=text, reply_to=comment_id))
