"""Agencies, people and access: sign-up, sign-in, members, invitations, API keys, audit."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import msgspec
from advanced_alchemy.mixins.uuid import uuid7
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from domain.agencies import schemas as s
from domain.agencies.models import Agency, ApiKey, AuditEvent, AuthSession, Invitation, Membership, User
from domain.agencies.rules import SCOPES, Action, Principal, Role, can_assign_role, slugify
from domain.billing import entitlements
from domain.billing.plans import Limit
from domain.brands.models import Brand
from domain.core.clock import now
from domain.core.context import Context
from domain.core.db import set_tenant
from domain.core.mail import Email, Mailer
from domain.core.errors import (
    AgencyChoiceRequiredError,
    AlreadyMemberError,
    EmailTakenError,
    InvalidCredentialsError,
    InvitationInvalidError,
    LastOwnerError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    SlugTakenError,
    ValidationFailedError,
)
from domain.core.pagination import Page, PageRequest, paginate, resolve_sort
from domain.core.security import AccessClaims, AccessTokens, OpaqueToken, Passwords
from domain.core.timezones import is_valid_time_zone

REFRESH_PREFIX = "crt"
API_KEY_PREFIX = "chk"
INVITATION_PREFIX = "cin"


async def _quantity(ctx: Context) -> None:
    """Per-seat pricing follows the seats (domain/billing/service.py)."""
    from domain.billing.service import wants_quantity_sync

    await wants_quantity_sync(ctx)


def check_version(current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise PreconditionFailedError(f"Expected version {expected}, but the resource is at version {current}")


def check_time_zone(value: str, field: str = "time_zone") -> None:
    if not is_valid_time_zone(value):
        raise ValidationFailedError.field(field, f"{value!r} is not an IANA time zone (for example Europe/Madrid)")


def normalize_email(email: str) -> str:
    return email.strip().lower()


# --- authentication -------------------------------------------------------------------


@dataclass
class AuthService:
    session: AsyncSession
    passwords: Passwords
    tokens: AccessTokens
    refresh_ttl: int
    # With Stripe configured, a new agency gets a billing account (its trial) at sign-up.
    billing: Any = None

    async def sign_up(
        self, data: s.SignUp, request_id: str | None = None, agency_id: UUID | None = None
    ) -> s.TokenPair:
        check_time_zone(data.time_zone)
        email = normalize_email(data.email)
        if await self._user_by_email(email) is not None:
            raise EmailTakenError(field="email")
        password_hash = await asyncio.to_thread(self.passwords.hash, data.password)
        user = User(id=uuid7(), email=email, name=data.name, password_hash=password_hash)
        agency_id = agency_id or uuid7()
        await set_tenant(self.session, agency_id=agency_id, user_id=user.id)
        try:
            async with self.session.begin_nested():
                self.session.add(user)
        except IntegrityError:
            raise EmailTakenError(field="email") from None
        agency = await self._insert_agency(agency_id, data)
        membership = Membership(agency_id=agency_id, user_id=user.id, role=Role.OWNER.value, brand_ids=None)
        self.session.add(membership)
        await self.session.flush()
        if self.billing is not None:
            from domain.billing.service import open_account

            await open_account(self.session, agency_id, self.billing)
        principal = Principal(agency_id=agency_id, user_id=user.id, role=Role.OWNER, label=email)
        await Context(principal, session=self.session, request_id=request_id).audit("agency.created", "agency", agency_id, {"name": agency.name})
        return await self._issue(user, agency_id, membership)

    async def sign_in(self, data: s.SignIn) -> s.TokenPair:
        user = await self._user_by_email(normalize_email(data.email))
        ok = await asyncio.to_thread(self.passwords.verify, user.password_hash if user else None, data.password)
        if not ok or user is None:
            raise InvalidCredentialsError("The email or password is wrong")
        await set_tenant(self.session, agency_id=None, user_id=user.id)
        memberships = await self._memberships(user.id)
        if not memberships:
            raise InvalidCredentialsError("This account belongs to no agency")
        if data.agency_id is not None:
            chosen = next((m for m in memberships if m.agency_id == data.agency_id), None)
            if chosen is None:
                raise PermissionDeniedError("You are not a member of that agency", field="agency_id")
        elif len(memberships) == 1:
            chosen = memberships[0]
        else:
            choices = await self._choices(user.id)
            raise AgencyChoiceRequiredError(
                "Sign in again with agency_id set to one of these agencies",
                agencies=[msgspec.to_builtins(c) for c in choices],
            )
        await set_tenant(self.session, agency_id=chosen.agency_id, user_id=user.id)
        return await self._issue(user, chosen.agency_id, chosen)

    async def switch(self, principal: Principal, agency_id: UUID) -> s.TokenPair:
        if principal.user_id is None:
            raise PermissionDeniedError("Only people switch agencies; an API key belongs to one")
        user = await self.session.get_one(User, principal.user_id)
        await set_tenant(self.session, agency_id=agency_id, user_id=user.id)
        membership = await self.session.scalar(
            select(Membership).where(Membership.agency_id == agency_id, Membership.user_id == user.id)
        )
        if membership is None:
            raise NotFoundError("No such agency")
        return await self._issue(user, agency_id, membership)

    async def refresh(self, raw: str) -> s.TokenPair:
        token = OpaqueToken.parse(raw, REFRESH_PREFIX)
        if token is None:
            raise InvalidCredentialsError("The refresh token is not valid")
        await set_tenant(self.session, agency_id=token.agency_id)
        stored = await self.session.scalar(
            select(AuthSession).where(AuthSession.token_hash == token.hashed).with_for_update()
        )
        if stored is None or stored.revoked_at is not None or stored.expires_at <= now():
            raise InvalidCredentialsError("The refresh token is not valid")
        if stored.rotated_at is not None:
            # A rotated token came back: someone holds a copy. End the whole chain.
            await self._revoke_family(stored.family_id)
            raise InvalidCredentialsError("The refresh token was already used; sign in again", keep_changes=True)
        await set_tenant(self.session, agency_id=token.agency_id, user_id=stored.user_id)
        membership = await self.session.scalar(
            select(Membership).where(Membership.agency_id == token.agency_id, Membership.user_id == stored.user_id)
        )
        if membership is None:
            await self._revoke_family(stored.family_id)
            raise InvalidCredentialsError("You are no longer a member of this agency", keep_changes=True)
        stored.rotated_at = now()
        user = await self.session.get_one(User, stored.user_id)
        return await self._issue(user, token.agency_id, membership, family_id=stored.family_id)

    async def sign_out(self, raw: str) -> None:
        token = OpaqueToken.parse(raw, REFRESH_PREFIX)
        if token is None:
            return
        await set_tenant(self.session, agency_id=token.agency_id)
        stored = await self.session.scalar(select(AuthSession).where(AuthSession.token_hash == token.hashed))
        if stored is not None:
            await self._revoke_family(stored.family_id)

    async def accept_invitation(self, data: s.AcceptInvitation, request_id: str | None = None) -> s.TokenPair:
        token = OpaqueToken.parse(data.token, INVITATION_PREFIX)
        if token is None:
            raise InvitationInvalidError()
        await set_tenant(self.session, agency_id=token.agency_id)
        invitation = await self.session.scalar(
            select(Invitation).where(Invitation.token_hash == token.hashed).with_for_update()
        )
        if (
            invitation is None
            or invitation.accepted_at is not None
            or invitation.revoked_at is not None
            or invitation.expires_at <= now()
        ):
            raise InvitationInvalidError()
        # The invitation already holds a seat; it fails only if the agency is over its
        # plan's seats by now (a downgrade).
        await entitlements.check(self.session, token.agency_id, Limit.SEATS, adding=0)
        user = await self._user_by_email(invitation.email)
        if user is None:
            if not data.name:
                raise ValidationFailedError.field("name", "A name is needed to create your account")
            if len(data.password) < 10:
                raise ValidationFailedError.field("password", "Use at least 10 characters")
            password_hash = await asyncio.to_thread(self.passwords.hash, data.password)
            user = User(id=uuid7(), email=invitation.email, name=data.name, password_hash=password_hash)
            self.session.add(user)
            await self.session.flush()
        elif not await asyncio.to_thread(self.passwords.verify, user.password_hash, data.password):
            raise InvalidCredentialsError("This email already has an account: use its password")
        await set_tenant(self.session, agency_id=token.agency_id, user_id=user.id)
        existing = await self.session.scalar(
            select(Membership).where(Membership.agency_id == token.agency_id, Membership.user_id == user.id)
        )
        if existing is not None:
            raise AlreadyMemberError()
        membership = Membership(
            agency_id=token.agency_id, user_id=user.id, role=invitation.role, brand_ids=invitation.brand_ids
        )
        invitation.accepted_at = now()
        self.session.add(membership)
        await self.session.flush()
        principal = Principal(agency_id=token.agency_id, user_id=user.id, role=Role(membership.role), label=user.email)
        await Context(principal, session=self.session, request_id=request_id).audit(
            "member.joined", "membership", membership.id, {"role": membership.role, "invitation_id": str(invitation.id)}
        )
        return await self._issue(user, token.agency_id, membership)

    # -- helpers

    async def _issue(
        self, user: User, agency_id: UUID, membership: Membership, family_id: UUID | None = None
    ) -> s.TokenPair:
        if membership.frozen_at is not None:
            raise entitlements.frozen_member_error()
        refresh = OpaqueToken.new(REFRESH_PREFIX, agency_id)
        auth_session = AuthSession(
            id=uuid7(),
            agency_id=agency_id,
            user_id=user.id,
            family_id=family_id or uuid7(),
            token_hash=refresh.hashed,
            expires_at=now() + timedelta(seconds=self.refresh_ttl),
        )
        self.session.add(auth_session)
        await self.session.flush()  # the membership's version is final once flushed
        access, _ = self.tokens.issue(
            user_id=user.id,
            agency_id=agency_id,
            session_id=auth_session.id,
            role=membership.role,
            membership_version=membership.version,
            brand_ids=membership.brand_ids,
            email=user.email,
        )
        return s.TokenPair(
            access_token=access,
            refresh_token=refresh.value,
            token_type="Bearer",
            expires_in=self.tokens.ttl_seconds,
            agency_id=agency_id,
            user_id=user.id,
            role=Role(membership.role),
            agencies=await self._choices(user.id),
        )

    async def _choices(self, user_id: UUID) -> list[s.AgencyChoice]:
        rows = await self.session.execute(
            select(Agency.id, Agency.name, Agency.slug, Membership.role)
            .join(Membership, Membership.agency_id == Agency.id)
            .where(Membership.user_id == user_id)
            .order_by(Agency.name, Agency.id)
        )
        return [s.AgencyChoice(id=r.id, name=r.name, slug=r.slug, role=Role(r.role)) for r in rows]

    async def _memberships(self, user_id: UUID) -> list[Membership]:
        return list((await self.session.scalars(select(Membership).where(Membership.user_id == user_id))).all())

    async def _user_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(func.lower(User.email) == email))

    async def _insert_agency(self, agency_id: UUID, data: s.SignUp) -> Agency:
        # Other agencies are invisible under RLS, so the unique index is the only judge of
        # a free slug: try it in a savepoint, and for a generated slug try a suffixed one.
        base = data.agency_slug or slugify(data.agency_name)
        for attempt in range(6):
            slug = base if attempt == 0 else f"{base[:54]}-{secrets.token_hex(2 + attempt)}"
            agency = Agency(
                id=agency_id, name=data.agency_name, slug=slug, time_zone=data.time_zone, locale=data.locale, branding={}
            )
            try:
                async with self.session.begin_nested():
                    self.session.add(agency)
                return agency
            except IntegrityError:
                if data.agency_slug:
                    raise SlugTakenError(f"The agency slug {slug!r} is taken", field="agency_slug") from None
        raise SlugTakenError("Could not find a free slug; choose one", field="agency_slug")

    async def _revoke_family(self, family_id: UUID) -> None:
        await self.session.execute(
            update(AuthSession)
            .where(AuthSession.family_id == family_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now())
        )


def principal_from_claims(claims: AccessClaims) -> Principal:
    """The database has just checked these claims' membership version (chorus_enter)."""
    return Principal(
        agency_id=claims.agency_id,
        user_id=claims.user_id,
        role=Role(claims.role),
        brand_ids=frozenset(claims.brand_ids) if claims.brand_ids is not None else None,
        label=claims.email,
    )


