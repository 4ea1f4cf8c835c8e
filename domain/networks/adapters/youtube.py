"""YouTube Data API v3. One video per post; scheduling is private plus publishAt."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind, TextCounting

LIMITS = Limits(
    text_max=5_000,  # the description, in bytes
    text_counting=TextCounting.UTF8_BYTES,
    title_max=100,
    description_max=5_000,
    description_counting=TextCounting.UTF8_BYTES,
    media_required=True,
    videos_max=1,
    quotas=("uploads have their own daily bucket", "other calls share 10,000 units a day"),
)

OAUTH = OAuthEndpoints(
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",
    revoke_url="https://oauth2.googleapis.com/revoke",
    scopes=("https://www.googleapis.com/auth/youtube.upload", "https://www.googleapis.com/auth/youtube.readonly",
            "https://www.googleapis.com/auth/youtube.force-ssl"),
    pkce=Pkce.OPTIONAL,
    extra_authorize_params=(("access_type", "offline"), ("prompt", "consent")),
    access_token_lifetime="about 1 hour",
    refresh="refresh token until revoked or unused for 6 months (7 days while the app is in testing)",
)

SPEC = NetworkSpec(
    network=Network.YOUTUBE,
    name="YouTube",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url="https://www.googleapis.com",
    post_kinds=(PostKind.VIDEO,),
    account_kinds=("channel",),
    native_scheduling=True,
    notes=("tags: 500 characters in all",),
)


# --- the client -----------------------------------------------------------------------

from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

from domain.networks.adapters.base import (  # noqa: E402
    AccountRef,
    PublishRequest,
    PublishResult,
    Rejected,
    RemotePost,
    Unknown,
    matches,
)
from domain.networks.http import ProviderClient, call, fetch_media, json_of  # noqa: E402

MAX_VIDEO_BYTES = 256 * 1024 * 1024  # what one upload reads into memory; larger files need chunks


class YouTubeClient(ProviderClient):
    """Resumable upload: open a session with the metadata, then send the bytes to it."""

    api_base_url = SPEC.api_base_url
    network = Network.YOUTUBE

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        if len(request.media) != 1 or not request.media[0].is_video:
            raise Rejected(self.network, "a YouTube post is exactly one video")
        title = str(request.options.get("title") or "")
        if not title:
            raise Rejected(self.network, "a YouTube video needs a title", code="invalidTitle")
        video, served = await fetch_media(self.network, request.media[0].url, timeout=self.timeout * 6,
                                          max_bytes=MAX_VIDEO_BYTES)
        content_type = request.media[0].mime or served
        status: dict[str, Any] = {"privacyStatus": str(request.options.get("privacy") or "public")}
        if isinstance(request.options.get("made_for_kids"), bool):
            status["selfDeclaredMadeForKids"] = request.options["made_for_kids"]
        if request.options.get("publish_at"):
            status |= {"privacyStatus": "private", "publishAt": str(request.options["publish_at"])}
        metadata = {"snippet": {"title": title, "description": request.text,
                                "tags": list(request.options.get("tags") or [])},
                    "status": status}
        session = await call(
            self.network, "POST", f"{self.base}/upload/youtube/v3/videos", account.access_token, json=metadata,
            params={"uploadType": "resumable", "part": "snippet,status"},
            headers={"X-Upload-Content-Length": str(len(video)), "X-Upload-Content-Type": content_type},
            timeout=self.timeout,
        )
        location = session.headers.get("location")
        if not location:
            raise Unknown(self.network, "the upload session has no Location")
        uploaded = await call(self.network, "PUT", location, account.access_token, content=video,
                              headers={"Content-Type": content_type}, timeout=self.timeout * 6)
        resource = json_of(self.network, uploaded)
        video_id = resource.get("id")
        if not video_id:
            raise Unknown(self.network, "the upload answered no video id")
        return PublishResult("published", external_id=video_id, url=f"https://www.youtube.com/watch?v={video_id}")

    async def find_recent(self, account: AccountRef, text: str, since: datetime) -> RemotePost | None:
        """The channel's uploads playlist (channels?mine=true -> relatedPlaylists.uploads, then
        playlistItems, 1 quota unit each): the video with this description, if any."""
        response = await call(self.network, "GET", f"{self.base}/youtube/v3/channels", account.access_token,
                              params={"part": "contentDetails", "mine": "true"}, timeout=self.timeout)
        items = json_of(self.network, response).get("items") or []
        uploads = (((items[0] if items else {}).get("contentDetails") or {}).get("relatedPlaylists") or {}).get("uploads")
        if not uploads:
            return None
        response = await call(self.network, "GET", f"{self.base}/youtube/v3/playlistItems", account.access_token,
                              params={"part": "snippet", "playlistId": uploads, "maxResults": 50}, timeout=self.timeout)
        for item in json_of(self.network, response).get("items") or []:
            snippet = item.get("snippet") or {}
            video_id = (snippet.get("resourceId") or {}).get("videoId")
            if video_id and matches(snippet.get("description"), snippet.get("publishedAt"), text, since):
                return RemotePost(external_id=str(video_id), url=f"https://www.youtube.com/watch?v={video_id}",
                                  text=snippet.get("description"), created_at=snippet.get("publishedAt"))
        return None

    async def lookup(self, account: AccountRef, external_id: str) -> RemotePost | None:
        response = await call(self.network, "GET", f"{self.base}/youtube/v3/videos", account.access_token,
                              params={"part": "snippet,status,statistics", "id": external_id}, timeout=self.timeout)
        items = json_of(self.network, response).get("items") or []
        if not items:
            return None
        video = items[0]
        stats = video.get("statistics") or {}
        return RemotePost(
            external_id=video["id"], url=f"https://www.youtube.com/watch?v={video['id']}",
            text=(video.get("snippet") or {}).get("description"),
            created_at=(video.get("snippet") or {}).get("publishedAt"),
            metrics={k.removesuffix("Count"): int(v) for k, v in stats.items() if str(v).isdigit()},
        )

    async def insights(self, account: AccountRef, external_id: str) -> dict[str, int]:
        post = await self.lookup(account, external_id)
        return post.metrics if post else {}

    async def comments(self, account: AccountRef, external_id: str) -> list[dict[str, object]]:
        response = await call(self.network, "GET", f"{self.base}/youtube/v3/commentThreads", account.access_token,
                              params={"part": "snippet", "videoId": external_id}, timeout=self.timeout)
        return list(json_of(self.network, response).get("items") or [])

    async def reply(self, account: AccountRef, comment_id: str, text: str) -> PublishResult:
        response = await call(self.network, "POST", f"{self.base}/youtube/v3/comments", account.access_token,
                              params={"part": "snippet"},
                              json={"snippet": {"parentId": comment_id, "textOriginal": text}}, timeout=self.timeout)
        return PublishResult("published", external_id=str(json_of(self.network, response)["id"]))
