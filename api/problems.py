"""Every error leaves as RFC 9457 application/problem+json with a stable `type`."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, SerializationException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy.orm.exc import StaleDataError

from domain.core.errors import DomainError, PreconditionFailedError

PROBLEM_BASE = "https://chorus.dev/problems/"
PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("chorus.errors")


class FieldError(msgspec.Struct, kw_only=True):
    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """RFC 9457 problem details. `type` is stable: switch on it."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None
    field: str | None = None
    agencies: list[dict[str, Any]] | None = None
    # 402 problems (the plan or the billing state): which limit, the usage against it, what
    # the current plan allows and the smallest plan that lifts it (None: none does).
    limit: str | None = None
    usage: int | None = None
    allowed: int | None = None
    plan: str | None = None
    upgrade_to: str | None = None
    billing_status: str | None = None


# Litestar's own exceptions, by status, mapped to stable slugs.
_HTTP_SLUGS = {
    400: "bad-request",
    401: "authentication-required",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    402: "payment-required",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}


def problem_response(
    request: Request[Any, Any, Any] | None,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response[Problem]:
    request_id = request.scope.get("state", {}).get("request_id") if request is not None else None
    body = Problem(
        type=PROBLEM_BASE + slug,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else None,
        request_id=request_id,
        **{k: v for k, v in extensions.items() if k in Problem.__struct_fields__},
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_from_key(key: str | None, message: str) -> str:
    # msgspec names an unknown field in the message, and where it sits after "at `$...`".
    unknown = re.search(r"unknown field `([^`]*)`", message)
    where = re.search(r"at `\$\.?([^`]*)`", message)
    if unknown:
        parent = where.group(1) if where else (key if key and key != "data" else "")
        return ".".join(p for p in (parent.lstrip("$."), unknown.group(1)) if p)
    if key and key != "data":
        return key
    return where.group(1) if where else (key or "")


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Problem]:
    errors = [FieldError(**e) for e in exc.errors] if exc.errors else None
    headers = {"WWW-Authenticate": 'Bearer realm="chorus"'} if exc.status == 401 else None
    return problem_response(
        request, status=exc.status, slug=exc.slug, title=exc.title, detail=exc.detail, errors=errors,
        headers=headers, **exc.extensions,
    )


def handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    errors: list[FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            message = str(item.get("message", "invalid"))
            source = item.get("source")
            key = _field_from_key(item.get("key"), message)
            errors.append(FieldError(field=f"{source}.{key}" if source and source != "body" else key, message=message))
    detail = str(exc.detail)
    if not errors and "at `$" in detail:
        errors.append(FieldError(field=_field_from_key(None, detail), message=detail))
    return problem_response(
        request,
        status=422,
        slug="validation-error",
        title="The request is not valid",
        detail=errors[0].message if errors else detail,
        errors=errors or None,
    )


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    if isinstance(exc.__cause__, SerializationException):
        return problem_response(
            request, status=400, slug="malformed-body", title="The body is not valid JSON", detail=str(exc.detail)
        )
    slug = _HTTP_SLUGS.get(status, f"http-{status}")
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException):
        headers.setdefault("WWW-Authenticate", 'Bearer realm="chorus"')
    if status == 429:
        headers.setdefault("Retry-After", str(headers.get("RateLimit-Reset", 60)))
    detail = str(exc.detail) if exc.detail and exc.detail != title else None
    return problem_response(request, status=status, slug=slug, title=title, detail=detail, headers=headers or None)


def handle_stale(request: Request[Any, Any, Any], exc: StaleDataError) -> Response[Problem]:
    err = PreconditionFailedError("Someone else changed this resource at the same time; read it again")
    return handle_domain_error(request, err)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(
        request, status=500, slug="internal-error", title="Internal server error", detail="Something went wrong on our side"
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: handle_domain_error,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    StaleDataError: handle_stale,
    Exception: handle_unexpected,
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """Document error responses as what is really sent (problem+json), for generators."""
    descriptions = {
        400: "Malformed request (for example invalid JSON or a bad Idempotency-Key)",
        401: "Missing, invalid or expired credentials",
        402: ("The agency's plan or billing state does not allow this: `limit`, `usage`, `allowed`, `plan` and "
              "`upgrade_to` say which limit, and the plan that lifts it"),
        403: "The credential's role or scopes do not allow this",
        404: "Not found (including objects of other agencies)",
        409: "Conflict with the current state",
        410: "Gone: the link or invitation is no longer valid",
        412: "If-Match did not match the current version",
        413: "The body is larger than the limit",
        422: "Validation failed; `errors` points at the fields",
        429: "Too many requests; see Retry-After",
    }
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=descriptions.get(status, HTTPStatus(status).phrase),
            generate_examples=False,
        )
        for status in statuses
    }


# Private routes say so in the document; public ones (sign-in, health) carry no requirement.
SECURED = [{"BearerAuth": []}]

# 402 everywhere a credential is read: a key frozen by the plan (no API access) answers 402.
READ = (400, 401, 402, 403, 404, 429)
LIST = (400, 401, 402, 403, 422, 429)
WRITE = (400, 401, 402, 403, 404, 409, 412, 413, 422, 429)
CREATE = (400, 401, 402, 403, 409, 413, 422, 429)
DELETE = (400, 401, 402, 403, 404, 409, 429)
