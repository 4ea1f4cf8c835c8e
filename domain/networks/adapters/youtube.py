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
