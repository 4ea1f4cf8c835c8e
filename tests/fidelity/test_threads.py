"""Threads API against Meta's official Postman collection (tests/data/providers/threads).

A Postman collection has example requests and one example answer each, not schemas: requests
are checked for method, path and parameter names (and fixed values such as grant_type); answers
for keys and JSON types against the example body."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from domain.networks.adapters.threads import OAUTH, SPEC
from domain.networks.oauth import META_GRAPH
from domain.networks.adapters.base import Network

DOC = "threads/threads-api.subset.postman_collection.json"
CODE, EXCHANGE, REFRESH, PROFILE = ("Exchange the Code For a Token", "Get Long-Lived Access Token",
                                    "Refresh Access Token", "Get App-Scoped User's Profile Information")


def collection() -> dict[str, Any]:
    from tests.fidelity.descriptions import load

    return load(DOC)


def variables() -> dict[str, str]:
    return {v["key"]: v["value"] for v in collection()["variable"]}


def expand(text: str) -> str:
    """Fill in the collection's {{variables}}."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: variables()[m.group(1)], text)


def oauth2() -> dict[str, str]:
    return {a["key"]: expand(str(a["value"])) for a in collection()["auth"]["oauth2"]}


def item(name: str) -> dict[str, Any]:
    return next(it for it in collection()["item"] if it["name"] == name)


def described_params(name: str) -> dict[str, str]:
    return {q["key"]: q["value"] for q in item(name)["request"]["url"].get("query", [])}


def example(name: str) -> str:
    return item(name)["response"][0]["body"]


def call_for(traffic, name: str):
    """The one recorded call that the collection item `name` describes (path: versionless or v1.0)."""
    req = item(name)["request"]
    path = "/" + "/".join(req["url"]["path"])
    calls = [e for e in traffic["threads"].exchanges if e.method == req["method"]
             and re.fullmatch(r"(/v\d+\.\d+)?" + re.escape(path), e.real_path)]
    assert len(calls) == 1, (name, [(e.method, e.path) for e in traffic["threads"].exchanges])
    return calls[0]


def json_type(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", type(None): "null",
            list: "array", dict: "object"}[type(value)]


def same_shape(answer: dict[str, Any], sample: dict[str, Any]) -> list[str]:
    problems = [f"{k}: not in the example answer" for k in answer if k not in sample]
    problems += [f"{k}: {json_type(v)}, the example has {json_type(sample[k])}"
                 for k, v in answer.items() if k in sample and json_type(v) != json_type(sample[k])]
    return problems


def test_hosts_and_authorize_match_the_collection():
    host = variables()["api_host"]
    assert OAUTH.token_url == f"{host}/oauth/access_token"
    assert META_GRAPH[Network.THREADS] == host
    assert SPEC.api_base_url.startswith(host)  # Chorus pins v1.0; the collection is versionless
    auth = oauth2()
    assert auth["accessTokenUrl"] == OAUTH.token_url
    assert urlsplit(OAUTH.authorize_url).path == urlsplit(auth["authUrl"]).path
    # Host: the collection's {{authorization_host}} is https://www.threads.net; Chorus uses threads.com
    # (Threads' newer domain). The URL rule keeps only the path, which is what is compared.
    assert set(OAUTH.scopes) <= set(variables()["scope"].split(","))


def test_authorize_request_uses_the_collection_parameters(traffic):
    authorize = dict(parse_qsl(urlsplit(traffic["threads"].authorize_url).query))
    auth = dict(parse_qsl(urlsplit(oauth2()["authUrl"]).query))
    assert authorize["response_type"] == auth["response_type"] == "code"
    assert set(authorize["scope"].split(",")) <= set(variables()["scope"].split(","))


def test_code_exchange_request_matches_the_collection(traffic):
    call = call_for(traffic, CODE)
    described = described_params(CODE)
    sent = dict(call.query) | dict(call.form)
    # The collection puts them in the query string of the POST; Chorus sends a form body. Same names.
    assert set(sent) == set(described), set(sent) ^ set(described)
    assert sent["grant_type"] == described["grant_type"]


def test_long_lived_exchange_and_refresh_requests_match_the_collection(traffic):
    for name in (EXCHANGE, REFRESH):
        call = call_for(traffic, name)
        described = described_params(name)
        # The collection's own auth puts the user token in the query as access_token (addTokenTo: queryParams).
        assert set(call.query_names) <= set(described) | {"access_token"}, (name, call.query_names)
        assert set(described) <= set(call.query_names), (name, set(described) - set(call.query_names))
        assert call.q("grant_type") == described["grant_type"]


def test_profile_request_asks_for_described_fields(traffic):
    call = call_for(traffic, PROFILE)
    assert set(call.query_names) <= set(described_params(PROFILE)) | {"access_token"}
    asked = set(call.q("fields").split(","))
    assert asked <= set(variables()["fields_profile"].split(",")), asked - set(variables()["fields_profile"].split(","))


def test_answers_have_the_example_answers_keys_and_types(traffic):
    for name in (CODE, EXCHANGE, PROFILE):
        call = call_for(traffic, name)
        assert call.status == 200, call.response_body
        assert same_shape(call.json(), json.loads(example(name))) == [], name
    # The refresh item's example answer is empty: there is nothing to compare the refresh answer with.
    assert example(REFRESH) == ""


def test_profile_answer_has_only_the_fields_asked_for(traffic):
    call = call_for(traffic, PROFILE)
    assert set(call.json()) <= set(call.q("fields").split(",")) | {"id"}
