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

from urllib.parse import quote  # noqa: E402

from domain.networks.adapters.base import AccountRef, PublishRequest, PublishResult, Rejected, RemotePost  # noqa: E402
from domain.networks.http import ProviderClient, call, find, json_of  # noqa: E402

HEADERS = {"LinkedIn-Version": API_VERSION, "X-Restli-Protocol-Version": "2.0.0"}


class LinkedInClient(ProviderClient):
    api_base_url = SPEC.api_base_url
    network = Network.LINKEDIN

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        body = {
            "author": account.external_id,  # urn:li:person:... or urn:li:organization:...
            "commentary": request.text,
            "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
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
