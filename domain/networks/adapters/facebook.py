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


# --- the client -----------------------------------------------------------------------

from domain.networks.adapters.base import AccountRef, PublishRequest, PublishResult, RemotePost  # noqa: E402
from domain.networks.adapters.meta import GraphClient, remote  # noqa: E402


class FacebookClient(GraphClient):
    """Publishes as a page, with the page's own token (the account's token)."""

    api_base_url = SPEC.api_base_url
    network = Network.FACEBOOK
    metrics = "post_impressions,post_impressions_unique,post_engaged_users,post_clicks"

    async def publish(self, account: AccountRef, request: PublishRequest) -> PublishResult:
        page = account.external_id
        if request.media_urls:
            body = await self._post(account, f"/{page}/photos", url=request.media_urls[0], caption=request.text)
            post_id = str(body.get("post_id") or body["id"])
        else:
            form = {"message": request.text}
            if request.options.get("link"):
                form["link"] = str(request.options["link"])
            body = await self._post(account, f"/{page}/feed", **form)
            post_id = str(body["id"])
        post = await self.lookup(account, post_id)
        return PublishResult("published", external_id=post_id, url=post.url if post else None)

    async def lookup(self, account: AccountRef, external_id: str) -> RemotePost | None:
        data = await self._lookup(account, external_id, "id,message,created_time,permalink_url")
        return remote(data, "message", "permalink_url", {}) if data else None

    async def comments(self, account: AccountRef, external_id: str) -> list[dict[str, object]]:
        return list((await self._get(account, f"/{external_id}/comments", order="chronological")).get("data", []))

    async def reply(self, account: AccountRef, comment_id: str, text: str) -> PublishResult:
        body = await self._post(account, f"/{comment_id}/comments", message=text)
        return PublishResult("published", external_id=str(body["id"]))
