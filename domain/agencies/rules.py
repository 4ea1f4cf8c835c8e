"""Who may do what: the role x action table and API-key scopes, in one place. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"
    EDITOR = "editor"
    ANALYST = "analyst"


class Action(StrEnum):
    AGENCY_READ = "agency:read"
    AGENCY_UPDATE = "agency:update"
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"
    API_KEYS_MANAGE = "api_keys:manage"
    AUDIT_READ = "audit:read"
    BRANDS_READ = "brands:read"
    BRANDS_WRITE = "brands:write"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"
    ACCOUNTS_READ = "accounts:read"
    ACCOUNTS_WRITE = "accounts:write"
    POSTS_READ = "posts:read"  # posts, variants, revisions, briefs, the calendar, imports
    POSTS_WRITE = "posts:write"
    MEDIA_READ = "media:read"
    MEDIA_WRITE = "media:write"
    SCHEDULE_WRITE = "schedule:write"  # posting slots and calendar feeds
    # Reading one's own in-app feed and marking it read; people only (no API-key scope).
    NOTIFICATIONS_READ = "notifications:read"
    # Outbound webhook endpoints, their deliveries (read) and managing them (write, replay).
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_MANAGE = "webhooks:manage"
    # The plan, its usage and invoices (read); checkout, plan changes, cancelling (owners only).
    BILLING_READ = "billing:read"
    BILLING_MANAGE = "billing:manage"


_READ_ONLY = frozenset(
    {Action.AGENCY_READ, Action.MEMBERS_READ, Action.BRANDS_READ, Action.CAMPAIGNS_READ, Action.ACCOUNTS_READ,
     Action.POSTS_READ, Action.MEDIA_READ, Action.NOTIFICATIONS_READ}
)

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.ADMIN: frozenset(Action) - {Action.BILLING_MANAGE},
    Role.MANAGER: _READ_ONLY | {Action.WEBHOOKS_READ, Action.BRANDS_WRITE, Action.CAMPAIGNS_WRITE, Action.AUDIT_READ, Action.ACCOUNTS_WRITE,
                                Action.POSTS_WRITE, Action.MEDIA_WRITE, Action.SCHEDULE_WRITE},
    Role.EDITOR: _READ_ONLY | {Action.CAMPAIGNS_WRITE, Action.POSTS_WRITE, Action.MEDIA_WRITE},
    Role.ANALYST: _READ_ONLY,
}

# The API-key scope each action needs. None: only people may do it (a key never mints keys).
ACTION_SCOPES: dict[Action, str | None] = {
    Action.AGENCY_READ: "agency:read",
    Action.AGENCY_UPDATE: "agency:write",
    Action.MEMBERS_READ: "members:read",
    Action.MEMBERS_MANAGE: "members:write",
    Action.API_KEYS_MANAGE: None,
    Action.AUDIT_READ: "audit:read",
    Action.BRANDS_READ: "brands:read",
    Action.BRANDS_WRITE: "brands:write",
    Action.CAMPAIGNS_READ: "campaigns:read",
    Action.CAMPAIGNS_WRITE: "campaigns:write",
    Action.ACCOUNTS_READ: "accounts:read",
    Action.ACCOUNTS_WRITE: "accounts:write",
    Action.POSTS_READ: "posts:read",
    Action.POSTS_WRITE: "posts:write",
    Action.MEDIA_READ: "media:read",
    Action.MEDIA_WRITE: "media:write",
    Action.SCHEDULE_WRITE: "schedule:write",
    Action.NOTIFICATIONS_READ: None,
    Action.WEBHOOKS_READ: "webhooks:read",
    Action.WEBHOOKS_MANAGE: "webhooks:write",
    Action.BILLING_READ: "billing:read",
    Action.BILLING_MANAGE: None,
}

SCOPES: frozenset[str] = frozenset(s for s in ACTION_SCOPES.values() if s)


def role_allows(role: Role, action: Action) -> bool:
    return action in PERMISSIONS[role]


def scopes_allow(scopes: frozenset[str], action: Action) -> bool:
    needed = ACTION_SCOPES[action]
    if needed is None:
        return False
    area, level = needed.split(":")
    # Write on an area includes read on it.
    return needed in scopes or (level == "read" and f"{area}:write" in scopes)


def can_assign_role(actor: Role, current: Role | None, new: Role) -> bool:
    """Only owners make or unmake owners; admins manage everyone else."""
    if Role.OWNER in (current, new):
        return actor is Role.OWNER
    return actor in (Role.OWNER, Role.ADMIN)


@dataclass(frozen=True)
class Principal:
    agency_id: UUID
    user_id: UUID | None = None
    api_key_id: UUID | None = None
    role: Role | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    # None: every brand of the agency; otherwise only these.
    brand_ids: frozenset[UUID] | None = None
    label: str = ""

    @property
    def actor_type(self) -> str:
        return "user" if self.user_id else "api_key"

    @property
    def actor_id(self) -> UUID:
        return self.user_id or self.api_key_id  # type: ignore[return-value]

    def can(self, action: Action) -> bool:
        if self.user_id is not None and self.role is not None:
            return role_allows(self.role, action)
        if self.api_key_id is not None:
            return scopes_allow(self.scopes, action)
        return False

    def sees_brand(self, brand_id: UUID) -> bool:
        return self.brand_ids is None or brand_id in self.brand_ids


SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def slugify(text: str) -> str:
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:60].strip("-") or "item"
