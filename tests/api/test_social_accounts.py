"""Linking accounts by OAuth: the parts that need no provider. The full round trips run
against the network sandbox over real HTTP (tests/e2e)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from domain.networks.catalog import CATALOG
from domain.networks.adapters.base import Network, Pkce


async def _start(tenant, brand_id, network):
    r = await tenant.req("POST", f"/v1/brands/{brand_id}/social-account-links", json={"network": network})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.parametrize("network", [n.value for n in Network])
async def test_start_builds_the_providers_authorize_url(tenant, settings, network):
    brand = await tenant.brand()
    started = await _start(tenant, brand["id"], network)
    spec = CATALOG[Network(network)]
    url = urlsplit(started["authorize_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == spec.oauth.authorize_url
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query[spec.oauth.client_id_param] == f"test-client-{network}"
    assert query["redirect_uri"] == f"http://testserver.local/v1/oauth/callback/{network}"
    assert query["response_type"] == "code"
    assert query["state"].startswith("cst_") and len(query["state"]) > 40
    assert query["scope"] == spec.oauth.scope_separator.join(spec.oauth.scopes)
    if spec.oauth.pkce is Pkce.NONE:
        assert "code_challenge" not in query
    else:
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    for key, value in spec.oauth.extra_authorize_params:
        assert query[key] == value
    link = (await tenant.req("GET", f"/v1/social-account-links/{started['link_id']}")).json()
    assert link["status"] == "started" and link["network"] == network and link["candidates"] == []


async def test_pkce_verifier_is_stored_encrypted_and_matches_the_challenge(tenant, settings, owner_engine):
    brand = await tenant.brand()
    started = await _start(tenant, brand["id"], "x")
    challenge = parse_qs(urlsplit(started["authorize_url"]).query)["code_challenge"][0]
    async with owner_engine.connect() as conn:
        sealed, state_hash = (await conn.execute(text(
            "SELECT code_verifier_enc, state_hash FROM oauth_links WHERE id = :id"), {"id": started["link_id"]})).one()
    verifier = settings.vault().decrypt(sealed)
    assert create_s256_code_challenge(verifier) == challenge and verifier not in sealed
    state = parse_qs(urlsplit(started["authorize_url"]).query)["state"][0]
    assert state not in state_hash  # only its hash is kept


def _is_safe_page(r):
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "http" not in r.text.split("</head>")[1]  # nothing loaded from anywhere


async def test_callback_refuses_missing_unknown_foreign_reused_and_expired_state(client, tenant, other_tenant, owner_engine):
    brand = await tenant.brand()
    # Missing or garbage state.
    for query in ["?code=abc", "?code=abc&state=nonsense", "?code=abc&state=cst_" + "0" * 32 + "_" + "x" * 43]:
        r = await client.get("/v1/oauth/callback/x" + query)
        assert r.status_code == 400, query
        _is_safe_page(r)
    started = await _start(tenant, brand["id"], "x")
    state = parse_qs(urlsplit(started["authorize_url"]).query)["state"][0]
    # The state of an X link is not valid for another network's callback.
    assert (await client.get(f"/v1/oauth/callback/pinterest?code=abc&state={state}")).status_code == 400
    # The provider refused: the state is used up, and nothing is connected.
    r = await client.get(f"/v1/oauth/callback/x?error=access_denied&state={state}")
    assert r.status_code == 400 and "did not grant" in r.text
    assert (await tenant.req("GET", f"/v1/social-account-links/{started['link_id']}")).json()["status"] == "denied"
    r = await client.get(f"/v1/oauth/callback/x?code=abc&state={state}")
    assert r.status_code == 400 and "already used" in r.text
    # Expired.
    late = await _start(tenant, brand["id"], "x")
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE oauth_links SET expires_at = now() - interval '1 second' WHERE id = :id"),
                           {"id": late["link_id"]})
    late_state = parse_qs(urlsplit(late["authorize_url"]).query)["state"][0]
    assert (await client.get(f"/v1/oauth/callback/x?code=abc&state={late_state}")).status_code == 400
    assert (await client.get("/v1/oauth/callback/myspace?code=abc&state=x")).status_code == 404
    accounts = (await tenant.req("GET", "/v1/social-accounts")).json()["items"]
    assert accounts == []


async def test_accounts_list_get_and_unlink_never_show_tokens(tenant, owner_engine, settings):
    brand = await tenant.brand()
    account_id = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "pinterest")
    listed = (await tenant.req("GET", "/v1/social-accounts", params={"brand_id": brand["id"]})).json()["items"]
    assert [a["id"] for a in listed] == [account_id]
    body = (await tenant.req("GET", f"/v1/social-accounts/{account_id}")).text
    assert "token" not in body.replace("token_expires_at", "") and "plaintext-access-token" not in body
    r = await tenant.req("DELETE", f"/v1/social-accounts/{account_id}")
    assert r.status_code == 200 and r.json()["status"] == "revoked" and r.json()["revoked_at"]
    async with owner_engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT access_token_enc, refresh_token_enc, status FROM social_accounts WHERE id = :id"), {"id": account_id})).one()
    assert row == (None, None, "revoked")  # history kept, secrets gone
    assert (await tenant.req("GET", "/v1/social-accounts", params={"status": "revoked"})).json()["items"][0]["id"] == account_id


async def test_linking_needs_accounts_write_and_a_live_brand(tenant):
    brand = await tenant.brand()
    analyst, _ = await tenant.member("analyst")
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links", token=analyst, json={"network": "x"})
    assert r.status_code == 403
    await tenant.req("PATCH", f"/v1/brands/{brand['id']}", json={"status": "archived"})
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links", json={"network": "x"})
    assert r.status_code == 409
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links", json={"network": "myspace"})
    assert r.status_code == 422


@pytest.mark.parametrize("bad", [
    "javascript:alert(1)", "/relative/path", "http://app.agency.example/back", "https://user:pw@app.example/",
    "https://app.example/back#frag", "https://app.example/" + "a" * 2000, "https://app.example/a b", "ftp://app.example/",
    "https://", "",
])
async def test_return_url_must_be_a_safe_absolute_address(tenant, owner_engine, bad):
    brand = await tenant.brand()
    async with owner_engine.connect() as conn:
        before = (await conn.execute(text("SELECT count(*) FROM oauth_links"))).scalar()
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links",
                         json={"network": "x", "return_url": bad})
    assert r.status_code == 422, (bad, r.text)
    assert r.json()["errors"][0]["field"] == "return_url"
    async with owner_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM oauth_links"))).scalar() == before


@pytest.mark.parametrize("good", ["https://app.agency.example/back?x=1", "http://localhost:5173/cb",
                                  "http://127.0.0.1:8080/cb", "http://[::1]:3000/cb"])
async def test_return_url_accepts_https_and_local_http(tenant, good):
    brand = await tenant.brand()
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links",
                         json={"network": "x", "return_url": good})
    assert r.status_code == 201, r.text
