"""Pinterest API v5. Every pin needs a board."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind

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

from datetime import date, timedelta  # noqa: E402

from domain.networks.adapters.base import AccountRef, PublishRequest, PublishResult, Rejected, RemotePost  # noqa: E402
from domain.networks.http import ProviderClient, call, find, json_of  # noqa: E402

_METRICS = "IMPRESSION,SAVE,PIN_CLICK,OUTBOUND_CLICK"


class PinterestClient(ProviderClient):
    api_base_url = SPEC.api_base_url
    network = Network.PINTEREST

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        # A pin lives on a board: the account is the board (see identity.targets).
        board_id = str(request.options.get("board_id") or account.external_id)
        if not request.media_urls:
            raise Rejected(self.network, "a pin needs an image or a video")
        body: dict[str, object] = {
            "board_id": board_id,
            "description": request.text,
            "media_source": {"source_type": "image_url", "url": request.media_urls[0]},
        }
        for key in ("title", "link", "alt_text"):
            if request.options.get(key):
                body[key] = request.options[key]
        response = await call(self.network, "POST", f"{self.base}/pins", account.access_token, json=body,
                              timeout=self.timeout)
        pin = json_of(self.network, response)
        return PublishResult("published", external_id=str(pin["id"]), url=f"https://www.pinterest.com/pin/{pin['id']}/")

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
