"""The client's side of share links: a server-rendered page at /share/{token} that works
without JavaScript, and the same data and actions as JSON under /v1/shared/{token} for
agencies that build their own portal. No credential: the link is the capability.

Every answer of the page carries no-store, no-referrer, noindex, nosniff and a strict CSP
(styles by nonce; images only from this server, plus the agency's logo origin). State
changes only by POST; a page POST answers 303 back to the page (post-redirect-get).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import TooManyRequestsException
from litestar.datastructures import Cookie, State
from litestar.params import FromPath, HeaderParameter, JSONBody, Parameter, QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_201_CREATED, HTTP_303_SEE_OTHER

from api.problems import problem_response, problems
from domain.agencies.rules import Principal
from domain.approvals import share_schemas as s
from domain.approvals.models import ShareLink, ShareReviewer
from domain.approvals.share import (
    REVIEWER_HEADER,
    ReviewerRequiredError,
    SharedService,
    ShareLinkGoneError,
    SharePermissionError,
    clean_text,
    csrf_ok,
    csrf_token,
    parse_token,
    reviewer_key,
)
from domain.core.context import Context
from domain.core.db import scoped_session
from domain.core.errors import ConflictError, DomainError, NotFoundError, ValidationFailedError
from domain.media.service import link_key as media_link_key

TEMPLATES = Path(__file__).parent / "templates"
Token = Annotated[str, Parameter(max_length=200, description="The last part of the link's address")]
ReviewerHeader = Annotated[str | None, HeaderParameter(
    name=REVIEWER_HEADER, max_length=120, required=False,
    description="The `reviewer_token` from createSharedReviewer (needed to decide or comment)")]

# Fixed messages after a form: the redirect names one, so no text of the request is echoed.
FLASH = {
    "welcome": ("Thank you. You can now review the posts.", False),
    "approved": ("Approved. Thank you!", False),
    "changes": ("Your request for changes was sent.", False),
    "commented": ("Your comment was sent.", False),
    "reviewer-invalid": ("Please give your name and a valid email.", True),
    "reviewer-first": ("Please give your name and email first.", True),
    "comment-needed": ("Please say what should change.", True),
    "not-awaiting": ("This post is not waiting for your decision any more.", True),
    "invalid": ("That could not be sent. Please try again.", True),
}


def page_headers(logo_url: str | None = None, nonce: str = "") -> dict[str, str]:
    images = "'self'"
    if logo_url:
        parts = urlsplit(logo_url)
        if parts.scheme in ("http", "https") and parts.netloc:
            images += f" {parts.scheme}://{parts.netloc}"
    style = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex, nofollow",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": (
            f"default-src 'none'; style-src {style}; img-src {images}; media-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"),
    }


def plain_page(status: int, title: str, text: str) -> Template:
    nonce = secrets.token_urlsafe(16)
    return Template(template_name="share/plain.html", context={"title": title, "text": text, "nonce": nonce},
                    status_code=status, headers=page_headers(None, nonce), media_type="text/html")


def error_page(err: DomainError) -> Template:
    if isinstance(err, ShareLinkGoneError):
        return plain_page(410, "This link is no longer valid",
                          "It has expired or was withdrawn. Ask the person who sent it for a new one.")
    if isinstance(err, SharePermissionError):
        return plain_page(403, "Not allowed", "This link does not allow that.")
    if err.status == 404:
        return plain_page(404, "This link is not valid", "Check that you copied the whole address.")
    return plain_page(err.status, "Something is not right", "Please go back and try again.")


def too_many_requests(request: Request[Any, Any, Any], exc: TooManyRequestsException) -> Response[Any]:
    """The share space's 429: a plain page for people, a problem for programs, both with the
    page headers and Retry-After."""
    headers = {**page_headers(), **(exc.headers or {})}
    headers.setdefault("Retry-After", str(headers.get("RateLimit-Reset", 60)))
    if request.url.path.startswith("/share/"):
        page = plain_page(429, "Too many requests", "Please wait a minute and try again.")
        page.headers.update({k: v for k, v in headers.items() if k != "Content-Security-Policy"})
        return page
    return problem_response(request, status=429, slug="rate-limited", title="Too Many Requests",
                            detail="Too many requests to shared links from this address", headers=headers)


def _cookie_name(link: ShareLink) -> str:
    return f"share_reviewer_{link.id.hex[:16]}"


def _client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


@asynccontextmanager
async def opened(request: Request[Any, Any, Any], token: str) -> AsyncIterator[tuple[SharedService, ShareLink]]:
    """One transaction in the token's agency, with the live link (404 unknown or tampered,
    410 expired or revoked). Commits on success (then its after-commit work runs, as for any
    request), rolls back on any error."""
    state = request.app.state
    scope_state = request.scope["state"]
    parsed = parse_token(token)
    if parsed is None:
        raise NotFoundError("This link is not valid")
    settings = state.settings
    session = scoped_session(state.session_factory, agency_id=parsed.agency_id)
    try:
        ctx = Context(Principal(agency_id=parsed.agency_id, label="share link"), session=session,
                      request_id=scope_state.get("request_id"))
        service = SharedService(ctx, reviewer_key(settings.jwt_secret()), media_link_key(settings))
        link = await service.open(parsed)
        yield service, link
        await session.commit()
        scope_state.setdefault("after_commit", []).extend(ctx.after_commit)
    except BaseException:
        await asyncio.shield(session.rollback())
        raise
    finally:
        await asyncio.shield(session.close())


class SharePageController(Controller):
    """Browser pages, not API operations: left out of the OpenAPI document (the JSON
    twins below are documented)."""

    path = "/share"
    include_in_schema = False
    opt = {"public": True}

    @get("/{token:str}", opt={"public": True}, media_type="text/html", include_in_schema=False)
    async def page(self, request: Request[Any, Any, Any], state: State, token: Token,
                   m: Annotated[str | None, QueryParameter(name="m", required=False, max_length=40)] = None) -> Template:
        try:
            async with opened(request, token) as (service, link):
                cookie = request.cookies.get(_cookie_name(link))
                reviewer = await service.reviewer(link, cookie)
                view = await service.view(link)
        except DomainError as err:
            return error_page(err)
        flash, flash_error = FLASH.get(m or "", (None, False))
        nonce = secrets.token_urlsafe(16)
        context = {
            "view": view, "reviewer": reviewer, "nonce": nonce, "base": f"/share/{token}",
            "csrf": csrf_token(service.reviewer_key, cookie) if reviewer and cookie else "",
            "flash": flash, "flash_error": flash_error,
            "posts_by_id": {p.id: p for p in view.posts},
            "expires_label": view.expires_at.astimezone(_zone(view.time_zone)).strftime("%-d %B %Y"),
        }
        return Template(template_name="share/page.html", context=context, media_type="text/html",
                        headers=page_headers(view.branding.logo_url, nonce))

    @post("/{token:str}/reviewer", opt={"public": True}, status_code=HTTP_303_SEE_OTHER,
          include_in_schema=False)
    async def reviewer(self, request: Request[Any, Any, Any], state: State, token: Token) -> Response[Any]:
        form = await request.form()
        try:
            async with opened(request, token) as (service, link):
                try:
                    data = msgspec.convert({"name": str(form.get("name", "")).strip(),
                                            "email": str(form.get("email", "")).strip()}, s.ReviewerIn)
                    _, value = await service.register(link, data)
                except (msgspec.ValidationError, ValidationFailedError):
                    return _back(token, "reviewer-invalid")
                cookie = Cookie(key=_cookie_name(link), value=value, path="/share/", httponly=True, samesite="lax",
                                secure=request.url.scheme == "https"
                                or state.settings.api_base_url.startswith("https://"),
                                max_age=max(60, int((link.expires_at - _now()).total_seconds())))
        except DomainError as err:
            return error_page(err)
        return _back(token, "welcome", cookies=[cookie])

    @post("/{token:str}/posts/{post_id:uuid}/decision", opt={"public": True}, status_code=HTTP_303_SEE_OTHER,
          include_in_schema=False)
    async def decision(self, request: Request[Any, Any, Any], state: State, token: Token,
                       post_id: FromPath[UUID]) -> Response[Any]:
        form = await request.form()
        try:
            async with opened(request, token) as (service, link):
                reviewer = await self._checked_reviewer(request, service, link, form)
                try:
                    data = msgspec.convert({"decision": str(form.get("decision", "")),
                                            "comment": str(form.get("comment", "")).strip() or None},
                                           s.SharedDecisionIn)
                except msgspec.ValidationError:
                    return _back(token, "invalid", post_id)
                try:
                    await service.decide(link, reviewer, post_id, data, ip=_client_ip(request),
                                         user_agent=request.headers.get("user-agent", ""))
                except ValidationFailedError:
                    return _back(token, "comment-needed", post_id)
                except ConflictError:
                    return _back(token, "not-awaiting", post_id)
        except ReviewerRequiredError:
            return _back(token, "reviewer-first")
        except DomainError as err:
            return error_page(err)
        return _back(token, "approved" if data.decision is s.ClientDecision.APPROVE else "changes", post_id)

    @post("/{token:str}/posts/{post_id:uuid}/comments", opt={"public": True}, status_code=HTTP_303_SEE_OTHER,
          include_in_schema=False)
    async def comment(self, request: Request[Any, Any, Any], state: State, token: Token,
                      post_id: FromPath[UUID]) -> Response[Any]:
        form = await request.form()
        try:
            async with opened(request, token) as (service, link):
                reviewer = await self._checked_reviewer(request, service, link, form)
                try:
                    data = msgspec.convert({"body": str(form.get("body", "")).strip()}, s.SharedCommentIn)
                except msgspec.ValidationError:
                    return _back(token, "invalid", post_id)
                await service.comment(link, reviewer, post_id, data)
        except ReviewerRequiredError:
            return _back(token, "reviewer-first")
        except DomainError as err:
            return error_page(err)
        return _back(token, "commented", post_id)

    @staticmethod
    async def _checked_reviewer(request: Request[Any, Any, Any], service: SharedService, link: ShareLink,
                                form: Any) -> ShareReviewer | None:
        """The reviewer of the cookie, when the form's CSRF token was made for that cookie.
        The permission is checked first, so a view link answers 403 whoever asks."""
        if link.permission == s.SharePermission.VIEW:
            raise SharePermissionError("This link lets you view only")
        cookie = request.cookies.get(_cookie_name(link))
        reviewer = await service.reviewer(link, cookie)
        if reviewer is None:
            raise ReviewerRequiredError()
        if not csrf_ok(service.reviewer_key, cookie, str(form.get("csrf", ""))):
            raise SharePermissionError("The form is out of date; reload the page")
        return reviewer


class SharedApiController(Controller):
    """The share page's data and actions as JSON, for agencies' own portals."""

    path = "/v1/shared"
    tags = ["Share links"]

    @get("/{token:str}", operation_id="getShared", opt={"public": True},
         summary="What a share link shows: the brand, the agency's branding, the posts as rendered, the calendar",
         description="No credential: the link's token is the permission. Unknown or altered tokens answer 404; "
         "expired or revoked links 410. Media addresses are signed and expire within the hour. Rate-limited per "
         "client address (429 with Retry-After).",
         responses=problems(400, 404, 410, 429))
    async def get_shared(self, request: Request[Any, Any, Any], state: State, token: Token) -> Response[s.SharedView]:
        async with opened(request, token) as (service, link):
            view = await service.view(link, state.settings.api_base_url.rstrip("/"))
        return Response(view, headers=page_headers())

    @post("/{token:str}/reviewer", operation_id="createSharedReviewer", opt={"public": True},
          summary="Who is reviewing: a name and email, needed once before any decision or comment",
          description="Answers a `reviewer_token` to send as `X-Share-Reviewer`; it is valid on this link only.",
          responses=problems(400, 404, 410, 413, 422, 429), status_code=HTTP_201_CREATED)
    async def create_reviewer(self, request: Request[Any, Any, Any], token: Token,
                              data: JSONBody[s.ReviewerIn]) -> Response[s.ReviewerCreated]:
        async with opened(request, token) as (service, link):
            if link.permission == s.SharePermission.VIEW:
                raise SharePermissionError("This link lets you view only")
            reviewer, value = await service.register(link, data)
            out = s.ReviewerCreated(name=reviewer.name, email=reviewer.email, reviewer_token=value)
        return Response(out, status_code=HTTP_201_CREATED, headers=page_headers())

    @post("/{token:str}/posts/{post_id:uuid}/decisions", operation_id="createSharedDecision", opt={"public": True},
          summary="Approve a post or request changes (with a comment), as the link's reviewer",
          description="Only on links with the approve permission (403 otherwise), by a reviewer (401 without "
          "`X-Share-Reviewer`), on a post of the link that waits for the client's decision (409 otherwise). "
          "Each decision records the reviewer's name and email.",
          responses=problems(400, 401, 403, 404, 409, 410, 413, 422, 429), status_code=HTTP_201_CREATED)
    async def create_decision(self, request: Request[Any, Any, Any], state: State, token: Token,
                              post_id: FromPath[UUID], data: JSONBody[s.SharedDecisionIn],
                              reviewer_token: ReviewerHeader = None) -> Response[s.SharedDecisionResult]:
        async with opened(request, token) as (service, link):
            if link.permission != s.SharePermission.APPROVE:
                raise SharePermissionError("This link lets you view or comment, not decide")
            reviewer = await service.reviewer(link, reviewer_token)
            approval = await service.decide(link, reviewer, post_id, data, ip=_client_ip(request),
                                            user_agent=request.headers.get("user-agent", ""))
            assert reviewer is not None
            out = s.SharedDecisionResult(post_id=post_id, decision=data.decision, comment=clean_text(data.comment),
                                         request_status=str(approval.status), reviewer_name=reviewer.name,
                                         reviewer_email=reviewer.email)
        return Response(out, status_code=HTTP_201_CREATED, headers=page_headers())

    @post("/{token:str}/posts/{post_id:uuid}/comments", operation_id="createSharedComment", opt={"public": True},
          summary="Comment on a post (or one of its variants) as the link's reviewer",
          description="On links with the comment or approve permission (403 otherwise), by a reviewer (401 without "
          "`X-Share-Reviewer`). The team sees it as a client comment.",
          responses=problems(400, 401, 403, 404, 410, 413, 422, 429), status_code=HTTP_201_CREATED)
    async def create_comment(self, request: Request[Any, Any, Any], token: Token, post_id: FromPath[UUID], data: JSONBody[s.SharedCommentIn],
                             reviewer_token: ReviewerHeader = None) -> Response[s.SharedComment]:
        async with opened(request, token) as (service, link):
            if link.permission == s.SharePermission.VIEW:
                raise SharePermissionError("This link lets you view, not comment")
            reviewer = await service.reviewer(link, reviewer_token)
            made = await service.comment(link, reviewer, post_id, data)
            out = s.SharedComment(id=made.id, author=made.author_name, body=made.body, created_at=made.created_at,
                                  parent_id=made.parent_id, variant_id=made.variant_id)
        return Response(out, status_code=HTTP_201_CREATED, headers=page_headers())


def _back(token: str, message: str, post_id: UUID | None = None, cookies: list[Cookie] | None = None) -> Redirect:
    anchor = f"#post-{post_id}" if post_id else ""
    return Redirect(f"/share/{token}?m={message}{anchor}", status_code=HTTP_303_SEE_OTHER,
                    headers=page_headers(), cookies=cookies)


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _now() -> Any:
    from domain.core.clock import now

    return now()


SHARE_HANDLERS = [SharePageController, SharedApiController]
