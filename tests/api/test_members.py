import uuid

from sqlalchemy import text


async def test_invitation_round_trip_and_single_use(client, tenant):
    r = await tenant.req("POST", "/v1/invitations", json={"email": "New.Editor@Example.test", "role": "editor"})
    assert r.status_code == 201
    invitation = r.json()
    assert invitation["status"] == "pending" and invitation["email"] == "new.editor@example.test"
    assert invitation["accept_url"].startswith("https://app.chorus.test/invitations/accept#token=cin_")
    token = invitation["token"]
    listed = (await tenant.req("GET", "/v1/invitations")).json()["items"]
    assert "token" not in listed[0] and listed[0]["id"] == invitation["id"]

    r = await client.post("/v1/invitations/accept", json={"token": token, "password": "short"})
    assert r.status_code == 422  # a new account needs a name and a real password
    r = await client.post("/v1/invitations/accept", json={"token": token, "password": "long enough pw", "name": "Ed"})
    assert r.status_code == 201 and r.json()["role"] == "editor"
    r = await client.post("/v1/invitations/accept", json={"token": token, "password": "long enough pw", "name": "Ed"})
    assert r.status_code == 410 and r.json()["type"].endswith("/invitation-invalid")
    status = (await tenant.req("GET", "/v1/invitations", params={"status": "accepted"})).json()["items"]
    assert [i["id"] for i in status] == [invitation["id"]]


async def test_expired_and_revoked_invitations_are_gone(client, tenant, owner_engine):
    r = await tenant.req("POST", "/v1/invitations", json={"email": f"{uuid.uuid4().hex[:8]}@example.test", "role": "analyst"})
    expired = r.json()
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = :id"),
                           {"id": expired["id"]})
    r = await client.post("/v1/invitations/accept", json={"token": expired["token"], "password": "long enough pw", "name": "A"})
    assert r.status_code == 410

    r = await tenant.req("POST", "/v1/invitations", json={"email": f"{uuid.uuid4().hex[:8]}@example.test", "role": "analyst"})
    revoked = r.json()
    assert (await tenant.req("DELETE", f"/v1/invitations/{revoked['id']}")).status_code == 204
    r = await client.post("/v1/invitations/accept", json={"token": revoked["token"], "password": "long enough pw", "name": "A"})
    assert r.status_code == 410
    r = await client.post("/v1/invitations/accept", json={"token": "cin_" + "0" * 32 + "_" + "x" * 43, "password": "x" * 12})
    assert r.status_code == 410


async def test_inviting_an_existing_member_conflicts(tenant):
    r = await tenant.req("POST", "/v1/invitations", json={"email": tenant.email, "role": "editor"})
    assert r.status_code == 409 and r.json()["type"].endswith("/already-member")


async def test_member_limited_to_brands_sees_only_those(tenant):
    a, b, c = await tenant.brand("A brand"), await tenant.brand("B brand"), await tenant.brand("C brand")
    token, membership = await tenant.member("editor", brand_ids=[a["id"], b["id"]])
    assert sorted(membership["brand_ids"]) == sorted([a["id"], b["id"]])
    listed = (await tenant.req("GET", "/v1/brands", token=token)).json()["items"]
    assert {x["id"] for x in listed} == {a["id"], b["id"]}
    assert (await tenant.req("GET", f"/v1/brands/{c['id']}", token=token)).status_code == 404
    # Campaigns of a hidden brand are hidden too, and cannot be created for it.
    r = await tenant.req("POST", "/v1/campaigns", json={
        "brand_id": c["id"], "name": "Hidden", "objective": "sales", "start_date": "2027-01-01", "end_date": "2027-01-31"})
    hidden = r.json()["id"]
    assert (await tenant.req("GET", f"/v1/campaigns/{hidden}", token=token)).status_code == 404
    assert hidden not in {x["id"] for x in (await tenant.req("GET", "/v1/campaigns", token=token)).json()["items"]}
    r = await tenant.req("POST", "/v1/campaigns", token=token, json={
        "brand_id": c["id"], "name": "Nope", "objective": "sales", "start_date": "2027-01-01", "end_date": "2027-01-31"})
    assert r.status_code == 422


