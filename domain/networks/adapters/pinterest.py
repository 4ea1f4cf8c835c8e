"""Pinterest API v5. Every pin needs a board."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind, PublishQuota

LIMITS = Limits(
    text_max=800,  # description (500 is often quoted)
    title_max=100,
    description_max=800,
    link_max=2_048,
    alt_text_max=500,
    media_required=True,
    images_max=5,
    carousel_min=2,
    carousel_max=5,
    videos_max=1,
    mixed_media=False,
    publish_quotas=(PublishQuota(1000, 24 * 3600, "trial access: 1,000 requests per day"),),
    quotas=("trial access: 1,000 requests a day",),
)

OAUTH = OAuthEndpoints(
    authorize_url="https://www.pinterest.com/oauth/",
    token_url="https://api.pinterest.com/v5/oauth/token",
    revoke_url=None,
    scopes=("boards:read", "boards:write", "pins:read", "pins:write", "user_accounts:read"),
    pkce=Pkce.NONE,
    scope_separator=",",
    token_auth="client_secret_basic",
    access_token_lifetime="about 30 days",
    refresh="continuous refresh: each refresh extends the 60-day refresh window",
)

SPEC = NetworkSpec(
    network=Network.PINTEREST,
    name="Pinterest",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url="https://api.pinterest.com/v5",
    post_kinds=(PostKind.PIN, PostKind.CAROUSEL, PostKind.VIDEO),
    account_kinds=("board",),
)


# --- the client -----------------------------------------------------------------------

import json  # noqa: E402
from datetime import date, datetime, timedelta  # noqa: E402

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

VIDEO_MAX_BYTES = 2 * 1024 * 1024 * 1024

_METRICS = "IMPRESSION,SAVE,PIN_CLICK,OUTBOUND_CLICK"


class PinterestClient(ProviderClient):
    api_base_url = SPEC.api_base_url
    network = Network.PINTEREST

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        """An image pin (image_url), a carousel (multiple_image_urls, 2-5 images) or a video pin: the
        video's bytes go to a registered media upload first; once Pinterest has processed it the pin
        is created from publish_status (media_source video_id)."""
        # A pin lives on a board: the account is the board (see identity.targets).
        board_id = str(request.options.get("board_id") or account.external_id)
        media = request.media
        if not media:
            raise Rejected(self.network, "a pin needs an image or a video")
        body: dict[str, object] = {"board_id": board_id, "description": request.text}
        for key in ("title", "link"):
            if request.options.get(key):
                body[key] = request.options[key]
        if media[0].alt_text or request.options.get("alt_text"):
            body["alt_text"] = (media[0].alt_text or str(request.options.get("alt_text")))[: LIMITS.alt_text_max]
        if any(m.is_video for m in media):
            if len(media) != 1:
                raise Rejected(self.network, "a video pin takes one video and nothing else")
            media_id = await self.upload_video(account, media[0])
            return PublishResult("processing", pending_ref=json.dumps({"media_id": media_id, "body": body}))
        if len(media) > LIMITS.images_max:
            raise Rejected(self.network, f"a Pinterest carousel takes at most {LIMITS.images_max} images")
        if len(media) > 1:
            body["media_source"] = {"source_type": "multiple_image_urls",
                                    "items": [{"url": m.url, **({"description": m.alt_text} if m.alt_text else {})}
                                              for m in media]}
        else:
            body["media_source"] = {"source_type": "image_url", "url": media[0].url}
        return await self._create(account, body)

    async def upload_video(self, account: AccountRef, media: MediaRef) -> str:
        """POST /v5/media (register), then the bytes as a multipart POST to its upload_url."""
        data, served = await fetch_media(self.network, media.url, timeout=self.timeout * 6,
                                         max_bytes=VIDEO_MAX_BYTES)
        registered = json_of(self.network, await call(self.network, "POST", f"{self.base}/media", account.access_token,
                                                      json={"media_type": "video"}, timeout=self.timeout))
        if not registered.get("upload_url") or not registered.get("media_id"):
            raise Unknown(self.network, "the media registration answered no upload_url or media_id")
        fields = {k: str(v) for k, v in (registered.get("upload_parameters") or {}).items()}
        await call(self.network, "POST", str(registered["upload_url"]), None, data=fields,
                   files={"file": ("video.mp4", data, media.mime or served)}, timeout=self.timeout * 6)
        return str(registered["media_id"])

    async def publish_status(self, account: AccountRef, pending_ref: str,
                             before_create: BeforeCreate | None = None) -> PublishResult:
        pending = json.loads(pending_ref)
        response = await call(self.network, "GET", f"{self.base}/media/{pending['media_id']}", account.access_token,
                              timeout=self.timeout)
        state = json_of(self.network, response).get("status")
        if state == "failed":
            raise Rejected(self.network, "Pinterest could not process the video", code="media_failed")
        if state != "succeeded":
            return PublishResult("processing", pending_ref=pending_ref)
        if before_create is not None:
            await before_create()  # the engine records that the pin is being created
        body = {**pending["body"], "media_source": {"source_type": "video_id", "media_id": pending["media_id"],
                                                     "cover_image_key_frame_time": 0}}
        return await self._create(account, body)

    async def _create(self, account: AccountRef, body: dict[str, object]) -> PublishResult:
        response = await call(self.network, "POST", f"{self.base}/pins", account.access_token, json=body,
                              timeout=self.timeout)
        pin = json_of(self.network, response)
        return PublishResult("published", external_id=str(pin["id"]), url=f"https://www.pinterest.com/pin/{pin['id']}/")

    async def find_recent(self, account: AccountRef, text: str, since: datetime) -> RemotePost | None:
        """The board's recent pins (GET /v5/boards/{id}/pins): the one with this description, if any."""
        response = await call(self.network, "GET", f"{self.base}/boards/{account.external_id}/pins",
                              account.access_token, params={"page_size": 50}, timeout=self.timeout)
        for pin in json_of(self.network, response).get("items") or []:
            if matches(pin.get("description"), pin.get("created_at"), text, since):
                return RemotePost(external_id=str(pin["id"]), url=f"https://www.pinterest.com/pin/{pin['id']}/",
                                  text=pin.get("description"), created_at=pin.get("created_at"))
        return None

    async def lookup(self, account: AccountRef, external_id: str) -> RemotePost | None:
        response = await find(self.network, f"{self.base}/pins/{external_id}", account.access_token,
                              timeout=self.timeout)
        if response is None:
            return None
        pin = json_of(self.network, response)
        return RemotePost(external_id=str(pin["id"]), url=f"https://www.pinterest.com/pin/{pin['id']}/",
                          text=pin.get("description"), created_at=pin.get("created_at"))

    async def insights(self, account: AccountRef, external_id: str) -> dict[str, int]:
        today = date.today()
        response = await call(
            self.network, "GET", f"{self.base}/pins/{external_id}/analytics", account.access_token,
            params={"start_date": (today - timedelta(days=89)).isoformat(), "end_date": today.isoformat(),
                    "metric_types": _METRICS},
            timeout=self.timeout,
        )
        body = json_of(self.network, response)
        totals = ((body.get("all") or {}).get("lifetime_metrics") or (body.get("all") or {}).get("summary_metrics")
                  or {})
        return {k.lower(): int(v) for k, v in totals.items() if isinstance(v, (int, float))}
