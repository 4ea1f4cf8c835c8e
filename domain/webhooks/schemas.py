from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000, description="https URL that receives the events")]
EventName = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Events = Annotated[list[EventName], msgspec.Meta(min_length=1, max_length=50,
                                                 description="Event types to receive (see the catalog)")]
Description = Annotated[str, msgspec.Meta(max_length=500)]


class WebhookEndpointCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Url
    events: Events
    description: Description = ""
    active: bool = True


class WebhookEndpointUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    active: bool | None = None


class WebhookEndpointOut(msgspec.Struct, kw_only=True):
    id: UUID
    url: str
    events: list[str]
    description: str
    active: bool
    # Set when Chorus disabled the endpoint because its deliveries kept failing (active is
    # then false); re-enable with PATCH {"active": true}, which clears them.
    disabled_at: datetime | None
    disabled_reason: str
    # Failed attempts in a row (reset by a success); the endpoint is disabled at the limit.
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut, kw_only=True):
    # Shown once (here and on rotation); Chorus keeps it encrypted and never shows it again.
    signing_secret: str


class WebhookSigningSecretOut(msgspec.Struct, kw_only=True):
    endpoint_id: UUID
    # The new secret, shown once; the old one stops signing at once.
    signing_secret: str


class WebhookEndpointPage(msgspec.Struct, kw_only=True):
    items: list[WebhookEndpointOut]
    next_cursor: str | None


class WebhookAttemptOut(msgspec.Struct, kw_only=True):
    number: int
    status_code: int | None
    duration_ms: int
    error: str
    response_excerpt: str
    created_at: datetime


class WebhookDeliveryOut(msgspec.Struct, kw_only=True):
    id: UUID
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    status: str  # pending, delivered, failed
    attempts: int
    next_attempt_at: datetime | None
    # Set while an attempt is in flight; the sweep retries once it has passed.
    leased_until: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str
    replay_of_id: UUID | None
    created_at: datetime
    attempt_log: list[WebhookAttemptOut]


class WebhookDeliveryPage(msgspec.Struct, kw_only=True):
    items: list[WebhookDeliveryOut]
    next_cursor: str | None


class WebhookEventTypeOut(msgspec.Struct, kw_only=True):
    type: str
    description: str


class WebhookEventCatalog(msgspec.Struct, kw_only=True):
    items: list[WebhookEventTypeOut]


def endpoint_out(row: Any) -> WebhookEndpointOut:
    return WebhookEndpointOut(id=row.id, url=row.url, events=list(row.events), description=row.description,
                              active=row.active, disabled_at=row.disabled_at, disabled_reason=row.disabled_reason or "",
                              consecutive_failures=row.consecutive_failures or 0, created_at=row.created_at,
                              updated_at=row.updated_at)
