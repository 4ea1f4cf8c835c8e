"""Credentials -> Principal, the per-request transaction, and the route guard.

A route states what it needs in `opt`: `{"action": Action.X}` (a role or API-key scope
must allow it) or `{"public": True}`. Both are checked by tests over every route.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.datastructures import State

from domain.agencies.rules import ACTION_SCOPES, PERMISSIONS, Action, Role
from domain.agencies.service import API_KEY_PREFIX, principal_for, principal_from_claims
from domain.core.context import Context
from domain.core.db import begin_api_key_request, enter_request, scoped_session
from domain.core.errors import AuthenticationRequiredError, DomainError, PermissionDeniedError
from domain.core.security import AccessClaims, AccessTokens, OpaqueToken

log = logging.getLogger("chorus.auth")


@dataclass(frozen=True)
class Credential:
    """What the Authorization header claims, before the database confirms it."""

    agency_id: UUID
    user_id: UUID | None = None
    api_key: OpaqueToken | None = None
    claims: AccessClaims | None = None

    @property
    def owner(self) -> str:
        return f"user:{self.user_id}" if self.user_id else f"key:{self.api_key.hashed}"  # type: ignore[union-attr]


def read_credential(headers: Any, tokens: AccessTokens) -> Credential | None:
    header = headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        raise AuthenticationRequiredError("Use 'Authorization: Bearer <access token or API key>'")
    value = value.strip()
    if value.startswith(API_KEY_PREFIX + "_"):
        key = OpaqueToken.parse(value, API_KEY_PREFIX)
        if key is None:
            raise AuthenticationRequiredError("The API key is not valid")
        return Credential(agency_id=key.agency_id, api_key=key)
    claims = tokens.verify(value)
    if claims is None:
        raise AuthenticationRequiredError("The access token is not valid or has expired")
    return Credential(agency_id=claims.agency_id, user_id=claims.user_id, claims=claims)


async def authorize(connection: Request[Any, Any, Any]) -> None:
    """App-wide `before_request` hook (cheaper than a guard, which copies the handler on
    every call). Runs before the body is read, so a caller without the right credential
    gets 401/403 whatever they send. Opens the request's transaction and resolves the
    principal inside it (one transaction for the whole request)."""
    handler = connection.route_handler
    if handler.opt.get("public"):
        return None
    state = connection.app.state
    credential = read_credential(connection.headers, state.tokens)
    if credential is None:
        raise AuthenticationRequiredError("Send 'Authorization: Bearer <access token or API key>'")
    if credential.claims is not None:
        claims = credential.claims
        db = await enter_request(
            state.engine,
            agency_id=claims.agency_id,
            user_id=claims.user_id,
            membership_version=claims.membership_version,
        )
        # The request middleware closes it if the handler never runs (a bad body, say).
        connection.scope["state"]["db_connection"] = db
        principal, wrote = principal_from_claims(claims), False
    else:
        assert credential.api_key is not None
        db, row = await begin_api_key_request(
            state.engine, agency_id=credential.agency_id, api_key_hash=credential.api_key.hashed
        )
        connection.scope["state"]["db_connection"] = db
        principal, wrote = await principal_for(db, row, credential.agency_id, None)
    if principal is None:
        raise AuthenticationRequiredError("The credential is not valid for this agency")
    action: Action | None = handler.opt.get("action")
    if action is None or not principal.can(action):
        raise PermissionDeniedError(
            f"This {'API key' if principal.api_key_id else 'role'} may not perform "
            f"{action.value if action else 'this action'}"
        )
    connection.scope["state"]["principal"] = principal
    connection.scope["state"]["db_wrote"] = wrote
    if handler.opt.get("long_body"):
        # The body may take minutes to arrive (a video upload): give the connection back
        # now and let the handler open short transactions of its own (`ContextOpener`).
        connection.scope["state"].pop("db_connection", None)
        await (db.commit() if wrote else db.rollback())
        await db.close()
        connection.scope["state"]["credential"] = credential
    return None


class ContextOpener:
    """For routes with `opt={"long_body": True}`: each `async with opener() as ctx` is one
    short transaction, entered again from the request's credential (so a member removed or
    a key revoked meanwhile is refused), committed on success, rolled back on error."""

    def __init__(self, request: Request[Any, Any, Any]):
        self.request = request

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[Context]:
        state = self.request.app.state
        scope_state = self.request.scope["state"]
        credential: Credential = scope_state["credential"]
        if credential.claims is not None:
            claims = credential.claims
            db = await enter_request(state.engine, agency_id=claims.agency_id, user_id=claims.user_id,
                                     membership_version=claims.membership_version)
            principal, wrote = principal_from_claims(claims), False
        else:
            assert credential.api_key is not None
            db, row = await begin_api_key_request(state.engine, agency_id=credential.agency_id,
                                                  api_key_hash=credential.api_key.hashed)
            try:
                principal, wrote = await principal_for(db, row, credential.agency_id, None)
            except BaseException:
                await asyncio.shield(db.close())
                raise
            if principal is None:
                await asyncio.shield(db.close())
                raise AuthenticationRequiredError("The credential is no longer valid for this agency")
        ctx = Context(principal, connection=db, request_id=scope_state.get("request_id"), wrote=wrote)
        try:
            yield ctx
            await _commit(ctx)
            scope_state.setdefault("after_commit", []).extend(ctx.after_commit)
        except DomainError as err:
            await (_commit(ctx) if err.keep_changes else asyncio.shield(db.rollback()))
            raise
        except BaseException:
            await asyncio.shield(db.rollback())
            raise
        finally:
            if ctx.has_session:
                await asyncio.shield(ctx.session.close())
            await asyncio.shield(db.close())


async def provide_context_opener(request: Request[Any, Any, Any]) -> ContextOpener:
    if "credential" not in request.scope["state"]:  # a route without `long_body` asked for it
        raise PermissionDeniedError("This route is not open to any credential")
    return ContextOpener(request)


async def provide_context(request: Request[Any, Any, Any]) -> AsyncGenerator[Context, None]:
    """One transaction per request: commit when the handler succeeds, roll back otherwise."""
    db = request.scope["state"].get("db_connection")
    principal = request.scope["state"].get("principal")
    if db is None or principal is None:  # a route that forgot its action
        raise PermissionDeniedError("This route is not open to any credential")
    state = request.scope["state"]
    ctx = Context(principal, connection=db, request_id=state.get("request_id"), wrote=state.get("db_wrote", False))
    try:
        yield ctx
        await _commit(ctx)
        # Run once the response is on its way (RequestContextMiddleware), not before it.
        state["after_commit"] = ctx.after_commit
    except DomainError as err:
        if err.keep_changes:
            await _commit(ctx)
        else:
            await asyncio.shield(db.rollback())
        raise
    except BaseException:
        # Shielded so a cancelled request still returns its connection clean to the pool.
        await asyncio.shield(db.rollback())
        raise
    finally:
        request.scope["state"].pop("db_connection", None)
        if ctx.has_session:
            await asyncio.shield(ctx.session.close())
        await asyncio.shield(db.close())


async def _commit(ctx: Context) -> None:
    if not ctx.needs_commit:
        return  # read-only: closing the connection rolls back, as the pool always does
    if ctx.has_session:
        await ctx.session.flush()
    assert ctx.connection is not None
    await ctx.connection.commit()


async def run_after_commit(scope: Any) -> None:
    for task in scope.get("state", {}).pop("after_commit", ()):
        try:
            await task()
        except Exception:  # noqa: BLE001 - the change is committed; report, do not fail the request
            log.exception("after-commit task failed")


async def close_request_session(scope: Any) -> None:
    db = scope.get("state", {}).pop("db_connection", None)
    if db is not None:
        await asyncio.shield(db.close())


async def provide_session(state: State) -> AsyncGenerator[Any, None]:
    """For public routes (sign-up, sign-in): the tenant is learnt inside the use case."""
    session = scoped_session(state.session_factory)
    try:
        yield session
        await session.commit()
    except DomainError as err:
        await (session.commit() if err.keep_changes else asyncio.shield(session.rollback()))
        raise
    except BaseException:
        await asyncio.shield(session.rollback())
        raise
    finally:
        await asyncio.shield(session.close())


def requires(action: Action, description: str | None = None, **opt: Any) -> dict[str, Any]:
    """Route decorator arguments: the guard's action, and the same fact stated in the
    OpenAPI description so integrators know which roles and scopes may call it."""
    roles = ", ".join(role.value for role in Role if action in PERMISSIONS[role])
    scope = ACTION_SCOPES[action]
    keys = f"API keys need scope `{scope}`" if scope else "not available to API keys"
    access = f"**Access** ({action.value}): roles {roles}; {keys}."
    return {"opt": {"action": action, **opt}, "description": f"{description}\n\n{access}" if description else access}


def if_match_version(request: Request[Any, Any, Any]) -> int | None:
    """`If-Match: "3"` -> 3. A missing header or `*` means no precondition."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        from domain.core.errors import PreconditionFailedError

        raise PreconditionFailedError("If-Match must be an ETag this API returned, such as \"3\"")
    return int(tag)


def etag(version: int) -> str:
    return f'"{version}"'
