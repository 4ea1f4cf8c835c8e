"""The checks themselves: each one rejects a wrong answer or request, and the wire recording
agrees with the sandbox's own call log. (If these pass while the network tests pass, the network
tests are not passing because the checks are toothless.)"""

from __future__ import annotations

import copy

from tests.fidelity.conftest import DESCRIBED
from tests.fidelity.descriptions import (
    check_answer, discovery_root, fresh, load, meta_list_schema, meta_node_schema, openapi_root, pinterest_date_time,
    response_schema,
)


def test_recording_matches_the_sandbox_call_log(traffic):
    """GET /_sandbox/calls logs method and path of every provider call (not the query or form,
    which is why the fidelity tests record on the wire): both must list the same calls."""
    for network in DESCRIBED:
        t = traffic[network]
        assert [(c["method"], c["path"].rstrip("/")) for c in t.sandbox_calls] == [
            (e.method, e.path.rstrip("/")) for e in t.exchanges], network
        assert all(c["status"] < 400 for c in t.sandbox_calls), network


def test_openapi_check_rejects_wrong_types_missing_required_and_invented_keys():
    doc = load("x/openapi.subset.json")
    root = openapi_root(doc, response_schema(doc, "/2/users/me", "GET"))
    assert check_answer(root, {"data": {"id": "1", "name": "A", "username": "a"}}) == []
    assert check_answer(root, {"data": {"id": 1, "name": "A", "username": "a"}})
    assert check_answer(root, {"data": {"id": "1", "name": "A", "username": "a", "handle": "a"}}) == [
        "/data/handle: not defined by the description"]
    assert check_answer(root, {"data": {"id": "1", "created_at": "yesterday"}})  # format: date-time


def test_openapi_check_follows_discriminator_and_nullable():
    doc = load("pinterest/openapi.subset.json")
    root = openapi_root(doc, response_schema(doc, "/oauth/token", "POST"))
    ok = {"access_token": "a", "refresh_token": "r", "response_type": "refresh_token", "token_type": "bearer",
          "expires_in": 1, "refresh_token_expires_in": 1, "refresh_token_expires_at": 1, "scope": "s"}
    assert check_answer(root, ok) == []
    short = {k: v for k, v in ok.items() if k != "refresh_token_expires_at"}
    assert check_answer(root, short), "the refresh_token mapping requires refresh_token_expires_at"
    assert check_answer(root, {**short, "response_type": "authorization_code"}) == []
    boards = openapi_root(doc, response_schema(doc, "/boards", "GET"))
    assert check_answer(boards, {"items": [], "bookmark": None}) == []
    assert check_answer(boards, {"items": [{"id": "1", "name": "n", "privacy": "HIDDEN"}]})
    assert pinterest_date_time("2024-01-01T20:10:40") and not pinterest_date_time("2024-01-01")


def test_a_renamed_property_in_the_description_fails_the_check():
    doc = fresh("x/openapi.subset.json")
    user = doc["components"]["schemas"]["User"]["properties"]
    user["screen_name"] = user.pop("username")
    root = openapi_root(doc, response_schema(doc, "/2/users/me", "GET"))
    assert check_answer(root, {"data": {"id": "1", "name": "A", "username": "a"}}) == [
        "/data/username: not defined by the description"]


def test_discovery_check_rejects_wrong_types_and_invented_keys():
    doc = load("youtube/youtube.v3.subset.json")
    root = discovery_root(doc, "ChannelListResponse")
    assert check_answer(root, {"items": [{"id": "UC1", "snippet": {"title": "t"}}]}) == []
    assert check_answer(root, {"items": [{"id": "UC1", "snippet": {"title": 5}}]})
    assert check_answer(root, {"items": [{"id": "UC1", "snippet": {"handle": "t"}}]}) == [
        "/items/0/snippet/handle: not defined by the description"]
    assert check_answer(root, {"pageInfo": {"totalResults": "1"}})


def test_meta_converter_types_fields_and_wraps_lists():
    doc = load("meta/nodes.subset.json")
    ig = meta_node_schema("IGUserForIGOnlyAPI", doc["nodes"])
    assert check_answer(ig, {"id": "1", "user_id": 17, "followers_count": 3}) == []
    assert check_answer(ig, {"id": "1", "user_id": "17"})
    assert check_answer(ig, {"id": "1", "handle": "a"}) == ["/handle: not defined by the description"]
    pages = meta_list_schema(meta_node_schema("Page", doc["nodes"], enums=doc["enum_types"]))
    assert check_answer(pages, {"data": [{"id": "1", "name": "n"}], "paging": {"cursors": {"before": "a"}}}) == []
    assert check_answer(pages, [{"id": "1"}]), "Graph lists come wrapped in data"
    assert check_answer(pages, {"data": [{"id": "1", "is_published": "yes"}]})
    nodes = copy.deepcopy(doc["nodes"])
    nodes["Page"]["fields"] = [f for f in nodes["Page"]["fields"] if f["name"] != "category"]
    assert check_answer(meta_list_schema(meta_node_schema("Page", nodes)), {"data": [{"category": "Bakery"}]})


def test_publish_answer_checks_reject_wrong_shapes():
    """The publishing checks use the same converters: a post without its id, a pin with an
    invented key, a YouTube video with a wrongly typed field are all caught."""
    x = load("x/openapi.subset.json")
    created = openapi_root(x, response_schema(x, "/2/tweets", "POST", "201"))
    assert check_answer(created, {"data": {"id": "1234567890", "text": "hola"}}) == []
    assert check_answer(created, {"data": {"id": 1234567890, "text": "hola"}})  # id is a string
    pins = load("pinterest/openapi.subset.json")
    pin = openapi_root(pins, response_schema(pins, "/pins", "POST", "201"))
    assert check_answer(pin, {"id": "1", "board_id": "2"}) == []
    assert "/note: not defined by the description" in check_answer(pin, {"id": "1", "board_id": "2", "note": ""})
    youtube = load("youtube/youtube.v3.subset.json")
    video = discovery_root(youtube, "Video")
    assert check_answer(video, {"kind": "youtube#video", "id": "abcdefghijk"}) == []
    assert check_answer(video, {"kind": "youtube#video", "id": "abcdefghijk", "statistics": {"viewCount": [1]}})
