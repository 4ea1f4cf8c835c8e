"""ASGI middleware: request ids and access logs; Idempotency-Key on POST."""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from datetime import timedelta
from typing import Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from api.auth import close_request_session, read_credential, run_after_commit
from domain.agencies.models import IdempotencyRecord
from domain.core.clock import now
from domain.core.db import scoped_session
from domain.core.errors import AuthenticationRequiredError, DomainError, IdempotencyInProgressError, IdempotencyKeyReusedError
from domain.core.logs import request_id_var

access_log = logging.getLogger("chorus.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Capability URLs (share links, calendar feeds, signed media links): the address is the
# secret, so it never reaches the logs.
_CAPABILITY_PATH = re.compile(r"^/(share|v1/shared|calendar|media)/[^/]+")

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
# Headers worth replaying; the rest (date, request id) belong to the new response.
_REPLAYED_HEADERS = {"content-type", "location", "etag"}


def loggable_path(path: str) -> str:
    return _CAPABILITY_PATH.sub(r"/\1/[redacted]", path)


def _problem_bytes(status: int, slug: str, title: str, detail: str, request_id: str | None) -> bytes:
    from api.problems import PROBLEM_BASE

    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if request_id:
        body["request_id"] = request_id
    return msgspec.json.encode(body)


async def _send_problem(send: Send, status: int, slug: str, title: str, detail: str, request_id: str | None, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = _problem_bytes(status, slug, title, detail, request_id)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
            + ([(b"x-request-id", request_id.encode())] if request_id else [])
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Gives every request an id (kept from X-Request-ID when sane) and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500, "sent_at": None}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                status_holder["sent_at"] = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
            await run_after_commit(scope)
        finally:
            await close_request_session(scope)
            principal = scope.get("state", {}).get("principal")
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": loggable_path(scope["path"]),
                    "status": status_holder["status"],
                    "duration_ms": round(((status_holder["sent_at"] or time.perf_counter()) - started) * 1000, 2),
                    "agency_id": str(principal.agency_id) if principal else None,
                },
            )
            request_id_var.reset(token)


