from sqlalchemy import text


async def test_key_is_shown_once_and_stored_as_hash(tenant, owner_engine):
    r = await tenant.req("POST", "/v1/api-keys", json={"name": "Zapier", "scopes": ["brands:read", "campaigns:write"]})
    assert r.status_code == 201
    created = r.json()
    key = created["key"]
    assert key.startswith("chk_") and created["prefix"] == key[:4] + key.split("_", 2)[2][:6]
    listed = (await tenant.req("GET", "/v1/api-keys")).json()["items"]
    assert all("key" not in item for item in listed)
    one = (await tenant.req("GET", f"/v1/api-keys/{created['id']}")).json()
    assert "key" not in one and one["scopes"] == ["brands:read", "campaigns:write"]
    async with owner_engine.connect() as conn:
        dump = (await conn.execute(text("SELECT row_to_json(k)::text FROM api_keys k WHERE id = :id"), {"id": created["id"]})).scalar_one()
    assert key not in dump and key.split("_", 2)[2] not in dump


async def test_scopes_are_enforced(tenant):
    brand = await tenant.brand()
    key = await tenant.api_key(["brands:read"])
    assert (await tenant.req("GET", f"/v1/brands/{brand['id']}", token=key)).status_code == 200
    r = await tenant.req("PATCH", f"/v1/brands/{brand['id']}", token=key, json={"name": "X"})
    assert r.status_code == 403
    assert (await tenant.req("GET", "/v1/campaigns", token=key)).status_code == 403
    assert (await tenant.req("GET", "/v1/api-keys", token=key)).status_code == 403
    writer = await tenant.api_key(["brands:write"])
    assert (await tenant.req("PATCH", f"/v1/brands/{brand['id']}", token=writer, json={"name": "Y"})).status_code == 200


async def test_unknown_scope_is_rejected(tenant):
    r = await tenant.req("POST", "/v1/api-keys", json={"name": "x", "scopes": ["brands:read", "billing:write"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scopes"
    r = await tenant.req("POST", "/v1/api-keys", json={"name": "x", "scopes": ["BRANDS"]})
    assert r.status_code == 422


async def test_revoked_and_expired_keys_stop_working(tenant, owner_engine):
    r = await tenant.req("POST", "/v1/api-keys", json={"name": "temp", "scopes": ["agency:read"]})
    key, key_id = r.json()["key"], r.json()["id"]
    assert (await tenant.req("GET", "/v1/agency", token=key)).status_code == 200
    assert (await tenant.req("DELETE", f"/v1/api-keys/{key_id}")).status_code == 204
    assert (await tenant.req("GET", "/v1/agency", token=key)).status_code == 401
    listed = (await tenant.req("GET", "/v1/api-keys", params={"include_revoked": "true"})).json()["items"]
    assert any(k["id"] == key_id and k["revoked_at"] for k in listed)

    r = await tenant.req("POST", "/v1/api-keys", json={"name": "soon", "scopes": ["agency:read"],
                                                       "expires_at": "2099-01-01T00:00:00Z"})
    key2, key2_id = r.json()["key"], r.json()["id"]
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"), {"id": key2_id})
    assert (await tenant.req("GET", "/v1/agency", token=key2)).status_code == 401
    r = await tenant.req("POST", "/v1/api-keys", json={"name": "past", "scopes": ["agency:read"],
                                                       "expires_at": "2001-01-01T00:00:00Z"})
    assert r.status_code == 422


async def test_last_used_is_recorded(tenant):
    r = await tenant.req("POST", "/v1/api-keys", json={"name": "used", "scopes": ["agency:read"]})
    key, key_id = r.json()["key"], r.json()["id"]
    assert r.json()["last_used_at"] is None
    await tenant.req("GET", "/v1/agency", token=key)
    assert (await tenant.req("GET", f"/v1/api-keys/{key_id}")).json()["last_used_at"] is not None


async def test_keys_cannot_mint_keys_or_switch_agency(tenant):
    key = await tenant.api_key(["agency:write", "members:write", "brands:write"])
    assert (await tenant.req("POST", "/v1/api-keys", token=key, json={"name": "x", "scopes": ["brands:read"]})).status_code == 403
    r = await tenant.req("POST", "/v1/auth/switch", token=key, json={"agency_id": tenant.agency_id})
    assert r.status_code == 403


async def test_member_management_key_acts_like_an_admin(tenant):
    key = await tenant.api_key(["members:write"])
    _, editor = await tenant.member("editor")
    r = await tenant.req("PATCH", f"/v1/members/{editor['id']}", token=key, json={"role": "manager"})
    assert r.status_code == 200 and r.json()["role"] == "manager"
    r = await tenant.req("PATCH", f"/v1/members/{editor['id']}", token=key, json={"role": "owner"})
    assert r.status_code == 403
    owner = next(m for m in (await tenant.req("GET", "/v1/members")).json()["items"] if m["role"] == "owner")
    assert (await tenant.req("DELETE", f"/v1/members/{owner['id']}", token=key)).status_code == 403
    assert (await tenant.req("DELETE", f"/v1/members/{editor['id']}", token=key)).status_code == 204
