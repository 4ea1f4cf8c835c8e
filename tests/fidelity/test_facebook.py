"""Facebook Pages (Graph API) against Meta's codegen node specs (tests/data/providers/meta)."""

from __future__ import annotations

import re

from domain.networks.adapters.facebook import SPEC
from tests.fidelity.descriptions import (
    check_answer, load, meta_api, meta_field_names, meta_get_edges, meta_list_schema, meta_node_schema,
)

DOC = "meta/nodes.subset.json"
# Parameters every Graph call takes, whatever the node: field selection, the token, cursor paging.
GRAPH_COMMON = {"fields", "access_token", "limit", "after", "before"}


def accounts_call(traffic):
    calls = [e for e in traffic["facebook"].exchanges if e.method == "GET"
             and re.fullmatch(r"/v\d+\.\d+/me/accounts", e.real_path)]
    assert len(calls) == 1
    return calls[0]


def test_accounts_request_is_a_described_edge_with_described_fields(traffic):
    doc = load(DOC)
    nodes = doc["nodes"]
    call = accounts_call(traffic)
    assert call.real_path == SPEC.api_base_url.split("graph.facebook.com", 1)[1] + "/me/accounts"
    api = meta_api(nodes, "User", "GET", "accounts")  # /me is the User node
    assert api["return"] == "Page"
    allowed = {p["name"] for p in api["params"]} | GRAPH_COMMON
    assert set(call.query_names) <= allowed, set(call.query_names) - allowed
    fields = call.q("fields").split(",")
    # A `fields` name is a Page field, or a Page GET edge (Graph's field expansion: `picture`).
    known = meta_field_names(nodes, "Page") | meta_get_edges(nodes, "Page")
    assert set(fields) <= known, set(fields) - known
    assert "access_token" in meta_field_names(nodes, "Page")  # the page token Chorus keeps
    assert call.auth_scheme == "bearer"


def test_accounts_answer_matches_the_page_fields(traffic):
    doc = load(DOC)
    nodes = doc["nodes"]
    call = accounts_call(traffic)
    body = call.json()
    assert body["data"], "alice manages pages"
    schema = meta_list_schema(meta_node_schema("Page", nodes, enums=doc["enum_types"]))
    # Edges asked for in `fields` come back expanded (checked below); the rest are Page fields.
    edges = meta_get_edges(nodes, "Page")
    fields_only = {**body, "data": [{k: v for k, v in page.items() if k not in edges} for page in body["data"]]}
    assert check_answer(schema, fields_only) == []
    asked = set(call.q("fields").split(","))
    for page in body["data"]:
        assert set(page) <= asked | {"id"}, "Graph answers only the fields asked for"


def test_accounts_answer_carries_every_requested_edge(traffic):
    doc = load(DOC)
    call = accounts_call(traffic)
    edges = set(call.q("fields").split(",")) & meta_get_edges(doc["nodes"], "Page")
    assert edges == {"picture"}
    for page in call.json()["data"]:
        assert "picture" in page and isinstance(page["picture"].get("data"), dict), page.get("name")
