"""Stripe's v1 wire format: bracket-nested form decoding, errors, ids, webhook signatures."""

from __future__ import annotations

import json
import secrets
import string
import time
from typing import Any
from urllib.parse import parse_qsl

import stripe

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """An id the way Stripe spells them: `cus_` + 24 alphanumerics (`cs_test_` is longer)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _split(key: str) -> list[str]:
    """`items[0][price]` -> ["items", "0", "price"]; `expand[]` -> ["expand", ""]."""
    if "[" not in key:
        return [key]
    head, _, rest = key.partition("[")
    parts = [head]
    while rest:
        inner, sep, rest = rest.partition("]")
        if not sep:
            raise ValueError(f"Invalid array: {key}")
        parts.append(inner)
        if rest.startswith("["):
            rest = rest[1:]
        elif rest:
            raise ValueError(f"Invalid parameter name: {key}")
    return parts


def _listify(node: Any, under_metadata: bool = False) -> Any:
    if not isinstance(node, dict):
        return node
    if not under_metadata and node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v, under_metadata=(k == "metadata")) for k, v in node.items()}


def decode_form(body: str) -> dict[str, Any]:
    """Decode `application/x-www-form-urlencoded` the way Stripe reads it.

    Nested keys use brackets; arrays are `a[0]=x&a[1]=y` (the SDK's form) or `a[]=x&a[]=y`;
    objects inside arrays are `items[0][price]=p`. Values stay strings ("" means unset);
    metadata keys that look like numbers stay keys.
    """
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True, strict_parsing=False):
        parts = _split(key)
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                nxt = node.get(part)
                if not isinstance(nxt, dict):
                    nxt = {}
                    node[part] = nxt
                node = nxt
    return _listify(root)


class StripeError(Exception):
    """Answered as Stripe's error object: {"error": {type, message, param, code, ...}}."""

    def __init__(self, status: int, type_: str, message: str, *, param: str | None = None,
                 code: str | None = None, decline_code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type_, "message": message}
        if param is not None:
            self.body["param"] = param
        if code is not None:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if decline_code is not None:
            self.body["decline_code"] = decline_code
        if extra:
            self.body.update(extra)

    def payload(self, request_id: str) -> dict[str, Any]:
        body = dict(self.body)
        body["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        return {"error": body}


def missing(kind: str, ident: str, param: str = "id") -> StripeError:
    return StripeError(404, "invalid_request_error", f"No such {kind}: '{ident}'", param=param,
                       code="resource_missing")


def invalid(message: str, param: str | None = None, code: str | None = "parameter_invalid_empty") -> StripeError:
    return StripeError(400, "invalid_request_error", message, param=param, code=code)


def unknown_params(params: dict[str, Any], allowed: set[str]) -> None:
    for key in params:
        if key not in allowed and key != "expand":
            raise StripeError(400, "invalid_request_error", f"Received unknown parameter: {key}", param=key,
                              code="parameter_unknown")


def as_int(params: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(400, "invalid_request_error", f"Invalid integer: {value}", param=key,
                          code="parameter_invalid_integer") from None


def as_bool(params: dict[str, Any], key: str, default: bool | None = None) -> bool | None:
    value = params.get(key)
    if value is None or value == "":
        return default
    if value in ("true", "false"):
        return value == "true"
    raise StripeError(400, "invalid_request_error", f"Invalid boolean: {value}", param=key)


def apply_metadata(target: dict[str, Any], given: Any, param: str = "metadata") -> None:
    """Stripe's metadata update: keys merge, a key set to "" is removed, metadata="" clears all."""
    if given is None:
        return
    if given == "":
        target.clear()
        return
    if not isinstance(given, dict):
        raise invalid("Invalid object", param, code="parameter_invalid_object")
    for k, v in given.items():
        if v == "":
            target.pop(k, None)
        else:
            target[k] = str(v)


# --- webhook signatures (the SDK's own helper) ---

def sign(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header for `payload`, made by stripe.WebhookSignature."""
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    return stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=timestamp)


def sign_stale(payload: bytes | str, secret: str, age_seconds: int = 3600) -> str:
    """A correctly computed signature whose timestamp is `age_seconds` old (beyond the 300 s tolerance)."""
    return sign(payload, secret, timestamp=int(time.time()) - age_seconds)


def sign_bad(payload: bytes | str, secret: str = "whsec_wrong", timestamp: int | None = None) -> str:
    """A fresh header signed with the wrong secret (verification must fail)."""
    return sign(payload, secret + "_not_it", timestamp=timestamp)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, indent=2).encode("utf-8")
