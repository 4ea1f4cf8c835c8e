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
