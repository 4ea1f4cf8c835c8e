"""The network sandbox's OAuth half: every network's authorize, token, refresh, revoke,
profile and account-list endpoints in the provider's wire format, plus faults, the clock
and the call log."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.sandbox.app import create_sandbox_app
from api.sandbox.urls import NETWORKS, REAL_URLS, sandbox_path, sandbox_url

CB = "https://chorus.test/oauth/callback"
VERIFIER = "v" * 43 + "-sandbox-verifier"
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()

SCOPES = {
    "x": "tweet.read tweet.write users.read media.write offline.access",
    "facebook": "pages_show_list,pages_read_engagement,pages_manage_posts",
    "instagram": "instagram_business_basic,instagram_business_content_publish",
    "tiktok": "user.info.basic,video.publish,video.upload",
    "youtube": "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly",
    "linkedin": "openid profile email w_member_social rw_organization_admin",
    "threads": "threads_basic,threads_content_publish",
    "pinterest": "boards:read,pins:read,pins:write,user_accounts:read",
}
TOKEN_KEYS = {
    "x": {"token_type", "expires_in", "access_token", "scope", "refresh_token"},
    "facebook": {"access_token", "token_type", "expires_in"},
    "instagram": {"access_token", "user_id", "permissions"},
    "tiktok": {"access_token", "expires_in", "open_id", "refresh_expires_in", "refresh_token", "scope", "token_type"},
    "youtube": {"access_token", "expires_in", "refresh_token", "scope", "token_type"},
    "linkedin": {"access_token", "expires_in", "refresh_token", "refresh_token_expires_in", "scope"},
    "threads": {"access_token", "user_id"},
    "pinterest": {"access_token", "refresh_token", "response_type", "token_type", "expires_in",
                  "refresh_token_expires_in", "refresh_token_expires_at", "scope"},
}
PROFILE = {
    "x": ("/x/2/users/me", {"user.fields": "profile_image_url"}),
    "facebook": ("/facebook/v24.0/me", {"fields": "id,name"}),
    "instagram": ("/instagram/me", {"fields": "user_id,username,name,profile_picture_url,account_type"}),
    "tiktok": ("/tiktok/v2/user/info/", {"fields": "open_id,union_id,avatar_url,display_name"}),
    "youtube": ("/youtube/youtube/v3/channels", {"part": "snippet", "mine": "true"}),
    "linkedin": ("/linkedin/v2/userinfo", {}),
    "threads": ("/threads/v1.0/me", {"fields": "id,username,name,threads_profile_picture_url"}),
    "pinterest": ("/pinterest/v5/user_account", {}),
}


def creds(network: str) -> tuple[str, str]:
    return f"chorus-sandbox-{network}", f"sandbox-secret-{network}"


def path(network: str, which: str) -> str:
    return sandbox_path(network, REAL_URLS[network][which])  # type: ignore[arg-type]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def authorize(c: Any, network: str, *, identity: str | None = None, scope: str | None = None,
                    redirect_uri: str = CB, state: str = "st-123", **extra: str) -> httpx.Response:
    cid = creds(network)[0]
    params = {"client_key" if network == "tiktok" else "client_id": cid, "redirect_uri": redirect_uri,
              "response_type": "code", "scope": SCOPES[network] if scope is None else scope, "state": state}
    if network == "x":
        params.update(code_challenge=CHALLENGE, code_challenge_method="S256")
    if network == "youtube":
        params.update(access_type="offline", prompt="consent")
    if identity:
        params["sandbox_identity"] = identity
    params.update(extra)
    params = {k: v for k, v in params.items() if v is not None}
    return await c.get(path(network, "authorize"), params=params, follow_redirects=False)


def code_of(resp: httpx.Response) -> str:
    assert resp.status_code == 302, resp.text
    return parse_qs(urlsplit(resp.headers["location"]).query)["code"][0]


async def exchange(c: Any, network: str, code: str, *, redirect_uri: str = CB, verifier: str | None = VERIFIER,
                   client: tuple[str, str] | None = None) -> httpx.Response:
    cid, secret = client or creds(network)
    url = path(network, "token")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if network in ("x", "pinterest"):
        if network == "x" and verifier is not None:
            form["code_verifier"] = verifier
        return await c.post(url, data=form, auth=(cid, secret))
    if network == "tiktok":
        return await c.post(url, data={**form, "client_key": cid, "client_secret": secret})
    if network == "facebook":  # Graph: GET with query parameters, no grant_type
        return await c.get(url, params={"client_id": cid, "client_secret": secret, "redirect_uri": redirect_uri,
                                        "code": code})
    if network == "threads":  # as in Meta's Postman collection: POST with query parameters
        return await c.post(url, params={**form, "client_id": cid, "client_secret": secret})
    return await c.post(url, data={**form, "client_id": cid, "client_secret": secret})


async def connect(c: Any, network: str, **kw: Any) -> dict[str, Any]:
    r = await exchange(c, network, code_of(await authorize(c, network, **kw)))
    assert r.status_code == 200, r.text
    return r.json()


async def refresh(c: Any, network: str, refresh_token: str) -> httpx.Response:
    cid, secret = creds(network)
    url = path(network, "token")
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if network in ("x", "pinterest"):
        return await c.post(url, data=form, auth=(cid, secret))
    if network == "tiktok":
        return await c.post(url, data={**form, "client_key": cid, "client_secret": secret})
    return await c.post(url, data={**form, "client_id": cid, "client_secret": secret})


async def profile(c: Any, network: str, token: str) -> httpx.Response:
    p, params = PROFILE[network]
    return await c.get(p, params=params, headers=bearer(token))


def assert_auth_error(network: str, r: httpx.Response) -> None:
    body = r.json()
    if network == "x":
        assert r.status_code == 401 and body["title"] == "Unauthorized" and body["status"] == 401
    elif network in ("facebook", "instagram", "threads"):
        assert r.status_code == 400 and body["error"]["type"] == "OAuthException"
        assert body["error"]["code"] in (190, 2500)  # 2500: no token at all
    elif network == "tiktok":
        assert r.status_code == 401 and body["error"]["code"] == "access_token_invalid" and body["data"] == {}
    elif network == "youtube":
        assert r.status_code == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    elif network == "linkedin":
        assert r.status_code == 401 and body["serviceErrorCode"] in (65600, 65601, 65602)
    elif network == "pinterest":
        assert r.status_code == 401 and body == {"code": 2, "message": "Authentication failed."}


def assert_grant_error(network: str, r: httpx.Response) -> None:
    """The provider's own answer to a bad/used/expired code or refresh token."""
    body = r.json()
    if network == "x":  # X says invalid_request, not invalid_grant
        assert r.status_code == 400 and body["error"] == "invalid_request"
        assert body["error_description"].startswith("Value passed for the")
    elif network in ("facebook", "threads"):
        assert r.status_code == 400 and body["error"]["type"] == "OAuthException"
    elif network == "instagram":
        assert r.status_code == 400 and body["error_type"] == "OAuthException" and body["code"] == 400
    elif network == "tiktok":
        assert r.status_code == 400 and body["error"] == "invalid_grant" and body["log_id"]
    elif network == "youtube":
        assert r.status_code == 400 and body["error"] in ("invalid_grant", "redirect_uri_mismatch")
    elif network == "linkedin":
        assert r.status_code == 400 and body["error"] in ("invalid_request", "invalid_grant")
    elif network == "pinterest":
        assert r.status_code == 400 and set(body) == {"code", "message"}


