import uuid

from tests.conftest import sign_up


async def test_signup_creates_agency_with_owner(client, tenant):
    r = await tenant.req("GET", "/v1/agency")
    assert r.status_code == 200
    assert r.json()["id"] == tenant.agency_id
    assert r.json()["time_zone"] == "Europe/Madrid"
    members = (await tenant.req("GET", "/v1/members")).json()["items"]
    assert [(m["email"], m["role"]) for m in members] == [(tenant.email, "owner")]


async def test_signup_rejects_duplicate_email_case_insensitively(client, tenant):
    r = await client.post("/v1/auth/signup", json={
        "agency_name": "Again", "email": tenant.email.upper(), "password": "another good password", "name": "X"})
    assert r.status_code == 409
    assert r.json()["type"].endswith("/email-taken")


async def test_signup_rejects_bad_time_zone_and_writes_nothing(client):
    email = f"tz-{uuid.uuid4().hex[:8]}@example.test"
    r = await client.post("/v1/auth/signup", json={
        "agency_name": "Bad TZ", "email": email, "password": "a very good password", "name": "X",
        "time_zone": "Mars/Olympus"})
    assert r.status_code == 422
    body = r.json()
    assert body["type"].endswith("/validation-error")
    assert body["errors"][0]["field"] == "time_zone"
    r = await client.post("/v1/auth/token", json={"email": email, "password": "a very good password"})
    assert r.status_code == 401


async def test_agency_slug_conflicts(client):
    slug = f"acme-{uuid.uuid4().hex[:6]}"
    await sign_up(client, agency_slug=slug)
    r = await client.post("/v1/auth/signup", json={
        "agency_name": "Acme 2", "agency_slug": slug, "email": f"{uuid.uuid4().hex[:8]}@example.test",
        "password": "a very good password", "name": "X"})
    assert r.status_code == 409 and r.json()["type"].endswith("/slug-taken")
    # A generated slug finds a free one instead of failing.
    name = f"Same Name {uuid.uuid4().hex[:4]}"
    a = await sign_up(client, agency_name=name)
    b = await sign_up(client, agency_name=name)
    slug_a = (await a.req("GET", "/v1/agency")).json()["slug"]
    slug_b = (await b.req("GET", "/v1/agency")).json()["slug"]
    assert slug_a != slug_b and slug_b.startswith(slug_a)


async def test_sign_in_wrong_password_and_unknown_email_look_the_same(client, tenant):
    wrong = await client.post("/v1/auth/token", json={"email": tenant.email, "password": "nope nope nope"})
    unknown = await client.post("/v1/auth/token", json={"email": "nobody@example.test", "password": "nope nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["type"] == unknown.json()["type"]
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_person_in_two_agencies_must_choose(client, tenant, other_tenant):
    # The owner of `tenant` is invited into `other_tenant`.
    r = await other_tenant.req("POST", "/v1/invitations", json={"email": tenant.email, "role": "editor"})
    token = r.json()["token"]
    r = await client.post("/v1/invitations/accept", json={"token": token, "password": tenant.password})
    assert r.status_code == 201, r.text
    assert r.json()["agency_id"] == other_tenant.agency_id and r.json()["role"] == "editor"

    r = await client.post("/v1/auth/token", json={"email": tenant.email, "password": tenant.password})
    assert r.status_code == 409
    problem = r.json()
    assert problem["type"].endswith("/agency-choice-required")
    assert {a["id"] for a in problem["agencies"]} == {tenant.agency_id, other_tenant.agency_id}

    r = await client.post("/v1/auth/token", json={
        "email": tenant.email, "password": tenant.password, "agency_id": other_tenant.agency_id})
    assert r.status_code == 200
    access = r.json()["access_token"]
    assert (await other_tenant.req("GET", "/v1/agency", token=access)).json()["id"] == other_tenant.agency_id
    # As an editor there, she cannot manage members.
    assert (await other_tenant.req("GET", "/v1/invitations", token=access)).status_code == 403

    # Switching back to her own agency gives an owner token there.
    r = await client.post("/v1/auth/switch", json={"agency_id": tenant.agency_id}, headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 200 and r.json()["role"] == "owner"

    # Choosing an agency she is not in is refused.
    stranger = await sign_up(client)
    r = await client.post("/v1/auth/token", json={
        "email": tenant.email, "password": tenant.password, "agency_id": stranger.agency_id})
    assert r.status_code == 403
    r = await client.post("/v1/auth/switch", json={"agency_id": stranger.agency_id}, headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 404


async def test_refresh_rotates_and_reuse_revokes_the_chain(client, tenant):
    first = tenant.refresh_token
    r = await client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 200
    second = r.json()["refresh_token"]
    assert second != first
    # Reusing the first one is theft: it fails and ends the chain, the second one too.
    r = await client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 401 and r.json()["type"].endswith("/invalid-credentials")
    r = await client.post("/v1/auth/refresh", json={"refresh_token": second})
    assert r.status_code == 401


async def test_sign_out_revokes_refresh(client, tenant):
    r = await client.post("/v1/auth/signout", json={"refresh_token": tenant.refresh_token})
    assert r.status_code == 204
    r = await client.post("/v1/auth/refresh", json={"refresh_token": tenant.refresh_token})
    assert r.status_code == 401


async def test_garbage_tokens_are_401_problems(client):
    for header in ["Bearer nonsense", "Basic abc", "Bearer chk_zzz_" + "a" * 40, "Bearer "]:
        r = await client.get("/v1/brands", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/v1/brands")
    assert r.status_code == 401 and r.json()["type"].endswith("/authentication-required")
    r = await client.post("/v1/auth/refresh", json={"refresh_token": "crt_garbage"})
    assert r.status_code == 401


async def test_api_key_of_forged_agency_prefix_is_rejected(client, tenant, other_tenant):
    key = await tenant.api_key(["brands:read"])
    secret = key.split("_", 2)[2]
    forged = f"chk_{uuid.UUID(other_tenant.agency_id).hex}_{secret}"
    r = await client.get("/v1/brands", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


async def test_sign_in_is_rate_limited_per_address(settings):
    from dataclasses import replace

    from litestar.testing import AsyncTestClient

    from api.app import create_app

    app = create_app(replace(settings, auth_rate_limit_per_minute=3))
    async with AsyncTestClient(app) as limited:
        codes = []
        for _ in range(5):
            r = await limited.post("/v1/auth/token", json={"email": "x@example.test", "password": "wrong password"})
            codes.append(r.status_code)
        assert codes == [401, 401, 401, 429, 429]
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/rate-limited")
        assert int(r.headers["retry-after"]) > 0
        # Authenticated API routes are not throttled by the sign-in limit.
        assert (await limited.get("/healthz")).status_code == 200