async def principal_for(
    connection: AsyncConnection, row: Any, agency_id: UUID, user_id: UUID | None
) -> tuple[Principal | None, bool]:
    """`row` is what `chorus_begin_request` read for this caller in this transaction.
    Also says whether it wrote (the API key's last-use stamp), so the caller commits."""
    if row is None:
        return None, False
    if user_id is not None:
        principal = Principal(
            agency_id=agency_id,
            user_id=user_id,
            role=Role(row.role),
            brand_ids=frozenset(row.brand_ids) if row.brand_ids is not None else None,
            label=row.label,
        )
        return principal, False
    moment = now()
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= moment):
        return None, False
    if getattr(row, "frozen_at", None) is not None:
        raise entitlements.frozen_api_key_error()
    wrote = False
    if row.last_used_at is None or moment - row.last_used_at > timedelta(minutes=1):
        # Throttled so a busy integration does not write on every read.
        await connection.execute(update(ApiKey).where(ApiKey.id == row.credential_id).values(last_used_at=moment))
        wrote = True
    principal = Principal(
        agency_id=agency_id, api_key_id=row.credential_id, scopes=frozenset(row.scopes), label=f"api key {row.label}"
    )
    return principal, wrote


# --- the agency and its people --------------------------------------------------------


MEMBER_SORTS = {"created_at": (Membership.created_at, Membership.id)}
INVITATION_SORTS = {"created_at": (Invitation.created_at, Invitation.id)}
API_KEY_SORTS = {"created_at": (ApiKey.created_at, ApiKey.id), "name": (ApiKey.name, ApiKey.id)}
AUDIT_SORTS = {"created_at": (AuditEvent.created_at, AuditEvent.id)}


