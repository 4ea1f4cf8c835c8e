"""Every model, imported once so the metadata is complete (Alembic checks, tests)."""

from domain.agencies.models import Agency, ApiKey, AuditEvent, AuthSession, IdempotencyRecord, Invitation, Membership, User
from domain.brands.models import Brand, Campaign
from domain.core.db import metadata
from domain.networks.models import NetworkApp, OAuthLink, SocialAccount

__all__ = [
    "Agency", "ApiKey", "AuditEvent", "AuthSession", "Brand", "Campaign", "IdempotencyRecord",
    "Invitation", "Membership", "NetworkApp", "OAuthLink", "SocialAccount", "User", "metadata",
]
