"""TikTok Content Posting API. Init, upload, then poll the publish status."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind, TextCounting

LIMITS = Limits(
    text_max=2_200,  # video title, in UTF-16 code units
    text_counting=TextCounting.UTF16_UNITS,
    title_max=90,  # photo post title
    description_max=4_000,  # photo post description
    media_required=True,
    images_max=35,
    videos_max=1,
    mixed_media=False,
    video_max_bytes=4 * 1024 * 1024 * 1024,
    quotas=("publish init 6 per minute per token", "status fetch 30 per minute",
            "unaudited apps can only post privately"),
)

OAUTH = OAuthEndpoints(
    authorize_url="https://www.tiktok.com/v2/auth/authorize/",
    token_url="https://open.tiktokapis.com/v2/oauth/token/",
    revoke_url="https://open.tiktokapis.com/v2/oauth/revoke/",
    scopes=("user.info.basic", "user.info.profile", "video.publish", "video.upload", "video.list"),
    pkce=Pkce.NONE,  # PKCE is for TikTok's mobile and desktop apps only
    scope_separator=",",
    client_id_param="client_key",
    access_token_lifetime="expires_in from the token answer (documented as 24 hours, now 2 hours)",
    refresh="refresh_expires_in from the token answer; refresh tokens rotate",
    refresh_rotates=True,
)

SPEC = NetworkSpec(
    network=Network.TIKTOK,
    name="TikTok",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url="https://open.tiktokapis.com",
    post_kinds=(PostKind.VIDEO, PostKind.CAROUSEL),
    notes=("creator_info/query before every post: privacy options and limits come from there",),
)