def agency_out(agency: Agency) -> s.AgencyOut:
    return s.AgencyOut(
        id=agency.id,
        name=agency.name,
        slug=agency.slug,
        time_zone=agency.time_zone,
        locale=agency.locale,
        branding=msgspec.convert(agency.branding or {}, s.Branding),
        version=agency.version,
        created_at=agency.created_at,
        updated_at=agency.updated_at,
    )


def invitation_status(inv: Invitation) -> str:
    if inv.accepted_at:
        return "accepted"
    if inv.revoked_at:
        return "revoked"
    if inv.expires_at <= now():
        return "expired"
    return "pending"


def invitation_out(inv: Invitation) -> s.InvitationOut:
    return s.InvitationOut(
        id=inv.id,
        email=inv.email,
        role=Role(inv.role),
        brand_ids=inv.brand_ids,
        status=invitation_status(inv),
        expires_at=inv.expires_at,
        created_at=inv.created_at,
        invited_by_id=inv.invited_by_id,
    )


def api_key_out(key: ApiKey) -> s.ApiKeyOut:
    return s.ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.display_prefix,
        scopes=list(key.scopes),
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        created_by_id=key.created_by_id,
    )


def invitation_email(agency_name: str, inviter: str, invitation: Invitation, accept_url: str) -> Email:
    expires = invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    return Email(
        to=invitation.email,
        subject=f"You are invited to join {agency_name} on Chorus",
        text=(
            f"Hello,\n\n{inviter} invited you to join {agency_name} on Chorus as {invitation.role}.\n\n"
            f"Accept the invitation here:\n{accept_url}\n\n"
            f"The link works once and expires on {expires}. If you did not expect it, ignore this email.\n"
        ),
    )


