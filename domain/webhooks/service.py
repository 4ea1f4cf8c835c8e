"""Outbound webhooks: agencies register endpoints and choose events; `emit` records an event
and one delivery per subscribed endpoint, and the `webhooks.deliver` job (sent after commit)
POSTs it, signed. Failed deliveries wait in the database (`next_attempt_at`) for the sweep
(`workers.webhooks.sweep`), with exponential backoff and jitter for up to 24 hours.

Delivery is at least once: a worker that dies mid-request leaves the delivery pending and
it is sent again. Receivers deduplicate on the `Chorus-Delivery` header (one per delivery)
or the body's event `id` (the same for a replay of the event).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.agencies.rules import Action
from domain.core.clock import now
from domain.core.context import Context
from domain.core.crypto import Vault
from domain.core.errors import NotFoundError, ValidationFailedError
from domain.core.jobs import JobBuffer
from domain.core.pagination import Page, PageRequest, paginate, resolve_sort
from domain.core.settings import Settings
from domain.webhooks import outbound
from domain.webhooks import schemas as s
from domain.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from domain.webhooks.rules import EVENTS, PING, UnsafeUrlError, new_secret, next_attempt, sign

log = logging.getLogger("chorus.webhooks")

DELIVER = "webhooks.deliver"


async def emit(ctx: Context, event_type: str, data: dict[str, Any]) -> WebhookEvent | None:
    """Tell the agency's integrators: records the event and one delivery per active endpoint
    subscribed to `event_type`; the deliveries go out after the transaction commits (none if
    it rolls back). No subscriber: nothing is recorded. `data` holds ids and plain values."""
    return await emit_in(ctx.session, ctx.agency_id, ctx.jobs, event_type, data)


async def emit_in(session: AsyncSession, agency_id: UUID, jobs: JobBuffer, event_type: str,
                  data: dict[str, Any]) -> WebhookEvent | None:
    """`emit` for code that holds a session and a job buffer rather than a Context."""
    if event_type not in EVENTS:
        raise ValueError(f"unknown webhook event type {event_type!r}: add it to domain.webhooks.rules.EVENTS")
    endpoints = (await session.scalars(select(WebhookEndpoint.id).where(
        WebhookEndpoint.agency_id == agency_id, WebhookEndpoint.active.is_(True),
        WebhookEndpoint.events.any_() == event_type))).all()
    if not endpoints:
        return None
    event = WebhookEvent(agency_id=agency_id, type=event_type, data=msgspec.json.decode(msgspec.json.encode(data)))
    session.add(event)
    await session.flush()
    await _deliveries(session, jobs, event, endpoints)
    return event


async def _deliveries(session: AsyncSession, jobs: JobBuffer, event: WebhookEvent, endpoint_ids: Sequence[UUID],
                      replay_of: UUID | None = None) -> list[WebhookDelivery]:
    at = now()
    rows = [WebhookDelivery(agency_id=event.agency_id, endpoint_id=endpoint_id, event_id=event.id, status="pending",
                            attempts=0, next_attempt_at=at, last_error="", replay_of_id=replay_of)
            for endpoint_id in endpoint_ids]
    session.add_all(rows)
    await session.flush()
    for row in rows:
        jobs.send(DELIVER, delivery_id=row.id)
    return rows


def payload(event: WebhookEvent) -> bytes:
    """The exact bytes POSTed (and signed)."""
    return msgspec.json.encode({"id": str(event.id), "type": event.type, "created_at": event.created_at.isoformat(),
                                "agency_id": str(event.agency_id), "data": event.data or {}})


async def deliver(session: AsyncSession, agency_id: UUID | None, delivery_id: UUID, *, settings: Settings) -> str:
    """One attempt at a due delivery, in the job's transaction. The row is locked (SKIP
    LOCKED: a concurrent run of the same job leaves it alone) and re-checked, so a job run
    twice or for a delivery not due yet does nothing."""
    delivery = await session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.agency_id == agency_id, WebhookDelivery.id == delivery_id).with_for_update(skip_locked=True))
    if delivery is None:
        return "gone or in progress"
    if delivery.status != "pending":
        return f"already {delivery.status}"
    at = now()
    if delivery.next_attempt_at is None or delivery.next_attempt_at > at:
        return "not due"
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    event = await session.get(WebhookEvent, delivery.event_id)
    if endpoint is None or event is None:
        return "gone"
    if not endpoint.active:
        delivery.status, delivery.next_attempt_at, delivery.last_error = "failed", None, "endpoint disabled"
        return "endpoint disabled"
    body = payload(event)
    secret = settings.vault().decrypt(endpoint.secret_enc)
    headers = {"Chorus-Signature": sign(secret, int(at.timestamp()), body), "Chorus-Event": event.type,
               "Chorus-Delivery": str(delivery.id)}
    outcome = await outbound.post(endpoint.url, body, headers, allow_private=settings.webhooks_allow_private,
                                  timeout=settings.webhooks_timeout_seconds)
    delivery.attempts += 1
    session.add(WebhookAttempt(agency_id=delivery.agency_id, delivery_id=delivery.id, number=delivery.attempts,
                               status_code=outcome.status_code, duration_ms=outcome.duration_ms,
                               error=outcome.error[:500], response_excerpt=outcome.excerpt[:500]))
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error[:500] or ("" if outcome.delivered else f"HTTP {outcome.status_code}")
    if outcome.delivered:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now(), None
        return "delivered"
    retry_at = next_attempt(delivery.created_at, at, delivery.attempts)
    if retry_at is None:
        delivery.status, delivery.next_attempt_at = "failed", None
        return "failed"
    delivery.next_attempt_at = retry_at
    return "retry scheduled"


_SORTS = {"created_at": (WebhookEndpoint.created_at, WebhookEndpoint.id)}
_DELIVERY_SORTS = {"created_at": (WebhookDelivery.created_at, WebhookDelivery.id)}


class WebhookService:
    def __init__(self, ctx: Context, settings: Settings) -> None:
        self.ctx = ctx
        self.settings = settings

    @property
    def vault(self) -> Vault:
        return self.settings.vault()

    async def _checked_url(self, url: str) -> str:
        try:
            await outbound.resolve(url, allow_private=self.settings.webhooks_allow_private)
        except UnsafeUrlError as exc:
            raise ValidationFailedError.field("url", str(exc)) from None
        return url

    @staticmethod
    def _checked_events(events: list[str]) -> list[str]:
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            raise ValidationFailedError.field("events", f"Unknown event type(s): {', '.join(sorted(set(unknown)))[:200]}")
        return list(dict.fromkeys(events))

    async def create(self, data: s.WebhookEndpointCreate) -> s.WebhookEndpointCreated:
        self.ctx.require(Action.WEBHOOKS_MANAGE)
        events = self._checked_events(data.events)
        url = await self._checked_url(data.url)
        secret = new_secret()
        row = WebhookEndpoint(agency_id=self.ctx.agency_id, url=url, events=events, description=data.description,
                              active=data.active, secret_enc=self.vault.encrypt(secret))
        self.ctx.session.add(row)
        await self.ctx.session.flush()
        await self.ctx.audit("webhook_endpoint.created", "webhook_endpoint", row.id, {"url": url, "events": events})
        out = s.endpoint_out(row)
        return s.WebhookEndpointCreated(**msgspec.structs.asdict(out), signing_secret=secret)

    async def list(self, page: PageRequest) -> Page[s.WebhookEndpointOut]:
        self.ctx.require(Action.WEBHOOKS_READ)
        found = await paginate(self.ctx.session, self.ctx.select(WebhookEndpoint),
                               resolve_sort(_SORTS, page.sort or "created_at"), page)
        return Page([s.endpoint_out(e) for e in found.items], found.next_cursor)

    async def _endpoint(self, endpoint_id: UUID, *, lock: bool = False) -> WebhookEndpoint:
        return await self.ctx.get(WebhookEndpoint, endpoint_id, lock=lock, what="webhook endpoint")

    async def read(self, endpoint_id: UUID) -> s.WebhookEndpointOut:
        self.ctx.require(Action.WEBHOOKS_READ)
        return s.endpoint_out(await self._endpoint(endpoint_id))

    async def update(self, endpoint_id: UUID, data: s.WebhookEndpointUpdate) -> s.WebhookEndpointOut:
        self.ctx.require(Action.WEBHOOKS_MANAGE)
        row = await self._endpoint(endpoint_id, lock=True)
        changes: dict[str, Any] = {}
        if data.events is not None:
            row.events = changes["events"] = self._checked_events(data.events)
        if data.url is not None:
            row.url = changes["url"] = await self._checked_url(data.url)
        if data.description is not None:
            row.description = changes["description"] = data.description
        if data.active is not None:
            row.active = changes["active"] = data.active
        row.updated_at = now()
        await self.ctx.session.flush()
        await self.ctx.audit("webhook_endpoint.updated", "webhook_endpoint", row.id, changes)
        return s.endpoint_out(row)

    async def delete(self, endpoint_id: UUID) -> None:
        self.ctx.require(Action.WEBHOOKS_MANAGE)
        row = await self._endpoint(endpoint_id, lock=True)
        await self.ctx.session.delete(row)
        await self.ctx.session.flush()
        await self.ctx.audit("webhook_endpoint.deleted", "webhook_endpoint", endpoint_id, {"url": row.url})

    async def rotate_secret(self, endpoint_id: UUID) -> s.WebhookSigningSecretOut:
        self.ctx.require(Action.WEBHOOKS_MANAGE)
        row = await self._endpoint(endpoint_id, lock=True)
        secret = new_secret()
        row.secret_enc = self.vault.encrypt(secret)
        row.updated_at = now()
        await self.ctx.session.flush()
        await self.ctx.audit("webhook_endpoint.secret_rotated", "webhook_endpoint", row.id, {})
        return s.WebhookSigningSecretOut(endpoint_id=row.id, signing_secret=secret)

    async def ping(self, endpoint_id: UUID) -> s.WebhookDeliveryOut:
        """A `ping` event to this endpoint only (whatever it subscribes to, even inactive:
        the test is explicit), delivered by the worker like any other."""
        self.ctx.require(Action.WEBHOOKS_MANAGE)
        row = await self._endpoint(endpoint_id)
        event = WebhookEvent(agency_id=self.ctx.agency_id, type=PING, data={"endpoint_id": str(row.id)})
        self.ctx.session.add(event)
        await self.ctx.session.flush()
        [delivery] = await _deliveries(self.ctx.session, self.ctx.jobs, event, [row.id])
        return _delivery_out(delivery, event.type, [])

    async def deliveries(self, endpoint_id: UUID, page: PageRequest) -> Page[s.WebhookDeliveryOut]:
        self.ctx.require(Action.WEBHOOKS_READ)
        await self._endpoint(endpoint_id)
        stmt = self.ctx.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        found = await paginate(self.ctx.session, stmt, resolve_sort(_DELIVERY_SORTS, "-created_at"), page)
        return Page(await self._outs(found.items), found.next_cursor)

    async def delivery(self, delivery_id: UUID) -> s.WebhookDeliveryOut:
        self.ctx.require(Action.WEBHOOKS_READ)
        row = await self.ctx.get(WebhookDelivery, delivery_id, what="webhook delivery")
        [out] = await self._outs([row])
        return out

    async def replay(self, delivery_id: UUID) -> s.WebhookDeliveryOut:
        """A new delivery of the same event (same body and event id, a new delivery id) to
        the same endpoint, sent now whatever became of the original."""
        self.ctx.require(Action.WEBHOOKS_MANAGE)
        original = await self.ctx.get(WebhookDelivery, delivery_id, what="webhook delivery")
        event = await self.ctx.get(WebhookEvent, original.event_id, what="webhook event")
        [row] = await _deliveries(self.ctx.session, self.ctx.jobs, event, [original.endpoint_id], replay_of=original.id)
        await self.ctx.audit("webhook_delivery.replayed", "webhook_delivery", row.id, {"replay_of": original.id})
        return _delivery_out(row, event.type, [])

    async def _outs(self, rows: Sequence[WebhookDelivery]) -> list[s.WebhookDeliveryOut]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        types = dict((await self.ctx.session.execute(self.ctx.select(WebhookEvent, WebhookEvent.id, WebhookEvent.type)
                                                     .where(WebhookEvent.id.in_({r.event_id for r in rows})))).all())
        attempts: dict[UUID, list[s.WebhookAttemptOut]] = {i: [] for i in ids}
        for a in await self.ctx.session.scalars(self.ctx.select(WebhookAttempt).where(
                WebhookAttempt.delivery_id.in_(ids)).order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)):
            attempts[a.delivery_id].append(s.WebhookAttemptOut(
                number=a.number, status_code=a.status_code, duration_ms=a.duration_ms, error=a.error,
                response_excerpt=a.response_excerpt, created_at=a.created_at))
        return [_delivery_out(r, types.get(r.event_id, ""), attempts[r.id]) for r in rows]


def catalog() -> s.WebhookEventCatalog:
    return s.WebhookEventCatalog(items=[s.WebhookEventTypeOut(type=k, description=v) for k, v in EVENTS.items()])


def _delivery_out(row: WebhookDelivery, event_type: str, attempts: list[s.WebhookAttemptOut]) -> s.WebhookDeliveryOut:
    return s.WebhookDeliveryOut(
        id=row.id, endpoint_id=row.endpoint_id, event_id=row.event_id, event_type=event_type, status=row.status,
        attempts=row.attempts, next_attempt_at=row.next_attempt_at, delivered_at=row.delivered_at,
        last_status_code=row.last_status_code, last_error=row.last_error, replay_of_id=row.replay_of_id,
        created_at=row.created_at, attempt_log=attempts)
