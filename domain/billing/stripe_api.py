"""Chorus's calls to Stripe, through the official SDK, and the shapes it relies on.

One `StripeClient` per process and configuration (its HTTPX client keeps connections), with
the configured timeout and network retries; `CHORUS_STRIPE_API_BASE` points it at a test
double. Every object Chorus reads from Stripe is converted to a small msgspec Struct first:
a response of the wrong shape is an error here, not a KeyError three calls later.
Outgoing writes carry idempotency keys derived from our own rows (the caller's `key`), so a
retried request, by the SDK or by a redelivered job, reuses its key and changes nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, TypeVar

import msgspec
import stripe

from domain.core.errors import DomainError
from domain.core.settings import Settings

log = logging.getLogger("chorus.billing.stripe")
T = TypeVar("T")


class StripeUnavailableError(DomainError):
    status = 503
    slug = "billing-provider-unavailable"
    title = "Stripe could not be reached; nothing was changed, try again"


class StripeRefusedError(DomainError):
    status = 409
    slug = "billing-provider-refused"
    title = "Stripe refused the change"


class ItemFacts(msgspec.Struct, kw_only=True):
    id: str
    price: str
    quantity: int = 1
    current_period_end: int | None = None


class SubscriptionFacts(msgspec.Struct, kw_only=True):
    id: str
    customer: str
    status: str
    items: list[ItemFacts]
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    trial_end: int | None = None
    current_period_end: int | None = None
    metadata: dict[str, str] = {}

    @property
    def item(self) -> ItemFacts | None:
        return self.items[0] if self.items else None

    @property
    def period_end(self) -> int | None:
        item = self.item
        return (item.current_period_end if item and item.current_period_end else None) or self.current_period_end


class _Price(msgspec.Struct):
    id: str


class _Item(msgspec.Struct, kw_only=True):
    id: str
    price: _Price
    quantity: int | None = 1
    current_period_end: int | None = None


class _ItemList(msgspec.Struct):
    data: list[_Item]


class _Subscription(msgspec.Struct, kw_only=True):
    id: str
    customer: str | dict[str, Any]
    status: str
    items: _ItemList
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    trial_end: int | None = None
    current_period_end: int | None = None
    metadata: dict[str, str] | None = None


class Session(msgspec.Struct, kw_only=True):
    id: str
    url: str | None = None


def _shaped(obj: Any, shape: type[T], what: str) -> T:
    """A Stripe object (SDK object or plain dict) as `shape`, or a clear error."""
    raw = obj.to_dict() if hasattr(obj, "to_dict") else obj
    try:
        return msgspec.convert(raw, shape, strict=False)
    except msgspec.ValidationError as exc:
        raise StripeUnavailableError(f"Stripe answered {what} of an unexpected shape: {exc}") from exc


def subscription_facts(obj: Any) -> SubscriptionFacts:
    """A Stripe subscription (SDK object or plain dict) as the facts Chorus keeps."""
    sub = _shaped(obj, _Subscription, "a subscription")
    customer = sub.customer if isinstance(sub.customer, str) else str(sub.customer.get("id", ""))
    return SubscriptionFacts(
        id=sub.id, customer=customer, status=sub.status,
        items=[ItemFacts(id=i.id, price=i.price.id, quantity=i.quantity or 1, current_period_end=i.current_period_end)
               for i in sub.items.data],
        cancel_at_period_end=sub.cancel_at_period_end, canceled_at=sub.canceled_at, trial_end=sub.trial_end,
        current_period_end=sub.current_period_end, metadata=sub.metadata or {},
    )


def session_of(obj: Any) -> Session:
    return _shaped(obj, Session, "a session")


# One client per event loop and configuration: its HTTPX connection pool belongs to the loop
# that opened it (the API and the worker each run their own loop in one process at times).
_CLIENTS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], stripe.StripeClient]] = weakref.WeakKeyDictionary()
_NO_LOOP: dict[tuple[Any, ...], stripe.StripeClient] = {}


def _client(key: str, base: str | None, timeout: float, retries: int) -> stripe.StripeClient:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    clients = _NO_LOOP if loop is None else _CLIENTS.setdefault(loop, {})
    config = (key, base, timeout, retries)
    if config not in clients:
        http = stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True)
        clients[config] = stripe.StripeClient(key, base_addresses={"api": base} if base else None, http_client=http,
                                              max_network_retries=retries)
    return clients[config]


def client_for(settings: Settings) -> stripe.StripeClient:
    if not settings.stripe_secret_key:
        raise RuntimeError("billing is off: CHORUS_STRIPE_SECRET_KEY is not set")
    return _client(settings.stripe_secret_key, settings.stripe_api_base, settings.stripe_timeout_seconds,
                   settings.stripe_max_network_retries)


class StripeCalls:
    """The calls Chorus makes, each translating Stripe's errors into problems."""

    def __init__(self, settings: Settings) -> None:
        self.client = client_for(settings)

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            log.warning("stripe unreachable", extra={"call": what, "error": type(exc).__name__})
            raise StripeUnavailableError() from exc
        except stripe.APIError as exc:
            log.warning("stripe error", extra={"call": what, "error": type(exc).__name__})
            raise StripeUnavailableError() from exc
        except stripe.StripeError as exc:
            # Invalid requests, card errors, idempotency conflicts: Stripe's message is for people.
            log.warning("stripe refused", extra={"call": what, "error": type(exc).__name__, "code": exc.code})
            raise StripeRefusedError(exc.user_message or "Stripe refused the request", code=exc.code) from exc

    async def create_customer(self, *, key: str, email: str, name: str, agency_id: str) -> str:
        customer = await self._call("customers.create", self.client.v1.customers.create_async,
                                    {"email": email, "name": name, "metadata": {"agency_id": agency_id}},
                                    {"idempotency_key": key})
        return str(customer.id)

    async def checkout(self, *, key: str, params: dict[str, Any]) -> Session:
        return session_of(await self._call("checkout.sessions.create",
                                           self.client.v1.checkout.sessions.create_async, params,
                                           {"idempotency_key": key}))

    async def portal(self, *, key: str, customer: str, return_url: str) -> Session:
        return session_of(await self._call("billing_portal.sessions.create",
                                           self.client.v1.billing_portal.sessions.create_async,
                                           {"customer": customer, "return_url": return_url},
                                           {"idempotency_key": key}))

    async def subscription(self, subscription_id: str) -> SubscriptionFacts:
        return subscription_facts(await self._call("subscriptions.retrieve",
                                                   self.client.v1.subscriptions.retrieve_async, subscription_id))

    async def update_subscription(self, subscription_id: str, *, key: str, params: dict[str, Any]) -> SubscriptionFacts:
        return subscription_facts(await self._call("subscriptions.update", self.client.v1.subscriptions.update_async,
                                                   subscription_id, params, {"idempotency_key": key}))

    async def subscriptions_of(self, customer: str) -> list[SubscriptionFacts]:
        page = await self._call("subscriptions.list", self.client.v1.subscriptions.list_async,
                                {"customer": customer, "status": "all", "limit": 20})
        return [subscription_facts(sub) for sub in page.data]

    async def checkout_subscription(self, session_id: str) -> str | None:
        session = await self._call("checkout.sessions.retrieve", self.client.v1.checkout.sessions.retrieve_async,
                                   session_id)
        sub = session.get("subscription") if hasattr(session, "get") else None
        if isinstance(sub, dict) or hasattr(sub, "id"):
            sub = sub["id"] if isinstance(sub, dict) else sub.id
        return str(sub) if sub else None