# --- the URL rule ---------------------------------------------------------------------------

def test_url_rule_examples() -> None:
    base = "http://127.0.0.1:9000/"
    assert sandbox_url("x", "https://x.com/i/oauth2/authorize", base) == "http://127.0.0.1:9000/x/i/oauth2/authorize"
    assert sandbox_url("x", "https://api.x.com/2/oauth2/token", base) == "http://127.0.0.1:9000/x/2/oauth2/token"
    assert sandbox_url("x", "https://api.x.com/2/users/me", base) == "http://127.0.0.1:9000/x/2/users/me"
    assert sandbox_url("facebook", "https://graph.facebook.com/v24.0/oauth/access_token", base) == \
        "http://127.0.0.1:9000/facebook/v24.0/oauth/access_token"
    assert sandbox_url("tiktok", "https://open.tiktokapis.com/v2/oauth/token/", base) == \
        "http://127.0.0.1:9000/tiktok/v2/oauth/token/"
    assert sandbox_url("youtube", "https://www.googleapis.com/youtube/v3/channels?part=snippet&mine=true", base) == \
        "http://127.0.0.1:9000/youtube/youtube/v3/channels?part=snippet&mine=true"
    assert sandbox_url("x", "https://api.x.com", base) + "/2/users/me" == "http://127.0.0.1:9000/x/2/users/me"
    from domain.networks.adapters.base import Network

    assert sandbox_url(Network.PINTEREST, "https://www.pinterest.com/oauth/", "http://h") == "http://h/pinterest/oauth/"
    with pytest.raises(ValueError):
        sandbox_url("myspace", "https://myspace.com/", base)


def test_real_urls_match_the_adapters() -> None:
    import importlib

    for n in NETWORKS:
        mod = importlib.import_module(f"domain.networks.adapters.{n}")
        assert REAL_URLS[n]["authorize"] == mod.OAUTH.authorize_url, n
        assert REAL_URLS[n]["token"] == mod.OAUTH.token_url, n
        assert REAL_URLS[n]["revoke"] == mod.OAUTH.revoke_url, n
        assert REAL_URLS[n]["api_base"] == mod.SPEC.api_base_url, n
        assert mod.OAUTH.scope_separator == (" " if n in ("x", "youtube", "linkedin") else ","), n


# --- every network: authorize, exchange, single use, redirect_uri, profile -------------------

