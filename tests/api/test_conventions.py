import asyncio
import json
import uuid

import pytest


async def _brand_count(tenant) -> int:
    return len((await tenant.req("GET", "/v1/brands", params={"limit": 200})).json()["items"])


@pytest.mark.parametrize(
    ("content", "status", "slug"),
    [
        (b'{"name": "x", ', 400, "malformed-body"),
        (b"not json at all", 400, "malformed-body"),
        (json.dumps({"name": 5, "time_zone": "UTC", "language": "en"}).encode(), 422, "validation-error"),
        (json.dumps({"name": "x", "time_zone": "UTC", "language": "en", "agency_id": str(uuid.uuid4())}).encode(),
         422, "validation-error"),
        (json.dumps({"name": "x", "time_zone": "UTC"}).encode(), 422, "validation-error"),
        (json.dumps([1, 2]).encode(), 422, "validation-error"),
        (json.dumps({"name": "x", "time_zone": "Nowhere/Land", "language": "en"}).encode(), 422, "validation-error"),
    ],
)
async def test_bad_bodies_are_clear_problems_and_write_nothing(tenant, content, status, slug):
    before = await _brand_count(tenant)
    r = await tenant.req("POST", "/v1/brands", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("/" + slug) and body["status"] == status and body["title"]
    if status == 422:
        assert body["errors"] and all("field" in e and "message" in e for e in body["errors"])
    assert await _brand_count(tenant) == before


async def test_unknown_field_is_named(tenant):
    r = await tenant.req("POST", "/v1/brands", json={"name": "x", "time_zone": "UTC", "language": "en", "agency_id": "x"})
    assert r.status_code == 422
    assert "agency_id" in json.dumps(r.json()["errors"])


async def test_wrong_type_points_at_field(tenant):
    r = await tenant.req("POST", "/v1/brands", json={"name": "x", "time_zone": "UTC", "language": "en",
                                                     "profile": {"swot": {"strengths": "not a list"}}})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "profile.swot.strengths"


async def test_oversized_body_is_413_and_writes_nothing(tenant, settings):
    before = await _brand_count(tenant)
    huge = {"name": "x", "time_zone": "UTC", "language": "en", "profile": {"history": "a" * 19_000,
            "mission": "b" * 19_000, "vision": "c" * 19_000, "voice": "d" * 19_000}}
    assert len(json.dumps(huge)) > settings.max_body_bytes
    r = await tenant.req("POST", "/v1/brands", json=huge)
    assert r.status_code == 413 and r.json()["type"].endswith("/payload-too-large")
    assert await _brand_count(tenant) == before


async def test_mass_assignment_of_tenant_or_role_is_refused(tenant, other_tenant):
    _, member = await tenant.member("editor")
    r = await tenant.req("PATCH", f"/v1/members/{member['id']}", json={"agency_id": other_tenant.agency_id})
    assert r.status_code == 422
    r = await tenant.req("PATCH", "/v1/agency", json={"id": other_tenant.agency_id})
    assert r.status_code == 422


async def test_bad_path_and_query_values(tenant):
    assert (await tenant.req("GET", "/v1/brands/not-a-uuid")).status_code in (400, 404)
    r = await tenant.req("GET", "/v1/campaigns", params={"active_on": "yesterday"})
    assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json")
    r = await tenant.req("GET", "/v1/nothing-here")
    assert r.status_code == 404 and r.json()["type"].endswith("/not-found")
    r = await tenant.req("PUT", "/v1/brands")
    assert r.status_code == 405 and r.headers["content-type"].startswith("application/problem+json")


async def test_idempotency_key_returns_first_response(tenant):
    key = str(uuid.uuid4())
    body = {"name": "Idem brand", "time_zone": "UTC", "language": "en"}
    first = await tenant.req("POST", "/v1/brands", json=body, headers={"Idempotency-Key": key})
    second = await tenant.req("POST", "/v1/brands", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.headers["location"] == first.headers["location"]
    names = [b["name"] for b in (await tenant.req("GET", "/v1/brands", params={"limit": 200})).json()["items"]]
    assert names.count("Idem brand") == 1
    # Same key, different body: refused, not replayed.
    other = await tenant.req("POST", "/v1/brands", json={**body, "name": "Other"}, headers={"Idempotency-Key": key})
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")


async def test_idempotency_concurrent_retries_create_once(tenant):
    key = str(uuid.uuid4())
    body = {"name": "Concurrent idem", "time_zone": "UTC", "language": "en"}
    results = await asyncio.gather(*[
        tenant.req("POST", "/v1/brands", json=body, headers={"Idempotency-Key": key}) for _ in range(5)
    ])
    assert {r.status_code for r in results} <= {201, 409}
    assert any(r.status_code == 201 for r in results)
    names = [b["name"] for b in (await tenant.req("GET", "/v1/brands", params={"limit": 200})).json()["items"]]
    assert names.count("Concurrent idem") == 1


async def test_idempotency_keys_are_per_agency_and_failed_requests_can_retry(tenant, other_tenant):
    key = str(uuid.uuid4())
    body = {"name": "Shared key", "time_zone": "UTC", "language": "en"}
    a = await tenant.req("POST", "/v1/brands", json=body, headers={"Idempotency-Key": key})
    b = await other_tenant.req("POST", "/v1/brands", json=body, headers={"Idempotency-Key": key})
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
    # A 4xx answer is remembered too (Stripe's rule): the same retry gets the same answer.
    bad_key = str(uuid.uuid4())
    bad = {"name": "x", "time_zone": "Nowhere/Land", "language": "en"}
    r1 = await tenant.req("POST", "/v1/brands", json=bad, headers={"Idempotency-Key": bad_key})
    r2 = await tenant.req("POST", "/v1/brands", json=bad, headers={"Idempotency-Key": bad_key})
    assert r1.status_code == r2.status_code == 422 and r2.headers.get("idempotent-replayed") == "true"
    r = await tenant.req("POST", "/v1/brands", json=body, headers={"Idempotency-Key": "x" * 300})
    assert r.status_code == 400 and r.json()["type"].endswith("/idempotency-key-invalid")


async def test_request_id_is_echoed_and_logged(tenant, caplog):
    caplog.set_level("INFO", logger="chorus.access")
    r = await tenant.req("GET", "/v1/agency", headers={"X-Request-ID": "trace-abc-123"})
    assert r.headers["x-request-id"] == "trace-abc-123"
    r = await tenant.req("GET", "/v1/agency", headers={"X-Request-ID": "bad id with spaces"})
    generated = r.headers["x-request-id"]
    assert generated != "bad id with spaces" and len(generated) == 32
    lines = [rec for rec in caplog.records if rec.name == "chorus.access"]
    assert any(getattr(rec, "path", None) == "/v1/agency" and getattr(rec, "status", None) == 200 for rec in lines)
    problem = (await tenant.req("GET", "/v1/brands/" + str(uuid.uuid4()), headers={"X-Request-ID": "trace-404"})).json()
    assert problem["request_id"] == "trace-404"


async def test_json_log_lines_carry_request_id_and_no_secrets(tenant, capsys):
    import logging

    from domain.core.logs import JsonFormatter, request_id_var

    token = request_id_var.set("rid-1")
    try:
        record = logging.LogRecord("chorus.access", logging.INFO, __file__, 1, "request", None, None)
        record.path = "/v1/brands"
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "rid-1" and line["path"] == "/v1/brands" and line["level"] == "info"


async def test_health(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_secrets_never_reach_the_logs(client, caplog):
    """Passwords, API keys, refresh tokens and invitation tokens appear in no log line."""
    import logging

    from tests.conftest import sign_up

    caplog.set_level(logging.DEBUG)
    tenant = await sign_up(client)
    key = await tenant.api_key(["brands:write"])
    await tenant.req("GET", "/v1/brands", token=key)
    await tenant.req("POST", "/v1/brands", token=key, content=b"{broken")
    invitation = (await tenant.req("POST", "/v1/invitations", json={"email": "x-log@example.test", "role": "editor"})).json()
    await client.post("/v1/auth/refresh", json={"refresh_token": tenant.refresh_token})
    await client.post("/v1/auth/refresh", json={"refresh_token": tenant.refresh_token})  # reuse: logged as a failure
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in [tenant.password, key, key.split("_", 2)[2], tenant.refresh_token, invitation["token"], tenant.owner_token]:
        assert secret not in logged
    assert "request" in logged  # the access log did run


async def test_unknown_nested_field_points_at_its_path(tenant):
    r = await tenant.req("POST", "/v1/brands", json={"name": "x", "time_zone": "UTC", "language": "en",
                                                     "profile": {"swot": {"strenghts": ["typo"]}}})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "profile.swot.strenghts"
    r = await tenant.req("POST", "/v1/brands", json={"name": "x", "time_zone": "UTC", "language": "en", "colour": "red"})
    assert r.json()["errors"][0]["field"] == "colour"


async def test_nul_characters_are_refused_not_crashed_on(tenant):
    before = await _brand_count(tenant)
    r = await tenant.req("POST", "/v1/invitations", json={"email": "a\u0000b@example.test", "role": "editor"})
    assert r.status_code == 422 and r.json()["type"].endswith("/validation-error")
    r = await tenant.req("POST", "/v1/brands", json={"name": "ok", "time_zone": "UTC", "language": "en",
                                                     "profile": {"values": ["fine", "bad\u0000"]}})
    assert r.status_code == 422
    r = await tenant.req("GET", "/v1/brands", params={"q": "a\u0000"})
    assert r.status_code == 422
    # A literal backslash-u text is just text.
    brand = await tenant.brand("Back\\u0000slash")
    assert brand["name"] == "Back\\u0000slash"
    assert await _brand_count(tenant) == before + 1


async def test_readyz_is_a_503_problem_when_the_database_is_gone(settings, tmp_path):
    from dataclasses import replace

    from litestar.testing import AsyncTestClient

    from api.app import create_app

    nowhere = f"postgresql://nobody@/nowhere?host={tmp_path}"  # a socket folder with no server
    app = create_app(replace(settings, database_url=nowhere, app_database_url=nowhere))
    async with AsyncTestClient(app) as c:
        r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["type"].endswith("/unavailable")
        assert (await c.get("/healthz")).status_code == 200
