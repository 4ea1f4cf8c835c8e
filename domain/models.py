"""Every model, imported once so the metadata is complete (Alembic checks, tests)."""

from domain.agencies.models import Agency, ApiKey, AuditEvent, AuthSession, IdempotencyRecord, Invitation, Membership, User
from domain.brands.models import Brand, Campaign
from domain.core.db import metadata

__all__ = [
    "Agency", "ApiKey", "AuditEvent", "AuthSession", "Brand", "Campaign", "IdempotencyRecord",
    "Invitation", "Membership", "User", "metadata",
]
