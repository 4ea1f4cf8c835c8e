"""Pinterest API v5 against Pinterest's own OpenAPI description (tests/data/providers/pinterest)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from domain.networks.adapters.pinterest import OAUTH, SPEC
from tests.fidelity.descriptions import (
    _oas_schema, check_answer, load, openapi_root, operation_parameters, pinterest_date_time, response_schema,
)

FORMATS = {"date-time": pinterest_date_time}

DOC = "pinterest/openapi.subset.json"


def described(real_path: str) -> str:
    """Paths in the document are relative to the server https://api.pinterest.com/v5."""
    base = urlsplit(load(DOC)["servers"][0]["url"]).path.rstrip("/")
    assert real_path.startswith(base + "/"), real_path
    return real_path[len(base):].rstrip("/")


def test_api_base_and_oauth_endpoints_are_the_described_ones():
    doc = load(DOC)
    assert SPEC.api_base_url == doc["servers"][0]["url"]
    flows = doc["components"]["securitySchemes"]["pinterest_oauth2"]["flows"]["authorizationCode"]
    assert OAUTH.authorize_url == flows["authorizationUrl"]
    assert OAUTH.token_url == flows["tokenUrl"]
    assert set(OAUTH.scopes) <= set(flows["scopes"]), set(OAUTH.scopes) - set(flows["scopes"])


def test_token_requests_match_the_described_operation(traffic):
    doc = load(DOC)
    calls = traffic["pinterest"].find("POST", "/v5/oauth/token")
    assert sorted(c.q("grant_type") or dict(c.form)["grant_type"] for c in calls) == ["authorization_code",
                                                                                          "refresh_token"]
    op = doc["paths"][described(calls[0].real_path)]["post"]
    content = op["requestBody"]["content"]
    body_schema = content["application/x-www-form-urlencoded"]["schema"]
    root = openapi_root(doc, body_schema)
    for call in calls:
        assert call.headers["content-type"].split(";")[0] in content
        assert call.query == [], "the token request carries its parameters in the form body"
        assert call.auth_scheme == "basic" and {"basic": []} in op["security"]
        # Every form field is a described property of the request schema for its grant_type.
        assert check_answer(root, dict(call.form)) == [], call.form


def test_profile_and_boards_requests_use_described_operations_and_parameters(traffic):
    doc = load(DOC)
    for call in (traffic["pinterest"].one("GET", "/v5/user_account"), traffic["pinterest"].one("GET", "/v5/boards")):
        path = described(call.real_path)
        assert "get" in doc["paths"][path], path
        params = operation_parameters(doc, path, "GET")
        for name, value in call.query:
            assert ("query", name) in params, f"{name!r} is not a described query parameter of GET {path}"
            schema = _oas_schema(params[("query", name)]["schema"])
            typed = int(value) if schema.get("type") == "integer" else value
            assert check_answer({**schema, "components": {"schemas": {
                n: _oas_schema(s) for n, s in doc["components"]["schemas"].items()}}}, typed) == [], (name, value)
        assert call.auth_scheme == "bearer"


def test_token_answers_match_the_response_schema(traffic):
    doc = load(DOC)
    root = openapi_root(doc, response_schema(doc, "/oauth/token", "POST"))
    for call in traffic["pinterest"].find("POST", "/v5/oauth/token"):
        assert call.status == 200, call.response_body
        assert check_answer(root, call.json()) == [], dict(call.form)["grant_type"]


def test_user_account_answer_matches_the_response_schema(traffic):
    doc = load(DOC)
    call = traffic["pinterest"].one("GET", "/v5/user_account")
    assert check_answer(openapi_root(doc, response_schema(doc, "/user_account", "GET")), call.json(),
                        FORMATS) == []


def test_boards_answer_matches_the_response_schema(traffic):
    doc = load(DOC)
    call = traffic["pinterest"].one("GET", "/v5/boards")
    body = call.json()
    assert body["items"], "alice has boards"
    assert check_answer(openapi_root(doc, response_schema(doc, "/boards", "GET")), body, FORMATS) == []


async def test_authentication_failure_answer_matches_the_error_schema(sandbox_server):
    """The answer Chorus gets from these calls when the token is no good."""
    base, _ = sandbox_server
    doc = load(DOC)
    async with httpx.AsyncClient(base_url=base) as http:
        for path in ("/user_account", "/boards"):
            r = await http.get(f"/pinterest/v5{path}", headers={"Authorization": "Bearer not-a-token"})
            assert r.status_code == 401
            responses = doc["paths"][path]["get"]["responses"]
            schema = (responses.get("401") or responses["default"])["content"]["application/json"]["schema"]
            assert check_answer(openapi_root(doc, schema), r.json()) == [], path
