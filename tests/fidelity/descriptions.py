"""Read the providers' descriptions (the copies in tests/data/providers) and turn them into
JSON Schema that `jsonschema_rs` can check answers against.

- OpenAPI 3.0 (X, Pinterest): `nullable`, `discriminator` and boolean `exclusiveMinimum/Maximum`
  are rewritten into Draft 4; `$ref`s resolve inside the document.
- Google discovery (YouTube): `{"$ref": "Channel"}` becomes `{"$ref": "#/schemas/Channel"}`; the
  schemas' own `id` keyword is dropped (in Draft 4 it would move the base URI).
- Meta codegen node specs (Facebook, Instagram): a node's `fields` become `properties`
  (`string`, `int`, `bool`, `list<T>`, `map<K, V>`, `datetime`, other node names...).

`undescribed_keys` walks an answer beside its schema and lists every object key that the
schema does not define, so an answer that invents fields is caught even where the
description leaves `additionalProperties` open (none of these descriptions closes it).
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

DATA = Path(__file__).resolve().parents[1] / "data" / "providers"

SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
SUBSCHEMA_ONE = ("items", "not", "additionalProperties")


@cache
def load(relative: str) -> dict[str, Any]:
    return json.loads((DATA / relative).read_text())


def fresh(relative: str) -> dict[str, Any]:
    """A private copy, for tests that mutate a description to see a check fail."""
    return copy.deepcopy(load(relative))


# --- OpenAPI 3.0 ---------------------------------------------------------------------------

def _oas_schema(node: Any) -> Any:
    """One OpenAPI 3.0 Schema Object -> Draft 4, recursively."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _oas_schema(sub) for name, sub in value.items()}
        elif key in SUBSCHEMA_LISTS:
            out[key] = [_oas_schema(sub) for sub in value]
        elif key in SUBSCHEMA_ONE and isinstance(value, dict):
            out[key] = _oas_schema(value)
        elif key in ("discriminator", "nullable", "readOnly", "writeOnly", "example", "xml", "externalDocs",
                     "deprecated"):
            continue
        else:
            out[key] = value
    disc = node.get("discriminator")
    if isinstance(disc, dict) and disc.get("mapping"):
        # "if <prop> == v then the mapped schema": (prop != v) or mapped, for every v.
        prop = disc["propertyName"]
        rules = [{"anyOf": [{"properties": {prop: {"not": {"enum": [v]}}}}, {"$ref": ref}]}
                 for v, ref in disc["mapping"].items()]
        out["allOf"] = out.get("allOf", []) + rules
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def response_schema(doc: dict[str, Any], path: str, method: str, status: str = "200",
                    media: str = "application/json") -> dict[str, Any]:
    return doc["paths"][path][method.lower()]["responses"][status]["content"][media]["schema"]


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation_parameters(doc: dict[str, Any], path: str, method: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(in, name) -> parameter object, path-level and operation-level, refs resolved."""
    item = doc["paths"][path]
    params = [*item.get("parameters", []), *item[method.lower()].get("parameters", [])]
    out = {}
    for p in params:
        p = resolve(doc, p)
        out[(p["in"], p["name"])] = p
    return out


# --- Google discovery ----------------------------------------------------------------------

def _discovery_schema(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            out[key] = f"#/schemas/{value}"
        elif key == "properties":
            out[key] = {name: _discovery_schema(sub) for name, sub in value.items()}
        elif key in SUBSCHEMA_ONE and isinstance(value, dict):
            out[key] = _discovery_schema(value)
        elif key in ("id", "annotations", "deprecated"):
            continue
        elif key == "type" and value == "any":
            continue
        else:
            out[key] = value
    return out


def discovery_method(doc: dict[str, Any], method_id: str) -> dict[str, Any]:
    """`youtube.channels.list` -> its method object."""
    _, resource, method = method_id.split(".")
    return doc["resources"][resource]["methods"][method]


# --- Meta codegen node specs -----------------------------------------------------------------

SCALARS = {
    "string": {"type": "string"}, "int": {"type": "integer"}, "unsigned int": {"type": "integer", "minimum": 0},
    "float": {"type": "number"}, "bool": {"type": "boolean"}, "datetime": {"type": "string"},
    "Object": {}, "id": {"type": "string"},
}


def meta_type(type_name: str, nodes: dict[str, Any], seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A Meta SDK type string -> JSON Schema."""
    t = type_name.strip()
    if t in SCALARS:
        return dict(SCALARS[t])
    if m := re.fullmatch(r"list<(.+)>", t):
        return {"type": "array", "items": meta_type(m.group(1), nodes, seen)}
    if m := re.fullmatch(r"map<\s*([^,]+?)\s*,\s*(.+)>", t):
        return {"type": "object", "additionalProperties": meta_type(m.group(2), nodes, seen)}
    if t in nodes and t not in seen:
        return meta_node_schema(t, nodes, seen | {t})
    # Another node the copy does not carry (PageCategory, IGUser...): an object with its own fields.
    return {"type": "object"}


def meta_node_schema(node: str, nodes: dict[str, Any], seen: frozenset[str] = frozenset(),
                     enums: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A node's `fields` as a JSON Schema object (every field optional: Graph answers only what was asked)."""
    props = {}
    for f in nodes[node]["fields"]:
        schema = meta_type(f["type"], nodes, seen | {node})
        for e in enums or ():
            if e.get("node") == node and e.get("field_or_param") == f["name"] and not e["name"].endswith("_enum_param"):
                schema["enum"] = list(e["values"])
        props[f["name"]] = schema
    return {"type": "object", "properties": props}


def meta_list_schema(item: dict[str, Any]) -> dict[str, Any]:
    """Graph wraps every edge list as {"data": [...], "paging": {...}} (providers README caveat)."""
    return {"type": "object", "required": ["data"], "properties": {
        "data": {"type": "array", "items": item},
        "paging": {"type": "object", "properties": {
            "cursors": {"type": "object", "properties": {"before": {"type": "string"}, "after": {"type": "string"}}},
            "next": {"type": "string"}, "previous": {"type": "string"}}},
    }}


def meta_api(nodes: dict[str, Any], node: str, method: str, endpoint: str) -> dict[str, Any]:
    """The `apis` entry of `node` for `METHOD endpoint` (`#get` = the node itself)."""
    for api in nodes[node]["apis"]:
        if api["method"] == method and (api.get("endpoint") or api.get("name")) == endpoint:
            return api
    raise KeyError(f"{node} has no {method} {endpoint}")


def meta_field_names(nodes: dict[str, Any], node: str) -> set[str]:
    return {f["name"] for f in nodes[node]["fields"]}


def meta_get_edges(nodes: dict[str, Any], node: str) -> set[str]:
    return {a["endpoint"] for a in nodes[node]["apis"] if a["method"] == "GET" and a.get("endpoint")}


# --- checking answers ------------------------------------------------------------------------

def errors(validator: jsonschema_rs.Draft4Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.instance_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(instance)]


def undescribed_keys(instance: Any, schema: Any, root: dict[str, Any], at: str = "") -> list[str]:
    """Keys of `instance` objects that no `properties` of the matching (sub)schema defines.

    Follows $ref, allOf/anyOf/oneOf, items and additionalProperties (the schema is already
    Draft 4: converted by one of the functions above). An object schema with no
    `properties` at all, or with a schema-valued `additionalProperties`, defines any key.
    """
    found: list[str] = []
    schemas = _flatten(schema, root)
    if isinstance(instance, dict):
        props: dict[str, list[Any]] = {}
        open_ = False
        for s in schemas:
            for name, sub in (s.get("properties") or {}).items():
                props.setdefault(name, []).append(sub)
            extra = s.get("additionalProperties")
            if isinstance(extra, dict):
                open_ = True
                for key in instance:
                    if key not in (s.get("properties") or {}):
                        props.setdefault(key, []).append(extra)
        if not open_ and not any("properties" in s for s in schemas):
            return []  # a free-form object ({"type": "object"} or {})
        for key, value in instance.items():
            if key not in props:
                if not open_:
                    found.append(f"{at}/{key}")
                continue
            for sub in props[key][:1] if len(props[key]) == 1 else [{"allOf": props[key]}]:
                found += undescribed_keys(value, sub, root, f"{at}/{key}")
    elif isinstance(instance, list):
        items = [s["items"] for s in schemas if isinstance(s.get("items"), dict)]
        for i, value in enumerate(instance):
            if items:
                found += undescribed_keys(value, {"allOf": items}, root, f"{at}/{i}")
    return found


def _flatten(schema: Any, root: dict[str, Any], depth: int = 0) -> list[dict[str, Any]]:
    """A schema and every schema it combines with (refs followed), for reading `properties`."""
    if not isinstance(schema, dict) or depth > 50:
        return []
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return _flatten(target, root, depth + 1)
    out = [schema]
    for key in SUBSCHEMA_LISTS:
        for sub in schema.get(key, []):
            out += _flatten(sub, root, depth + 1)
    return out


def openapi_root(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The converted root document used by `openapi_validator`, for `undescribed_keys`."""
    components = {name: _oas_schema(s) for name, s in doc["components"].get("schemas", {}).items()}
    return {**_oas_schema(schema), "components": {"schemas": components}}


def discovery_root(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return {"$ref": f"#/schemas/{name}", "schemas": {n: _discovery_schema(s) for n, s in doc["schemas"].items()}}


def check_answer(root: dict[str, Any], instance: Any, formats: dict[str, Any] | None = None) -> list[str]:
    """Schema errors plus undescribed keys, for a converted root schema. Formats are checked
    (RFC 3339 `date-time` unless `formats` gives the provider's own reading of a format)."""
    validator = jsonschema_rs.Draft4Validator(root, validate_formats=True, formats=formats)
    return errors(validator, instance) + [f"{k}: not defined by the description" for k in
                                          undescribed_keys(instance, root, root)]


def pinterest_date_time(value: str) -> bool:
    """Pinterest's description reads `format: date-time` as "Date and time (UTC):
    YYYY-MM-DD'T'hh:mm:ss", and its own examples omit the offset ("2024-01-01T20:10:40",
    "2022-12-14T21:03:01.602000") beside RFC 3339 ones ("2022-03-14T15:15:22Z"). Accept both."""
    return re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)?", value) is not None
