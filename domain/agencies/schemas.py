from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from domain.agencies.rules import Role
from domain.core.schemas import Email, Input, LanguageTag, Name, Password, Slug, TimeZone

HexColor = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$", examples=["#E4572E"])]
Url = Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^https?://\S+$")]
Scope = Annotated[str, msgspec.Meta(pattern=r"^[a-z_]+:(read|write)$", examples=["brands:write"])]


class Branding(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """White-label look for pages the agency's clients see."""

    logo_url: Url | None = None
    primary_color: HexColor | None = None
    secondary_color: HexColor | None = None


# --- auth -----------------------------------------------------------------------------


class SignUp(Input):
    agency_name: Name
    email: Email
    password: Password
    name: Name
    agency_slug: Slug | None = None
    time_zone: TimeZone = "UTC"
    locale: LanguageTag = "en"


class SignIn(Input):
    email: Email
    password: Annotated[str, msgspec.Meta(max_length=256)]
    agency_id: UUID | None = None


class RefreshRequest(Input):
    refresh_token: Annotated[str, msgspec.Meta(max_length=300)]


class SwitchAgency(Input):
    agency_id: UUID


class AgencyChoice(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    slug: str
    role: Role


class TokenPair(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    agency_id: UUID
    user_id: UUID
    role: Role
    agencies: list[AgencyChoice]


class AcceptInvitation(Input):
    token: Annotated[str, msgspec.Meta(max_length=300)]
    password: Annotated[str, msgspec.Meta(max_length=256)]
    name: Name | None = None


# --- agency ---------------------------------------------------------------------------


class AgencyOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    slug: str
    time_zone: str
    locale: str
    branding: Branding
    version: int
    created_at: datetime
    updated_at: datetime


class AgencyUpdate(Input):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    slug: Slug | msgspec.UnsetType = msgspec.UNSET
    time_zone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    locale: LanguageTag | msgspec.UnsetType = msgspec.UNSET
    branding: Branding | msgspec.UnsetType = msgspec.UNSET


# --- members & invitations ------------------------------------------------------------


class MemberOut(msgspec.Struct, kw_only=True):
    id: UUID
    user_id: UUID
    email: str
    name: str
    role: Role
    brand_ids: list[UUID] | None
    version: int
    created_at: datetime


class MemberUpdate(Input):
    role: Role | msgspec.UnsetType = msgspec.UNSET
    # null: every brand; a list: only these brands.
    brand_ids: list[UUID] | None | msgspec.UnsetType = msgspec.UNSET


class InvitationCreate(Input):
    email: Email
    role: Role
    brand_ids: list[UUID] | None = None


class InvitationOut(msgspec.Struct, kw_only=True):
    id: UUID
    email: str
    role: Role
    brand_ids: list[UUID] | None
    status: str
    expires_at: datetime
    created_at: datetime
    invited_by_id: UUID | None


class InvitationCreated(InvitationOut, kw_only=True):
    # Shown once: the link the invitee opens. Only its hash is stored.
    token: str
    accept_url: str


# --- API keys -------------------------------------------------------------------------


class ApiKeyCreate(Input):
    name: Name
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=40)]
    expires_at: datetime | None = None


class ApiKeyOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_by_id: UUID | None


class ApiKeyCreated(ApiKeyOut, kw_only=True):
    # Shown once; store it now. Chorus keeps only its hash.
    key: str


# --- audit ----------------------------------------------------------------------------


class AuditEventOut(msgspec.Struct, kw_only=True):
    id: UUID
    actor_type: str
    actor_id: UUID | None
    actor_label: str
    action: str
    object_type: str
    object_id: UUID | None
    changes: dict[str, object]
    request_id: str | None
    created_at: datetime


class MemberPage(msgspec.Struct, kw_only=True):
    items: list[MemberOut]
    next_cursor: str | None


class InvitationPage(msgspec.Struct, kw_only=True):
    items: list[InvitationOut]
    next_cursor: str | None


class ApiKeyPage(msgspec.Struct, kw_only=True):
    items: list[ApiKeyOut]
    next_cursor: str | None


class AuditEventPage(msgspec.Struct, kw_only=True):
    items: list[AuditEventOut]
    next_cursor: str | None
