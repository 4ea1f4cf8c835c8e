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
    body: bytes = b""  # the request body as sent

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

    def sent_json(self) -> Any:
        return json.loads(self.body)

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
                                                                 keep_blank_values=True), headers, form, body=body)
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


# --- publishing ------------------------------------------------------------------------------

async def _link(network: str, base: str, http: httpx.AsyncClient, kind: str | None = None):
    """An AccountRef for the sandbox's alice, linked the way Chorus links it."""
    from domain.networks.adapters.base import AccountRef

    spec = CATALOG[Network(network)]
    flow = OAuthFlow(spec, AppCredentials(f"chorus-sandbox-{network}", f"sandbox-secret-{network}"), sandbox_base=base)
    verifier = new_code_verifier() if flow.uses_pkce else None
    redirect = REDIRECT.format(network=network)
    consent = await http.get(flow.authorize_url(redirect_uri=redirect, state="fidelity-state", code_verifier=verifier))
    code = parse_qs(urlsplit(consent.headers["location"]).query)["code"][0]
    grant = await flow.exchange_code(code=code, redirect_uri=redirect, code_verifier=verifier)
    found = await targets(Network(network), grant.access_token, base, grant.extras)
    target = next(t for t in found if kind is None or t.kind == kind)
    return AccountRef(target.external_id, target.access_token or grant.access_token, target.kind)


async def _settle(network: str, base: str, http: httpx.AsyncClient, recorder: Recorder, skipped: int = 0) -> int:
    """The wrapper records a call once its answer has gone out, a moment after the client has
    it: wait until it holds every call the sandbox logged since the reset (less the `skipped`
    first ones, already cleared). Returns the number logged."""
    import asyncio

    logged = len((await http.get(f"{base}/_sandbox/calls", params={"network": network})).json()["calls"])
    for _ in range(200):
        with recorder.lock:
            if len(recorder.exchanges) >= logged - skipped:
                return logged
        await asyncio.sleep(0.02)
    raise AssertionError(f"{network}: the recording lags the sandbox log")


async def _video_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A tiny video on loopback, as Chorus's own media links are (YouTube uploads the bytes)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"video/mp4"), (b"content-length", b"2048")]})
    await send({"type": "http.response.body", "body": b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 2036})


async def _publish(network: str, base: str, http: httpx.AsyncClient, video_url: str, recorder: Recorder) -> int:
    """Every publishing call the network's client makes: publish, look up, metrics, comments, reply.
    The recording starts once the account is linked; returns how many logged calls linking made."""
    linking: list[int] = []
    from domain.networks.adapters.base import PublishRequest
    from domain.networks.adapters.facebook import FacebookClient
    from domain.networks.adapters.instagram import InstagramClient
    from domain.networks.adapters.pinterest import PinterestClient
    from domain.networks.adapters.threads import ThreadsClient
    from domain.networks.adapters.x import XClient
    from domain.networks.adapters.youtube import YouTubeClient

    async def link(kind: str | None = None):
        account = await _link(network, base, http, kind)
        linking.append(await _settle(network, base, http, recorder))
        with recorder.lock:
            recorder.exchanges.clear()
        return account

    async def later(seconds: int) -> None:  # metrics grow and comments arrive as sandbox time passes
        assert (await http.post(f"{base}/_sandbox/clock", json={"advance_seconds": seconds})).status_code == 200

    if network == "x":
        account, client = await link(), XClient(base, timeout=5)
        post = await client.publish(account, PublishRequest(text="Roscón de Reyes ya a la venta"))
        await client.lookup(account, post.external_id)
        await later(90 * 60)
        comments = await client.comments(account, post.external_id)
        assert comments
        await client.reply(account, comments[0]["id"], "¡Gracias!")
    elif network == "pinterest":
        account, client = await link(kind="board"), PinterestClient(base, timeout=5)
        pin = await client.publish(account, PublishRequest(
            text="Roscón artesano", media_urls=("https://cdn.example/roscon.jpg",),
            options={"title": "Roscón", "link": "https://panaderiasol.example", "alt_text": "Un roscón"}))
        await client.lookup(account, pin.external_id)
        await later(60 * 60)
        await client.insights(account, pin.external_id)
    elif network == "youtube":
        account, client = await link(), YouTubeClient(base, timeout=5)
        video = await client.publish(account, PublishRequest(
            text="Cómo hacemos el roscón", media_urls=(video_url,), options={"title": "Roscón", "tags": ["roscon"]}))
        await later(45 * 60)
        await client.lookup(account, video.external_id)
        threads = await client.comments(account, video.external_id)
        assert threads
        await client.reply(account, threads[0]["id"], "¡Gracias!")
    elif network == "facebook":
        account, client = await link(kind="page"), FacebookClient(base, timeout=5)
        post = await client.publish(account, PublishRequest(text="Hoy: roscón recién hecho",
                                                            options={"link": "https://panaderiasol.example"}))
        await client.publish(account, PublishRequest(text="Mirad", media_urls=("https://cdn.example/r.jpg",)))
        await client.publish(account, PublishRequest(text="Tres roscones", media_urls=tuple(
            f"https://cdn.example/r{i}.jpg" for i in range(3))))  # unpublished photos, then attached_media
        await client.publish(account, PublishRequest(text="Amasando", media_urls=("https://cdn.example/r.mp4",),
                                                     options={"title": "Roscón"}))
        await later(60 * 60)
        await client.insights(account, post.external_id)
        comments = await client.comments(account, post.external_id)
        assert comments
        await client.reply(account, comments[0]["id"], "¡Gracias!")
    elif network == "instagram":
        account, client = await link(), InstagramClient(base, timeout=5)
        image = await client.publish(account, PublishRequest(text="Roscón #navidad",
                                                             media_urls=("https://cdn.example/r.jpg",)))
        reel = await client.publish(account, PublishRequest(text="Amasando", media_urls=("https://cdn.example/r.mp4",)))
        await later(120)
        await client.publish_status(account, reel.pending_ref)
        await later(30 * 60)
        await client.insights(account, image.external_id)
        comments = await client.comments(account, image.external_id)
        assert comments
        await client.reply(account, comments[0]["id"], "¡Gracias!")
    elif network == "threads":
        account, client = await link(), ThreadsClient(base, timeout=5)
        post = await client.publish(account, PublishRequest(text="¿Roscón con o sin nata?"))
        await later(30 * 60)
        await client.insights(account, post.external_id)
        replies = await client.comments(account, post.external_id)
        assert replies
        await client.reply(account, replies[0]["id"], "¡Con nata!")
    return linking[0]


@pytest.fixture(scope="session")
async def publishing(sandbox_server, traffic) -> dict[str, Traffic]:
    """Like `traffic`, for the publishing calls only (linking happens first and is left out;
    `sandbox_calls` keeps the log's matching tail)."""
    base, recorder = sandbox_server
    out: dict[str, Traffic] = {}
    with serve(_video_app, ready_path="/") as media:
        async with httpx.AsyncClient(timeout=10) as http:
            for network in DESCRIBED:
                assert (await http.post(f"{base}/_sandbox/reset")).status_code == 200
                with recorder.lock:
                    recorder.exchanges.clear()
                skipped = await _publish(network, base, http, f"{media}/roscon.mp4", recorder)
                await _settle(network, base, http, recorder, skipped)
                calls = (await http.get(f"{base}/_sandbox/calls", params={"network": network})).json()["calls"]
                with recorder.lock:
                    exchanges = list(recorder.exchanges)
                out[network] = Traffic(network, exchanges, calls[skipped:], "")
    return out