class NulCharacterMiddleware:
    """PostgreSQL text cannot hold U+0000, so a string carrying it would fail deep in a
    query. Refuse it at the door, in the query string or in a JSON body, as a 422."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            from urllib.parse import parse_qsl

            for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if "\x00" in key or "\x00" in value:
                    await _send_problem(send, 422, "validation-error", "The request is not valid",
                                        f"The query parameter {key!r} contains a NUL character", request_id)
                    return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = _body_limit(scope)
        body, more, messages = await _read_body(receive, limit)
        if not more and b"\\u0000" in body and _has_nul(body):
            await _send_problem(send, 422, "validation-error", "The request is not valid",
                                "Text fields may not contain NUL characters (\\u0000)", request_id)
            return
        await self.app(scope, _replay(messages, receive), send)


def _has_nul(body: bytes) -> bool:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return False  # not JSON: the app answers 400
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class IdempotencyMiddleware:
    """A POST retried with the same Idempotency-Key gets the first response, not a duplicate.

    Keys are scoped to the agency; the fingerprint binds them to the caller and the exact
    request, so the same key with another body is refused (422) rather than replayed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(b"idempotency-key")
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        key = raw_key.decode("latin-1").strip()
        if not _KEY_RE.match(key):
            await _send_problem(send, 400, "idempotency-key-invalid", "The Idempotency-Key header is not valid",
                                "Use 1 to 255 visible ASCII characters, for example a UUID", request_id)
            return
        state = scope["litestar_app"].state
        from litestar.datastructures import Headers

        try:
            credential = read_credential(Headers(scope["headers"]), state.tokens)
        except AuthenticationRequiredError:
            credential = None
        if credential is None:
            # Nobody to scope the key to: the app answers 401 (or the public route runs as usual).
            await self.app(scope, receive, send)
            return

        body, more, messages = await _read_body(receive, _body_limit(scope))
        if more:
            # Too large: let the app answer 413 from the replayed stream.
            await self.app(scope, _replay(messages, receive), send)
            return
        digest = hashlib.sha256()
        for part in (credential.owner, scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1")):
            digest.update(part.encode() + b"\0")
        digest.update(_without_boundary(headers.get(b"content-type", b""), body))
        fingerprint = digest.hexdigest()

        try:
            replay = await self._claim(state, credential.agency_id, key, fingerprint)
        except DomainError as err:
            extra = [(b"retry-after", b"1")] if isinstance(err, IdempotencyInProgressError) else None
            await _send_problem(send, err.status, err.slug, err.title, err.detail, request_id, extra)
            return
        if replay is not None:
            status, stored_headers, stored_body = replay
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in stored_headers.items()]
                    + [(b"idempotent-replayed", b"true"), (b"content-length", str(len(stored_body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": stored_body})
            return

        captured: dict[str, Any] = {"status": None, "headers": {}, "body": bytearray()}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = {
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() in _REPLAYED_HEADERS
                }
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            await send(message)

        completed = False
        try:
            await self.app(scope, _replay(messages, receive), capture)
            completed = True
        finally:
            status = captured["status"]
            keep = completed and status is not None and status < 500 and status not in (401, 403, 409, 429)
            await self._finish(state, credential.agency_id, key, status if keep else None, captured)

    async def _claim(self, state: Any, agency_id: Any, key: str, fingerprint: str) -> tuple[int, dict[str, str], bytes] | None:
        async with scoped_session(state.session_factory, agency_id=agency_id) as session, session.begin():
            moment = now()
            # An expired record no longer protects anything; clear it so the key works again.
            await session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.agency_id == agency_id, IdempotencyRecord.key == key, IdempotencyRecord.expires_at <= moment
                )
            )
            inserted = await session.scalar(
                pg_insert(IdempotencyRecord)
                .values(
                    id=uuid.uuid4(),
                    agency_id=agency_id,
                    key=key,
                    fingerprint=fingerprint,
                    state="pending",
                    response_headers={},
                    expires_at=moment + timedelta(seconds=state.settings.idempotency_ttl_seconds),
                    created_at=moment,
                    updated_at=moment,
                )
                .on_conflict_do_nothing(index_elements=["agency_id", "key"])
                .returning(IdempotencyRecord.id)
            )
            if inserted is not None:
                return None
            record = await session.scalar(
                select(IdempotencyRecord).where(IdempotencyRecord.agency_id == agency_id, IdempotencyRecord.key == key)
            )
            if record is None:
                raise IdempotencyInProgressError("Retry in a moment")
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReusedError("Use a new key for a different request")
            if record.state != "completed":
                raise IdempotencyInProgressError("The first request with this key has not finished; retry shortly")
            return record.response_status, dict(record.response_headers or {}), bytes(record.response_body or b"")  # type: ignore[return-value]

    async def _finish(self, state: Any, agency_id: Any, key: str, status: int | None, captured: dict[str, Any]) -> None:
        async with scoped_session(state.session_factory, agency_id=agency_id) as session, session.begin():
            where = (IdempotencyRecord.agency_id == agency_id, IdempotencyRecord.key == key, IdempotencyRecord.state == "pending")
            if status is None:
                # Failed or refused: forget the key so a retry runs for real.
                await session.execute(delete(IdempotencyRecord).where(*where))
            else:
                await session.execute(
                    update(IdempotencyRecord)
                    .where(*where)
                    .values(
                        state="completed",
                        response_status=status,
                        response_headers=captured["headers"],
                        response_body=bytes(captured["body"]),
                        updated_at=now(),
                    )
                )


def _body_limit(scope: Scope) -> int:
    """How much of a body these middlewares read: the app's limit, or a route's own
    (opt `body_limit`, for uploads they must still see whole, such as imports)."""
    handler = scope.get("route_handler")
    own = handler.opt.get("body_limit") if handler is not None else None
    return int(own or scope["litestar_app"].state.settings.max_body_bytes)


def _without_boundary(content_type: bytes, body: bytes) -> bytes:
    """A multipart body with its boundary taken out: a client retrying an upload draws a new
    random boundary, and the retry is still the same request."""
    match = re.search(rb"boundary=\"?([^\";]+)", content_type)
    if not content_type.lower().startswith(b"multipart/") or not match:
        return body
    return body.replace(b"--" + match.group(1), b"--")


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool, list[Message]]:
    messages: list[Message] = []
    body = bytearray()
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return bytes(body), False, messages
        body.extend(message.get("body", b""))
        if len(body) > limit:
            return bytes(body), True, messages
        if not message.get("more_body", False):
            return bytes(body), False, messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


