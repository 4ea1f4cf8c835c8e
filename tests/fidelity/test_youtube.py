"""YouTube Data API v3 against Google's discovery document (tests/data/providers/youtube)."""

from __future__ import annotations

from domain.networks.adapters.youtube import OAUTH, SPEC
from tests.fidelity.descriptions import check_answer, discovery_method, discovery_root, load

DOC = "youtube/youtube.v3.subset.json"


def test_scopes_are_described_and_cover_channels_list():
    doc = load(DOC)
    described = set(doc["auth"]["oauth2"]["scopes"])
    assert set(OAUTH.scopes) <= described, set(OAUTH.scopes) - described
    assert set(OAUTH.scopes) & set(discovery_method(doc, "youtube.channels.list")["scopes"])


def test_channels_list_request_matches_the_method(traffic):
    doc = load(DOC)
    method = discovery_method(doc, "youtube.channels.list")
    call = traffic["youtube"].one("GET", "/youtube/v3/channels")
    assert call.method == method["httpMethod"]
    assert call.real_path == "/" + doc["servicePath"] + method["path"]
    # Chorus calls www.googleapis.com, the discovery root is youtube.googleapis.com; both serve
    # /youtube/v3/ (the URL rule keeps only the path, which is what is compared here).
    assert SPEC.api_base_url in ("https://www.googleapis.com", doc["rootUrl"].rstrip("/"))
    params = {**doc["parameters"], **method["parameters"]}
    for name, value in call.query:
        assert name in params, f"{name!r} is not a parameter of channels.list"
        spec = params[name]
        assert spec["location"] == "query"
        values = value.split(",") if spec.get("repeated") else [value]
        if spec["type"] == "boolean":
            assert values == ["true"] or values == ["false"], (name, value)
        if "enum" in spec:
            assert set(values) <= set(spec["enum"]), (name, value)
    for name, spec in method["parameters"].items():
        if spec.get("required"):
            assert call.q(name), f"channels.list requires {name!r}"
    # `part` names the Channel resource's top-level properties.
    assert set(call.q("part").split(",")) <= set(doc["schemas"]["Channel"]["properties"])
    assert call.auth_scheme == "bearer"


def test_channels_list_answer_matches_the_response_schema(traffic):
    doc = load(DOC)
    method = discovery_method(doc, "youtube.channels.list")
    call = traffic["youtube"].one("GET", "/youtube/v3/channels")
    body = call.json()
    assert body.get("items"), "alice has a channel"
    assert check_answer(discovery_root(doc, method["response"]["$ref"]), body) == []
    # "The part parameter specifies ... properties that the API response will include": only those
    # parts (plus the always-present kind, etag and id) come back.
    parts = set(call.q("part").split(","))
    for item in body["items"]:
        assert set(item) - {"kind", "etag", "id"} <= parts
