"""Facebook Pages (Graph API). One login reaches several pages; page tokens do not expire."""

from domain.networks.adapters.base import Limits, Network, NetworkSpec, OAuthEndpoints, Pkce, PostKind

GRAPH_VERSION = "v24.0"

LIMITS = Limits(
    text_max=63_206,
    media_required=False,
    images_max=10,
    carousel_min=2,
    carousel_max=10,
    videos_max=1,
    mixed_media=False,
    image_formats=("image/jpeg", "image/png", "image/gif", "image/webp"),
    quotas=("X-App-Usage, X-Business-Use-Case-Usage and X-Page-Usage headers",
            "error codes 4, 17, 32 and 613 mean throttled"),
)

OAUTH = OAuthEndpoints(
    authorize_url=f"https://www.facebook.com/{GRAPH_VERSION}/dialog/oauth",
    token_url=f"https://graph.facebook.com/{GRAPH_VERSION}/oauth/access_token",
    revoke_url=None,
    scopes=("pages_show_list", "pages_read_engagement", "pages_manage_posts", "pages_manage_engagement",
            "read_insights"),
    pkce=Pkce.OPTIONAL,
    scope_separator=",",
    access_token_lifetime="user token about 60 days after fb_exchange_token; page tokens do not expire",
    refresh="no refresh token: exchange for a long-lived token, then reconnect",
)

SPEC = NetworkSpec(
    network=Network.FACEBOOK,
    name="Facebook Pages",
    limits=LIMITS,
    oauth=OAUTH,
    api_base_url=f"https://graph.facebook.com/{GRAPH_VERSION}",
    post_kinds=(PostKind.TEXT, PostKind.IMAGE, PostKind.CAROUSEL, PostKind.VIDEO, PostKind.REEL, PostKind.STORY),
    account_kinds=("page",),
    first_comment=True,
    native_scheduling=True,
)
