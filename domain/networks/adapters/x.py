"""X (API v2). A URL counts 23 and emoji/CJK count 2 of 280 weighted characters."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind, TextCounting

LIMITS = Limits(
    text_max=280,
    text_counting=TextCounting.X_WEIGHTED,
    media_required=False,
    images_max=4,
    videos_max=1,
    mixed_media=False,
    image_formats=("image/jpeg", "image/png", "image/gif", "image/webp"),
    image_max_bytes=5 * 1024 * 1024,
    video_min_seconds=0.5,
    video_max_seconds=140,
    aspect_ratio_min=1 / 3,
    aspect_ratio_max=3.0,
    quotas=("100 posts per 15 minutes per user", "10,000 posts per 24 hours per app",
            "x-rate-limit-* headers, no Retry-After"),
)

OAUTH = OAuthEndpoints(
    authorize_url="https://x.com/i/oauth2/authorize",
    token_url="https://api.x.com/2/oauth2/token",
    revoke_url="https://api.x.com/2/oauth2/revoke",
    scopes=("tweet.read", "tweet.write", "users.read", "media.write", "offline.access"),
    pkce=Pkce.REQUIRED,
    token_auth="client_secret_basic",
    access_token_lifetime="2 hours",
    refresh="refresh token only with offline.access; it rotates on every use",
    refresh_rotates=True,
)

SPEC = NetworkSpec(
    network=Network.X,
    name="X",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url="https://api.x.com",
    post_kinds=(PostKind.TEXT, PostKind.IMAGE, PostKind.VIDEO, PostKind.THREAD),
    thread_parts=True,
    notes=("media upload: /2/media/upload/initialize, /{id}/append, /{id}/finalize",),
)
