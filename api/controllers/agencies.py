from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar.di import NamedDependency
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader, State
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.auth import etag, if_match_version, requires
from api.controllers.common import Cursor, Limit, page_out, page_request
from api.problems import CREATE, DELETE, LIST, READ, SECURED, WRITE, problems
from domain.agencies import schemas as s
from domain.agencies.rules import Action
from domain.agencies.service import AgencyService, agency_out
from domain.core.context import Context

ETAG_HEADER = [ResponseHeader(name="ETag", description="Send it back in If-Match to update safely", documentation_only=True)]
IF_MATCH = HeaderParameter(name="If-Match", required=False, description='ETag from a read, e.g. "3"; 412 if it changed')


def _service(ctx: NamedDependency[Context], state: State) -> AgencyService:
    settings = state.settings
    return AgencyService(ctx, settings.invitation_ttl_seconds, settings.public_base_url, state.mailer)


class AgencyController(Controller):
    path = "/v1/agency"
    tags = ["Agency"]
    security = SECURED

    @get("/", operation_id="getAgency", summary="The agency you are working in", **requires(Action.AGENCY_READ),
         responses=problems(*READ), response_headers=ETAG_HEADER)
    async def get_agency(self, ctx: NamedDependency[Context], state: State) -> Response[s.AgencyOut]:
        agency = await _service(ctx, state).get()
        return Response(agency_out(agency), headers={"ETag": etag(agency.version)})

    @patch("/", operation_id="updateAgency", summary="Update the agency (name, slug, time zone, branding)",
           **requires(Action.AGENCY_UPDATE), responses=problems(*WRITE), response_headers=ETAG_HEADER)
    async def update_agency(
        self, ctx: NamedDependency[Context], state: State, data: JSONBody[s.AgencyUpdate], request: Request[Any, Any, Any],
        if_match: Annotated[str | None, IF_MATCH] = None,
    ) -> Response[s.AgencyOut]:
        agency = await _service(ctx, state).update(data, if_match_version(request))
        return Response(agency_out(agency), headers={"ETag": etag(agency.version)})


class MemberController(Controller):
    path = "/v1/members"
    tags = ["Members"]
    security = SECURED

    @get("/", operation_id="listMembers", summary="Members of the agency", **requires(Action.MEMBERS_READ),
         responses=problems(*LIST))
    async def list_members(self, ctx: NamedDependency[Context], state: State, limit: Limit = 50, cursor: Cursor = None) -> s.MemberPage:
        return page_out(s.MemberPage, await _service(ctx, state).list_members(page_request(limit, cursor)))

    @get("/{member_id:uuid}", operation_id="getMember", summary="One member", **requires(Action.MEMBERS_READ),
         responses=problems(*READ), response_headers=ETAG_HEADER)
    async def get_member(self, ctx: NamedDependency[Context], state: State, member_id: FromPath[UUID]) -> Response[s.MemberOut]:
        member = await _service(ctx, state).get_member(member_id)
        return Response(member, headers={"ETag": etag(member.version)})

    @patch("/{member_id:uuid}", operation_id="updateMember", summary="Change a member's role or brand access",
           **requires(Action.MEMBERS_MANAGE), responses=problems(*WRITE), response_headers=ETAG_HEADER)
    async def update_member(
        self, ctx: NamedDependency[Context], state: State, member_id: FromPath[UUID], data: JSONBody[s.MemberUpdate], request: Request[Any, Any, Any],
        if_match: Annotated[str | None, IF_MATCH] = None,
    ) -> Response[s.MemberOut]:
        member = await _service(ctx, state).update_member(member_id, data, if_match_version(request))
        return Response(member, headers={"ETag": etag(member.version)})

    @delete("/{member_id:uuid}", operation_id="removeMember", summary="Remove a member (or leave the agency)",
            **requires(Action.MEMBERS_READ, "Anyone may remove themselves; removing others needs members:manage. "
            "The last owner cannot leave."), responses=problems(*DELETE), status_code=HTTP_204_NO_CONTENT)
    async def remove_member(self, ctx: NamedDependency[Context], state: State, member_id: FromPath[UUID]) -> None:
        await _service(ctx, state).remove_member(member_id)