async def test_brand_limits_must_name_the_agencys_own_brands(tenant, other_tenant):
    foreign = await other_tenant.brand()
    r = await tenant.req("POST", "/v1/invitations", json={
        "email": f"{uuid.uuid4().hex[:8]}@example.test", "role": "editor", "brand_ids": [foreign["id"]]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "brand_ids"


async def test_at_least_one_owner_remains(tenant):
    me = (await tenant.req("GET", "/v1/members")).json()["items"][0]
    r = await tenant.req("PATCH", f"/v1/members/{me['id']}", json={"role": "admin"})
    assert r.status_code == 409 and r.json()["type"].endswith("/last-owner")
    r = await tenant.req("DELETE", f"/v1/members/{me['id']}")
    assert r.status_code == 409
    # With a second owner, the first can step down.
    token, other = await tenant.member("admin")
    r = await tenant.req("PATCH", f"/v1/members/{other['id']}", json={"role": "owner"})
    assert r.status_code == 200 and r.json()["role"] == "owner"
    r = await tenant.req("PATCH", f"/v1/members/{me['id']}", json={"role": "admin"})
    assert r.status_code == 200
    # The promoted member's old token no longer matches their membership.
    r = await tenant.req("PATCH", f"/v1/members/{other['id']}", json={"role": "editor"}, token=token)
    assert r.status_code == 401 and r.json()["type"].endswith("/access-token-stale")
    token = await tenant.refreshed(token)
    r = await tenant.req("PATCH", f"/v1/members/{other['id']}", json={"role": "editor"}, token=token)
    assert r.status_code == 409  # the last owner cannot demote themself


async def test_admins_cannot_make_or_unmake_owners(tenant):
    admin_token, _ = await tenant.member("admin")
    _, editor = await tenant.member("editor")
    r = await tenant.req("PATCH", f"/v1/members/{editor['id']}", json={"role": "owner"}, token=admin_token)
    assert r.status_code == 403
    r = await tenant.req("PATCH", f"/v1/members/{editor['id']}", json={"role": "manager"}, token=admin_token)
    assert r.status_code == 200
    r = await tenant.req("POST", "/v1/invitations", token=admin_token,
                         json={"email": f"{uuid.uuid4().hex[:8]}@example.test", "role": "owner"})
    assert r.status_code == 403


async def test_removed_member_loses_access_at_once(tenant):
    token, member = await tenant.member("manager")
    assert (await tenant.req("GET", "/v1/brands", token=token)).status_code == 200
    assert (await tenant.req("DELETE", f"/v1/members/{member['id']}")).status_code == 204
    assert (await tenant.req("GET", "/v1/brands", token=token)).status_code == 401


async def test_member_can_leave(tenant):
    token, member = await tenant.member("analyst")
    assert (await tenant.req("DELETE", f"/v1/members/{member['id']}", token=token)).status_code == 204
    ids = {m["id"] for m in (await tenant.req("GET", "/v1/members")).json()["items"]}
    assert member["id"] not in ids


async def test_role_change_applies_to_existing_tokens(tenant):
    token, member = await tenant.member("manager")
    assert (await tenant.req("POST", "/v1/brands", token=token, json={
        "name": "Mgr brand", "time_zone": "UTC", "language": "en"})).status_code == 201
    await tenant.req("PATCH", f"/v1/members/{member['id']}", json={"role": "analyst"})
    # The very next request with the old token is refused: its claims are stale.
    r = await tenant.req("GET", "/v1/brands", token=token)
    assert r.status_code == 401 and r.json()["type"].endswith("/access-token-stale")
    token = await tenant.refreshed(token)
    r = await tenant.req("POST", "/v1/brands", token=token, json={"name": "No", "time_zone": "UTC", "language": "en"})
    assert r.status_code == 403 and r.json()["type"].endswith("/forbidden")
    assert (await tenant.req("GET", "/v1/brands", token=token)).status_code == 200


async def test_brand_limit_change_applies_at_the_next_request(tenant):
    a, b = await tenant.brand("A"), await tenant.brand("B")
    token, member = await tenant.member("editor", brand_ids=[a["id"]])
    await tenant.req("PATCH", f"/v1/members/{member['id']}", json={"brand_ids": [b["id"]]})
    assert (await tenant.req("GET", f"/v1/brands/{a['id']}", token=token)).status_code == 401
    token = await tenant.refreshed(token)
    assert (await tenant.req("GET", f"/v1/brands/{a['id']}", token=token)).status_code == 404
    assert (await tenant.req("GET", f"/v1/brands/{b['id']}", token=token)).status_code == 200


async def test_invitation_is_emailed_with_a_working_link(client, tenant, smtp_inbox):
    email = f"mailed-{uuid.uuid4().hex[:8]}@example.test"
    r = await tenant.req("POST", "/v1/invitations", json={"email": email, "role": "editor"})
    assert r.status_code == 201
    for _ in range(50):  # the SMTP server stores the message on its own thread
        if smtp_inbox.to(email):
            break
        import asyncio

        await asyncio.sleep(0.05)
    [message] = smtp_inbox.to(email)
    body = message.get_content()
    assert "editor" in body and message["Subject"].startswith("You are invited to join Agency")
    token = body.split("#token=", 1)[1].split()[0]
    assert token == r.json()["token"]
    r = await client.post("/v1/invitations/accept", json={"token": token, "password": "long enough pw", "name": "Mailed"})
    assert r.status_code == 201


async def test_no_email_when_the_invitation_is_rolled_back(tenant, smtp_inbox):
    email = f"never-{uuid.uuid4().hex[:8]}@example.test"
    r = await tenant.req("POST", "/v1/invitations", json={"email": email, "role": "editor", "brand_ids": [str(uuid.uuid4())]})
    assert r.status_code == 422
    assert smtp_inbox.to(email) == []


async def test_outbox_mailer_writes_eml_files(tmp_path):
    from domain.core.mail import Email, OutboxMailer

    await OutboxMailer(tmp_path, "Chorus <no-reply@chorus.local>").send(Email("a@example.test", "Hi", "Body"))
    [path] = list(tmp_path.glob("*.eml"))
    assert b"Subject: Hi" in path.read_bytes() and b"To: a@example.test" in path.read_bytes()
