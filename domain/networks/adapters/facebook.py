"""Facebook Pages (Graph API). One login reaches several pages; page tokens do not expire."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind

GRAPH_VERSION = "v24.0"
# Page videos are sent to Graph's video host (same paths and version as the API host).
VIDEO_BASE_URL = f"https://graph-video.facebook.com/{GRAPH_VERSION}"

LIMITS = Limits(
    text_max=63_206,
    media_required=False,
    images_max=10,
    carousel_min=2,
    carousel_max=10,
    videos_max=1,
    mixed_media=False,
    image_formats=("image/jpeg", "image/png", "image/gif", "image/webp"),
    quotas=("X-App-Usage, X-Business-Use-Case-Usage and X-Page-Usage headers",
            "error codes 4, 17, 32 and 613 mean throttled"),
)

OAUTH = OAuthEndpoints(
    authorize_url=f"https://www.facebook.com/{GRAPH_VERSION}/dialog/oauth",
    token_url=f"https://graph.facebook.com/{GRAPH_VERSION}/oauth/access_token",
    revoke_url=None,
    scopes=("pages_show_list", "pages_read_engagement", "pages_manage_posts", "pages_manage_engagement",
            "read_insights"),
    pkce=Pkce.OPTIONAL,
    scope_separator=",",
    access_token_lifetime="user token about 60 days after fb_exchange_token; page tokens do not expire",
    refresh="no refresh token: exchange for a long-lived token, then reconnect",
)

SPEC = NetworkSpec(
    network=Network.FACEBOOK,
    name="Facebook Pages",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url=f"https://graph.facebook.com/{GRAPH_VERSION}",
    post_kinds=(PostKind.TEXT, PostKind.IMAGE, PostKind.CAROUSEL, PostKind.VIDEO, PostKind.REEL, PostKind.STORY),
    account_kinds=("page",),
    first_comment=True,
    native_scheduling=True,
)


# --- the client -----------------------------------------------------------------------

import json  # noqa: E402
from datetime import datetime  # noqa: E402

from domain.networks.adapters.base import (  # noqa: E402
    AccountRef,
    MediaRef,
    PublishRequest,
    PublishResult,
    Rejected,
    RemotePost,
    Unknown,
    matches,
)
from domain.networks.adapters.meta import GraphClient, remote  # noqa: E402
from domain.networks.hosts import resolve  # noqa: E402
from domain.networks.http import call, json_of  # noqa: E402


class FacebookClient(GraphClient):
    """Publishes as a page, with the page's own token (the account's token)."""

    api_base_url = SPEC.api_base_url
    network = Network.FACEBOOK
    metrics = "post_impressions,post_impressions_unique,post_engaged_users,post_clicks"

    def __init__(self, sandbox_base: str | None = None, timeout: float = 10.0) -> None:
        super().__init__(sandbox_base, timeout)
        self.video_base = resolve(VIDEO_BASE_URL, self.network.value, sandbox_base)

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        page, media = account.external_id, request.media
        placement = str(request.options.get("placement") or "feed")
        if placement in ("reel", "story"):
            if len(media) != 1 or (placement == "reel" and not media[0].is_video):
                raise Rejected(self.network, "a Facebook reel is one video" if placement == "reel"
                               else "a Facebook story is one photo or one video")
            if placement == "story" and not media[0].is_video:
                return await self.publish_photo_story(account, media[0])
            return await self.publish_phased(account, "video_reels" if placement == "reel" else "video_stories",
                                             media[0], request.text)
        if any(m.is_video for m in media):
            if len(media) > LIMITS.videos_max:
                raise Rejected(self.network, f"a Facebook post takes {LIMITS.videos_max} video, with no photos beside it")
            return await self.publish_video(account, request)
        if len(media) > LIMITS.images_max:
            raise Rejected(self.network, f"a Facebook post takes at most {LIMITS.images_max} photos")
        if len(media) > 1:
            # Several photos: each is uploaded unpublished, then one feed post attaches them all.
            photos = [str((await self._post(account, f"/{page}/photos", url=m.url, published="false",
                                            **({"alt_text_custom": m.alt_text} if m.alt_text else {})))["id"])
                      for m in media]
            form = {"message": request.text}
            form |= {f"attached_media[{i}]": json.dumps({"media_fbid": photo}) for i, photo in enumerate(photos)}
            post_id = str((await self._post(account, f"/{page}/feed", **form))["id"])
        elif media:
            body = await self._post(account, f"/{page}/photos", url=media[0].url, caption=request.text,
                                    **({"alt_text_custom": media[0].alt_text} if media[0].alt_text else {}))
            post_id = str(body.get("post_id") or body["id"])
        else:
            form = {"message": request.text}
            if request.options.get("link"):
                form["link"] = str(request.options["link"])
            body = await self._post(account, f"/{page}/feed", **form)
            post_id = str(body["id"])
        post = await self.lookup(account, post_id)
        return PublishResult("published", external_id=post_id, url=post.url if post else None)

    async def publish_video(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        """POST /{page}/videos with the video's link; Graph fetches and processes it, then the page
        post appears. Until then the result is pending on the video id (see publish_status)."""
        form = {"file_url": request.media[0].url, "description": request.text}
        if request.options.get("title"):
            form["title"] = str(request.options["title"])
        response = await call(self.network, "POST", f"{self.video_base}/{account.external_id}/videos",
                              account.access_token, data=form, timeout=self.timeout)
        return await self.publish_status(account, str(json_of(self.network, response)["id"]))

    async def publish_phased(self, account: AccountRef, edge: str, media: MediaRef, text: str) -> PublishResult:
        """Reels (/{page}/video_reels) and video stories (/{page}/video_stories): start, hand the
        upload host the video's link (`file_url` header; Graph fetches it), finish. The video is
        processed, then its post appears: pending on the video id, as page videos are."""
        page = account.external_id
        started = await self._post(account, f"/{page}/{edge}", upload_phase="start")
        video_id, upload_url = str(started.get("video_id") or ""), started.get("upload_url")
        if not video_id or not upload_url:
            raise Unknown(self.network, "the upload start answered no video_id or upload_url")
        await call(self.network, "POST", str(upload_url), None, timeout=self.timeout,
                   headers={"Authorization": f"OAuth {account.access_token}", "file_url": media.url})
        form = {"upload_phase": "finish", "video_id": video_id}
        if edge == "video_reels":
            form |= {"video_state": "PUBLISHED", "description": text}
        await self._post(account, f"/{page}/{edge}", **form)
        return await self.publish_status(account, video_id)

    async def publish_photo_story(self, account: AccountRef, media: MediaRef) -> PublishResult:
        """A photo uploaded unpublished, then /{page}/photo_stories with its id."""
        page = account.external_id
        photo = str((await self._post(account, f"/{page}/photos", url=media.url, published="false"))["id"])
        body = await self._post(account, f"/{page}/photo_stories", photo_id=photo)
        if not body.get("post_id"):
            raise Unknown(self.network, "the story answered no post_id")
        return PublishResult("published", external_id=str(body["post_id"]), url=None)

    async def find_recent(self, account: AccountRef, text: str, since: datetime) -> RemotePost | None:
        """The page's recent posts (GET /{page}/published_posts): the one with this message, if any.
        A video still processing has no page post yet: it is found once it is live."""
        body = await self._get(account, f"/{account.external_id}/published_posts",
                               fields="id,message,created_time,permalink_url", limit="50")
        for post in body.get("data") or []:
            if matches(post.get("message"), post.get("created_time"), text, since):
                return remote(post, "message", "permalink_url", {})
        return None

    async def publish_status(self, account: AccountRef, pending_ref: str) -> PublishResult:
        video = await self._get(account, f"/{pending_ref}", fields="status,post_id,permalink_url")
        state = (video.get("status") or {}).get("video_status")
        if state == "error":
            raise Rejected(self.network, "Facebook could not process the video", code="video_error")
        if state != "ready" or not video.get("post_id"):
            return PublishResult("processing", pending_ref=pending_ref)
        post_id = str(video["post_id"])
        post = await self.lookup(account, post_id)
        return PublishResult("published", external_id=post_id, url=post.url if post else video.get("permalink_url"))

    async def lookup(self, account: AccountRef, external_id: str) -> RemotePost | None:
        if "_" not in external_id:  # a video id: its page post once there is one, else the video itself
            video = await self._lookup(account, external_id, "id,post_id,description,created_time,permalink_url")
            if not video or not video.get("post_id"):
                return remote(video, "description", "permalink_url", {}) if video else None
            external_id = str(video["post_id"])
        data = await self._lookup(account, external_id, "id,message,created_time,permalink_url")
        return remote(data, "message", "permalink_url", {}) if data else None

    async def comments(self, account: AccountRef, external_id: str) -> list[dict[str, object]]:
        return list((await self._get(account, f"/{external_id}/comments", order="chronological")).get("data", []))

    async def find_reply(self, account: AccountRef, post_id: str, text: str, since: datetime) -> str | None:
        """The page's own comment with this text on the post (the first comment, after an unclear answer)."""
        body = await self._get(account, f"/{post_id}/comments", filter="stream", fields="id,message,created_time,from")
        for comment in body.get("data") or []:
            if (comment.get("from") or {}).get("id") in (None, account.external_id) \
                    and matches(comment.get("message"), comment.get("created_time"), text, since):
                return str(comment["id"])
        return None

    async def comment_on(self, account: AccountRef, post_id: str, text: str) -> PublishResult:
        """A comment on the page's own post, as the page: the first comment."""
        body = await self._post(account, f"/{post_id}/comments", message=text)
        return PublishResult("published", external_id=str(body["id"]))

    async def reply(self, account: AccountRef, comment_id: str, text: str) -> PublishResult:
        body = await self._post(account, f"/{comment_id}/comments", message=text)
        return PublishResult("published", external_id=str(body["id"]))