class InvitationController(Controller):
    path = "/v1/invitations"
    tags = ["Members"]
    security = SECURED

    @post("/", operation_id="createInvitation", summary="Invite someone by email",
          **requires(Action.MEMBERS_MANAGE, "The answer carries the invitation token and link once; only a hash is stored."), responses=problems(*CREATE), status_code=HTTP_201_CREATED)
    async def create_invitation(self, ctx: NamedDependency[Context], state: State, data: JSONBody[s.InvitationCreate]) -> s.InvitationCreated:
        return await _service(ctx, state).invite(data)

    @get("/", operation_id="listInvitations", summary="Invitations", **requires(Action.MEMBERS_MANAGE),
         responses=problems(*LIST))
    async def list_invitations(
        self, ctx: NamedDependency[Context], state: State, limit: Limit = 50, cursor: Cursor = None,
        status: Annotated[str | None, QueryParameter(pattern="^(pending|accepted|revoked|expired)$")] = None,
    ) -> s.InvitationPage:
        return page_out(s.InvitationPage, await _service(ctx, state).list_invitations(page_request(limit, cursor), status))

    @delete("/{invitation_id:uuid}", operation_id="revokeInvitation", summary="Revoke an invitation",
            **requires(Action.MEMBERS_MANAGE), responses=problems(*DELETE), status_code=HTTP_204_NO_CONTENT)
    async def revoke_invitation(self, ctx: NamedDependency[Context], state: State, invitation_id: FromPath[UUID]) -> None:
        await _service(ctx, state).revoke_invitation(invitation_id)


class ApiKeyController(Controller):
    path = "/v1/api-keys"
    tags = ["API keys"]
    security = SECURED

    @post("/", operation_id="createApiKey", summary="Create an API key (shown once)",
          **requires(Action.API_KEYS_MANAGE), responses=problems(*CREATE), status_code=HTTP_201_CREATED)
    async def create_api_key(self, ctx: NamedDependency[Context], state: State, data: JSONBody[s.ApiKeyCreate]) -> s.ApiKeyCreated:
        return await _service(ctx, state).create_api_key(data)

    @get("/", operation_id="listApiKeys", summary="API keys (never their secret)", **requires(Action.API_KEYS_MANAGE),
         responses=problems(*LIST))
    async def list_api_keys(
        self, ctx: NamedDependency[Context], state: State, limit: Limit = 50, cursor: Cursor = None, include_revoked: FromQuery[bool] = False
    ) -> s.ApiKeyPage:
        return page_out(s.ApiKeyPage, await _service(ctx, state).list_api_keys(page_request(limit, cursor), include_revoked))

    @get("/{key_id:uuid}", operation_id="getApiKey", summary="One API key", **requires(Action.API_KEYS_MANAGE),
         responses=problems(*READ))
    async def get_api_key(self, ctx: NamedDependency[Context], state: State, key_id: FromPath[UUID]) -> s.ApiKeyOut:
        return await _service(ctx, state).get_api_key(key_id)

    @delete("/{key_id:uuid}", operation_id="revokeApiKey", summary="Revoke an API key",
            **requires(Action.API_KEYS_MANAGE), responses=problems(*DELETE), status_code=HTTP_204_NO_CONTENT)
    async def revoke_api_key(self, ctx: NamedDependency[Context], state: State, key_id: FromPath[UUID]) -> None:
        await _service(ctx, state).revoke_api_key(key_id)


class AuditController(Controller):
    path = "/v1/audit-events"
    tags = ["Audit"]
    security = SECURED

    @get("/", operation_id="listAuditEvents", summary="Who did what, newest first", **requires(Action.AUDIT_READ),
         responses=problems(*LIST))
    async def list_audit_events(
        self, ctx: NamedDependency[Context], state: State, limit: Limit = 50, cursor: Cursor = None,
        object_type: Annotated[str | None, QueryParameter(max_length=40)] = None,
        object_id: FromQuery[UUID | None] = None,
        actor_id: FromQuery[UUID | None] = None,
        action: Annotated[str | None, QueryParameter(max_length=80)] = None,
    ) -> s.AuditEventPage:
        page = await _service(ctx, state).list_audit(page_request(limit, cursor), object_type, object_id, actor_id, action)
        return page_out(s.AuditEventPage, page)
