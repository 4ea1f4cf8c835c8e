from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.auth import provide_session, requires
from api.problems import SECURED, problems
from domain.agencies import schemas as s
from domain.agencies.rules import Action
from domain.agencies.service import AuthService
from domain.core.context import Context


def _auth_service(session: NamedDependency[Any], state: State) -> AuthService:
    settings = state.settings
    return AuthService(
        session=session,
        passwords=state.passwords,
        tokens=state.tokens,
        refresh_ttl=settings.refresh_token_ttl_seconds,
        billing=settings if settings.billing_enabled else None,
    )


# Public, and throttled per client address (credential stuffing, sign-up spam).
PUBLIC = {"public": True, "rate_limited": True}


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["Auth"]
    dependencies = {"session": Provide(provide_session)}

    @post(
        "/signup",
        operation_id="signUp",
        summary="Create an agency and its owner",
        status_code=HTTP_201_CREATED,
        opt=PUBLIC,
        responses=problems(400, 409, 413, 422, 429),
    )
    async def sign_up(self, data: JSONBody[s.SignUp], session: NamedDependency[Any], state: State, request: Request[Any, Any, Any]) -> s.TokenPair:
        return await _auth_service(session, state).sign_up(data, request.state.get("request_id"))

    @post(
        "/token",
        operation_id="signIn",
        summary="Sign in with email and password",
        description="Returns an access token for one agency. A person in several agencies must set "
        "`agency_id`; without it the answer is a 409 `agency-choice-required` problem listing them.",
        status_code=200,
        opt=PUBLIC,
        responses=problems(400, 401, 402, 403, 409, 422, 429),
    )
    async def sign_in(self, data: JSONBody[s.SignIn], session: NamedDependency[Any], state: State) -> s.TokenPair:
        return await _auth_service(session, state).sign_in(data)

    @post(
        "/refresh",
        operation_id="refreshToken",
        summary="Trade a refresh token for new tokens (rotates it)",
        status_code=200,
        opt=PUBLIC,
        responses=problems(400, 401, 402, 422, 429),
    )
    async def refresh(self, data: JSONBody[s.RefreshRequest], session: NamedDependency[Any], state: State) -> s.TokenPair:
        return await _auth_service(session, state).refresh(data.refresh_token)

    @post(
        "/signout",
        operation_id="signOut",
        summary="Revoke a refresh token and its chain",
        status_code=HTTP_204_NO_CONTENT,
        opt=PUBLIC,
        responses=problems(400, 422, 429),
    )
    async def sign_out(self, data: JSONBody[s.RefreshRequest], session: NamedDependency[Any], state: State) -> None:
        await _auth_service(session, state).sign_out(data.refresh_token)

    @post(
        "/switch",
        operation_id="switchAgency",
        summary="Work in another agency you belong to",
        status_code=200,
        **requires(Action.AGENCY_READ),
        security=SECURED,
        responses=problems(400, 401, 402, 403, 404, 422, 429),
    )
    async def switch(self, data: JSONBody[s.SwitchAgency], ctx: NamedDependency[Context], state: State) -> s.TokenPair:
        return await _auth_service(ctx.session, state).switch(ctx.principal, data.agency_id)


class InvitationAcceptController(Controller):
    path = "/v1/invitations/accept"
    tags = ["Members"]
    dependencies = {"session": Provide(provide_session)}

    @post(
        "/",
        operation_id="acceptInvitation",
        summary="Accept an invitation (creates the account if needed)",
        status_code=HTTP_201_CREATED,
        opt=PUBLIC,
        responses=problems(400, 401, 402, 409, 410, 413, 422, 429),
    )
    async def accept(
        self, data: JSONBody[s.AcceptInvitation], session: NamedDependency[Any], state: State, request: Request[Any, Any, Any]
    ) -> s.TokenPair:
        return await _auth_service(session, state).accept_invitation(data, request.state.get("request_id"))
