"""openapi/openapi.json is exactly what the app serves, and it serves integrators well."""

from __future__ import annotations

import json
import re

from api.app import create_app
from domain.core.settings import ROOT
from tests.api.routes import routes

SNAPSHOT = ROOT / "openapi" / "openapi.json"


async def test_snapshot_matches_served_document(client):
    served = (await client.get("/docs/openapi.json")).json()
    committed = json.loads(SNAPSHOT.read_text())
    assert served == committed, "openapi/openapi.json is stale: run `chorus openapi` (or `make openapi`)"


def test_snapshot_does_not_depend_on_settings(settings):
    from dataclasses import replace

    other = create_app(replace(settings, max_body_bytes=1, auth_rate_limit_per_minute=7, bench_endpoints=True)).openapi_schema.to_schema()
    assert json.loads(json.dumps(other)) == json.loads(SNAPSHOT.read_text())


def test_routes_served_and_documented_are_the_same_set(app):
    document = json.loads(SNAPSHOT.read_text())
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    served = {(c.method, c.path) for c in routes(app) if not c.path.startswith("/docs") and not c.opt.get("bench")}
    assert served == documented


def test_operations_are_named_tagged_and_document_their_problems():
    document = json.loads(SNAPSHOT.read_text())
    seen = set()
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            op_id = op.get("operationId")
            assert op_id and re.fullmatch(r"[a-z][A-Za-z]+", op_id), f"{method} {path}: {op_id}"
            assert op_id not in seen
            seen.add(op_id)
            assert op.get("tags"), f"{op_id} has no tag"
            if path.startswith("/v1/"):
                assert path.startswith("/v1/"), path
            errors = {code: r for code, r in op["responses"].items() if code.startswith(("4", "5"))}
            if path not in ("/healthz",):
                assert errors, f"{op_id} documents no error"
            browser_page = "text/html" in op["responses"].get("200", {}).get("content", {})
            for code, response in errors.items():
                content = response.get("content", {})
                if browser_page:  # the OAuth callback answers people a page, and programs that ask JSON
                    assert sorted(content) == ["application/problem+json", "text/html"], f"{op_id} {code}"
                    assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
                    continue
                assert list(content) == ["application/problem+json"], f"{op_id} {code}: {list(content)}"
                assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
            private = bool(op.get("security"))
            if private:
                assert {"401", "403"} <= set(errors), f"{op_id} must document 401 and 403"


def test_private_operations_are_exactly_the_guarded_routes(app):
    document = json.loads(SNAPSHOT.read_text())
    secured = {(m.upper(), p) for p, ops in document["paths"].items() for m, op in ops.items() if op.get("security")}
    guarded = {(c.method, c.path) for c in routes(app) if not c.opt.get("public")}
    assert secured == guarded


def test_no_secret_fields_leak_into_response_schemas():
    document = json.loads(SNAPSHOT.read_text())
    schemas = document["components"]["schemas"]
    forbidden = {"password", "password_hash", "token_hash", "secret"}
    for name, schema in schemas.items():
        props = set(schema.get("properties", {}))
        assert not (props & forbidden) or name in {"SignUp", "SignIn", "AcceptInvitation"}, name
        assert "additional_properties" not in props


def test_list_pages_are_named_with_nullable_cursor():
    schemas = json.loads(SNAPSHOT.read_text())["components"]["schemas"]
    for name in ["BrandPage", "CampaignPage", "MemberPage", "InvitationPage", "ApiKeyPage", "AuditEventPage"]:
        cursor = schemas[name]["properties"]["next_cursor"]
        assert {"type": "null"} in cursor.get("oneOf", []) or cursor.get("type") == ["string", "null"], name


def test_each_private_operation_states_who_may_call_it(app):
    from domain.agencies.rules import ACTION_SCOPES, PERMISSIONS, Role

    document = json.loads(SNAPSHOT.read_text())
    for case in routes(app):
        if case.opt.get("public") or case.path.startswith("/docs"):
            continue
        op = document["paths"][case.path][case.method.lower()]
        action = case.opt["action"]
        text = op["description"]
        for role in Role:
            assert (role.value in text.split("roles ", 1)[1].split(";")[0]) is (action in PERMISSIONS[role]), op["operationId"]
        scope = ACTION_SCOPES[action]
        assert (f"`{scope}`" in text) if scope else ("not available to API keys" in text)
