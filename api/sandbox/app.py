"""The network sandbox: one Litestar app that plays the 8 networks' OAuth and account endpoints.

    app = create_sandbox_app()          # own in-memory state: app.state.sandbox
    uvicorn.run(app, host="127.0.0.1")  # or mount it; adapters point at {base}/{network}{real path}

Provider calls go through one catch-all route (``/{network}/{path}``) that finds the
provider endpoint, applies any injected fault, logs the call and answers in the provider's
own wire format. The control API lives under ``/_sandbox/`` (see README.md).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl

from litestar import Litestar, Request, Response, delete, get, post, route
from litestar.datastructures import State
from litestar.enums import HttpMethod
from litestar.params import FromPath, FromQuery, JSONBody

from api.sandbox import identities as ids
from api.sandbox import publish
from api.sandbox.content import SETTING_KEYS
from api.sandbox.dialects import api_auth_error, json_response, meta_error, not_found, status_error, token_error
from api.sandbox.handlers import Ctx, Route, authorize_page_error, find_route, peek
from api.sandbox.state import MAX_FAULT_SLEEP, ClientApp, Fault, SandboxState
from api.sandbox.urls import NETWORKS, REAL_URLS, sandbox_url

TOKEN_KINDS = ("code", "refresh", "exchange")
FAULT_KINDS = ("status", "timeout", "delay", "invalid_grant", "expired_token", "processing_failed")


def _first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


async def _build_ctx(request: Request, st: SandboxState, network: str, rel: str) -> Ctx:
    query = _first_values(parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    form: dict[str, str] = {}
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and ctype == "application/x-www-form-urlencoded":
        body = await request.body()
        form = _first_values(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    parsed: Any = None
    if request.method in ("POST", "PUT", "PATCH") and (ctype == "application/json" or ctype.endswith("+json")):
        try:
            parsed = json.loads((await request.body()) or b"null")
        except ValueError:
            parsed = None
    return Ctx(state=st, request=request, network=network, method=request.method, path=f"/{network}{rel}", rel=rel,
               query=query, form=form, json=parsed)


async def _apply_fault(ctx: Ctx, fault: Fault, r: Route) -> Response:
    n, kind = ctx.network, ctx.kind
    api = kind not in TOKEN_KINDS and kind not in ("authorize", "revoke")
    if fault.kind == "status":
        status = fault.status or 503
        if fault.body is not None:
            resp = json_response(fault.body, status)
        else:
            resp = status_error(n, status, api=api, retry_after=fault.retry_after, limit=fault.limit)
        for k, v in (fault.headers or {}).items():
            resp.headers[k] = v
        return resp
    if fault.kind == "invalid_grant":
        if kind in TOKEN_KINDS:
            if kind == "exchange" and n in ("instagram", "threads", "facebook"):
                return meta_error("Error validating access token: The session has been invalidated.", 190, subcode=460)
            if n in ("instagram", "threads") and kind == "refresh":
                return meta_error("Error validating access token: The session has been invalidated.", 190, subcode=460)
            return token_error(n, "bad_refresh" if kind == "refresh" else "used_code")
        if kind == "authorize":
            return authorize_page_error("invalid_request", "injected fault")
        return api_auth_error(n, "revoked")
    if fault.kind == "expired_token":
        if kind in TOKEN_KINDS:
            if n in ("instagram", "threads") and kind != "code":
                return meta_error("Error validating access token: Session has expired.", 190, subcode=463)
            return token_error(n, "bad_refresh" if kind == "refresh" else "expired_code")
        return api_auth_error(n, "expired")
    if fault.kind == "processing_failed":  # handled normally; the media it touches fails processing
        ctx.fail_processing = True
        return await r.handler(ctx)
    seconds = min(max(fault.seconds, 0.0), MAX_FAULT_SLEEP)
    if fault.kind == "delay":
        await asyncio.sleep(seconds)
        return await r.handler(ctx)
    if fault.kind == "timeout":
        if fault.effect == "not_applied":
            await asyncio.sleep(seconds)
            return status_error(n, 504, api=api)
        resp = await r.handler(ctx)  # the provider did the work; the answer comes too late
        await asyncio.sleep(seconds)
        return resp
    raise ValueError(fault.kind)


@route("/{network:str}/{rest:path}", http_method=[HttpMethod.GET, HttpMethod.POST, HttpMethod.DELETE, HttpMethod.PUT,
                                                   HttpMethod.PATCH], include_in_schema=False)
async def provider(request: Request, network: FromPath[str], rest: FromPath[str]) -> Response:
    st: SandboxState = request.app.state.sandbox
    if network not in NETWORKS:
        return json_response({"error": "not_found", "error_description": f"the sandbox plays no network {network!r}"}, 404)
    latency = st.content.setting(network, "latency_ms")
    if latency > 0:  # a provider's round trip (POST /_sandbox/config {"publish": {"latency_ms": 50}})
        await asyncio.sleep(min(latency / 1000, MAX_FAULT_SLEEP))
    rel = "/" + rest.strip("/")
    r, groups, other_method = find_route(network, request.method, rel)
    if r is None:
        st.log_call(network=network, method=request.method, path=f"/{network}{rel}", kind="unknown", identity=None,
                    client_id=None, status=405 if other_method else 404, outcome="no such endpoint")
        if other_method:
            return json_response({"error": "method_not_allowed"}, 405)
        return not_found(network, rel)
    ctx = await _build_ctx(request, st, network, rel)
    ctx.groups = groups
    ctx.kind = r.kind(ctx) if callable(r.kind) else r.kind
    identity, client_id = peek(ctx)
    if identity is None:
        identity, client_id = publish.peek_upload(ctx)
    fault = st.take_fault(network, ctx.kind, ctx.path, identity)
    call = st.log_call(network=network, method=request.method, path=ctx.path, kind=ctx.kind, identity=identity,
                       client_id=client_id, fault=fault.id if fault else None)
    if fault is not None:
        call.outcome = f"fault:{fault.kind}"
        resp = await _apply_fault(ctx, fault, r)
    else:
        resp = await r.handler(ctx)
    call.status = resp.status_code
    if not call.outcome:
        call.outcome = "ok" if resp.status_code < 400 else "error"
    return resp


# --- control API ------------------------------------------------------------------------------

def _bad(message: str) -> Response:
    return json_response({"error": message}, 400)


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


@post("/_sandbox/faults", status_code=201)
async def add_fault(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    st = _state(request)
    network = data.get("network")
    if network not in NETWORKS:
        return _bad(f"network must be one of {list(NETWORKS)}")
    kind = data.get("kind")
    if kind not in FAULT_KINDS:
        return _bad(f"kind must be one of {list(FAULT_KINDS)}")
    match = data.get("match") or "*"
    if not isinstance(match, str):
        return _bad("match must be a string")
    times = data.get("times", 1)
    if times is not None and (not isinstance(times, int) or times < 1):
        return _bad("times must be a positive integer or null (until cleared)")
    status = data.get("status")
    if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
        return _bad("status must be an HTTP status code")
    seconds = data.get("seconds", 10.0 if kind == "timeout" else 0.5)
    if not isinstance(seconds, (int, float)) or seconds < 0 or seconds > MAX_FAULT_SLEEP:
        return _bad(f"seconds must be between 0 and {MAX_FAULT_SLEEP}")
    effect = data.get("effect", "applied")
    if effect not in ("applied", "not_applied"):
        return _bad("effect must be applied or not_applied")
    headers = data.get("headers")
    if headers is not None and not (isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())):
        return _bad("headers must be an object of strings")
    fault = st.add_fault(network=network, match=match, kind=kind, identity=data.get("identity"), status=status,
                         body=data.get("body"), headers=headers, seconds=float(seconds), effect=effect, times=times,
                         retry_after=float(data.get("retry_after", 900)), limit=int(data.get("limit", 100)))
    return json_response(fault.public(), 201)


@get("/_sandbox/faults")
async def list_faults(request: Request) -> Response:
    return json_response({"faults": [f.public() for f in _state(request).faults]})


@delete("/_sandbox/faults", status_code=200)
async def clear_faults(request: Request, network: FromQuery[str | None] = None) -> Response:
    st = _state(request)
    before = len(st.faults)
    st.faults[:] = [f for f in st.faults if network is not None and f.network != network]
    return json_response({"cleared": before - len(st.faults)})


@get("/_sandbox/calls")
async def list_calls(request: Request, network: FromQuery[str | None] = None, kind: FromQuery[str | None] = None,
                     identity: FromQuery[str | None] = None, path: FromQuery[str | None] = None) -> Response:
    calls = [c for c in _state(request).calls
             if (network is None or c.network == network) and (kind is None or c.kind == kind
                                                              or kind == "token" and c.kind in TOKEN_KINDS)
             and (identity is None or c.identity == identity) and (path is None or c.path.rstrip("/") == path.rstrip("/"))]
    by_kind: dict[str, int] = {}
    for c in calls:
        by_kind[c.kind] = by_kind.get(c.kind, 0) + 1
    return json_response({"count": len(calls), "by_kind": by_kind, "calls": [asdict(c) for c in calls]})


@get("/_sandbox/posts")
async def list_posts(request: Request, network: FromQuery[str | None] = None,
                     identity: FromQuery[str | None] = None) -> Response:
    """What the networks hold (deleted ones too, marked): for tests to check what arrived."""
    posts = [p for p in _state(request).content.posts.values()
             if (network is None or p.network == network) and (identity is None or p.identity == identity)]
    posts.sort(key=lambda p: (p.created_at, p.id))
    return json_response({"count": len(posts), "posts": [
        {"id": p.id, "network": p.network, "identity": p.identity, "owner": p.owner, "text": p.text,
         "reply_to": p.reply_to, "deleted": p.deleted, "created_at": p.created_at, "data": p.data} for p in posts]})


@delete("/_sandbox/calls", status_code=200)
async def clear_calls(request: Request) -> Response:
    st = _state(request)
    n = len(st.calls)
    st.calls.clear()
    return json_response({"cleared": n})


@post("/_sandbox/clock", status_code=200)
async def advance_clock(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    st = _state(request)
    seconds = data.get("advance_seconds")
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return _bad("advance_seconds must be a number >= 0")
    st.clock.advance(float(seconds))
    return json_response({"now": st.clock.now(), "offset_seconds": st.clock.offset})


@get("/_sandbox/clock")
async def read_clock(request: Request) -> Response:
    st = _state(request)
    return json_response({"now": st.clock.now(), "offset_seconds": st.clock.offset})


@post("/_sandbox/reset", status_code=200)
async def reset(request: Request) -> Response:
    _state(request).reset()
    return json_response({"reset": True})


@post("/_sandbox/apps", status_code=201)
async def register_app(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    network, cid, secret = data.get("network"), data.get("client_id"), data.get("client_secret")
    if network not in NETWORKS:
        return _bad(f"network must be one of {list(NETWORKS)}")
    if not isinstance(cid, str) or not cid or not isinstance(secret, str) or not secret:
        return _bad("client_id and client_secret are required strings")
    uris = data.get("redirect_uris")
    if uris is not None and not (isinstance(uris, list) and all(isinstance(u, str) for u in uris)):
        return _bad("redirect_uris must be a list of strings")
    app = ClientApp(network, cid, secret, redirect_uris=uris, refresh_tokens=bool(data.get("refresh_tokens", True)),
                    audited=bool(data.get("audited", False)))
    _state(request).register_app(app)
    body = asdict(app)
    body.pop("client_secret")
    return json_response(body, 201)


@get("/_sandbox/apps")
async def list_apps(request: Request) -> Response:
    return json_response({"apps": [{k: v for k, v in asdict(a).items() if k != "client_secret"}
                                   for a in _state(request).apps.values()]})


@post("/_sandbox/config", status_code=200)
async def configure(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """{"network": "x", "ttls": {"access": 60, "refresh": null, "code": 30, "long_access": ...},
        "publish": {"rate_limit": 100, "rate_window": 900, "processing_seconds": 10, ...}}"""
    st = _state(request)
    network = data.get("network")
    if network not in NETWORKS:
        return _bad(f"network must be one of {list(NETWORKS)}")
    ttls = data.get("ttls") or {}
    for key, value in ttls.items():
        if key not in ("access", "refresh", "code", "long_access"):
            return _bad(f"unknown ttl {key!r}")
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            return _bad("a ttl is a positive number of seconds, or null (never expires)")
        st.ttls[network][key] = value
    settings = data.get("publish") or {}
    if not isinstance(settings, dict):
        return _bad("publish must be an object")
    for key, value in settings.items():
        if key not in SETTING_KEYS:
            return _bad(f"unknown publish setting {key!r}; known: {sorted(SETTING_KEYS)}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            return _bad("a publish setting is a number >= 0")
    for key, value in settings.items():
        st.content.settings[network][key] = float(value)
    return json_response({"network": network, "ttls": st.ttls[network], "publish": st.content.settings[network]})


@get("/_sandbox/grants")
async def list_grants(request: Request, network: FromQuery[str | None] = None) -> Response:
    st = _state(request)
    out = []
    for g in st.grants.values():
        if network is not None and g.network != network:
            continue
        toks = [t for t in st.tokens.values() if t.grant_id == g.id]
        out.append({**asdict(g), "tokens": {k: sum(1 for t in toks if t.kind == k) for k in ("access", "refresh", "page")}})
    return json_response({"grants": out})


@get("/_sandbox/identities/{network:str}/{identity:str}")
async def identity_summary(network: FromPath[str], identity: FromPath[str]) -> Response:
    if network not in NETWORKS:
        return json_response({"error": "unknown network"}, 404)
    if not ids.IDENTITY_RE.match(identity):
        return _bad("bad identity")
    return json_response({"network": network, "identity": identity, **ids.summary(network, identity)})


@get("/_sandbox/urls")
async def urls(request: Request, base: FromQuery[str | None] = None) -> Response:
    base = base or str(request.base_url).rstrip("/")
    return json_response({n: {k: sandbox_url(n, v, base) for k, v in u.items() if v}
                          for n, u in REAL_URLS.items()})


def create_sandbox_app(state: SandboxState | None = None) -> Litestar:
    """A fresh sandbox app with its own in-memory state (``app.state.sandbox``)."""
    return Litestar(
        route_handlers=[provider, add_fault, list_faults, clear_faults, list_calls, list_posts, clear_calls, advance_clock,
                        read_clock, reset, register_app, list_apps, configure, list_grants, identity_summary, urls],
        state=State({"sandbox": state or SandboxState()}),
        openapi_config=None,
        debug=False,
    )
