"""Dev tool: cut the small subsets the fidelity tests need out of the providers' own API
descriptions, given the folder that holds the upstream copies (see the README.md here for the
sources and licences).

    .venv/bin/python tests/data/providers/regenerate.py PATH/TO/PROVIDER/DESCRIPTIONS

Tests never run this: they read only the copies written here.
Each copy keeps the upstream structure (an OpenAPI document with fewer paths, a discovery
document with fewer resources, Meta node files with fewer apis, a Postman collection with
fewer requests), so the tests read it the way they would read the whole file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# What Chorus calls today (domain/networks/oauth.py and identity.py; the publishing clients in
# domain/networks/adapters/).
X_PATHS = {"/2/users/me": ["get"], "/2/tweets": ["post"], "/2/tweets/{id}": ["get"], "/2/tweets/search/recent": ["get"]}
PINTEREST_PATHS = {"/oauth/token": ["post"], "/user_account": ["get"], "/boards": ["get"], "/pins": ["post"],
                   "/pins/{pin_id}": ["get"], "/pins/{pin_id}/analytics": ["get"]}
YOUTUBE_METHODS = {"channels": ["list"], "videos": ["insert", "list"], "commentThreads": ["list"], "comments": ["insert"]}
YOUTUBE_ROOT_SCHEMAS = ["ChannelListResponse", "Video", "VideoListResponse", "CommentThreadListResponse", "Comment"]
# node -> which apis to keep ("#get" = the node itself, else the GET/POST edge name)
META_NODES: dict[str, list[tuple[str, str]] | None] = {
    "User": [("GET", "accounts"), ("GET", "#get")],
    "Page": [("GET", "*")],  # GET edges only: Graph field expansion accepts an edge name in `fields`
    "IGUserForIGOnlyAPI": [("GET", "#get")],
    "IGAccessTokenForIGOnlyAPI": None,  # whole (tiny)
    "IGRefreshAccessTokenForIGOnlyAPI": None,
    # Publishing (Facebook: Page feed/photos, the post, its comments and insights; Instagram: the
    # container, media_publish, the media, its comments and replies, insights).
    "PagePost": [("GET", "#get"), ("GET", "comments"), ("GET", "insights"), ("GET", "*")],
    "Photo": [("GET", "#get")],
    "AdVideo": [("GET", "#get")],  # a page video (POST /{page}/videos, then GET /{video-id})
    "Comment": [("GET", "#get"), ("POST", "comments")],
    "IGMedia": [("GET", "#get"), ("GET", "comments"), ("GET", "insights")],
    "IGMediaForIGOnlyAPI": [("GET", "#get"), ("GET", "comments"), ("GET", "insights")],
    "ShadowIGMediaBuilder": None,
    "IGComment": [("GET", "#get"), ("POST", "replies")],
    "InsightsResult": None,
    "InsightsValue": None,
}
# Page's POST feed / photos (with their params), besides its GET edge names above.
META_EXTRA_APIS = {"Page": [("POST", "feed"), ("POST", "photos"), ("POST", "videos")], "IGUserForIGOnlyAPI": [("POST", "media"),
                                                                                       ("POST", "mediapublish")]}
THREADS_REQUESTS = ("Exchange the Code For a Token", "Get Long-Lived Access Token", "Refresh Access Token",
                    "Get App-Scoped User's Profile Information",
                    # publishing (domain/networks/adapters/threads.py)
                    "1.1 Create Text Container", "1.2 Create Image Container", "2. Publish Threads Post",
                    "Check Container's Publishing Status", "Get Threads Post Details", "Get Threads Replies",
                    "Respond to Replies", "Get Post Insights")


def dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=False) + "\n")
    print(f"{path.relative_to(HERE)}: {path.stat().st_size:,} B")


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.add(v)
            elif k == "mapping" and isinstance(v, dict):  # OpenAPI discriminator mapping values are refs too
                out.update(x for x in v.values() if isinstance(x, str) and x.startswith("#/"))
                _refs(v, out)
            else:
                _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)


def _pointer(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def openapi_subset(doc: dict[str, Any], keep: dict[str, list[str]], extra_components: dict[str, list[str]]) -> dict:
    paths = {p: {m: doc["paths"][p][m] for m in methods} for p, methods in keep.items()}
    components: dict[str, dict[str, Any]] = {}
    todo: set[str] = set()
    _refs(paths, todo)
    for section, names in extra_components.items():
        for name in names:
            todo.add(f"#/components/{section}/{name}")
    seen: set[str] = set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        node = _pointer(doc, ref)
        components.setdefault(section, {})[name] = node
        found: set[str] = set()
        _refs(node, found)
        todo |= found - seen
    out = {k: doc[k] for k in ("openapi", "info", "servers") if k in doc}
    out["info"] = {k: doc["info"][k] for k in ("title", "version") if k in doc["info"]}
    out["paths"] = paths
    out["components"] = {s: dict(sorted(v.items())) for s, v in sorted(components.items())}
    return out


def youtube_subset(doc: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    todo = list(YOUTUBE_ROOT_SCHEMAS)
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        schemas[name] = doc["schemas"][name]
        found: set[str] = set()
        _refs(schemas[name], found)
        todo += [r for r in found if r not in schemas]
    resources = {r: {"methods": {m: doc["resources"][r]["methods"][m] for m in ms}} for r, ms in YOUTUBE_METHODS.items()}
    keep = ("kind", "discoveryVersion", "id", "name", "version", "revision", "rootUrl", "servicePath", "basePath",
            "baseUrl", "batchPath", "parameters", "auth")
    return {**{k: doc[k] for k in keep if k in doc}, "resources": resources, "schemas": dict(sorted(schemas.items()))}


def meta_subset(src: Path) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for name, wanted in META_NODES.items():
        node = json.loads((src / "meta" / f"{name}.json").read_text())
        if wanted is not None:
            apis = []
            for api in node["apis"]:
                key = api.get("endpoint") or api.get("name")
                for method, edge in [*wanted, *META_EXTRA_APIS.get(name, [])]:
                    if api["method"] == method and edge == "*":  # edge names only, params dropped
                        apis.append({k: v for k, v in api.items() if k != "params"})
                    elif api["method"] == method and key == edge:
                        apis.append(api)
            node = {"apis": apis, "fields": node["fields"]}
        nodes[name] = node
    enums = json.loads((src / "meta" / "enum_types.json").read_text())
    kept = [e for e in enums if e.get("node") in META_NODES]
    return {"nodes": nodes, "enum_types": kept}


def threads_subset(doc: dict[str, Any]) -> dict[str, Any]:
    def walk(items: list[dict[str, Any]]):
        for it in items:
            if "item" in it:
                yield from walk(it["item"])
            else:
                yield it

    items = [it for it in walk(doc["item"]) if it["name"] in THREADS_REQUESTS]
    assert len(items) == len(THREADS_REQUESTS), [it["name"] for it in items]
    return {"info": doc["info"], "auth": doc["auth"], "variable": doc["variable"], "item": items}


def main(src: Path) -> None:
    x = json.loads((src / "x" / "openapi.json").read_text())
    sub = openapi_subset(x, X_PATHS, {})
    sub["components"]["securitySchemes"] = {"OAuth2UserToken": x["components"]["securitySchemes"]["OAuth2UserToken"]}
    dump(HERE / "x" / "openapi.subset.json", sub)

    pin = json.loads((src / "pinterest" / "openapi.json").read_text())
    sub = openapi_subset(pin, PINTEREST_PATHS, {})
    sub["components"]["securitySchemes"] = {k: v for k, v in pin["components"]["securitySchemes"].items()
                                            if k in ("basic", "pinterest_oauth2")}
    dump(HERE / "pinterest" / "openapi.subset.json", sub)

    yt = json.loads((src / "youtube" / "youtube.v3.json").read_text())
    dump(HERE / "youtube" / "youtube.v3.subset.json", youtube_subset(yt))

    dump(HERE / "meta" / "nodes.subset.json", meta_subset(src))

    th = json.loads((src / "threads" / "threads-api.postman_collection.json").read_text())
    dump(HERE / "threads" / "threads-api.subset.postman_collection.json", threads_subset(th))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