@dataclass
class AgencyService:
    ctx: Context
    invitation_ttl: int = 7 * 24 * 3600
    public_base_url: str = ""
    mailer: Mailer | None = None

    @property
    def session(self) -> AsyncSession:
        return self.ctx.session

    async def get(self) -> Agency:
        self.ctx.require(Action.AGENCY_READ)
        agency = await self.session.get(Agency, self.ctx.agency_id)
        if agency is None:
            raise NotFoundError("No such agency")
        return agency

    async def update(self, data: s.AgencyUpdate, expected_version: int | None) -> Agency:
        self.ctx.require(Action.AGENCY_UPDATE)
        agency = await self.get()
        check_version(agency.version, expected_version)
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        if "time_zone" in changes:
            check_time_zone(changes["time_zone"])
        if "branding" in changes:
            changes["branding"] = msgspec.to_builtins(changes["branding"])
            if any(v is not None for v in (changes["branding"] or {}).values()):
                await entitlements.check(self.session, self.ctx.agency_id, Limit.WHITE_LABEL)
        try:
            async with self.session.begin_nested():
                for key, value in changes.items():
                    setattr(agency, key, value)
        except IntegrityError:
            raise SlugTakenError(f"The agency slug {changes.get('slug')!r} is taken", field="slug") from None
        await self.ctx.audit("agency.updated", "agency", agency.id, changes)
        return agency

    # -- members

    async def list_members(self, page: PageRequest) -> Page[s.MemberOut]:
        self.ctx.require(Action.MEMBERS_READ)
        result = await paginate(
            self.session, self.ctx.select(Membership), resolve_sort(MEMBER_SORTS, page.sort or "created_at"), page
        )
        users = await self._users({m.user_id for m in result.items})
        return Page([self._member_out(m, users[m.user_id]) for m in result.items], result.next_cursor)

    async def get_member(self, member_id: UUID) -> s.MemberOut:
        self.ctx.require(Action.MEMBERS_READ)
        membership = await self._membership(member_id)
        users = await self._users({membership.user_id})
        return self._member_out(membership, users[membership.user_id])

    async def update_member(self, member_id: UUID, data: s.MemberUpdate, expected_version: int | None) -> s.MemberOut:
        self.ctx.require(Action.MEMBERS_MANAGE)
        membership = await self._membership(member_id, lock=True)
        check_version(membership.version, expected_version)
        changes: dict[str, Any] = {}
        if data.role is not msgspec.UNSET and data.role.value != membership.role:
            self._check_can_assign(Role(membership.role), data.role)
            if membership.role == Role.OWNER.value:
                await self._ensure_other_owner(membership.id)
            changes["role"] = data.role.value
        if data.brand_ids is not msgspec.UNSET:
            brand_ids = await self._check_brands(data.brand_ids)
            changes["brand_ids"] = [str(b) for b in brand_ids] if brand_ids is not None else None
            membership.brand_ids = brand_ids
        if "role" in changes:
            membership.role = changes["role"]
        await self.session.flush()
        await self.ctx.audit("member.updated", "membership", membership.id, changes)
        users = await self._users({membership.user_id})
        return self._member_out(membership, users[membership.user_id])

    async def remove_member(self, member_id: UUID) -> None:
        membership = await self._membership(member_id, lock=True)
        leaving_self = membership.user_id == self.ctx.principal.user_id
        if not leaving_self:
            self.ctx.require(Action.MEMBERS_MANAGE)
            self._check_can_assign(Role(membership.role), Role(membership.role))
        if membership.role == Role.OWNER.value:
            await self._ensure_other_owner(membership.id)
        await self.session.delete(membership)
        await self.session.execute(
            update(AuthSession)
            .where(
                AuthSession.agency_id == self.ctx.agency_id,
                AuthSession.user_id == membership.user_id,
                AuthSession.revoked_at.is_(None),
            )
            .values(revoked_at=now())
        )
        await self.ctx.audit("member.removed", "membership", membership.id, {"user_id": str(membership.user_id)})
        await self.session.flush()
        await entitlements.thaw_after_freeing(self.session, self.ctx.agency_id)
        await _quantity(self.ctx)

    # -- invitations

    async def invite(self, data: s.InvitationCreate) -> s.InvitationCreated:
        self.ctx.require(Action.MEMBERS_MANAGE)
        self._check_can_assign(None, data.role)
        email = normalize_email(data.email)
        brand_ids = await self._check_brands(data.brand_ids)
        already = await self.session.scalar(
            self.ctx.select(Membership, Membership.id)
            .join(User, User.id == Membership.user_id)
            .where(func.lower(User.email) == email)
        )
        if already is not None:
            raise AlreadyMemberError(field="email")
        # A new invitation replaces any pending one for the same address.
        await self.session.execute(
            update(Invitation)
            .where(Invitation.agency_id == self.ctx.agency_id, Invitation.email == email, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
            .values(revoked_at=now())
        )
        await entitlements.check(self.session, self.ctx.agency_id, Limit.SEATS)
        token = OpaqueToken.new(INVITATION_PREFIX, self.ctx.agency_id)
        invitation = Invitation(
            agency_id=self.ctx.agency_id,
            email=email,
            role=data.role.value,
            brand_ids=brand_ids,
            token_hash=token.hashed,
            invited_by_id=self.ctx.principal.user_id,
            expires_at=now() + timedelta(seconds=self.invitation_ttl),
        )
        self.session.add(invitation)
        await self.session.flush()
        await self.ctx.audit("invitation.created", "invitation", invitation.id, {"email": email, "role": data.role.value})
        await _quantity(self.ctx)
        accept_url = f"{self.public_base_url.rstrip('/')}/invitations/accept#token={token.value}"
        if self.mailer is not None:
            agency = await self.get()
            inviter = self.ctx.principal.label
            email = invitation_email(agency.name, inviter, invitation, accept_url)
            mailer = self.mailer
            self.ctx.after_commit.append(lambda: mailer.send(email))
        return s.InvitationCreated(**msgspec.structs.asdict(invitation_out(invitation)), token=token.value, accept_url=accept_url)

    async def list_invitations(self, page: PageRequest, status: str | None = None) -> Page[s.InvitationOut]:
        self.ctx.require(Action.MEMBERS_MANAGE)
        stmt = self.ctx.select(Invitation)
        moment = now()
        if status == "pending":
            stmt = stmt.where(
                Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > moment
            )
        elif status == "accepted":
            stmt = stmt.where(Invitation.accepted_at.is_not(None))
        elif status == "revoked":
            stmt = stmt.where(Invitation.revoked_at.is_not(None))
        elif status == "expired":
            stmt = stmt.where(
                Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at <= moment
            )
        result = await paginate(self.session, stmt, resolve_sort(INVITATION_SORTS, page.sort or "-created_at"), page)
        return Page([invitation_out(i) for i in result.items], result.next_cursor)

    async def revoke_invitation(self, invitation_id: UUID) -> None:
        self.ctx.require(Action.MEMBERS_MANAGE)
        invitation = await self.ctx.get(Invitation, invitation_id, lock=True, what="invitation")
        if invitation.revoked_at is None and invitation.accepted_at is None:
            invitation.revoked_at = now()
            await self.ctx.audit("invitation.revoked", "invitation", invitation.id, {})
            await _quantity(self.ctx)
            await self.session.flush()
            await entitlements.thaw_after_freeing(self.session, self.ctx.agency_id)

    # -- API keys

    async def create_api_key(self, data: s.ApiKeyCreate) -> s.ApiKeyCreated:
        self.ctx.require(Action.API_KEYS_MANAGE)
        unknown = sorted(set(data.scopes) - SCOPES)
        if unknown:
            raise ValidationFailedError.field("scopes", f"Unknown scopes: {', '.join(unknown)}; known: {', '.join(sorted(SCOPES))}")
        if data.expires_at is not None and data.expires_at <= now():
            raise ValidationFailedError.field("expires_at", "The expiry must be in the future")
        await entitlements.check(self.session, self.ctx.agency_id, Limit.API_ACCESS)
        token = OpaqueToken.new(API_KEY_PREFIX, self.ctx.agency_id)
        key = ApiKey(
            agency_id=self.ctx.agency_id,
            name=data.name,
            display_prefix=token.value[:4] + token.secret[:6],
            token_hash=token.hashed,
            scopes=sorted(set(data.scopes)),
            created_by_id=self.ctx.principal.user_id,
            expires_at=data.expires_at,
        )
        self.session.add(key)
        await self.session.flush()
        await self.ctx.audit("api_key.created", "api_key", key.id, {"name": key.name, "scopes": key.scopes})
        return s.ApiKeyCreated(**msgspec.structs.asdict(api_key_out(key)), key=token.value)

    async def list_api_keys(self, page: PageRequest, include_revoked: bool = False) -> Page[s.ApiKeyOut]:
        self.ctx.require(Action.API_KEYS_MANAGE)
        stmt = self.ctx.select(ApiKey)
        if not include_revoked:
            stmt = stmt.where(ApiKey.revoked_at.is_(None))
        result = await paginate(self.session, stmt, resolve_sort(API_KEY_SORTS, page.sort or "-created_at"), page)
        return Page([api_key_out(k) for k in result.items], result.next_cursor)

    async def get_api_key(self, key_id: UUID) -> s.ApiKeyOut:
        self.ctx.require(Action.API_KEYS_MANAGE)
        return api_key_out(await self.ctx.get(ApiKey, key_id, what="API key"))

    async def revoke_api_key(self, key_id: UUID) -> None:
        self.ctx.require(Action.API_KEYS_MANAGE)
        key = await self.ctx.get(ApiKey, key_id, lock=True, what="API key")
        if key.revoked_at is None:
            key.revoked_at = now()
            await self.ctx.audit("api_key.revoked", "api_key", key.id, {})

    # -- audit

    async def list_audit(
        self,
        page: PageRequest,
        object_type: str | None = None,
        object_id: UUID | None = None,
        actor_id: UUID | None = None,
        action: str | None = None,
    ) -> Page[s.AuditEventOut]:
        self.ctx.require(Action.AUDIT_READ)
        stmt = self.ctx.select(AuditEvent)
        if object_type:
            stmt = stmt.where(AuditEvent.object_type == object_type)
        if object_id:
            stmt = stmt.where(AuditEvent.object_id == object_id)
        if actor_id:
            stmt = stmt.where(AuditEvent.actor_id == actor_id)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        result = await paginate(self.session, stmt, resolve_sort(AUDIT_SORTS, page.sort or "-created_at"), page)
        return Page(
            [
                s.AuditEventOut(
                    id=e.id,
                    actor_type=e.actor_type,
                    actor_id=e.actor_id,
                    actor_label=e.actor_label,
                    action=e.action,
                    object_type=e.object_type,
                    object_id=e.object_id,
                    changes=e.changes,
                    request_id=e.request_id,
                    created_at=e.created_at,
                )
                for e in result.items
            ],
            result.next_cursor,
        )

    # -- helpers

    def _check_can_assign(self, current: Role | None, new: Role) -> None:
        principal = self.ctx.principal
        # A key with members:write manages people like an admin: never the owner role.
        actor = principal.role or (Role.ADMIN if principal.can(Action.MEMBERS_MANAGE) else None)
        if actor is None or not can_assign_role(actor, current, new):
            raise PermissionDeniedError("Only an owner can grant, change or remove the owner role")

    async def _ensure_other_owner(self, membership_id: UUID) -> None:
        # Lock every owner row so two concurrent demotions cannot both pass the check.
        owners = (
            await self.session.scalars(
                self.ctx.select(Membership, Membership.id).where(Membership.role == Role.OWNER.value).with_for_update()
            )
        ).all()
        if not [o for o in owners if o != membership_id]:
            raise LastOwnerError("Make someone else an owner first")

    async def _check_brands(self, brand_ids: list[UUID] | None) -> list[UUID] | None:
        if brand_ids is None:
            return None
        wanted = set(brand_ids)
        found = set((await self.session.scalars(self.ctx.select(Brand, Brand.id).where(Brand.id.in_(wanted)))).all())
        missing = wanted - found
        if missing:
            raise ValidationFailedError.field("brand_ids", f"Unknown brands: {', '.join(sorted(map(str, missing)))}")
        return sorted(wanted)

    async def _membership(self, member_id: UUID, lock: bool = False) -> Membership:
        return await self.ctx.get(Membership, member_id, lock=lock, what="member")

    async def _users(self, ids: set[UUID]) -> dict[UUID, User]:
        return {u.id: u for u in (await self.session.scalars(select(User).where(User.id.in_(ids)))).all()}

    @staticmethod
    def _member_out(m: Membership, user: User) -> s.MemberOut:
        return s.MemberOut(
            id=m.id,
            user_id=m.user_id,
            email=user.email,
            name=user.name,
            role=Role(m.role),
            brand_ids=m.brand_ids,
            version=m.version,
            created_at=m.created_at,
        )