@pytest.mark.parametrize("network", NETWORKS)
async def test_authorize_exchange_and_profile(sandbox: Any, network: str) -> None:
    r = await authorize(sandbox, network, state="state-xyz")
    assert r.status_code == 302
    loc = urlsplit(r.headers["location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == CB
    q = parse_qs(loc.query)
    assert q["state"] == ["state-xyz"] and q["code"][0]
    if network in ("facebook", "instagram", "threads"):
        assert loc.fragment  # Meta appends #_=_ / #_ ; clients must ignore it
    code = q["code"][0]

    r = await exchange(sandbox, network, code)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == TOKEN_KEYS[network], body
    if network == "x":
        assert body["token_type"] == "bearer" and body["expires_in"] == 7200
        assert body["scope"] == SCOPES["x"]
    if network in ("tiktok", "youtube"):
        assert body["token_type"] == "Bearer"
    if network == "pinterest":
        assert body["response_type"] == "authorization_code" and body["scope"] == SCOPES["pinterest"]
    if network == "instagram":
        assert isinstance(body["user_id"], int) and body["permissions"] == SCOPES["instagram"]

    again = await exchange(sandbox, network, code)  # single use
    assert_grant_error(network, again)

    pr = await profile(sandbox, network, body["access_token"])
    assert pr.status_code == 200, pr.text
    p = pr.json()
    if network == "x":
        assert set(p["data"]) == {"id", "name", "username", "profile_image_url"} and p["data"]["username"] == "alice"
    elif network == "facebook":
        assert set(p) == {"id", "name"}
    elif network == "instagram":
        assert {"user_id", "username", "name", "profile_picture_url", "account_type", "id"} == set(p)
        assert p["user_id"] == body["user_id"] and p["account_type"] == "BUSINESS"
    elif network == "tiktok":
        assert p["error"]["code"] == "ok" and set(p["data"]["user"]) == {"open_id", "union_id", "avatar_url", "display_name"}
        assert p["data"]["user"]["open_id"] == body["open_id"]
    elif network == "youtube":
        assert p["kind"] == "youtube#channelListResponse"
        item = p["items"][0]
        assert item["id"].startswith("UC") and {"title", "customUrl", "thumbnails"} <= set(item["snippet"])
    elif network == "linkedin":
        assert {"sub", "name", "picture", "email"} <= set(p)
    elif network == "threads":
        assert set(p) == {"id", "username", "name", "threads_profile_picture_url"} and p["id"] == body["user_id"]
    elif network == "pinterest":
        assert {"username", "account_type", "profile_image", "id"} <= set(p)

    assert_auth_error(network, await profile(sandbox, network, "not-a-token"))
    assert_auth_error(network, await sandbox.get(PROFILE[network][0], params=PROFILE[network][1]))


@pytest.mark.parametrize("network", NETWORKS)
async def test_wrong_redirect_uri_is_refused_and_code_survives(sandbox: Any, network: str) -> None:
    code = code_of(await authorize(sandbox, network))
    assert_grant_error(network, await exchange(sandbox, network, code, redirect_uri=CB + "/other"))
    assert (await exchange(sandbox, network, code)).status_code == 200


@pytest.mark.parametrize("network", NETWORKS)
async def test_deny_redirects_with_an_error_and_the_state(sandbox: Any, network: str) -> None:
    r = await authorize(sandbox, network, sandbox_deny="1", state="s-deny")
    assert r.status_code == 302
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["state"] == ["s-deny"] and "code" not in q
    assert q["error"] == (["user_cancelled_authorize"] if network == "linkedin" else ["access_denied"])


@pytest.mark.parametrize("network", NETWORKS)
async def test_wrong_client_credentials(sandbox: Any, network: str) -> None:
    code = code_of(await authorize(sandbox, network))
    r = await exchange(sandbox, network, code, client=(creds(network)[0], "wrong-secret"))
    assert r.status_code in (400, 401), r.text
    assert r.json()
    bad = await sandbox.get(path(network, "authorize"), params={
        "client_key" if network == "tiktok" else "client_id": "nobody", "redirect_uri": CB, "response_type": "code",
        "scope": SCOPES[network], "state": "s"}, follow_redirects=False)
    assert bad.status_code == 400  # shown on the provider's page: never redirects to an unchecked URI


async def test_x_client_auth_is_http_basic(sandbox: Any) -> None:
    code = code_of(await authorize(sandbox, "x"))
    cid, secret = creds("x")
    r = await sandbox.post(path("x", "token"), data={"grant_type": "authorization_code", "code": code,
                                                     "redirect_uri": CB, "code_verifier": VERIFIER,
                                                     "client_id": cid, "client_secret": secret})
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized_client", "error_description": "Missing valid authorization header"}


@pytest.mark.parametrize(("network", "bad_scope"), [("x", "tweet.read,users.read"), ("facebook", "pages_show_list pages_manage_posts"),
                                                    ("linkedin", "openid,profile"), ("tiktok", "nope.scope")])
async def test_scope_separator_and_unknown_scopes(sandbox: Any, network: str, bad_scope: str) -> None:
    r = await authorize(sandbox, network, scope=bad_scope)
    assert r.status_code == 302
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["error"] == ["invalid_scope"] and q["state"] == ["st-123"]


async def test_registered_apps_and_strict_redirect_uris(sandbox: Any) -> None:
    r = await sandbox.post("/_sandbox/apps", json={"network": "linkedin", "client_id": "li-2", "client_secret": "s2",
                                                   "redirect_uris": [CB], "refresh_tokens": False})
    assert r.status_code == 201 and "client_secret" not in r.json()
    ok = await sandbox.get(path("linkedin", "authorize"), params={"client_id": "li-2", "redirect_uri": CB,
                           "response_type": "code", "scope": "openid profile", "state": "s"}, follow_redirects=False)
    code = code_of(ok)
    bad = await sandbox.get(path("linkedin", "authorize"), params={"client_id": "li-2", "redirect_uri": CB + "x",
                            "response_type": "code", "scope": "openid profile", "state": "s"}, follow_redirects=False)
    assert bad.status_code == 400
    r = await exchange(sandbox, "linkedin", code, client=("li-2", "s2"))
    assert r.status_code == 200 and "refresh_token" not in r.json()  # refresh tokens are for partner apps


# --- PKCE ------------------------------------------------------------------------------------------

async def test_x_requires_pkce_s256(sandbox: Any) -> None:
    for extra in ({"code_challenge": None, "code_challenge_method": None},
                  {"code_challenge": VERIFIER, "code_challenge_method": "plain"}):
        r = await authorize(sandbox, "x", **extra)  # type: ignore[arg-type]
        assert r.status_code == 400 and "location" not in r.headers
    code = code_of(await authorize(sandbox, "x"))
    assert_grant_error("x", await exchange(sandbox, "x", code, verifier="wrong-verifier" * 4))
    assert_grant_error("x", await exchange(sandbox, "x", code, verifier=None))
    assert (await exchange(sandbox, "x", code)).status_code == 200


async def test_optional_pkce_is_verified_when_used(sandbox: Any) -> None:
    code = code_of(await authorize(sandbox, "youtube", code_challenge=CHALLENGE, code_challenge_method="S256"))
    cid, secret = creds("youtube")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CB, "client_id": cid, "client_secret": secret}
    r = await sandbox.post("/youtube/token", data={**form, "code_verifier": "nope" * 11})
    assert r.json() == {"error": "invalid_grant", "error_description": "Invalid code verifier."}
    assert (await sandbox.post("/youtube/token", data={**form, "code_verifier": VERIFIER})).status_code == 200
    # without a challenge, nothing to verify
    assert (await connect(sandbox, "facebook"))["access_token"]


# --- what a login can act for ------------------------------------------------------------------

async def test_facebook_pages_and_page_tokens(sandbox: Any) -> None:
    short = (await connect(sandbox, "facebook"))["access_token"]
    r = await sandbox.get("/facebook/v24.0/me/accounts", headers=bearer(short))
    body = r.json()
    assert r.status_code == 200 and len(body["data"]) == 3 and set(body["paging"]["cursors"]) == {"before", "after"}
    page = body["data"][0]
    assert set(page) == {"access_token", "category", "category_list", "name", "id", "tasks"}
    assert "CREATE_CONTENT" in page["tasks"] and body["data"][2]["tasks"] == ["ANALYZE"]
    me = await sandbox.get("/facebook/v24.0/me", params={"fields": "id,name", "access_token": page["access_token"]})
    assert me.json() == {"id": page["id"], "name": page["name"]}
    node = await sandbox.get(f"/facebook/v24.0/{page['id']}", headers={"Authorization": f"OAuth {page['access_token']}"})
    assert node.status_code == 200 and node.json()["id"] == page["id"]
    other = await sandbox.get(f"/facebook/v24.0/{body['data'][1]['id']}", headers=bearer(page["access_token"]))
    assert other.status_code == 400 and other.json()["error"]["code"] == 100

    # long-lived user token: fb_exchange_token on the same endpoint; its page tokens never expire
    cid, secret = creds("facebook")
    r = await sandbox.get("/facebook/v24.0/oauth/access_token", params={
        "grant_type": "fb_exchange_token", "client_id": cid, "client_secret": secret, "fb_exchange_token": short})
    long = r.json()
    assert set(long) == {"access_token", "token_type", "expires_in"} and long["expires_in"] > 50 * 86400
    pages = (await sandbox.get("/facebook/v24.0/me/accounts", headers=bearer(long["access_token"]))).json()["data"]
    forever = pages[0]["access_token"]
    await sandbox.post("/_sandbox/clock", json={"advance_seconds": 30 * 86400})
    assert_auth_error("facebook", await sandbox.get("/facebook/v24.0/me", headers=bearer(short)))
    assert_auth_error("facebook", await sandbox.get("/facebook/v24.0/me", headers=bearer(page["access_token"])))
    assert (await sandbox.get("/facebook/v24.0/me", headers=bearer(forever))).status_code == 200
    assert (await sandbox.get("/facebook/v24.0/me", headers=bearer(long["access_token"]))).status_code == 200
    # the user removes the app: every token of that login stops working
    r = await sandbox.delete("/facebook/v24.0/me/permissions", headers=bearer(long["access_token"]))
    assert r.json() == {"success": True}
    assert_auth_error("facebook", await sandbox.get("/facebook/v24.0/me", headers=bearer(forever)))


async def test_identities_decide_what_a_login_can_act_for(sandbox: Any) -> None:
    bob = (await connect(sandbox, "facebook", identity="bob"))["access_token"]
    assert len((await sandbox.get("/facebook/v24.0/me/accounts", headers=bearer(bob))).json()["data"]) == 2
    empty = (await connect(sandbox, "facebook", identity="empty1"))["access_token"]
    assert (await sandbox.get("/facebook/v24.0/me/accounts", headers=bearer(empty))).json() == {"data": []}
    yt = (await connect(sandbox, "youtube", identity="empty-channel"))["access_token"]
    r = (await profile(sandbox, "youtube", yt)).json()
    assert "items" not in r and r["pageInfo"]["totalResults"] == 0
    s = (await sandbox.get("/_sandbox/identities/x/bob")).json()
    bob_x = (await connect(sandbox, "x", identity="bob"))["access_token"]
    assert (await profile(sandbox, "x", bob_x)).json()["data"]["id"] == s["user"]["id"]


async def test_pinterest_boards(sandbox: Any) -> None:
    tok = (await connect(sandbox, "pinterest"))["access_token"]
    r = await sandbox.get("/pinterest/v5/boards", headers=bearer(tok))
    body = r.json()
    assert r.status_code == 200 and set(body) == {"items", "bookmark"} and body["bookmark"] is None
    assert [b["privacy"] for b in body["items"]] == ["PUBLIC", "PUBLIC"]  # the SECRET board needs boards:read_secret
    assert {"id", "name", "privacy", "description", "owner"} <= set(body["items"][0])
    secret = (await connect(sandbox, "pinterest", scope=SCOPES["pinterest"] + ",boards:read_secret"))["access_token"]
    first = (await sandbox.get("/pinterest/v5/boards", params={"page_size": 2}, headers=bearer(secret))).json()
    assert len(first["items"]) == 2 and first["bookmark"]
    rest = (await sandbox.get("/pinterest/v5/boards", params={"page_size": 2, "bookmark": first["bookmark"]},
                              headers=bearer(secret))).json()
    assert [b["privacy"] for b in rest["items"]] == ["SECRET"] and rest["bookmark"] is None
    no_scope = (await connect(sandbox, "pinterest", scope="pins:read"))["access_token"]
    r = await sandbox.get("/pinterest/v5/boards", headers=bearer(no_scope))
    assert r.status_code == 403 and r.json()["code"] == 29


async def test_linkedin_organizations(sandbox: Any) -> None:
    tok = (await connect(sandbox, "linkedin"))["access_token"]
    h = {**bearer(tok), "LinkedIn-Version": "202511", "X-Restli-Protocol-Version": "2.0.0"}
    r = await sandbox.get("/linkedin/rest/organizationAcls", params={"q": "roleAssignee"}, headers=h)
    els = r.json()["elements"]
    assert r.status_code == 200 and len(els) == 3
    assert els[0]["organization"].startswith("urn:li:organization:") and els[0]["role"] == "ADMINISTRATOR"
    assert els[0]["state"] == "APPROVED"
    admins = await sandbox.get("/linkedin/rest/organizationAcls", params={"q": "roleAssignee", "role": "ADMINISTRATOR",
                                                                           "state": "APPROVED"}, headers=h)
    assert len(admins.json()["elements"]) == 1
    org_id = els[0]["organization"].rsplit(":", 1)[1]
    org = (await sandbox.get(f"/linkedin/rest/organizations/{org_id}", headers=h)).json()
    assert org["id"] == int(org_id) and org["localizedName"]
    r = await sandbox.get("/linkedin/rest/organizationAcls", params={"q": "roleAssignee"}, headers=bearer(tok))
    assert r.status_code == 400 and r.json()["code"] == "VERSION_MISSING"
    member_only = (await connect(sandbox, "linkedin", scope="openid profile w_member_social"))["access_token"]
    r = await sandbox.get("/linkedin/rest/organizationAcls", params={"q": "roleAssignee"},
                          headers={**bearer(member_only), "LinkedIn-Version": "202511"})
    assert r.status_code == 403 and r.json()["code"] == "ACCESS_DENIED"


async def test_tiktok_profile_fields_need_their_scopes(sandbox: Any) -> None:
    tok = (await connect(sandbox, "tiktok"))["access_token"]
    r = await sandbox.get("/tiktok/v2/user/info/", params={"fields": "open_id,username"}, headers=bearer(tok))
    assert r.status_code == 401 and r.json()["error"]["code"] == "scope_not_authorized"
    tok2 = (await connect(sandbox, "tiktok", scope="user.info.basic,user.info.profile,video.publish"))["access_token"]
    r = await sandbox.get("/tiktok/v2/user/info/", params={"fields": "open_id,union_id,avatar_url,display_name,username"},
                          headers=bearer(tok2))
    assert r.status_code == 200 and r.json()["data"]["user"]["username"] == "alice"


# --- refresh, rotation, expiry, revoke -------------------------------------------------------------

@pytest.mark.parametrize("network", ["x", "tiktok"])
async def test_rotation_and_reuse_revokes_the_chain(sandbox: Any, network: str) -> None:
    first = await connect(sandbox, network)
    r1 = await refresh(sandbox, network, first["refresh_token"])
    assert r1.status_code == 200 and set(r1.json()) == TOKEN_KEYS[network]
    second = r1.json()
    assert second["refresh_token"] != first["refresh_token"]
    r2 = await refresh(sandbox, network, second["refresh_token"])
    third = r2.json()
    assert (await profile(sandbox, network, third["access_token"])).status_code == 200
    # an old refresh token comes back: the whole chain dies
    assert_grant_error(network, await refresh(sandbox, network, first["refresh_token"]))
    assert_grant_error(network, await refresh(sandbox, network, third["refresh_token"]))
    assert_auth_error(network, await profile(sandbox, network, third["access_token"]))
    grants = (await sandbox.get("/_sandbox/grants", params={"network": network})).json()["grants"]
    assert grants[0]["revoked"] and grants[0]["revoked_reason"] == "refresh token reused"


async def test_x_refresh_token_only_with_offline_access(sandbox: Any) -> None:
    body = await connect(sandbox, "x", scope="tweet.read users.read")
    assert "refresh_token" not in body and body["scope"] == "tweet.read users.read"


async def test_google_linkedin_pinterest_refresh(sandbox: Any) -> None:
    online = await connect(sandbox, "youtube", access_type=None)
    assert "refresh_token" not in online
    yt = await connect(sandbox, "youtube")
    r = await refresh(sandbox, "youtube", yt["refresh_token"])
    assert set(r.json()) == {"access_token", "expires_in", "scope", "token_type"}
    assert (await refresh(sandbox, "youtube", yt["refresh_token"])).status_code == 200  # Google does not rotate

    li = await connect(sandbox, "linkedin")
    await sandbox.post("/_sandbox/clock", json={"advance_seconds": 1000})
    r = (await refresh(sandbox, "linkedin", li["refresh_token"])).json()
    assert r["refresh_token"] == li["refresh_token"]
    assert r["refresh_token_expires_in"] <= li["refresh_token_expires_in"] - 1000  # 365 days from consent, not sliding

    pin = await connect(sandbox, "pinterest")
    await sandbox.post("/_sandbox/clock", json={"advance_seconds": 50 * 86400})
    r = (await refresh(sandbox, "pinterest", pin["refresh_token"])).json()
    assert r["response_type"] == "refresh_token" and r["refresh_token"] != pin["refresh_token"]
    assert r["refresh_token_expires_in"] == 5184000  # continuous refresh: a fresh 60 days
    await sandbox.post("/_sandbox/clock", json={"advance_seconds": 20 * 86400})
    assert_grant_error("pinterest", await refresh(sandbox, "pinterest", pin["refresh_token"]))
    assert (await refresh(sandbox, "pinterest", r["refresh_token"])).status_code == 200


@pytest.mark.parametrize("network", NETWORKS)
async def test_access_tokens_expire_on_the_sandbox_clock(sandbox: Any, network: str) -> None:
    body = await connect(sandbox, network)
    life = body.get("expires_in") or {"instagram": 3600, "threads": 3600}[network]
    await sandbox.post("/_sandbox/clock", json={"advance_seconds": life - 5})
    assert (await profile(sandbox, network, body["access_token"])).status_code == 200
    await sandbox.post("/_sandbox/clock", json={"advance_seconds": 10})
    assert_auth_error(network, await profile(sandbox, network, body["access_token"]))


@pytest.mark.parametrize("network", ["instagram", "threads"])
async def test_meta_long_lived_exchange_and_refresh(sandbox: Any, network: str) -> None:
    short = (await connect(sandbox, network))["access_token"]
    prefix = "ig" if network == "instagram" else "th"
    secret = creds(network)[1]
    r = await sandbox.get(f"/{network}/access_token", params={"grant_type": f"{prefix}_exchange_token",
                                                               "client_secret": secret, "access_token": short})
    long = r.json()
    assert r.status_code == 200 and set(long) == {"access_token", "token_type", "expires_in"}
    assert long["expires_in"] == 5184000
    bad = await sandbox.get(f"/{network}/access_token", params={"grant_type": f"{prefix}_exchange_token",
                                                                 "client_secret": "nope", "access_token": short})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "OAuthException"
    too_young = await sandbox.get(f"/{network}/refresh_access_token", params={"grant_type": f"{prefix}_refresh_token",
                                                                              "access_token": long["access_token"]})
    assert too_young.status_code == 400
    await sandbox.post("/_sandbox/clock", json={"advance_seconds": 2 * 86400})
    assert_auth_error(network, await profile(sandbox, network, short))
    r = await sandbox.get(f"/{network}/refresh_access_token", params={"grant_type": f"{prefix}_refresh_token",
                                                                      "access_token": long["access_token"]})
    fresh = r.json()
    assert r.status_code == 200 and fresh["expires_in"] == 5184000
    assert ("permissions" in fresh) == (network == "instagram")
    await sandbox.post("/_sandbox/clock", json={"advance_seconds": 59 * 86400})
    assert_auth_error(network, await profile(sandbox, network, long["access_token"]))
    assert (await profile(sandbox, network, fresh["access_token"])).status_code == 200


@pytest.mark.parametrize("network", ["x", "tiktok", "youtube", "linkedin"])
async def test_revoke(sandbox: Any, network: str) -> None:
    body = await connect(sandbox, network)
    cid, secret = creds(network)
    url = path(network, "revoke")
    token = body["access_token"]
    if network == "x":
        r = await sandbox.post(url, data={"token": token, "token_type_hint": "access_token"}, auth=(cid, secret))
        assert r.json() == {"revoked": True}
    elif network == "tiktok":
        r = await sandbox.post(url, data={"client_key": cid, "client_secret": secret, "token": token})
        assert r.status_code == 200 and "log_id" in r.json()
    elif network == "youtube":
        r = await sandbox.post(url, params={"token": body["refresh_token"]})
        assert r.status_code == 200
        again = await sandbox.post(url, params={"token": body["refresh_token"]})
        assert again.status_code == 400 and again.json()["error"] == "invalid_token"
    else:
        r = await sandbox.post(url, data={"client_id": cid, "client_secret": secret, "token": token})
        assert r.status_code == 200
    assert_auth_error(network, await profile(sandbox, network, token))
    if "refresh_token" in body:
        assert_grant_error(network, await refresh(sandbox, network, body["refresh_token"]))


# --- faults and the call log ------------------------------------------------------------------

async def test_fault_429_with_x_rate_limit_headers(sandbox: Any) -> None:
    tok = (await connect(sandbox, "x"))["access_token"]
    f = await sandbox.post("/_sandbox/faults", json={"network": "x", "match": "profile", "kind": "status", "status": 429,
                                                     "times": 2, "retry_after": 60, "limit": 75})
    assert f.status_code == 201
    for _ in range(2):
        r = await profile(sandbox, "x", tok)
        assert r.status_code == 429 and r.json()["title"] == "Too Many Requests"
        assert r.headers["x-rate-limit-limit"] == "75" and r.headers["x-rate-limit-remaining"] == "0"
        assert int(r.headers["x-rate-limit-reset"]) > 0 and "retry-after" not in r.headers
    assert (await profile(sandbox, "x", tok)).status_code == 200  # times ran out
    calls = (await sandbox.get("/_sandbox/calls", params={"network": "x", "kind": "profile"})).json()
    assert calls["count"] == 3 and [c["status"] for c in calls["calls"]] == [429, 429, 200]
    assert calls["calls"][0]["fault"] == f.json()["id"]


@pytest.mark.parametrize("network", NETWORKS)
async def test_fault_5xx_on_the_token_endpoint(sandbox: Any, network: str) -> None:
    code = code_of(await authorize(sandbox, network))
    await sandbox.post("/_sandbox/faults", json={"network": network, "match": "token", "kind": "status", "status": 503})
    r = await exchange(sandbox, network, code)
    assert r.status_code == 503 and r.json()
    assert (await exchange(sandbox, network, code)).status_code == 200  # the failed call did not spend the code


async def test_fault_invalid_grant_and_expired_token(sandbox: Any) -> None:
    body = await connect(sandbox, "tiktok")
    await sandbox.post("/_sandbox/faults", json={"network": "tiktok", "match": "refresh", "kind": "invalid_grant"})
    assert_grant_error("tiktok", await refresh(sandbox, "tiktok", body["refresh_token"]))
    assert (await refresh(sandbox, "tiktok", body["refresh_token"])).status_code == 200  # not spent by the fault

    li = await connect(sandbox, "linkedin")
    await sandbox.post("/_sandbox/faults", json={"network": "linkedin", "match": "/v2/userinfo", "kind": "expired_token"})
    r = await profile(sandbox, "linkedin", li["access_token"])
    assert r.status_code == 401 and r.json()["serviceErrorCode"] == 65602
    # the fault can also carry the provider's exact body
    await sandbox.post("/_sandbox/faults", json={"network": "facebook", "match": "accounts", "kind": "status", "status": 400,
                                                 "body": {"error": {"message": "(#17) User request limit reached",
                                                                    "type": "OAuthException", "code": 17}}})
    fb = (await connect(sandbox, "facebook"))["access_token"]
    r = await sandbox.get("/facebook/v24.0/me/accounts", headers=bearer(fb))
    assert r.status_code == 400 and r.json()["error"]["code"] == 17


async def test_faults_can_target_one_identity_and_be_cleared(sandbox: Any) -> None:
    alice = (await connect(sandbox, "pinterest"))["access_token"]
    bob = (await connect(sandbox, "pinterest", identity="bob"))["access_token"]
    await sandbox.post("/_sandbox/faults", json={"network": "pinterest", "match": "*", "kind": "status", "status": 500,
                                                 "identity": "bob", "times": None})
    assert (await profile(sandbox, "pinterest", alice)).status_code == 200
    for _ in range(3):
        r = await profile(sandbox, "pinterest", bob)
        assert r.status_code == 500 and set(r.json()) == {"code", "message"}
    assert len((await sandbox.get("/_sandbox/faults")).json()["faults"]) == 1
    assert (await sandbox.delete("/_sandbox/faults")).json() == {"cleared": 1}
    assert (await profile(sandbox, "pinterest", bob)).status_code == 200


async def test_timeout_fault_is_bounded_and_applies_the_call(sandbox: Any) -> None:
    body = await connect(sandbox, "x")
    await sandbox.post("/_sandbox/faults", json={"network": "x", "match": "refresh", "kind": "timeout", "seconds": 0.3})
    loop = asyncio.get_running_loop()
    start = loop.time()
    r = await refresh(sandbox, "x", body["refresh_token"])  # arrives late, but X did rotate
    assert 0.3 <= loop.time() - start < 5 and r.status_code == 200
    bad = await sandbox.post("/_sandbox/faults", json={"network": "x", "kind": "timeout", "seconds": 3600})
    assert bad.status_code == 400  # every sleep is bounded
    await sandbox.post("/_sandbox/faults", json={"network": "x", "match": "profile", "kind": "timeout", "seconds": 0.1,
                                                 "effect": "not_applied"})
    r = await profile(sandbox, "x", r.json()["access_token"])
    assert r.status_code == 504


async def test_call_log_counts_concurrent_calls(sandbox: Any) -> None:
    body = await connect(sandbox, "x")
    await sandbox.post("/_sandbox/faults", json={"network": "x", "match": "profile", "kind": "delay", "seconds": 0.05,
                                                 "times": None})
    await asyncio.gather(*(profile(sandbox, "x", body["access_token"]) for _ in range(10)))
    await refresh(sandbox, "x", body["refresh_token"])
    calls = (await sandbox.get("/_sandbox/calls", params={"network": "x"})).json()
    assert calls["by_kind"] == {"authorize": 1, "code": 1, "profile": 10, "refresh": 1}
    refreshes = (await sandbox.get("/_sandbox/calls", params={"network": "x", "kind": "refresh"})).json()
    assert refreshes["count"] == 1 and refreshes["calls"][0]["identity"] == "alice"
    assert (await sandbox.get("/_sandbox/calls", params={"kind": "token"})).json()["count"] == 2
    assert all("token" not in str(c.get("path")) or c["kind"] != "profile" for c in calls["calls"])
    await sandbox.delete("/_sandbox/calls")
    assert (await sandbox.get("/_sandbox/calls")).json()["count"] == 0


async def test_reset_and_config(sandbox: Any) -> None:
    body = await connect(sandbox, "youtube")
    r = await sandbox.post("/_sandbox/config", json={"network": "youtube", "ttls": {"access": 60}})
    assert r.json()["ttls"]["access"] == 60
    short = await connect(sandbox, "youtube")
    assert short["expires_in"] == 60
    await sandbox.post("/_sandbox/reset")
    assert (await sandbox.get("/_sandbox/calls")).json()["count"] == 0
    assert_auth_error("youtube", await profile(sandbox, "youtube", body["access_token"]))
    assert (await connect(sandbox, "youtube"))["expires_in"] == 3599
    urls = (await sandbox.get("/_sandbox/urls", params={"base": "http://sbx"})).json()
    assert urls["x"]["token"] == "http://sbx/x/2/oauth2/token" and urls["tiktok"]["token"] == "http://sbx/tiktok/v2/oauth/token/"


async def test_unknown_paths_answer_like_the_provider(sandbox: Any) -> None:
    assert (await sandbox.get("/x/2/nothing")).status_code == 404
    assert (await sandbox.get("/myspace/oauth")).status_code == 404
    assert (await sandbox.get("/x/2/oauth2/token")).status_code == 405


# --- over real HTTP, under uvicorn ------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_over_real_http_with_uvicorn() -> None:
    import uvicorn

    app = create_sandbox_app()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as c:
            authz = sandbox_url("x", REAL_URLS["x"]["authorize"], base)  # type: ignore[arg-type]
            r = await c.get(authz, params={"client_id": "chorus-sandbox-x", "redirect_uri": CB, "response_type": "code",
                                           "scope": SCOPES["x"], "state": "http-state", "code_challenge": CHALLENGE,
                                           "code_challenge_method": "S256"})
            assert r.status_code == 302 and parse_qs(urlsplit(r.headers["location"]).query)["state"] == ["http-state"]
            tokens = (await exchange(c, "x", code_of(r))).json()
            me = await c.get(sandbox_url("x", "https://api.x.com/2/users/me", base), headers=bearer(tokens["access_token"]))
            assert me.status_code == 200 and me.json()["data"]["username"] == "alice"

            # a client timeout shorter than the provider's answer: the refresh happened all the same
            await c.post("/_sandbox/faults", json={"network": "x", "match": "refresh", "kind": "timeout", "seconds": 1.0})
            with pytest.raises(httpx.ReadTimeout):
                await refresh_with_timeout(c, tokens["refresh_token"], 0.2)
            calls = (await c.get("/_sandbox/calls", params={"network": "x", "kind": "refresh"})).json()
            assert calls["count"] == 1
            # so retrying with the old refresh token is a reuse, and the chain is gone
            assert_grant_error("x", await refresh(c, "x", tokens["refresh_token"]))
            assert_auth_error("x", await c.get("/x/2/users/me", headers=bearer(tokens["access_token"])))
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def refresh_with_timeout(c: httpx.AsyncClient, token: str, timeout: float) -> httpx.Response:
    cid, secret = creds("x")
    return await c.post("/x/2/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": token},
                        auth=(cid, secret), timeout=timeout)


async def test_meta_paths_accept_any_graph_version(sandbox: Any) -> None:
    r = await sandbox.get("/facebook/v25.0/dialog/oauth", params={
        "client_id": "chorus-sandbox-facebook", "redirect_uri": CB, "response_type": "code",
        "scope": "pages_show_list", "state": "s"}, follow_redirects=False)
    code = code_of(r)
    cid, secret = creds("facebook")
    tok = (await sandbox.post("/facebook/v25.0/oauth/access_token", data={
        "client_id": cid, "client_secret": secret, "redirect_uri": CB, "code": code})).json()["access_token"]
    assert (await sandbox.get("/facebook/me/accounts", headers=bearer(tok))).status_code == 200
    ig = (await connect(sandbox, "instagram"))["access_token"]
    assert (await sandbox.get("/instagram/v22.0/me", params={"fields": "user_id"}, headers=bearer(ig))).status_code == 200
    th = (await connect(sandbox, "threads"))["access_token"]
    r = await sandbox.get("/threads/me", params={"fields": "id,username", "access_token": th})
    assert set(r.json()) == {"id", "username"}
