"""LinkedIn Posts API, for members and organization pages."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind

API_VERSION = "202611"  # sent as LinkedIn-Version

LIMITS = Limits(
    text_max=3_000,
    media_required=False,
    images_max=20,
    carousel_min=2,
    carousel_max=20,
    videos_max=1,
    mixed_media=False,
    image_formats=("image/jpeg", "image/png", "image/gif"),
    video_max_bytes=500 * 1024 * 1024,
    video_min_seconds=3,
    video_max_seconds=30 * 60,
    quotas=("daily per-app and per-member limits, unpublished; a bare 429",),
)

OAUTH = OAuthEndpoints(
    authorize_url="https://www.linkedin.com/oauth/v2/authorization",
    token_url="https://www.linkedin.com/oauth/v2/accessToken",
    revoke_url="https://www.linkedin.com/oauth/v2/revoke",
    scopes=("openid", "profile", "w_member_social", "r_organization_social", "w_organization_social",
            "rw_organization_admin"),
    pkce=Pkce.NONE,
    access_token_lifetime="60 days",
    refresh="refresh tokens for partners only: 365 days from first consent, not sliding",
)

SPEC = NetworkSpec(
    network=Network.LINKEDIN,
    name="LinkedIn",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url="https://api.linkedin.com",
    post_kinds=(PostKind.TEXT, PostKind.IMAGE, PostKind.CAROUSEL, PostKind.VIDEO),
    account_kinds=("member", "organization"),
    notes=("POST /rest/posts answers 201 with the id in x-restli-id; a repeat gets 422 DUPLICATE_POST",),
)


# --- the client -----------------------------------------------------------------------

import json  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

from domain.networks.adapters.base import (  # noqa: E402
    AccountRef,
    BeforeCreate,
    MediaRef,
    PublishRequest,
    PublishResult,
    Rejected,
    RemotePost,
    Unknown,
    matches,
)
from domain.networks.http import ProviderClient, call, fetch_media, find, json_of  # noqa: E402

HEADERS = {"LinkedIn-Version": API_VERSION, "X-Restli-Protocol-Version": "2.0.0"}
VIDEO_READY = "AVAILABLE"
VIDEO_FAILED = "PROCESSING_FAILED"  # the other states, PROCESSING and WAITING_UPLOAD, mean "not yet"


class LinkedInClient(ProviderClient):
    """Posts API; images through the Images API, a video through the Videos API (processed
    first: the post then goes out from publish_status once the video is AVAILABLE)."""

    api_base_url = SPEC.api_base_url
    network = Network.LINKEDIN

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        if not request.media:
            return await self._post(account, request.text, None)
        media = await self._fetch(request.media)
        if request.media[0].is_video:
            title = str(request.options.get("title") or "")
            video = await self.upload_video(account, media[0])
            return await self._post_video(account, {"text": request.text, "video": video, "title": title})
        images = [await self.upload_image(account, data) for data in media]
        fallback = _alt_texts(request.options.get("alt_text"), len(images))
        alt = [m.alt_text or f for m, f in zip(request.media, fallback)]
        if len(images) == 1:
            content: dict[str, Any] = {"media": {"id": images[0], **({"altText": alt[0]} if alt[0] else {})}}
        else:
            content = {"multiImage": {"images": [{"id": urn, **({"altText": a} if a else {})}
                                                 for urn, a in zip(images, alt)]}}
        return await self._post(account, request.text, content)

    async def publish_status(self, account: AccountRef, pending_ref: str,
                             before_create: BeforeCreate | None = None) -> PublishResult:
        return await self._post_video(account, json.loads(pending_ref), before_create)

    async def find_recent(self, account: AccountRef, text: str, since: datetime) -> RemotePost | None:
        """The author's recent posts (GET /rest/posts?q=author): the one with this commentary, if any."""
        response = await call(self.network, "GET", f"{self.base}/rest/posts", account.access_token,
                              params={"q": "author", "author": account.external_id, "count": 50, "sortBy": "CREATED"},
                              headers=HEADERS, timeout=self.timeout)
        for post in json_of(self.network, response).get("elements") or []:
            if matches(post.get("commentary"), post.get("createdAt"), text, since):
                urn = str(post["id"])
                return RemotePost(external_id=urn, url=f"https://www.linkedin.com/feed/update/{urn}/",
                                  text=post.get("commentary"), created_at=str(post.get("createdAt") or ""))
        return None

    async def _fetch(self, refs: tuple[MediaRef, ...]) -> list[bytes]:
        """Read every media file first, so a post LinkedIn would refuse uploads nothing."""
        if len(refs) > LIMITS.images_max:
            raise Rejected(self.network, f"LinkedIn takes at most {LIMITS.images_max} images")
        videos = sum(m.is_video for m in refs)
        if videos and (videos > LIMITS.videos_max or len(refs) > videos):
            raise Rejected(self.network, f"LinkedIn takes up to {LIMITS.images_max} images, or {LIMITS.videos_max} "
                                         "video, in a post; not both")
        media = []
        for ref in refs:
            data, served = await fetch_media(self.network, ref.url, timeout=self.timeout * 6,
                                             max_bytes=LIMITS.video_max_bytes or 0)
            kind = ref.mime or served
            if not ref.is_video and kind not in LIMITS.image_formats:
                raise Rejected(self.network, f"LinkedIn takes {', '.join(LIMITS.image_formats)} images or a video, "
                                             f"not {kind}")
            media.append(data)
        return media

    async def upload_image(self, account: AccountRef, data: bytes) -> str:
        """Images API: initializeUpload for the author, then PUT the bytes to the upload URL."""
        started = json_of(self.network, await call(
            self.network, "POST", f"{self.base}/rest/images", account.access_token, params={"action": "initializeUpload"},
            json={"initializeUploadRequest": {"owner": account.external_id}}, headers=HEADERS, timeout=self.timeout))
        value = started.get("value") or {}
        if not value.get("uploadUrl") or not value.get("image"):
            raise Unknown(self.network, "initializeUpload answered no uploadUrl or image")
        await call(self.network, "PUT", value["uploadUrl"], account.access_token, content=data,
                   headers={"Content-Type": "application/octet-stream"}, timeout=self.timeout * 3)
        return str(value["image"])

    async def upload_video(self, account: AccountRef, data: bytes) -> str:
        """Videos API: initializeUpload, PUT each part (keeping its ETag), finalizeUpload."""
        started = json_of(self.network, await call(
            self.network, "POST", f"{self.base}/rest/videos", account.access_token, params={"action": "initializeUpload"},
            json={"initializeUploadRequest": {"owner": account.external_id, "fileSizeBytes": len(data),
                                              "uploadCaptions": False, "uploadThumbnail": False}},
            headers=HEADERS, timeout=self.timeout))
        value = started.get("value") or {}
        video, parts = value.get("video"), value.get("uploadInstructions") or []
        if not video or not parts:
            raise Unknown(self.network, "initializeUpload answered no video or uploadInstructions")
        etags = []
        for part in parts:
            uploaded = await call(self.network, "PUT", part["uploadUrl"], account.access_token,
                                  content=data[int(part["firstByte"]) : int(part["lastByte"]) + 1],
                                  headers={"Content-Type": "application/octet-stream"}, timeout=self.timeout * 3)
            etag = uploaded.headers.get("etag")
            if not etag:
                raise Unknown(self.network, "a video part was answered without an ETag")
            etags.append(etag)
        await call(self.network, "POST", f"{self.base}/rest/videos", account.access_token,
                   params={"action": "finalizeUpload"},
                   json={"finalizeUploadRequest": {"video": video, "uploadToken": value.get("uploadToken") or "",
                                                   "uploadedPartIds": etags}},
                   headers=HEADERS, timeout=self.timeout)
        return str(video)

    async def media_status(self, account: AccountRef, urn: str) -> str:
        kind = "videos" if urn.startswith("urn:li:video:") else "images"
        response = await call(self.network, "GET", f"{self.base}/rest/{kind}/{quote(urn, safe='')}",
                              account.access_token, headers=HEADERS, timeout=self.timeout)
        return str(json_of(self.network, response).get("status") or "")

    async def _post_video(self, account: AccountRef, pending: dict[str, str],
                          before_create: BeforeCreate | None = None) -> PublishResult:
        state = await self.media_status(account, pending["video"])
        if state == VIDEO_FAILED:
            raise Rejected(self.network, "LinkedIn could not process the video", code=VIDEO_FAILED)
        if state != VIDEO_READY:
            return PublishResult("processing", pending_ref=json.dumps(pending))
        if before_create is not None:
            await before_create()  # the engine records that the post is being created
        media = {"id": pending["video"], **({"title": pending["title"]} if pending.get("title") else {})}
        return await self._post(account, pending["text"], {"media": media})

    async def _post(self, account: AccountRef, text: str, content: dict[str, Any] | None) -> PublishResult:
        body: dict[str, Any] = {
            "author": account.external_id,  # urn:li:person:... or urn:li:organization:...
            "commentary": text,
            "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if content:
            body["content"] = content
        response = await call(self.network, "POST", f"{self.base}/rest/posts", account.access_token, json=body,
                              headers=HEADERS, timeout=self.timeout)
        urn = response.headers.get("x-restli-id")
        if not urn:
            raise Rejected(self.network, "the answer has no x-restli-id")
        return PublishResult("published", external_id=urn, url=f"https://www.linkedin.com/feed/update/{urn}/")

    async def lookup(self, account: AccountRef, external_id: str) -> RemotePost | None:
        response = await find(self.network, f"{self.base}/rest/posts/{quote(external_id, safe='')}",
                              account.access_token, headers=HEADERS, timeout=self.timeout)
        if response is None:
            return None
        post = json_of(self.network, response)
        return RemotePost(external_id=str(post.get("id", external_id)),
                          url=f"https://www.linkedin.com/feed/update/{external_id}/", text=post.get("commentary"),
                          created_at=str(post["createdAt"]) if post.get("createdAt") else None)


def _alt_texts(value: object, count: int) -> list[str]:
    """`alt_text` in the request options: one text for every image, or a list in image order."""
    if isinstance(value, (list, tuple)):
        return [str(v or "") for v in value][:count] + [""] * max(0, count - len(value))
    return [str(value or "")] * count
