async def _campaign(tenant, brand_id, **extra):
    body = {"brand_id": brand_id, "name": "Christmas roscón", "objective": "sales",
            "start_date": "2026-12-01", "end_date": "2027-01-06",
            "target_kpis": [{"metric": "orders", "target": 300}], **extra}
    r = await tenant.req("POST", "/v1/campaigns", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_campaign_lifecycle(tenant):
    brand = await tenant.brand()
    campaign = await _campaign(tenant, brand["id"])
    assert campaign["status"] == "draft" and campaign["target_kpis"] == [{"metric": "orders", "target": 300.0, "unit": "count"}]
    r = await tenant.req("PATCH", f"/v1/campaigns/{campaign['id']}", json={"status": "active"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    r = await tenant.req("PATCH", f"/v1/campaigns/{campaign['id']}", json={"status": "draft"})
    assert r.status_code == 409 and r.json()["type"].endswith("/campaign-status-transition")
    r = await tenant.req("PATCH", f"/v1/campaigns/{campaign['id']}", json={"status": "completed"})
    assert r.status_code == 200
    assert (await tenant.req("DELETE", f"/v1/campaigns/{campaign['id']}")).status_code == 204
    assert (await tenant.req("GET", f"/v1/campaigns/{campaign['id']}")).status_code == 404


async def test_dates_are_checked(tenant):
    brand = await tenant.brand()
    r = await tenant.req("POST", "/v1/campaigns", json={
        "brand_id": brand["id"], "name": "Backwards", "objective": "sales", "start_date": "2027-02-01", "end_date": "2027-01-01"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "end_date"
    campaign = await _campaign(tenant, brand["id"])
    r = await tenant.req("PATCH", f"/v1/campaigns/{campaign['id']}", json={"end_date": "2026-11-01"})
    assert r.status_code == 422
    r = await tenant.req("POST", "/v1/campaigns", json={
        "brand_id": brand["id"], "name": "Bad", "objective": "sales", "start_date": "2027-13-01", "end_date": "2027-01-01"})
    assert r.status_code == 422


async def test_filters(tenant):
    a, b = await tenant.brand("A"), await tenant.brand("B")
    xmas = await _campaign(tenant, a["id"])
    summer = await _campaign(tenant, b["id"], name="Summer", start_date="2027-06-01", end_date="2027-08-31", status="planned")
    by_brand = (await tenant.req("GET", "/v1/campaigns", params={"brand_id": b["id"]})).json()["items"]
    assert [c["id"] for c in by_brand] == [summer["id"]]
    running = (await tenant.req("GET", "/v1/campaigns", params={"active_on": "2026-12-24"})).json()["items"]
    assert [c["id"] for c in running] == [xmas["id"]]
    planned = (await tenant.req("GET", "/v1/campaigns", params={"status": "planned"})).json()["items"]
    assert [c["id"] for c in planned] == [summer["id"]]
    assert (await tenant.req("GET", "/v1/campaigns", params={"status": "bogus"})).status_code in (400, 422)


async def test_unknown_brand_is_a_field_error(tenant, other_tenant):
    foreign = await other_tenant.brand()
    r = await tenant.req("POST", "/v1/campaigns", json={
        "brand_id": foreign["id"], "name": "X", "objective": "sales", "start_date": "2027-01-01", "end_date": "2027-01-02"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "brand_id"


async def test_audit_log_records_who_did_what(tenant):
    brand = await tenant.brand("Audited")
    await tenant.req("PATCH", f"/v1/brands/{brand['id']}", json={"name": "Audited 2"})
    events = (await tenant.req("GET", "/v1/audit-events", params={"object_id": brand["id"]})).json()["items"]
    assert [e["action"] for e in events] == ["brand.updated", "brand.created"]
    assert events[0]["actor_label"] == tenant.email and events[0]["changes"] == {"name": "Audited 2"}
    assert events[0]["request_id"]
    everything = (await tenant.req("GET", "/v1/audit-events")).json()["items"]
    assert everything[-1]["action"] == "agency.created"
