"""Outbound webhooks: agencies register endpoints and choose events; `emit` records an event
and one delivery per subscribed endpoint, and the `webhooks.deliver` job (sent after commit)
POSTs it, signed. Failed deliveries wait in the database (`next_attempt_at`) for the sweep
(`workers.webhooks.sweep`), with exponential backoff and jitter for up to 24 hours.

An attempt is leased, not locked: `claim` stamps the attempt and `leased_until` and commits
before the POST, `record` writes the result in a new short transaction, so no row lock is
held while a receiver answers. An endpoint whose attempts keep failing is disabled and the
agency's owners and admins are told; PATCH active: true re-enables it.

Delivery is at least once: a worker that dies mid-request leaves the delivery leased; once
the lease runs out the sweep sends it again. Receivers deduplicate on the `Chorus-Delivery` header (one per delivery)
or the body's event `id` (the same for a replay of the event).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.agencies.rules import Action, Principal, Role
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
from domain.webhooks.rules import (EVENTS, PING, UnsafeUrlError, disable_reason, lease_length, new_secret,
                                   next_attempt, sign)

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


IN_FLIGHT = "in flight"
LEASE_RAN_OUT = "no result recorded: the lease ran out (the worker stopped mid-request?)"
NOTIFY_ROLES = (Role.OWNER.value, Role.ADMIN.value)


@dataclass(frozen=True)
class Claim:
    """One attempt, claimed and committed: what to POST and how to find it again."""

    agency_id: UUID
    delivery_id: UUID
    endpoint_id: UUID
    attempt: int
    leased_until: datetime
    url: str
    body: bytes
    headers: dict[str, str]


async def claim(session: AsyncSession, agency_id: UUID | None, delivery_id: UUID, *,
                settings: Settings) -> Claim | str:
    """The first half of an attempt, in its own short transaction: lock the due delivery
    (SKIP LOCKED: a concurrent claim leaves it alone), stamp the attempt number and a lease
    (`leased_until`, also the new `next_attempt_at`) and an "in flight" attempt row. The
    caller commits, then POSTs (no row lock is held while the receiver answers), then
    `record`s the outcome. Returns why not (a string) when there is nothing to send: done,
    not due, or leased by an attempt still in flight."""
    delivery = await session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.agency_id == agency_id, WebhookDelivery.id == delivery_id).with_for_update(skip_locked=True))
    if delivery is None:
        return "gone or being claimed"
    if delivery.status != "pending":
        return f"already {delivery.status}"
    at = now()
    if delivery.next_attempt_at is None or delivery.next_attempt_at > at:
        return "leased" if delivery.leased_until is not None else "not due"
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    event = await session.get(WebhookEvent, delivery.event_id)
    if endpoint is None or event is None:
        return "gone"
    if delivery.leased_until is not None:
        # The previous attempt never reported back and its lease ran out.
        await session.execute(update(WebhookAttempt).where(
            WebhookAttempt.agency_id == delivery.agency_id, WebhookAttempt.delivery_id == delivery.id,
            WebhookAttempt.number == delivery.attempts, WebhookAttempt.error == IN_FLIGHT,
        ).values(error=LEASE_RAN_OUT))
    # An inactive endpoint gets nothing but the first attempt of a ping (an explicit test).
    if not endpoint.active and not (event.type == PING and delivery.attempts == 0):
        delivery.status, delivery.next_attempt_at, delivery.leased_until = "failed", None, None
        delivery.last_error = ("endpoint disabled: " + endpoint.disabled_reason)[:500] if endpoint.disabled_reason \
            else "endpoint disabled"
        return "endpoint disabled"
    delivery.attempts += 1
    delivery.leased_until = delivery.next_attempt_at = at + lease_length(settings.webhooks_timeout_seconds,
                                                                         settings.webhooks_lease_seconds)
    session.add(WebhookAttempt(agency_id=delivery.agency_id, delivery_id=delivery.id, number=delivery.attempts,
                               status_code=None, duration_ms=0, error=IN_FLIGHT, response_excerpt=""))
    body = payload(event)
    secret = settings.vault().decrypt(endpoint.secret_enc)
    headers = {"Chorus-Signature": sign(secret, int(at.timestamp()), body), "Chorus-Event": event.type,
               "Chorus-Delivery": str(delivery.id)}
    await session.flush()
    return Claim(delivery.agency_id, delivery.id, endpoint.id, delivery.attempts, delivery.leased_until, endpoint.url,
                 body, headers)


async def send(claimed: Claim, *, settings: Settings) -> outbound.Outcome:
    """The HTTP request of a claimed attempt (no transaction open)."""
    return await outbound.post(claimed.url, claimed.body, claimed.headers,
                               allow_private=settings.webhooks_allow_private, timeout=settings.webhooks_timeout_seconds)


async def record(session: AsyncSession, claimed: Claim, outcome: outbound.Outcome, *, settings: Settings,
                 after_commit: list[Callable[[], Awaitable[None]]]) -> str:
    """The second half of an attempt, in a new short transaction: the attempt row gets its
    result; the delivery is delivered, scheduled for a retry or failed for good, if the
    attempt still holds its lease (a late answer after the lease ran out and the delivery
    was claimed again only fills in its attempt row, unless it is a success); and the
    endpoint's failure count moves, which may disable the endpoint."""
    at = now()
    delivery = await session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.agency_id == claimed.agency_id, WebhookDelivery.id == claimed.delivery_id).with_for_update())
    if delivery is None:
        return "gone"
    await session.execute(update(WebhookAttempt).where(
        WebhookAttempt.agency_id == claimed.agency_id, WebhookAttempt.delivery_id == claimed.delivery_id,
        WebhookAttempt.number == claimed.attempt,
    ).values(status_code=outcome.status_code, duration_ms=outcome.duration_ms, error=outcome.error[:500],
             response_excerpt=outcome.excerpt[:500]))
    ours = (delivery.status == "pending" and delivery.attempts == claimed.attempt
            and delivery.leased_until == claimed.leased_until)
    result = "lease lost"
    if outcome.delivered and delivery.status == "pending":
        delivery.status, delivery.delivered_at = "delivered", at
        delivery.next_attempt_at = delivery.leased_until = None
        result = "delivered"
    elif ours:
        delivery.leased_until = None
        retry_at = next_attempt(delivery.created_at, at, delivery.attempts)
        if retry_at is None:
            delivery.status, delivery.next_attempt_at = "failed", None
            result = "failed"
        else:
            delivery.next_attempt_at = retry_at
            result = "retry scheduled"
    if ours or result == "delivered":
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error[:500] or ("" if outcome.delivered else f"HTTP {outcome.status_code}")
    await _count(session, after_commit, claimed, outcome, at, settings)
    return result


