"""Instagram API with Instagram Login (graph.instagram.com) against Meta's codegen node specs
(tests/data/providers/meta: IGUserForIGOnlyAPI, IGAccessTokenForIGOnlyAPI, IGRefreshAccessTokenForIGOnlyAPI).

The code exchange at api.instagram.com/oauth/access_token is not described by any of them."""

from __future__ import annotations

import re

import pytest

from domain.networks.oauth import META_GRAPH
from domain.networks.adapters.base import Network
from tests.fidelity.descriptions import check_answer, load, meta_api, meta_field_names, meta_node_schema

DOC = "meta/nodes.subset.json"
GRAPH_COMMON = {"fields", "access_token"}


def graph_call(traffic, path: str):
    """One GET to graph.instagram.com{path}, with or without a Graph version."""
    calls = [e for e in traffic["instagram"].exchanges
             if e.method == "GET" and re.fullmatch(r"(/v\d+\.\d+)?" + re.escape(path), e.real_path)]
    assert len(calls) == 1, [(e.method, e.path) for e in traffic["instagram"].exchanges]
    return calls[0]


def test_chorus_reads_the_ig_login_host():
    assert META_GRAPH[Network.INSTAGRAM] == "https://graph.instagram.com"


def test_profile_request_asks_for_described_fields(traffic):
    nodes = load(DOC)["nodes"]
    call = graph_call(traffic, "/me")
    api = meta_api(nodes, "IGUserForIGOnlyAPI", "GET", "#get")
    assert set(call.query_names) <= {p["name"] for p in api["params"]} | GRAPH_COMMON
    fields = set(call.q("fields").split(","))
    assert fields <= meta_field_names(nodes, "IGUserForIGOnlyAPI"), fields - meta_field_names(nodes, "IGUserForIGOnlyAPI")
    assert call.auth_scheme == "bearer"


def test_profile_answer_matches_the_node_fields(traffic):
    doc = load(DOC)
    call = graph_call(traffic, "/me")
    body = call.json()
    assert check_answer(meta_node_schema("IGUserForIGOnlyAPI", doc["nodes"], enums=doc["enum_types"]), body) == []
    assert set(body) <= set(call.q("fields").split(",")) | {"id"}, "Graph answers only the fields asked for"


@pytest.mark.parametrize(("path", "node", "grant_type"), [
    ("/access_token", "IGAccessTokenForIGOnlyAPI", "ig_exchange_token"),
    ("/refresh_access_token", "IGRefreshAccessTokenForIGOnlyAPI", "ig_refresh_token"),
])
def test_long_lived_token_requests_and_answers_are_described(traffic, path, node, grant_type):
    doc = load(DOC)
    call = graph_call(traffic, path)
    api = meta_api(doc["nodes"], node, "GET", "#get")
    described = {p["name"] for p in api["params"]}
    assert set(call.query_names) <= described, set(call.query_names) - described
    assert {p["name"] for p in api["params"] if p["required"]} <= set(call.query_names)
    assert call.q("grant_type") == grant_type
    assert call.status == 200, call.response_body
    assert check_answer(meta_node_schema(node, doc["nodes"]), call.json()) == []
