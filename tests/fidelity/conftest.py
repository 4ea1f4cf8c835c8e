"""One sandbox on loopback, Chorus's real adapter code driven against it, and every HTTP
exchange the sandbox saw, recorded on the wire by a tiny ASGI wrapper.

The sandbox's own log (`GET /_sandbox/calls`) keeps method and path but not the query string
or the form body, which the fidelity checks need; so the wrapper below records those, and
the tests cross-check it against `/_sandbox/calls`. No Chorus code is patched: the adapters
send their requests exactly as they would to the real hosts, only the base URL differs
(`sandbox_base`, the configured URL rule). No database is needed.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest

from api.sandbox.app import create_sandbox_app
from tests.loopback import serve

with warnings.catch_warnings():  # authlib's import-time notice about httpx2 (also filtered in pyproject)
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from domain.networks.catalog import CATALOG
    from domain.networks.adapters.base import Network
    from domain.networks.identity import targets
    from domain.networks.oauth import AppCredentials, OAuthFlow, new_code_verifier

REDIRECT = "https://chorus.example/v1/oauth/callback/{network}"
# The described networks, and what Chorus does with each of them today.
DESCRIBED = ("x", "pinterest", "youtube", "facebook", "instagram", "threads")


@dataclass
class Exchange:
    """One request as the sandbox received it, and the sandbox's answer."""

    method: str
    path: str  # sandbox path: /{network}{real path}
    query: list[tuple[str, str]]
    headers: dict[str, str]
    form: list[tuple[str, str]]
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""

    @property
    def network(self) -> str:
        return self.path.split("/")[1]

    @property
    def real_path(self) -> str:
        """The path on the real host (the URL rule drops `/{network}`)."""
        return "/" + self.path.split("/", 2)[2] if self.path.count("/") >= 2 else "/"

    @property
    def query_names(self) -> list[str]:
        return [k for k, _ in self.query]

    def q(self, name: str) -> str | None:
        return dict(self.query).get(name)

    def json(self) -> Any:
        return json.loads(self.response_body)

    @property
    def auth_scheme(self) -> str | None:
        value = self.headers.get("authorization")
        return value.split(" ", 1)[0].lower() if value else None


class Recorder:
    """ASGI wrapper: records provider calls (not /_sandbox/ control calls) on the wire."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []
        self.lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:  # read the whole body first, then replay it to the app
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        form = parse_qsl(body.decode(), keep_blank_values=True) if ctype == "application/x-www-form-urlencoded" else []
        ex = Exchange(scope["method"], scope["path"], parse_qsl(scope["query_string"].decode("latin-1"),
                                                                 keep_blank_values=True), headers, form)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        out: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                ex.status = message["status"]
                ex.response_headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                                       for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                out.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay, capture)
        ex.response_body = b"".join(out)
        with self.lock:
            self.exchanges.append(ex)


@dataclass
class Traffic:
    """Everything one network's linking (and token refresh) sent and got back."""

    network: str
    exchanges: list[Exchange]
    sandbox_calls: list[dict[str, Any]]  # GET /_sandbox/calls, for the cross-check
    authorize_url: str

    def find(self, method: str, real_path: str, **query: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == method and e.real_path.rstrip("/") == real_path.rstrip("/")
                and all(e.q(k) == v for k, v in query.items())]

    def one(self, method: str, real_path: str, **query: str) -> Exchange:
        found = self.find(method, real_path, **query)
        assert len(found) == 1, (method, real_path, query, [(e.method, e.path, e.query_names) for e in self.exchanges])
        return found[0]


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder(create_sandbox_app())
    with serve(recorder) as base:
        yield base, recorder


async def _drive(network: str, base: str, http: httpx.AsyncClient) -> str:
    """Link one login of `network` with Chorus's own OAuthFlow and identity code, then
    refresh its token where the network has a refresh that Chorus performs."""
    spec = CATALOG[Network(network)]
    flow = OAuthFlow(spec, AppCredentials(f"chorus-sandbox-{network}", f"sandbox-secret-{network}"), sandbox_base=base)
    verifier = new_code_verifier() if flow.uses_pkce else None
    redirect = REDIRECT.format(network=network)
    authorize = flow.authorize_url(redirect_uri=redirect, state="fidelity-state", code_verifier=verifier)
    consent = await http.get(authorize)
    assert consent.status_code == 302, consent.text
    code = parse_qs(urlsplit(consent.headers["location"]).query)["code"][0]
    grant = await flow.exchange_code(code=code, redirect_uri=redirect, code_verifier=verifier)
    found = await targets(Network(network), grant.access_token, base, grant.extras)
    assert found, f"{network}: the sandbox's alice should have something to connect"
    if network in ("instagram", "threads"):
        # Meta refreshes only a long-lived token that is at least 24 hours old.
        r = await http.post(f"{base}/_sandbox/clock", json={"advance_seconds": 25 * 3600})
        assert r.status_code == 200, r.text
        await flow.refresh(None, grant.access_token)
    elif network == "pinterest":
        await flow.refresh(grant.refresh_token)
    return authorize


@pytest.fixture(scope="session")
async def traffic(sandbox_server) -> dict[str, Traffic]:
    base, recorder = sandbox_server
    out: dict[str, Traffic] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for network in DESCRIBED:
            assert (await http.post(f"{base}/_sandbox/reset")).status_code == 200
            with recorder.lock:
                recorder.exchanges.clear()
            authorize = await _drive(network, base, http)
            calls = (await http.get(f"{base}/_sandbox/calls", params={"network": network})).json()["calls"]
            with recorder.lock:
                exchanges = list(recorder.exchanges)
            out[network] = Traffic(network, exchanges, calls, authorize)
    return out
