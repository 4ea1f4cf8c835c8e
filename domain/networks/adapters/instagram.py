"""Instagram business and creator accounts. Publishing is two steps (container, then
media_publish) and media must sit at a public URL."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind

LIMITS = Limits(
    text_max=2_200,
    hashtags_max=30,
    mentions_max=20,
    media_required=True,
    images_max=10,
    carousel_min=2,
    carousel_max=10,
    videos_max=10,
    mixed_media=True,
    image_formats=("image/jpeg",),
    image_max_bytes=8 * 1024 * 1024,
    video_min_seconds=3,
    video_max_seconds=15 * 60,
    aspect_ratio_min=4 / 5,
    aspect_ratio_max=1.91,
    quotas=("publishing cap per 24 hours: read content_publishing_limit, do not hard-code it",),
)

OAUTH = OAuthEndpoints(
    authorize_url="https://www.instagram.com/oauth/authorize",
    token_url="https://api.instagram.com/oauth/access_token",
    revoke_url=None,
    scopes=("instagram_business_basic", "instagram_business_content_publish",
            "instagram_business_manage_comments", "instagram_business_manage_insights"),
    pkce=Pkce.NONE,
    scope_separator=",",
    access_token_lifetime="1 hour, exchanged for 60 days (ig_exchange_token)",
    refresh="ig_refresh_token once the token is at least 24 hours old",
)

SPEC = NetworkSpec(
    network=Network.INSTAGRAM,
    name="Instagram",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url="https://graph.instagram.com",
    post_kinds=(PostKind.IMAGE, PostKind.CAROUSEL, PostKind.REEL, PostKind.STORY),
    account_kinds=("business_account",),
    first_comment=True,
    needs_public_media_url=True,
)