async def _count(session: AsyncSession, after_commit: list[Callable[[], Awaitable[None]]], claimed: Claim, outcome: outbound.Outcome, at: datetime,
                 settings: Settings) -> None:
    """A success resets the endpoint's failure count; a failure adds to it and may disable
    the endpoint (active false, with the time and the reason), telling the agency's owners
    and admins once."""
    table = WebhookEndpoint.__table__
    where = (table.c.agency_id == claimed.agency_id) & (table.c.id == claimed.endpoint_id)
    if outcome.delivered:
        await session.execute(update(table).where(where, table.c.consecutive_failures > 0)
                              .values(consecutive_failures=0, failing_since=None))
        return
    row = (await session.execute(update(table).where(where).values(
        consecutive_failures=table.c.consecutive_failures + 1,
        failing_since=func.coalesce(table.c.failing_since, at),
    ).returning(table.c.consecutive_failures, table.c.failing_since, table.c.active, table.c.url))).first()
    if row is None or not row.active:
        return
    reason = disable_reason(row.consecutive_failures, row.failing_since, at,
                            max_failures=settings.webhooks_disable_after_failures,
                            max_hours=settings.webhooks_disable_after_hours)
    if reason is None:
        return
    await session.execute(update(table).where(where).values(active=False, disabled_at=at, disabled_reason=reason,
                                                            updated_at=at))
    await _tell_admins(session, after_commit, claimed.agency_id, claimed.endpoint_id, row.url, reason)
    log.warning("webhook endpoint disabled", extra={"endpoint_id": str(claimed.endpoint_id), "reason": reason})


async def _tell_admins(session: AsyncSession, after_commit: list[Callable[[], Awaitable[None]]], agency_id: UUID, endpoint_id: UUID, url: str,
                       reason: str) -> None:
    from domain.agencies.models import Membership
    from domain.core.context import Principal
    from domain.notifications.service import notify

    user_ids = (await session.scalars(select(Membership.user_id).where(
        Membership.agency_id == agency_id, Membership.role.in_(NOTIFY_ROLES)))).all()
    ctx = Context(Principal(agency_id=agency_id, label="webhook delivery"), session=session)
    ctx.after_commit = after_commit  # its email jobs go out after the caller's commit
    shown = url if len(url) <= 120 else url[:117] + "..."
    await notify(ctx, user_ids=list(user_ids), kind="webhook_endpoint.disabled",
                 title=f"Webhook endpoint disabled: {shown}",
                 body=f"{reason}. Fix the receiver, then re-enable the endpoint (PATCH active: true); "
                      "replay the deliveries it missed.",
                 data={"webhook_endpoint_id": str(endpoint_id)})


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
            if data.active:
                # Re-enabled: a fresh start (a disabled endpoint's reason and failure count go).
                row.disabled_at, row.disabled_reason = None, ""
                row.consecutive_failures, row.failing_since = 0, None
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
        """A `ping` event to this endpoint only (whatever it subscribes to, even inactive or
        disabled: the test is explicit, and checks a fixed receiver before re-enabling it),
        delivered by the worker like any other."""
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
        attempts=row.attempts, next_attempt_at=row.next_attempt_at, leased_until=row.leased_until, delivered_at=row.delivered_at,
        last_status_code=row.last_status_code, last_error=row.last_error, replay_of_id=row.replay_of_id,
        created_at=row.created_at, attempt_log=attempts)
