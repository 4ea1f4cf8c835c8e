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
