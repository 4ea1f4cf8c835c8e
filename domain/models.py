"""Every model, imported once so the metadata is complete (Alembic checks, tests)."""

from domain.agencies.models import Agency, ApiKey, AuditEvent, AuthSession, IdempotencyRecord, Invitation, Membership, User
from domain.approvals.models import ApprovalDecision, ApprovalRequest, ApprovalWorkflow, PostComment, ShareLink, ShareReviewer
from domain.billing.models import BillingAccount, StripeEvent
from domain.brands.models import Brand, Campaign
from domain.calendar.models import CalendarFeed, PostingSlot
from domain.content.models import Brief, Post, PostRevision, PostVariant, PostVariantMedia
from domain.core.db import metadata
from domain.imports.models import ImportJob
from domain.media.models import MediaAsset
from domain.networks.models import NetworkApp, OAuthLink, SocialAccount
from domain.notifications.models import Notification
from domain.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from domain.publishing.models import PublishAttempt

__all__ = [
    "ApprovalDecision", "ApprovalRequest", "ApprovalWorkflow", "Notification", "PostComment", "ShareLink", "ShareReviewer",
    "Agency", "ApiKey", "BillingAccount", "StripeEvent", "AuditEvent", "AuthSession", "Brand", "Brief", "CalendarFeed", "Campaign", "IdempotencyRecord",
    "ImportJob", "Invitation", "MediaAsset", "Membership", "NetworkApp", "OAuthLink", "Post", "PostRevision",
    "PostVariant", "PostVariantMedia", "PostingSlot", "PublishAttempt", "SocialAccount", "User", "metadata",
]
