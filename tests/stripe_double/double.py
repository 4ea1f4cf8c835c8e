"""A stateful Stripe test double: an ASGI app answering Stripe API v1 calls in Stripe's wire format.

Served on loopback (tests/loopback.py `serve(double, ready_path="/_double/clock")`), the official
`stripe` SDK talks to it through `base_addresses={"api": base_url}`. Besides the API it has test
controls (Python methods, thread-safe, and the same under `/_double/...` over HTTP): complete a
Checkout session, move the double's clock (trials, renewals, cancellations, dunning), set how a
customer's payments behave, pay an open invoice, list the events Stripe would send (and optionally
deliver them signed), inject faults and read the call log.

Object shapes come from objects.json (Stripe's own example objects, trimmed; see its `_source`).
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import json
import queue
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import stripe

from tests.loopback import lifespan, read_body

from .wire import (
    StripeError,
    apply_metadata,
    as_bool,
    as_int,
    decode_form,
    dumps,
    invalid,
    missing,
    new_id,
    sign,
    unknown_params,
)

TEMPLATES: dict[str, Any] = json.loads((Path(__file__).with_name("objects.json")).read_text())
DAY = 86400
TRIAL_WILL_END_BEFORE = 3 * DAY
PAYMENT_BEHAVIOURS = ("succeed", "fail", "requires_action")
PRORATION_BEHAVIOURS = ("none", "create_prorations", "always_invoice")


class CheckoutDeclined(Exception):
    """complete_checkout() when the customer's card is set to fail: the session stays open."""


def _tmpl(kind: str) -> dict[str, Any]:
    return copy.deepcopy(TEMPLATES[kind])


def add_interval(ts: int, interval: str, count: int = 1, anchor_day: int | None = None) -> int:
    """`ts` plus `count` intervals, calendar months the way Stripe bills (day clamped to the month's end)."""
    if interval == "day":
        return ts + count * DAY
    if interval == "week":
        return ts + count * 7 * DAY
    months = count * (12 if interval == "year" else 1)
    d = dt.datetime.fromtimestamp(ts, dt.UTC)
    m = d.month - 1 + months
    year, month = d.year + m // 12, m % 12 + 1
    day = min(anchor_day or d.day, calendar.monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp())


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Stripe's data.previous_attributes: the old values of the top-level fields that changed."""
    return {k: before.get(k) for k in after if before.get(k) != after.get(k)}


class StripeDouble:
    """The double. One instance is one Stripe account (test mode)."""

    def __init__(self, *, api_version: str | None = None, webhook_url: str | None = None,
                 webhook_secret: str | None = None, delivery_timeout: float = 5.0,
                 retry_days: tuple[int, ...] = (3, 5, 7), after_final_failure: str = "canceled") -> None:
        """retry_days: automatic payment retries of a failed invoice, in days after the previous attempt
        (Stripe's custom retry schedule); after_final_failure: what the subscription becomes when the
        last retry fails: "canceled", "unpaid" or "past_due" (left as is)."""
        if after_final_failure not in ("canceled", "unpaid", "past_due"):
            raise ValueError("after_final_failure must be canceled | unpaid | past_due")
        self.retry_days = tuple(retry_days)
        self.after_final_failure = after_final_failure
        self.api_version = api_version or stripe.api_version
        self.base_url = "http://127.0.0.1"
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.delivery_timeout = delivery_timeout
        self._lock = threading.RLock()
        self._offset = 0
        self._at: int | None = None
        self._store: dict[str, dict[str, dict[str, Any]]] = {
            k: {} for k in ("customer", "product", "price", "checkout.session", "billing_portal.session",
                            "subscription", "invoice")
        }
        self._session_input: dict[str, dict[str, Any]] = {}
        self._payment: dict[str, str] = {}
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._trial_will_end_sent: set[tuple[str, int]] = set()
        self._events: list[dict[str, Any]] = []
        self._log: list[dict[str, Any]] = []
        self._idem: dict[tuple[str, str], dict[str, Any]] = {}
        self._faults: list[dict[str, Any]] = []
        self._request = threading.local()
        self.deliveries: list[dict[str, Any]] = []
        self._outbox: queue.Queue | None = None
        self._routes = self._make_routes()

    # ------------------------------------------------------------------ clock

    def now(self) -> int:
        """The double's clock in unix seconds: real time plus what advance() added."""
        with self._lock:
            return self._at if self._at is not None else int(time.time()) + self._offset

    def advance(self, seconds: int) -> list[dict[str, Any]]:
        """Move the clock by `seconds` and run everything due on the way, in time order.

        Returns the events made meanwhile."""
        with self._lock:
            first = len(self._events)
            target = self.now() + int(seconds)
            self._run_due(target)
            self._offset = target - int(time.time())
            return copy.deepcopy(self._events[first:])

    def advance_to(self, ts: int) -> list[dict[str, Any]]:
        """Move the clock to the instant `ts` (no-op if it is already past)."""
        with self._lock:
            return self.advance(max(0, int(ts) - self.now()))

    def _due(self, upto: int) -> tuple[int, int, Callable[[], None]] | None:
        best: tuple[int, int, Callable[[], None]] | None = None
        for sub in self._store["subscription"].values():
            if sub["status"] in ("canceled", "incomplete_expired"):
                continue
            end = sub["items"]["data"][0]["current_period_end"] if sub["items"]["data"] else None
            cands: list[tuple[int, int, Callable[[], None]]] = []
            if sub["status"] == "trialing" and sub["trial_end"]:
                warn_at = max(sub["trial_end"] - TRIAL_WILL_END_BEFORE, sub["trial_start"] or 0)
                if (sub["id"], sub["trial_end"]) not in self._trial_will_end_sent:
                    cands.append((warn_at, 0, lambda s=sub: self._trial_will_end(s)))
            if sub["cancel_at"] is not None and (end is None or sub["cancel_at"] < end):
                cands.append((sub["cancel_at"], 1, lambda s=sub: self._end_subscription(s, s["cancel_at"])))
            elif end is not None:
                cands.append((end, 2, lambda s=sub, e=end: self._period_end(s, e)))
            for c in cands:
                if c[0] <= upto and (best is None or c[:2] < best[:2]):
                    best = c
        for inv in self._store["invoice"].values():
            at = inv["next_payment_attempt"]
            if inv["status"] == "open" and at is not None and at <= upto and (best is None or (at, 3) < best[:2]):
                best = (at, 3, lambda i=inv: self._retry(i))
        return best

    def _retry(self, inv: dict[str, Any]) -> None:
        """An automatic retry of a failed invoice; after the last one the subscription ends its dunning."""
        self._pay(inv, raise_on_fail=False)
        if inv["status"] == "paid" or inv["next_payment_attempt"] is not None:
            return
        sub = self._store["subscription"].get(inv["subscription"] or "")
        if sub is None or sub["status"] != "past_due" or sub["latest_invoice"] != inv["id"]:
            return
        if self.after_final_failure == "canceled":
            self._end_subscription(sub, self.now(), reason="payment_failed")
        elif self.after_final_failure == "unpaid":
            before = copy.deepcopy(sub)
            sub["status"] = "unpaid"
            self._updated(sub, before)

    def _run_due(self, upto: int) -> None:
        saved = self._at
        try:
            for _ in range(10000):
                due = self._due(upto)
                if due is None:
                    return
                self._at = due[0]
                due[2]()
        finally:
            self._at = saved

    def _catch_up(self) -> None:
        self._run_due(self.now())

    # ------------------------------------------------------------------ storage helpers

    def _put(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._store[obj["object"]][obj["id"]] = obj
        return obj

    def _get(self, kind: str, ident: str, param: str = "id") -> dict[str, Any]:
        obj = self._store[kind].get(ident) if isinstance(ident, str) else None
        if obj is None:
            raise missing(kind.split(".")[-1].replace("_", " ") if kind != "checkout.session" else "checkout.session",
                          str(ident), param)
        return obj

    def _lookup(self, ident: str) -> dict[str, Any] | None:
        for store in self._store.values():
            if ident in store:
                return store[ident]
        return None

    def _find_item(self, si: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        for sub in self._store["subscription"].values():
            for item in sub["items"]["data"]:
                if item["id"] == si:
                    return sub, item
        return None

    # ------------------------------------------------------------------ events

    def _emit(self, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
        req = getattr(self._request, "info", None)
        event = _tmpl("event")
        event.update(
            id=new_id("evt_"), api_version=self.api_version, created=self.now(), type=type_, livemode=False,
            pending_webhooks=1 if self.webhook_url else 0,
            request={"id": req["id"], "idempotency_key": req["idempotency_key"]} if req else
            {"id": None, "idempotency_key": None},
            data={"object": copy.deepcopy(obj)},
        )
        if previous is not None:
            event["data"]["previous_attributes"] = copy.deepcopy(previous)
        self._events.append(event)
        if self.webhook_url and self.webhook_secret:
            self._enqueue_delivery(copy.deepcopy(event))
        return event

    def _updated(self, sub: dict[str, Any], before: dict[str, Any]) -> None:
        prev = _diff(before, sub)
        if prev:
            self._emit("customer.subscription.updated", sub, prev)

    def events(self, since: str | None = None, types: str | list[str] | tuple[str, ...] | None = None,
               about: str | None = None) -> list[dict[str, Any]]:
        """Events in the order they happened; after the event id `since`; only `types` if given; only
        those `about` an object id (the event's object is it, or names it as its subscription or customer)."""
        with self._lock:
            evs = self._events
            if since is not None:
                idx = next((i for i, e in enumerate(evs) if e["id"] == since), None)
                if idx is None:
                    raise KeyError(since)
                evs = evs[idx + 1:]
            if types is not None:
                wanted = {types} if isinstance(types, str) else set(types)
                evs = [e for e in evs if e["type"] in wanted]
            if about is not None:
                evs = [e for e in evs if about in self._mentions(e["data"]["object"])]
            return copy.deepcopy(evs)

    @staticmethod
    def _mentions(obj: dict[str, Any]) -> set[str]:
        ids = {obj.get("id"), obj.get("subscription"), obj.get("customer")}
        parent = obj.get("parent") or {}
        ids.add(((parent.get("subscription_details") or {}).get("subscription")))
        return {i for i in ids if isinstance(i, str)}

    def event_types(self, since: str | None = None) -> list[str]:
        return [e["type"] for e in self.events(since)]

    def last_event_id(self) -> str | None:
        with self._lock:
            return self._events[-1]["id"] if self._events else None

    def signed(self, event: dict[str, Any], secret: str | None = None, timestamp: int | None = None
               ) -> tuple[bytes, dict[str, str]]:
        """(payload bytes, headers) for POSTing `event` to a webhook endpoint, signed like Stripe."""
        secret = secret or self.webhook_secret
        if not secret:
            raise ValueError("no webhook secret given or configured")
        payload = dumps(event)
        return payload, {"Content-Type": "application/json; charset=utf-8",
                         "Stripe-Signature": sign(payload, secret, timestamp),
                         "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}

    def deliver(self, event: dict[str, Any], url: str | None = None, secret: str | None = None,
                timeout: float | None = None) -> httpx.Response:
        """POST one event, signed, to `url` (default webhook_url) now; returns the response."""
        payload, headers = self.signed(event, secret)
        return httpx.post(url or self.webhook_url, content=payload, headers=headers,
                          timeout=timeout or self.delivery_timeout)

    async def deliver_async(self, event: dict[str, Any], url: str | None = None, secret: str | None = None,
                            timeout: float | None = None) -> httpx.Response:
        """deliver() for async tests (does not block the event loop)."""
        payload, headers = self.signed(event, secret)
        async with httpx.AsyncClient(timeout=timeout or self.delivery_timeout) as http:
            return await http.post(url or self.webhook_url, content=payload, headers=headers)

    def _enqueue_delivery(self, event: dict[str, Any]) -> None:
        if self._outbox is None:
            self._outbox = queue.Queue()
            threading.Thread(target=self._deliver_loop, args=(self._outbox,), daemon=True).start()
        self._outbox.put(event)

    def _deliver_loop(self, box: queue.Queue) -> None:
        while True:
            event = box.get()
            if event is None:
                return
            record: dict[str, Any] = {"event": event["id"], "type": event["type"], "url": self.webhook_url}
            try:
                response = self.deliver(event)
                record.update(status=response.status_code, ok=200 <= response.status_code < 300)
            except httpx.HTTPError as exc:
                record.update(status=None, ok=False, error=f"{type(exc).__name__}: {exc}")
            with self._lock:
                self.deliveries.append(record)
            box.task_done()

    def wait_deliveries(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until every queued auto-delivery has been attempted; returns the delivery records."""
        deadline = time.monotonic() + timeout
        box = self._outbox
        while box is not None and box.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            return list(self.deliveries)

    def close(self) -> None:
        if self._outbox is not None:
            self._outbox.put(None)

    # ------------------------------------------------------------------ controls

    def set_payment(self, customer: str, behaviour: str) -> None:
        """How the customer's card behaves from now on: succeed | fail (card_declined) | requires_action."""
        if behaviour not in PAYMENT_BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {PAYMENT_BEHAVIOURS}")
        with self._lock:
            self._get("customer", customer)
            self._payment[customer] = behaviour

    def complete_checkout(self, session_id: str, *, payment: str | None = None) -> dict[str, Any]:
        """The customer pays on the Checkout page: customer (if new), subscription, invoice, events.

        `payment` sets the (new or existing) customer's card behaviour first. A card set to fail or to
        require action on a session that charges now raises CheckoutDeclined and changes nothing
        (Checkout keeps the customer on the page). Returns the completed session."""
        with self._lock:
            self._catch_up()
            session = self._get("checkout.session", session_id)
            if session["status"] != "open":
                raise ValueError(f"checkout session {session_id} is {session['status']}")
            given = self._session_input[session_id]
            now = self.now()
            trial_end = self._trial_end_from(given.get("subscription_data") or {}, now)
            behaviour = payment or (self._payment.get(session["customer"]) if session["customer"] else None) \
                or "succeed"
            if behaviour not in PAYMENT_BEHAVIOURS:
                raise ValueError(f"payment must be one of {PAYMENT_BEHAVIOURS}")
            if trial_end is None and behaviour != "succeed" and (session["amount_total"] or 0) > 0:
                raise CheckoutDeclined("Your card was declined." if behaviour == "fail"
                                       else "This payment requires authentication.")
            if session["customer"]:
                customer = self._get("customer", session["customer"])
            else:
                customer = self._new_customer({"email": session["customer_email"] or "customer@example.com"})
            self._payment[customer["id"]] = behaviour
            sub_data = given.get("subscription_data") or {}
            items = [(self._get("price", li["price"]), int(li.get("quantity") or 1)) for li in given["line_items"]]
            sub = self._new_subscription(customer, items, sub_data.get("metadata") or {}, trial_end, now)
            invoice = self._subscription_invoice(sub, "subscription_create", now)
            sub["latest_invoice"] = invoice["id"]
            self._emit("customer.subscription.created", sub)
            self._bill(invoice)
            session.update(status="complete", customer=customer["id"], subscription=sub["id"],
                           invoice=invoice["id"],
                           payment_status="paid" if invoice["amount_due"] > 0 else "no_payment_required")
            session["customer_details"] = dict(session["customer_details"] or {}, email=customer["email"],
                                               name=customer["name"])
            self._emit("checkout.session.completed", session)
            if sub["status"] == "trialing" and sub["trial_end"] - now <= TRIAL_WILL_END_BEFORE:
                self._catch_up()
            return copy.deepcopy(session)

    def pay_invoice(self, invoice_id: str) -> dict[str, Any]:
        """Attempt an open invoice again with the customer's current card behaviour (the 'fixed card' path).

        Raises stripe-like StripeError(402) if it still fails; returns the invoice."""
        with self._lock:
            self._catch_up()
            return copy.deepcopy(self._pay(self._get("invoice", invoice_id), raise_on_fail=True))

    def fail_next(self, path: str, count: int = 1, mode: str = "error", method: str | None = None) -> None:
        """The next `count` requests whose path starts with `path` fail.

        mode: "error" answers 500 api_error before doing anything; "drop" closes the connection before
        doing anything; "drop_after" does the work (and stores the idempotent result) then closes the
        connection without answering."""
        if mode not in ("error", "drop", "drop_after"):
            raise ValueError("mode must be error | drop | drop_after")
        with self._lock:
            self._faults.append({"path": path, "count": int(count), "mode": mode,
                                 "method": method.upper() if method else None})

    def requests(self, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """The call log: {method, path, params, idempotency_key, status, replayed, request_id, at}.

        `path` matches exactly, or as a prefix when it ends with '/'."""
        with self._lock:
            out = []
            for r in self._log:
                if path is not None and not (r["path"] == path or (path.endswith("/") and r["path"].startswith(path))):
                    continue
                if method is not None and r["method"] != method.upper():
                    continue
                out.append(copy.deepcopy(r))
            return out

    def add_price(self, price_id: str, unit_amount: int, *, interval: str = "month", interval_count: int = 1,
                  currency: str = "usd", product: str | None = None, product_name: str | None = None,
                  lookup_key: str | None = None, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        """A recurring price with a chosen id (the API cannot choose price ids; settings often name them).

        Makes the product too (id `product` or `prod_<price id>`) unless it exists. Returns the price."""
        with self._lock:
            if price_id in self._store["price"]:
                raise ValueError(f"price {price_id} exists")
            prod_id = product or f"prod_{price_id.removeprefix('price_')}"
            if prod_id not in self._store["product"]:
                self._new_product({"id": prod_id, "name": product_name or price_id})
            price = self._new_price({"product": prod_id, "currency": currency, "unit_amount": str(unit_amount),
                                     "recurring": {"interval": interval, "interval_count": str(interval_count)},
                                     "lookup_key": lookup_key, "metadata": metadata or {}}, price_id=price_id)
            return copy.deepcopy(price)

    def get(self, ident: str) -> dict[str, Any]:
        """Any stored object by id, as the API would return it (for assertions)."""
        with self._lock:
            obj = self._lookup(ident)
            if obj is None:
                raise KeyError(ident)
            return copy.deepcopy(obj)

    def payment_behaviour(self, customer: str) -> str:
        with self._lock:
            return self._payment.get(customer, "succeed")

    def client(self, api_key: str = "sk_test_double", **kwargs: Any) -> stripe.StripeClient:
        """A StripeClient pointed at this double (sync and *_async methods work)."""
        kwargs.setdefault("http_client", stripe.HTTPXClient(allow_sync_methods=True))
        return stripe.StripeClient(api_key, base_addresses={"api": self.base_url}, **kwargs)

    # ------------------------------------------------------------------ domain: customers, products, prices

    def _new_customer(self, p: dict[str, Any]) -> dict[str, Any]:
        c = _tmpl("customer")
        c.update(id=new_id("cus_", 14), created=self.now(), email=p.get("email") or None, name=p.get("name") or None,
                 description=p.get("description") or None, phone=p.get("phone") or None, metadata={},
                 invoice_prefix=new_id("", 8).upper(), currency=None, balance=0)
        apply_metadata(c["metadata"], p.get("metadata"))
        self._put(c)
        self._emit("customer.created", c)
        return c

    def _new_product(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("name"):
            raise invalid("Missing required param: name.", "name", "parameter_missing")
        prod = _tmpl("product")
        now = self.now()
        pid = p.get("id") or new_id("prod_", 14)
        if pid in self._store["product"]:
            raise StripeError(400, "invalid_request_error", f"Product already exists: {pid}", param="id",
                              code="resource_already_exists")
        prod.update(id=pid, created=now, updated=now, name=p["name"], description=p.get("description") or None,
                    default_price=None, metadata={}, active=as_bool(p, "active", True), images=[],
                    marketing_features=[], type="service", url=None, unit_label=None)
        apply_metadata(prod["metadata"], p.get("metadata"))
        self._put(prod)
        self._emit("product.created", prod)
        return prod

    def _new_price(self, p: dict[str, Any], price_id: str | None = None) -> dict[str, Any]:
        if p.get("currency") in (None, ""):
            raise invalid("Missing required param: currency.", "currency", "parameter_missing")
        amount = as_int(p, "unit_amount")
        if amount is None:
            raise invalid("Missing required param: unit_amount.", "unit_amount", "parameter_missing")
        if p.get("product"):
            product = self._get("product", p["product"], "product")
        elif isinstance(p.get("product_data"), dict):
            product = self._new_product(p["product_data"])
        else:
            raise invalid("Missing required param: product.", "product", "parameter_missing")
        lookup_key = p.get("lookup_key") or None
        if lookup_key:
            holders = [x for x in self._store["price"].values() if x["lookup_key"] == lookup_key]
            if holders and not as_bool(p, "transfer_lookup_key", False):
                raise invalid(f"A price (`{holders[0]['id']}`) already uses that lookup key.", "lookup_key", None)
            for h in holders:
                h["lookup_key"] = None
        price = _tmpl("price")
        rec = p.get("recurring")
        if isinstance(rec, dict):
            interval = rec.get("interval")
            if interval not in ("day", "week", "month", "year"):
                raise invalid("Invalid recurring[interval]", "recurring[interval]", "parameter_invalid_empty")
            recurring = {"interval": interval, "interval_count": as_int(rec, "interval_count", 1), "meter": None,
                         "usage_type": rec.get("usage_type") or "licensed",
                         "trial_period_days": as_int(rec, "trial_period_days")}
        else:
            recurring = None
        price.update(id=price_id or new_id("price_"), created=self.now(), currency=str(p["currency"]).lower(),
                     product=product["id"], unit_amount=amount, unit_amount_decimal=str(amount),
                     recurring=recurring, type="recurring" if recurring else "one_time", lookup_key=lookup_key,
                     nickname=p.get("nickname") or None, metadata={}, active=as_bool(p, "active", True),
                     transform_quantity=None)
        apply_metadata(price["metadata"], p.get("metadata"))
        self._put(price)
        if product.get("default_price") is None:
            product["default_price"] = price["id"]
        self._emit("price.created", price)
        return price

    # ------------------------------------------------------------------ domain: subscriptions

    def _trial_end_from(self, sub_data: dict[str, Any], now: int) -> int | None:
        trial_end = sub_data.get("trial_end")
        if trial_end not in (None, ""):
            if trial_end == "now":
                return None
            value = as_int(sub_data, "trial_end")
            if value is None or value <= now:
                raise invalid("Invalid timestamp: must be an integer Unix timestamp in the future.",
                              "subscription_data[trial_end]", "parameter_invalid_integer")
            return value
        days = as_int(sub_data, "trial_period_days")
        if days:
            return now + days * DAY
        return None

    def _new_item(self, sub: dict[str, Any], price: dict[str, Any], quantity: int, start: int, end: int
                  ) -> dict[str, Any]:
        if price["type"] != "recurring":
            raise invalid(f"The price specified ({price['id']}) is a one-time price; subscriptions need a "
                          "recurring price.", "items", None)
        item = _tmpl("subscription_item")
        item.update(id=new_id("si_", 14), created=self.now(), price=copy.deepcopy(price), quantity=quantity,
                    subscription=sub["id"], metadata={}, current_period_start=start, current_period_end=end)
        return item

    def _new_subscription(self, customer: dict[str, Any], items: list[tuple[dict[str, Any], int]],
                          metadata: dict[str, Any], trial_end: int | None, now: int) -> dict[str, Any]:
        sub = _tmpl("subscription")
        sid = new_id("sub_")
        rec = items[0][0]["recurring"] or {}
        end = trial_end if trial_end else add_interval(now, rec.get("interval", "month"), rec.get("interval_count", 1))
        sub.update(id=sid, customer=customer["id"], created=now, start_date=now,
                   billing_cycle_anchor=trial_end or now, currency=items[0][0]["currency"], metadata={},
                   status="trialing" if trial_end else "active", trial_start=now if trial_end else None,
                   trial_end=trial_end, cancel_at=None, canceled_at=None, ended_at=None, cancel_at_period_end=False,
                   latest_invoice=None, next_pending_invoice_item_invoice=None, pause_collection=None,
                   default_payment_method=None, description=None, discounts=[])
        sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}
        sub["items"] = {"object": "list", "data": [], "has_more": False, "total_count": 0,
                        "url": f"/v1/subscription_items?subscription={sid}"}
        apply_metadata(sub["metadata"], metadata)
        for price, qty in items:
            sub["items"]["data"].append(self._new_item(sub, price, qty, now, end))
        sub["items"]["total_count"] = len(sub["items"]["data"])
        customer["currency"] = customer["currency"] or sub["currency"]
        self._put(sub)
        return sub

    def _period(self, sub: dict[str, Any]) -> tuple[int, int]:
        item = sub["items"]["data"][0]
        return item["current_period_start"], item["current_period_end"]

    def _line(self, sub: dict[str, Any], item: dict[str, Any], amount: int, description: str, start: int, end: int,
              *, proration: bool, quantity: int, price: dict[str, Any]) -> dict[str, Any]:
        return {"amount": amount, "description": description, "period": {"start": start, "end": end},
                "proration": proration, "quantity": quantity, "price": price["id"], "product": price["product"],
                "unit_amount": price["unit_amount"], "subscription": sub["id"], "subscription_item": item["id"]}

    def _cycle_lines(self, sub: dict[str, Any], start: int, end: int) -> list[dict[str, Any]]:
        lines = []
        for item in sub["items"]["data"]:
            price = item["price"]
            amount = 0 if sub["status"] == "trialing" and end <= (sub["trial_end"] or 0) else \
                price["unit_amount"] * item["quantity"]
            name = self._product_name(price)
            desc = f"{item['quantity']} × {name} (at ${price['unit_amount'] / 100:.2f} / {price['recurring']['interval']})"
            if amount == 0:
                desc = f"Trial period for {name}"
            lines.append(self._line(sub, item, amount, desc, start, end, proration=False, quantity=item["quantity"],
                                    price=price))
        return lines

    def _product_name(self, price: dict[str, Any]) -> str:
        prod = self._store["product"].get(price["product"])
        return prod["name"] if prod else price["product"]

    def _new_invoice(self, customer_id: str, sub: dict[str, Any] | None, lines: list[dict[str, Any]],
                     billing_reason: str, period: tuple[int, int], *, preview: bool = False) -> dict[str, Any]:
        customer = self._get("customer", customer_id)
        inv = _tmpl("invoice")
        iid = ("upcoming_" + new_id("in_")) if preview else new_id("in_")
        now = self.now()
        out_lines = []
        for ln in lines:
            li = _tmpl("line_item")
            li.update(id=new_id("il_"), invoice=iid, amount=ln["amount"], subtotal=ln["amount"], currency=sub["currency"]
                      if sub else customer["currency"], description=ln["description"], period=dict(ln["period"]),
                      quantity=ln["quantity"], subscription=ln["subscription"], metadata={}, discounts=[],
                      discount_amounts=[])
            li["parent"] = {"invoice_item_details": None, "type": "subscription_item_details",
                            "subscription_item_details": {
                                "invoice_item": ln.get("invoice_item"), "proration": ln["proration"],
                                "proration_details": {"credited_items": None},
                                "subscription": ln["subscription"], "subscription_item": ln["subscription_item"]}}
            li["pricing"] = {"type": "price_details", "price_details": {"price": ln["price"], "product": ln["product"]},
                             "unit_amount_decimal": str(ln["unit_amount"])}
            out_lines.append(li)
        total = sum(li["amount"] for li in out_lines)
        starting = customer["balance"]
        due = max(0, total + starting)
        inv.update(id=iid, customer=customer_id, customer_email=customer["email"], customer_name=customer["name"],
                   created=now, currency=sub["currency"] if sub else (customer["currency"] or "usd"),
                   billing_reason=billing_reason, subtotal=total, subtotal_excluding_tax=total, total=total,
                   total_excluding_tax=total, amount_due=due, amount_paid=0, amount_remaining=due,
                   starting_balance=starting, ending_balance=None, status="draft", number=None,
                   period_start=period[0], period_end=period[1], attempt_count=0, attempted=False,
                   auto_advance=not preview, effective_at=None, due_date=None, next_payment_attempt=None,
                   hosted_invoice_url=None if preview else f"{self.base_url}/invoice/{iid}", invoice_pdf=None,
                   subscription=sub["id"] if sub else None, metadata={}, last_finalization_error=None,
                   account_name="Chorus (Stripe test double)", discounts=[])
        inv["status_transitions"] = {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                                     "voided_at": None}
        inv["parent"] = {"quote_details": None, "type": "subscription_details",
                         "subscription_details": {"metadata": copy.deepcopy(sub["metadata"]) if sub else None,
                                                  "subscription": sub["id"] if sub else None}} if sub else None
        inv["lines"] = {"object": "list", "data": out_lines, "has_more": False, "total_count": len(out_lines),
                        "url": f"/v1/invoices/{iid}/lines"}
        if not preview:
            self._put(inv)
        return inv

    def _subscription_invoice(self, sub: dict[str, Any], reason: str, start: int) -> dict[str, Any]:
        s, e = self._period(sub)
        lines = self._cycle_lines(sub, s, e) + self._pending.pop(sub["id"], [])
        return self._new_invoice(sub["customer"], sub, lines, reason, (start, start))

    def _bill(self, inv: dict[str, Any]) -> bool:
        """invoice.created, finalize, attempt payment; the subscription follows. Returns paid?"""
        self._emit("invoice.created", inv)
        now = self.now()
        customer = self._get("customer", inv["customer"])
        customer["next_invoice_sequence"] = (customer.get("next_invoice_sequence") or 1) + 1
        inv.update(status="open", number=f"{customer['invoice_prefix']}-{customer['next_invoice_sequence'] - 1:04d}",
                   effective_at=now)
        inv["status_transitions"]["finalized_at"] = now
        inv["ending_balance"] = min(0, inv["total"] + inv["starting_balance"])
        customer["balance"] = inv["ending_balance"]
        self._emit("invoice.finalized", inv)
        return self._pay(inv, raise_on_fail=False)["status"] == "paid"

    def _pay(self, inv: dict[str, Any], raise_on_fail: bool) -> dict[str, Any]:
        if inv["status"] == "paid":
            raise invalid("Invoice is already paid", None, "invoice_already_paid") if raise_on_fail else inv
        if inv["status"] != "open":
            raise invalid(f"You can only pay an invoice that is open. This invoice is {inv['status']}.", None,
                          "invoice_not_editable")
        now = self.now()
        behaviour = self._payment.get(inv["customer"], "succeed") if inv["amount_due"] > 0 else "succeed"
        sub = self._store["subscription"].get(inv["subscription"] or "")
        before = copy.deepcopy(sub) if sub else None
        if behaviour == "succeed":
            inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0, attempted=inv["amount_due"] > 0
                       or inv["attempted"], attempt_count=inv["attempt_count"] + (1 if inv["amount_due"] > 0 else 0),
                       next_payment_attempt=None)
            inv["status_transitions"]["paid_at"] = now
            self._emit("invoice.paid", inv, None)
            self._emit("invoice.payment_succeeded", inv, None)
            if sub and sub["status"] in ("past_due", "unpaid", "incomplete") and sub["latest_invoice"] == inv["id"]:
                sub["status"] = "active"
                self._updated(sub, before)
            return inv
        attempts = inv["attempt_count"] + 1
        retry = self.retry_days[attempts - 1] if attempts - 1 < len(self.retry_days) else None
        inv.update(attempted=True, attempt_count=attempts, next_payment_attempt=now + retry * DAY if retry else None)
        if behaviour == "fail":
            inv["last_finalization_error"] = None
            self._emit("invoice.payment_failed", inv)
        else:
            self._emit("invoice.payment_action_required", inv)
        if sub and sub["status"] in ("active", "trialing"):
            sub["status"] = "past_due"
            self._updated(sub, before)
        if raise_on_fail:
            if behaviour == "fail":
                raise StripeError(402, "card_error", "Your card was declined.", code="card_declined",
                                  decline_code="generic_decline")
            raise StripeError(402, "card_error", "This payment requires additional user action before it can be "
                              "completed successfully.", code="authentication_required",
                              decline_code="authentication_required")
        return inv

    def _trial_will_end(self, sub: dict[str, Any]) -> None:
        self._trial_will_end_sent.add((sub["id"], sub["trial_end"]))
        self._emit("customer.subscription.trial_will_end", sub)

    def _end_subscription(self, sub: dict[str, Any], at: int, reason: str = "cancellation_requested") -> None:
        sub.update(status="canceled", ended_at=at, canceled_at=sub["canceled_at"] or at)
        sub["cancellation_details"] = dict(sub["cancellation_details"] or {}, reason=reason)
        self._pending.pop(sub["id"], None)
        for inv in self._store["invoice"].values():
            if inv["subscription"] == sub["id"] and inv["status"] == "open":
                inv["next_payment_attempt"] = None
        self._emit("customer.subscription.deleted", sub)

    def _period_end(self, sub: dict[str, Any], end: int) -> None:
        if sub["cancel_at_period_end"] or (sub["cancel_at"] is not None and sub["cancel_at"] <= end):
            self._end_subscription(sub, end)
            return
        if sub["status"] == "trialing" and (sub["id"], sub["trial_end"]) not in self._trial_will_end_sent:
            self._trial_will_end(sub)
        before = copy.deepcopy(sub)
        price = sub["items"]["data"][0]["price"]
        rec = price["recurring"]
        anchor = dt.datetime.fromtimestamp(sub["billing_cycle_anchor"], dt.UTC).day
        new_end = add_interval(end, rec["interval"], rec["interval_count"],
                               anchor_day=anchor if rec["interval"] in ("month", "year") else None)
        for item in sub["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = end, new_end
        if sub["status"] == "trialing":
            sub["status"] = "active"
        inv = self._subscription_invoice(sub, "subscription_cycle", end)
        sub["latest_invoice"] = inv["id"]
        self._updated(sub, before)
        self._bill(inv)

    def _prorate(self, sub: dict[str, Any], changes: list[tuple[dict[str, Any], dict[str, Any] | None, int,
                                                                  dict[str, Any] | None, int]], at: int
                 ) -> list[dict[str, Any]]:
        """Proration lines for (item, old price, old qty, new price, new qty) changes at `at`, by seconds."""
        start, end = self._period(sub)
        if sub["status"] == "trialing" or end <= start:
            return []
        frac = max(0.0, min(1.0, (end - at) / (end - start)))
        when = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%d %b %Y")
        lines = []
        for item, old_price, old_qty, new_price, new_qty in changes:
            if old_price is not None and old_qty:
                amt = -round(old_price["unit_amount"] * old_qty * frac)
                lines.append(self._line(sub, item, amt, f"Unused time on {old_qty} × {self._product_name(old_price)}"
                                        f" after {when}", at, end, proration=True, quantity=old_qty, price=old_price))
            if new_price is not None and new_qty:
                amt = round(new_price["unit_amount"] * new_qty * frac)
                lines.append(self._line(sub, item, amt, f"Remaining time on {new_qty} × "
                                        f"{self._product_name(new_price)} after {when}", at, end, proration=True,
                                        quantity=new_qty, price=new_price))
        return lines

    def _change_lines(self, work: dict[str, Any], changes: list[Any], pb: str, at: int
                      ) -> tuple[list[dict[str, Any]], bool]:
        """(lines, invoice now?) for item changes already applied to `work`.

        Same billing interval: prorations (none with proration_behavior=none), invoiced now only with
        always_invoice. A changed interval (monthly -> yearly) resets the billing cycle to `at` and is
        invoiced at once: credit for the unused old time (unless none) plus the new full period."""
        def key(price: dict[str, Any]) -> tuple[str, int]:
            return price["recurring"]["interval"], price["recurring"]["interval_count"]

        interval_changed = any(old is not None and new is not None and key(old) != key(new)
                               for _, old, _, new, _ in changes)
        if not interval_changed or work["status"] == "trialing":
            lines = self._prorate(work, changes, at) if pb != "none" else []
            return lines, pb == "always_invoice"
        credits = self._prorate(work, [(i, o, oq, None, 0) for i, o, oq, _, _ in changes if o is not None], at) \
            if pb != "none" else []
        rec = work["items"]["data"][0]["price"]["recurring"]
        new_end = add_interval(at, rec["interval"], rec["interval_count"])
        for item in work["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = at, new_end
        work["billing_cycle_anchor"] = at
        return credits + self._cycle_lines(work, at, new_end), True

    def _apply_items(self, sub: dict[str, Any], items_param: Any, at: int, param: str = "items"
                     ) -> list[tuple[dict[str, Any], dict[str, Any] | None, int, dict[str, Any] | None, int]]:
        """Apply Stripe's items[n][id|price|quantity|deleted|metadata] to `sub`; returns the changes."""
        if not isinstance(items_param, list):
            raise invalid("Invalid array", param, None)
        changes = []
        start, end = self._period(sub) if sub["items"]["data"] else (at, at)
        for n, spec in enumerate(items_param):
            if not isinstance(spec, dict):
                raise invalid("Invalid object", f"{param}[{n}]")
            if spec.get("id"):
                item = next((i for i in sub["items"]["data"] if i["id"] == spec["id"]), None)
                if item is None:
                    raise invalid(f"Invalid subscription_item id: {spec['id']}", f"{param}[{n}][id]",
                                  "resource_missing")
                old_price, old_qty = item["price"], item["quantity"]
                if as_bool(spec, "deleted", False):
                    sub["items"]["data"].remove(item)
                    changes.append((item, old_price, old_qty, None, 0))
                    continue
                new_price = self._get("price", spec["price"], f"{param}[{n}][price]") if spec.get("price") \
                    else old_price
                new_qty = as_int(spec, "quantity", old_qty)
                if new_price["id"] != old_price["id"] or new_qty != old_qty:
                    item["price"] = copy.deepcopy(new_price) if new_price is not old_price else old_price
                    item["quantity"] = new_qty
                    changes.append((item, old_price, old_qty, new_price, new_qty))
                apply_metadata(item["metadata"], spec.get("metadata"), f"{param}[{n}][metadata]")
            else:
                if not spec.get("price"):
                    raise invalid("Missing required param: price.", f"{param}[{n}][price]", "parameter_missing")
                price = self._get("price", spec["price"], f"{param}[{n}][price]")
                if any(i["price"]["id"] == price["id"] for i in sub["items"]["data"]):
                    raise invalid("Cannot add multiple subscription items with the same price.",
                                  f"{param}[{n}][price]", None)
                qty = as_int(spec, "quantity", 1)
                item = self._new_item(sub, price, qty, start, end)
                apply_metadata(item["metadata"], spec.get("metadata"))
                sub["items"]["data"].append(item)
                changes.append((item, None, 0, price, qty))
        if not sub["items"]["data"]:
            raise invalid("A subscription must have at least one active plan. To cancel a subscription, please use "
                          "the cancel API endpoint.", param, None)
        sub["items"]["total_count"] = len(sub["items"]["data"])
        return changes

    def _update_subscription(self, sub: dict[str, Any], p: dict[str, Any], *, items_param: Any = None,
                             param: str = "items") -> dict[str, Any]:
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise invalid("A canceled subscription can only update its cancellation_details and metadata.",
                          None, None)
        pb = p.get("proration_behavior") or "create_prorations"
        if pb not in PRORATION_BEHAVIOURS:
            raise invalid(f"Invalid proration_behavior: must be one of {', '.join(PRORATION_BEHAVIOURS)}",
                          "proration_behavior", None)
        payment_behavior = p.get("payment_behavior") or "allow_incomplete"
        at = as_int(p, "proration_date", self.now())
        before = copy.deepcopy(sub)
        work = copy.deepcopy(sub)
        changes = self._apply_items(work, items_param, at, param) if items_param is not None else []
        lines, invoice_now = self._change_lines(work, changes, pb, at)
        if invoice_now and lines and payment_behavior == "error_if_incomplete":
            due = sum(ln["amount"] for ln in lines) + sum(ln["amount"] for ln in self._pending.get(sub["id"], []))
            if due > 0 and self._payment.get(sub["customer"], "succeed") != "succeed":
                raise StripeError(402, "card_error", "Your card was declined.", code="card_declined",
                                  decline_code="generic_decline")
        sub.clear()
        sub.update(work)
        if "cancel_at_period_end" in p:
            cape = as_bool(p, "cancel_at_period_end", False)
            sub["cancel_at_period_end"] = cape
            if cape:
                sub["cancel_at"] = self._period(sub)[1]
                sub["canceled_at"] = self.now()
                sub["cancellation_details"] = dict(sub["cancellation_details"] or {}, reason="cancellation_requested")
            else:
                sub["cancel_at"] = sub["canceled_at"] = None
                sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}
        if "cancel_at" in p and "cancel_at_period_end" not in p:
            value = p.get("cancel_at")
            if value in ("", None):
                sub["cancel_at"], sub["canceled_at"] = None, None
            else:
                sub["cancel_at"] = as_int(p, "cancel_at")
                sub["canceled_at"] = self.now()
        if isinstance(p.get("cancellation_details"), dict):
            for k in ("comment", "feedback"):
                if k in p["cancellation_details"]:
                    sub["cancellation_details"][k] = p["cancellation_details"][k] or None
        apply_metadata(sub["metadata"], p.get("metadata"))
        if p.get("default_payment_method") is not None:
            sub["default_payment_method"] = p["default_payment_method"] or None
        end_trial_now = False
        if p.get("trial_end") not in (None, ""):
            if p["trial_end"] == "now":
                end_trial_now = sub["status"] == "trialing"
            else:
                te = as_int(p, "trial_end")
                if te <= self.now():
                    raise invalid("Invalid timestamp: must be an integer Unix timestamp in the future.", "trial_end",
                                  None)
                if sub["status"] != "trialing":
                    raise invalid("The double only moves trial_end of a trialing subscription.", "trial_end", None)
                sub["trial_end"] = te
                sub["billing_cycle_anchor"] = te
                for item in sub["items"]["data"]:
                    item["current_period_end"] = te
        invoice = None
        if lines:
            if invoice_now:
                invoice = self._new_invoice(sub["customer"], sub, lines + self._pending.pop(sub["id"], []),
                                            "subscription_update", (at, at))
                sub["latest_invoice"] = invoice["id"]
            else:
                for ln in lines:
                    ln["invoice_item"] = new_id("ii_")
                self._pending.setdefault(sub["id"], []).extend(lines)
        self._updated(sub, before)
        if invoice is not None:
            self._bill(invoice)
        if end_trial_now:
            now = self.now()
            sub["trial_end"] = now
            for item in sub["items"]["data"]:
                item["current_period_end"] = now
            self._period_end(sub, now)
        return sub

    def _cancel_subscription(self, sub: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
        if sub["status"] == "canceled":
            raise invalid(f"No such subscription: '{sub['id']}'", "id", "resource_missing")
        now = self.now()
        if isinstance(p.get("cancellation_details"), dict):
            for k in ("comment", "feedback"):
                if k in p["cancellation_details"]:
                    sub["cancellation_details"][k] = p["cancellation_details"][k] or None
        sub["canceled_at"] = now
        invoice = None
        if as_bool(p, "prorate", False):
            lines = self._prorate(sub, [(i, i["price"], i["quantity"], None, 0) for i in sub["items"]["data"]], now)
            if as_bool(p, "invoice_now", False):
                invoice = self._new_invoice(sub["customer"], sub, lines + self._pending.pop(sub["id"], []),
                                            "subscription_update", (now, now))
        self._end_subscription(sub, now)
        if invoice is not None:
            self._bill(invoice)
        return sub

    def _preview(self, p: dict[str, Any]) -> dict[str, Any]:
        details = p.get("subscription_details") or {}
        if not isinstance(details, dict):
            raise invalid("Invalid object", "subscription_details")
        if p.get("subscription"):
            sub = self._get("subscription", p["subscription"], "subscription")
        elif p.get("customer"):
            self._get("customer", p["customer"], "customer")
            subs = [s for s in self._store["subscription"].values()
                    if s["customer"] == p["customer"] and s["status"] != "canceled"]
            if not subs:
                raise invalid("No upcoming invoices for customer: " + p["customer"], None, "invoice_upcoming_none")
            sub = subs[-1]
        else:
            raise invalid("Missing required param: customer or subscription.", "customer", "parameter_missing")
        if p.get("customer") and p["customer"] != sub["customer"]:
            raise invalid("The subscription does not belong to this customer.", "subscription", None)
        if sub["status"] == "canceled":
            raise invalid("No upcoming invoices for a canceled subscription.", "subscription", "invoice_upcoming_none")
        pb = details.get("proration_behavior") or "create_prorations"
        if pb not in PRORATION_BEHAVIOURS:
            raise invalid("Invalid proration_behavior", "subscription_details[proration_behavior]", None)
        at = as_int(details, "proration_date", self.now())
        work = copy.deepcopy(sub)
        changes = self._apply_items(work, details["items"], at, "subscription_details[items]") \
            if details.get("items") is not None else []
        lines, invoice_now = self._change_lines(work, changes, pb, at)
        pending = copy.deepcopy(self._pending.get(sub["id"], []))
        if invoice_now:
            return self._new_invoice(sub["customer"], work, lines + pending, "subscription_update", (at, at),
                                     preview=True)
        start, end = self._period(work)
        if work["cancel_at_period_end"]:
            return self._new_invoice(sub["customer"], work, lines + pending, "upcoming", (end, end), preview=True)
        rec = work["items"]["data"][0]["price"]["recurring"]
        nxt = add_interval(end, rec["interval"], rec["interval_count"])
        if work["status"] == "trialing":
            work["status"] = "active"
        cycle = self._cycle_lines(work, end, nxt)
        return self._new_invoice(sub["customer"], work, cycle + pending + lines, "upcoming", (start, end),
                                 preview=True)

    # ------------------------------------------------------------------ HTTP API

    def _make_routes(self) -> list[tuple[str, re.Pattern[str], Callable[..., Any]]]:
        r = [
            ("POST", r"/v1/customers", self._h_customer_create),
            ("GET", r"/v1/customers", self._h_customer_list),
            ("GET", r"/v1/customers/(?P<id>[^/]+)", self._h_customer_get),
            ("POST", r"/v1/customers/(?P<id>[^/]+)", self._h_customer_update),
            ("POST", r"/v1/products", self._h_product_create),
            ("GET", r"/v1/products", self._h_product_list),
            ("GET", r"/v1/products/(?P<id>[^/]+)", lambda p, id: self._get("product", id)),
            ("POST", r"/v1/prices", self._h_price_create),
            ("GET", r"/v1/prices", self._h_price_list),
            ("GET", r"/v1/prices/(?P<id>[^/]+)", lambda p, id: self._get("price", id)),
            ("POST", r"/v1/prices/(?P<id>[^/]+)", self._h_price_update),
            ("POST", r"/v1/checkout/sessions", self._h_checkout_create),
            ("GET", r"/v1/checkout/sessions", self._h_checkout_list),
            ("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)", lambda p, id: self._get("checkout.session", id)),
            ("POST", r"/v1/checkout/sessions/(?P<id>[^/]+)/expire", self._h_checkout_expire),
            ("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)/line_items",
             lambda p, id: self._list(list(reversed(self._session_line_items(id)["data"])),
                                      f"/v1/checkout/sessions/{id}/line_items", p)),
            ("POST", r"/v1/billing_portal/sessions", self._h_portal_create),
            ("GET", r"/v1/subscriptions", self._h_subscription_list),
            ("GET", r"/v1/subscriptions/(?P<id>[^/]+)", lambda p, id: self._get("subscription", id)),
            ("POST", r"/v1/subscriptions/(?P<id>[^/]+)", self._h_subscription_update),
            ("DELETE", r"/v1/subscriptions/(?P<id>[^/]+)", self._h_subscription_cancel),
            ("GET", r"/v1/subscription_items", self._h_item_list),
            ("GET", r"/v1/subscription_items/(?P<id>[^/]+)", self._h_item_get),
            ("POST", r"/v1/subscription_items/(?P<id>[^/]+)", self._h_item_update),
            ("POST", r"/v1/invoices/create_preview", self._h_invoice_preview),
            ("GET", r"/v1/invoices", self._h_invoice_list),
            ("GET", r"/v1/invoices/(?P<id>[^/]+)", lambda p, id: self._get("invoice", id)),
            ("POST", r"/v1/invoices/(?P<id>[^/]+)/pay", lambda p, id: self._pay(self._get("invoice", id), True)),
            ("GET", r"/v1/events", self._h_event_list),
            ("GET", r"/v1/events/(?P<id>[^/]+)", self._h_event_get),
        ]
        return [(m, re.compile(pat + "$"), h) for m, pat, h in r]

    def _list(self, objs: list[dict[str, Any]], url: str, p: dict[str, Any]) -> dict[str, Any]:
        limit = as_int(p, "limit", 10)
        if not 1 <= limit <= 100:
            raise invalid("This value must be greater than or equal to 1 and less than or equal to 100.", "limit",
                          None)
        objs = list(reversed(objs))  # newest first
        if p.get("starting_after"):
            idx = next((i for i, o in enumerate(objs) if o["id"] == p["starting_after"]), None)
            if idx is None:
                raise missing("object", p["starting_after"], "starting_after")
            objs = objs[idx + 1:]
        elif p.get("ending_before"):
            idx = next((i for i, o in enumerate(objs) if o["id"] == p["ending_before"]), None)
            if idx is None:
                raise missing("object", p["ending_before"], "ending_before")
            objs = objs[max(0, idx - limit):idx]
        return {"object": "list", "data": objs[:limit], "has_more": len(objs) > limit, "url": url}

    @staticmethod
    def _created_filter(objs: list[dict[str, Any]], p: dict[str, Any]) -> list[dict[str, Any]]:
        c = p.get("created")
        if isinstance(c, dict):
            for op, fn in (("gt", lambda a, b: a > b), ("gte", lambda a, b: a >= b), ("lt", lambda a, b: a < b),
                           ("lte", lambda a, b: a <= b)):
                if c.get(op) not in (None, ""):
                    objs = [o for o in objs if fn(o["created"], int(c[op]))]
        return objs

    def _h_customer_create(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"email", "name", "description", "metadata", "phone", "address", "preferred_locales",
                           "invoice_settings", "payment_method", "tax_exempt", "shipping"})
        return self._new_customer(p)

    def _h_customer_list(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"email", "limit", "starting_after", "ending_before", "created", "test_clock"})
        objs = list(self._store["customer"].values())
        if p.get("email") is not None:
            objs = [c for c in objs if c["email"] == p["email"]]
        return self._list(self._created_filter(objs, p), "/v1/customers", p)

    def _h_customer_get(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        return self._get("customer", id)

    def _h_customer_update(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        unknown_params(p, {"email", "name", "description", "metadata", "phone", "address", "preferred_locales",
                           "invoice_settings", "tax_exempt", "shipping", "default_source"})
        c = self._get("customer", id)
        before = copy.deepcopy(c)
        for k in ("email", "name", "description", "phone"):
            if k in p:
                c[k] = p[k] or None
        if isinstance(p.get("invoice_settings"), dict) and "default_payment_method" in p["invoice_settings"]:
            c["invoice_settings"]["default_payment_method"] = p["invoice_settings"]["default_payment_method"] or None
        apply_metadata(c["metadata"], p.get("metadata"))
        prev = _diff(before, c)
        if prev:
            self._emit("customer.updated", c, prev)
        return c

    def _h_product_create(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"id", "name", "description", "metadata", "active", "default_price_data", "images",
                           "marketing_features", "tax_code", "unit_label", "url", "statement_descriptor"})
        return self._new_product(p)

    def _h_product_list(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"active", "ids", "limit", "starting_after", "ending_before", "created", "url",
                           "shippable"})
        objs = list(self._store["product"].values())
        if p.get("active") not in (None, ""):
            objs = [o for o in objs if o["active"] == as_bool(p, "active")]
        if isinstance(p.get("ids"), list):
            objs = [o for o in objs if o["id"] in p["ids"]]
        return self._list(objs, "/v1/products", p)

    def _h_price_create(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"currency", "unit_amount", "product", "product_data", "recurring", "lookup_key",
                           "transfer_lookup_key", "nickname", "metadata", "active", "tax_behavior",
                           "billing_scheme", "unit_amount_decimal"})
        return self._new_price(p)

    def _h_price_update(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        unknown_params(p, {"active", "metadata", "nickname", "lookup_key", "transfer_lookup_key", "tax_behavior"})
        price = self._get("price", id)
        before = copy.deepcopy(price)
        if "active" in p:
            price["active"] = as_bool(p, "active", price["active"])
        if "nickname" in p:
            price["nickname"] = p["nickname"] or None
        if "lookup_key" in p:
            lk = p["lookup_key"] or None
            holders = [x for x in self._store["price"].values() if lk and x["lookup_key"] == lk and x is not price]
            if holders and not as_bool(p, "transfer_lookup_key", False):
                raise invalid(f"A price (`{holders[0]['id']}`) already uses that lookup key.", "lookup_key", None)
            for h in holders:
                h["lookup_key"] = None
            price["lookup_key"] = lk
        apply_metadata(price["metadata"], p.get("metadata"))
        prev = _diff(before, price)
        if prev:
            self._emit("price.updated", price, prev)
        return price

    def _h_price_list(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"active", "currency", "lookup_keys", "product", "type", "recurring", "limit",
                           "starting_after", "ending_before", "created"})
        objs = list(self._store["price"].values())
        if p.get("active") not in (None, ""):
            objs = [o for o in objs if o["active"] == as_bool(p, "active")]
        if p.get("lookup_keys") is not None:
            keys = p["lookup_keys"] if isinstance(p["lookup_keys"], list) else [p["lookup_keys"]]
            objs = [o for o in objs if o["lookup_key"] in keys]
        for k in ("product", "currency", "type"):
            if p.get(k):
                objs = [o for o in objs if o[k] == p[k]]
        return self._list(self._created_filter(objs, p), "/v1/prices", p)

    def _h_checkout_create(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"mode", "customer", "customer_email", "client_reference_id", "line_items", "success_url",
                           "cancel_url", "metadata", "subscription_data", "allow_promotion_codes", "locale",
                           "payment_method_types", "billing_address_collection", "customer_update", "ui_mode",
                           "tax_id_collection", "automatic_tax", "expires_at", "consent_collection",
                           "payment_method_collection", "discounts", "customer_creation", "return_url"})
        mode = p.get("mode")
        if not mode:
            raise invalid("Missing required param: mode.", "mode", "parameter_missing")
        if mode != "subscription":
            raise invalid("The double supports mode=subscription only.", "mode", None)
        if p.get("customer") and p.get("customer_email"):
            raise invalid("You may only specify one of these parameters: customer, customer_email.", "customer_email",
                          None)
        customer = self._get("customer", p["customer"], "customer") if p.get("customer") else None
        line_items = p.get("line_items")
        if not isinstance(line_items, list) or not line_items:
            raise invalid("You must provide at least one recurring price in `subscription` mode when using prices.",
                          "line_items", "parameter_missing")
        total = 0
        currency = None
        for n, li in enumerate(line_items):
            if not isinstance(li, dict) or not li.get("price"):
                raise invalid("Missing required param: line_items[0][price].", f"line_items[{n}][price]",
                              "parameter_missing")
            price = self._get("price", li["price"], f"line_items[{n}][price]")
            if price["type"] != "recurring":
                raise invalid("You must provide at least one recurring price in `subscription` mode when using "
                              "prices.", f"line_items[{n}][price]", None)
            if not price["active"]:
                raise invalid(f"The price `{price['id']}` is not active.", f"line_items[{n}][price]", None)
            qty = as_int(li, "quantity", 1)
            if qty < 1:
                raise invalid("This value must be greater than or equal to 1.", f"line_items[{n}][quantity]", None)
            total += price["unit_amount"] * qty
            currency = price["currency"]
        sub_data = p.get("subscription_data") or {}
        if not isinstance(sub_data, dict):
            raise invalid("Invalid object", "subscription_data")
        unknown_params(sub_data, {"metadata", "trial_end", "trial_period_days", "description", "trial_settings",
                                  "default_tax_rates", "billing_cycle_anchor", "proration_behavior",
                                  "application_fee_percent", "on_behalf_of", "transfer_data", "invoice_settings",
                                  "billing_mode"})
        now = self.now()
        trial_end = self._trial_end_from(sub_data, now)
        if trial_end is not None and trial_end - now < 2 * DAY and sub_data.get("trial_end") not in (None, ""):
            raise invalid("The `trial_end` date has to be at least 2 days in the future.",
                          "subscription_data[trial_end]", None)
        sid = new_id("cs_test_", 58)
        s = _tmpl("checkout.session")
        s.update(id=sid, created=now, expires_at=as_int(p, "expires_at", now + DAY), mode=mode, status="open",
                 payment_status="unpaid", customer=customer["id"] if customer else None,
                 customer_email=p.get("customer_email") or None, client_reference_id=p.get("client_reference_id"),
                 success_url=p.get("success_url"), cancel_url=p.get("cancel_url"), metadata={},
                 allow_promotion_codes=as_bool(p, "allow_promotion_codes"), amount_subtotal=0 if trial_end else total,
                 amount_total=0 if trial_end else total, currency=currency, subscription=None, invoice=None,
                 payment_intent=None, setup_intent=None, url=f"{self.base_url}/checkout/{sid}",
                 locale=p.get("locale") or None, ui_mode=p.get("ui_mode") or "hosted", payment_link=None,
                 customer_creation=None if customer else "always", payment_method_collection="always",
                 payment_method_types=p.get("payment_method_types") or ["card"], discounts=[])
        s["customer_details"] = {"email": customer["email"], "name": customer["name"], "phone": None,
                                 "address": None, "tax_exempt": "none", "tax_ids": []} if customer else None
        apply_metadata(s["metadata"], p.get("metadata"))
        self._put(s)
        self._session_input[sid] = copy.deepcopy(p)
        return s

    def _h_checkout_list(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"customer", "subscription", "status", "payment_intent", "limit", "starting_after",
                           "ending_before", "created", "customer_details", "payment_link"})
        objs = list(self._store["checkout.session"].values())
        for k in ("customer", "subscription", "status"):
            if p.get(k):
                objs = [o for o in objs if o[k] == p[k]]
        return self._list(objs, "/v1/checkout/sessions", p)

    def _session_line_items(self, sid: str) -> dict[str, Any]:
        session = self._get("checkout.session", sid)
        data = []
        for n, li in enumerate(self._session_input[sid]["line_items"]):
            price = self._store["price"][li["price"]]
            qty = int(li.get("quantity") or 1)
            data.append({"id": f"li_{session['id'][8:22]}{n}", "object": "item", "amount_discount": 0,
                         "amount_subtotal": price["unit_amount"] * qty, "amount_tax": 0,
                         "amount_total": price["unit_amount"] * qty, "currency": price["currency"],
                         "description": self._product_name(price), "price": copy.deepcopy(price), "quantity": qty})
        return {"object": "list", "data": data, "has_more": False,
                "url": f"/v1/checkout/sessions/{sid}/line_items"}

    def _h_checkout_expire(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        s = self._get("checkout.session", id)
        if s["status"] != "open":
            raise invalid(f"Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session "
                          f"has a status of \"{s['status']}\".", None, None)
        s.update(status="expired", url=None)
        self._emit("checkout.session.expired", s)
        return s

    def _h_portal_create(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"customer", "return_url", "configuration", "flow_data", "locale", "on_behalf_of"})
        if not p.get("customer"):
            raise invalid("Missing required param: customer.", "customer", "parameter_missing")
        self._get("customer", p["customer"], "customer")
        s = _tmpl("billing_portal.session")
        bid = new_id("bps_")
        s.update(id=bid, created=self.now(), customer=p["customer"], return_url=p.get("return_url") or None,
                 url=f"{self.base_url}/portal/{bid}", livemode=False, flow=None, locale=p.get("locale") or None,
                 configuration=p.get("configuration") or "bpc_double_default")
        self._put(s)
        return s

    def _h_subscription_list(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"customer", "status", "price", "limit", "starting_after", "ending_before", "created",
                           "current_period_end", "current_period_start", "collection_method", "test_clock"})
        objs = list(self._store["subscription"].values())
        if p.get("customer"):
            objs = [o for o in objs if o["customer"] == p["customer"]]
        status = p.get("status")
        if status in (None, ""):
            objs = [o for o in objs if o["status"] not in ("canceled", "incomplete_expired")]
        elif status == "ended":
            objs = [o for o in objs if o["status"] in ("canceled", "incomplete_expired")]
        elif status != "all":
            objs = [o for o in objs if o["status"] == status]
        if p.get("price"):
            objs = [o for o in objs if any(i["price"]["id"] == p["price"] for i in o["items"]["data"])]
        return self._list(self._created_filter(objs, p), "/v1/subscriptions", p)

    def _h_subscription_update(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        unknown_params(p, {"items", "proration_behavior", "proration_date", "cancel_at_period_end", "cancel_at",
                           "metadata", "trial_end", "payment_behavior", "default_payment_method",
                           "cancellation_details", "description", "billing_cycle_anchor", "trial_from_plan"})
        sub = self._get("subscription", id)
        return self._update_subscription(sub, p, items_param=p.get("items"))

    def _h_subscription_cancel(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        unknown_params(p, {"invoice_now", "prorate", "cancellation_details"})
        return self._cancel_subscription(self._get("subscription", id), p)

    def _h_item_list(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"subscription", "limit", "starting_after", "ending_before"})
        if not p.get("subscription"):
            raise invalid("Missing required param: subscription.", "subscription", "parameter_missing")
        sub = self._get("subscription", p["subscription"], "subscription")
        return self._list(list(reversed(sub["items"]["data"])), f"/v1/subscription_items?subscription={sub['id']}", p)

    def _h_item_get(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        found = self._find_item(id)
        if not found:
            raise missing("subscription_item", id)
        return found[1]

    def _h_item_update(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        unknown_params(p, {"price", "quantity", "proration_behavior", "proration_date", "metadata",
                           "payment_behavior", "off_session", "price_data", "tax_rates", "discounts"})
        found = self._find_item(id)
        if not found:
            raise missing("subscription_item", id)
        sub, _ = found
        spec = {"id": id}
        for k in ("price", "quantity", "metadata"):
            if k in p:
                spec[k] = p[k]
        sp = {k: p[k] for k in ("proration_behavior", "proration_date", "payment_behavior") if k in p}
        self._update_subscription(sub, sp, items_param=[spec], param="item")
        return next(i for i in sub["items"]["data"] if i["id"] == id)

    def _h_invoice_preview(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"customer", "subscription", "subscription_details", "automatic_tax", "currency",
                           "customer_details", "discounts", "invoice_items", "preview_mode", "schedule",
                           "schedule_details", "issuer", "on_behalf_of"})
        return self._preview(p)

    def _h_invoice_list(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"customer", "subscription", "status", "limit", "starting_after", "ending_before",
                           "created", "collection_method", "due_date"})
        objs = list(self._store["invoice"].values())
        for k in ("customer", "subscription", "status"):
            if p.get(k):
                objs = [o for o in objs if o[k] == p[k]]
        return self._list(self._created_filter(objs, p), "/v1/invoices", p)

    def _h_event_list(self, p: dict[str, Any]) -> dict[str, Any]:
        unknown_params(p, {"type", "types", "limit", "starting_after", "ending_before", "created",
                           "delivery_success"})
        objs = list(self._events)
        if p.get("type"):
            pat = re.compile("^" + re.escape(p["type"]).replace(r"\*", ".*") + "$")
            objs = [e for e in objs if pat.match(e["type"])]
        if isinstance(p.get("types"), list):
            objs = [e for e in objs if e["type"] in p["types"]]
        return self._list(self._created_filter(objs, p), "/v1/events", p)

    def _h_event_get(self, p: dict[str, Any], id: str) -> dict[str, Any]:
        ev = next((e for e in self._events if e["id"] == id), None)
        if ev is None:
            raise missing("event", id)
        return ev

    # expand: `latest_invoice`, `subscription`, `customer`, `data.subscription`, `items.data.price.product`...
    def _expand(self, obj: Any, path: list[str], full: str) -> Any:
        if isinstance(obj, list):
            return [self._expand(o, path, full) for o in obj]
        if not isinstance(obj, dict) or not path:
            return obj
        key, rest = path[0], path[1:]
        if key == "line_items" and obj.get("object") == "checkout.session":
            obj[key] = self._expand(self._session_line_items(obj["id"]), rest, full) if rest else \
                self._session_line_items(obj["id"])
            return obj
        if key not in obj:
            raise invalid(f"This property cannot be expanded ({full}).", "expand", None)
        value = obj[key]
        if isinstance(value, str):
            target = self._lookup(value)
            if target is None:
                return obj
            value = copy.deepcopy(target)
        obj[key] = self._expand(value, rest, full) if rest else value
        return obj

    def _dispatch(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        allowed = False
        for m, pat, handler in self._routes:
            match = pat.match(path)
            if not match:
                continue
            allowed = True
            if m != method:
                continue
            result = copy.deepcopy(handler(params, **match.groupdict()))
            expand = params.get("expand")
            if expand is not None:
                for full in (expand if isinstance(expand, list) else [expand]):
                    result = self._expand(result, full.split("."), full)
            return result
        if allowed:
            raise StripeError(405, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")
        raise StripeError(404, "invalid_request_error",
                          f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can "
                          "help at https://support.stripe.com/.")

    def handle(self, method: str, path: str, query: str, body: bytes, headers: dict[str, str]
               ) -> tuple[int, dict[str, str], bytes, str | None]:
        """One API request -> (status, headers, body, fault). fault is None, "drop" or "drop_after"."""
        with self._lock:
            request_id = new_id("req_", 14)
            out_headers = {"Content-Type": "application/json", "Request-Id": request_id,
                           "Stripe-Version": headers.get("stripe-version") or self.api_version,
                           "Access-Control-Allow-Origin": "*"}
            idem_key = headers.get("idempotency-key")
            record: dict[str, Any] = {"method": method, "path": path, "params": None, "idempotency_key": idem_key,
                                      "status": None, "replayed": False, "request_id": request_id,
                                      "at": self.now(), "fault": None}
            self._log.append(record)
            fault = next((f for f in self._faults if path.startswith(f["path"]) and f["count"] > 0
                          and (f["method"] in (None, method))), None)
            if fault is not None:
                fault["count"] -= 1
                record["fault"] = fault["mode"]
                if fault["mode"] in ("error", "drop"):
                    err = StripeError(500, "api_error", "An unknown error occurred (fault injected by the double).")
                    record["status"] = 500 if fault["mode"] == "error" else None
                    return 500, out_headers, dumps(err.payload(request_id)), \
                        "drop" if fault["mode"] == "drop" else None
            try:
                params = decode_form(query)
                if method == "POST" and body:
                    params.update(decode_form(body.decode("utf-8")))
                elif method == "DELETE" and body:
                    params.update(decode_form(body.decode("utf-8")))
            except (ValueError, UnicodeDecodeError) as exc:
                record["status"] = 400
                return 400, out_headers, dumps(invalid(str(exc), None, None).payload(request_id)), None
            record["params"] = params
            auth = headers.get("authorization", "")
            key = auth[7:] if auth.startswith("Bearer ") else ""
            if not key:
                err = StripeError(401, "invalid_request_error",
                                  "You did not provide an API key. You need to provide your API key in the "
                                  "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
                record["status"] = 401
                return 401, out_headers, dumps(err.payload(request_id)), None
            if not key.startswith(("sk_test_", "rk_test_")):
                err = StripeError(401, "invalid_request_error", f"Invalid API Key provided: {key[:8]}****")
                record["status"] = 401
                return 401, out_headers, dumps(err.payload(request_id)), None
            if idem_key and method == "POST":
                stored = self._idem.get((key, idem_key))
                if stored is not None:
                    if stored["method"] != method or stored["path"] != path or stored["params"] != params:
                        err = StripeError(400, "idempotency_error",
                                          "Keys for idempotent requests can only be used with the same parameters "
                                          "they were first used with. Try using a key other than "
                                          f"'{idem_key}' if you meant to execute a different request.")
                        record["status"] = 400
                        return 400, out_headers, dumps(err.payload(request_id)), None
                    record.update(status=stored["status"], replayed=True)
                    hdrs = dict(out_headers, **{"Idempotent-Replayed": "true",
                                                "Original-Request": stored["request_id"]})
                    return stored["status"], hdrs, stored["body"], None
            self._catch_up()
            self._request.info = {"id": request_id, "idempotency_key": idem_key}
            try:
                status, payload = 200, self._dispatch(method, path, params)
            except StripeError as exc:
                status, payload = exc.status, exc.payload(request_id)
            finally:
                self._request.info = None
            data = dumps(payload)
            record["status"] = status
            if idem_key and method == "POST" and (status < 400 or status == 402):
                self._idem[(key, idem_key)] = {"method": method, "path": path, "params": params, "status": status,
                                               "body": data, "request_id": request_id}
                out_headers["Idempotency-Key"] = idem_key
            return status, out_headers, data, ("drop_after" if fault is not None and fault["mode"] == "drop_after"
                                               else None)

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        method = scope["method"]
        path = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if path.startswith("/v1/"):
            status, out, data, fault = self.handle(method, path, query, body, headers)
            if fault:
                # Start the answer, then abort: the client sees the connection close mid-response.
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-length", str(len(data) + 100).encode())]})
                raise ConnectionAbortedError("fault injected by the Stripe double: connection dropped")
        elif path.startswith("/_double/"):
            status, out, data = self._control_http(method, path, query, body, headers)
        elif re.match(r"^/(checkout|portal|invoice)/[^/]+$", path) and method == "GET":
            status, out, data = self._page(path)
        else:
            status, out, data = 404, {"Content-Type": "text/plain"}, b"not found"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.lower().encode(), v.encode()) for k, v in out.items()]
                    + [(b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    def _page(self, path: str) -> tuple[int, dict[str, str], bytes]:
        kind, ident = path.strip("/").split("/")
        with self._lock:
            obj = self._lookup(ident)
        if obj is None:
            return 404, {"Content-Type": "text/html"}, b"<!doctype html><title>Not found</title><h1>Not found</h1>"
        if kind == "checkout":
            action = (f'<form method="post" action="/_double/checkout/{ident}/complete">'
                      '<button type="submit">Subscribe</button></form>' if obj["status"] == "open" else
                      f'<p>Session {obj["status"]}.</p>')
            html = (f"<!doctype html><title>Checkout</title><h1>Checkout (Stripe double)</h1>"
                    f"<p id=status>{obj['status']}</p><p id=amount>{obj['amount_total']}</p>{action}"
                    f"<p><a id=cancel href=\"{obj['cancel_url'] or ''}\">Cancel</a></p>")
        elif kind == "portal":
            html = (f"<!doctype html><title>Billing portal</title><h1>Billing portal (Stripe double)</h1>"
                    f"<p id=customer>{obj['customer']}</p><a id=return href=\"{obj['return_url'] or ''}\">Return</a>")
        else:
            html = (f"<!doctype html><title>Invoice</title><h1>Invoice {obj['id']}</h1>"
                    f"<p id=status>{obj['status']}</p><p id=amount>{obj['amount_due']}</p>")
        return 200, {"Content-Type": "text/html; charset=utf-8"}, html.encode()

    @staticmethod
    def success_url(session: dict[str, Any]) -> str | None:
        """Where Checkout sends the customer after paying ({CHECKOUT_SESSION_ID} filled in, as Stripe does)."""
        url = session.get("success_url")
        return url.replace("{CHECKOUT_SESSION_ID}", session["id"]) if url else None

    def _control_http(self, method: str, path: str, query: str, body: bytes, headers: dict[str, str] | None = None
                      ) -> tuple[int, dict[str, str], bytes]:
        """The controls over HTTP (JSON in and out) for tests that drive the double from another process."""
        hdr = {"Content-Type": "application/json"}
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            data = json.loads(body) if body and body.strip()[:1] == b"{" else {}
        except json.JSONDecodeError:
            return 400, hdr, dumps({"error": "invalid JSON"})
        try:
            if path == "/_double/clock" and method == "GET":
                return 200, hdr, dumps({"now": self.now()})
            if path == "/_double/advance" and method == "POST":
                return 200, hdr, dumps({"events": self.advance(int(data.get("seconds", q.get("seconds", 0)))),
                                        "now": self.now()})
            m = re.match(r"^/_double/checkout/([^/]+)/complete$", path)
            if m and method == "POST":
                done = self.complete_checkout(m.group(1), payment=data.get("payment") or q.get("payment"))
                if (headers or {}).get("content-type", "").startswith("application/x-www-form-urlencoded"):
                    # The page's button (a browser): go where Stripe would send the customer.
                    return 303, {"Location": self.success_url(done) or "/", "Content-Type": "text/plain"}, b""
                return 200, hdr, dumps(done)
            m = re.match(r"^/_double/customers/([^/]+)/payment$", path)
            if m and method == "POST":
                self.set_payment(m.group(1), data.get("behaviour") or q.get("behaviour", ""))
                return 200, hdr, dumps({"customer": m.group(1), "behaviour": self.payment_behaviour(m.group(1))})
            m = re.match(r"^/_double/invoices/([^/]+)/pay$", path)
            if m and method == "POST":
                return 200, hdr, dumps(self.pay_invoice(m.group(1)))
            if path == "/_double/events" and method == "GET":
                types = q.get("types")
                return 200, hdr, dumps(self.events(q.get("since"), types.split(",") if types else None))
            if path == "/_double/requests" and method == "GET":
                return 200, hdr, dumps(self.requests(q.get("path"), q.get("method")))
            if path == "/_double/faults" and method == "POST":
                self.fail_next(data["path"], int(data.get("count", 1)), data.get("mode", "error"), data.get("method"))
                return 200, hdr, dumps({"ok": True})
            if path == "/_double/webhook" and method == "POST":
                with self._lock:
                    self.webhook_url = data.get("url")
                    self.webhook_secret = data.get("secret")
                return 200, hdr, dumps({"ok": True})
            if path == "/_double/deliveries" and method == "GET":
                return 200, hdr, dumps(self.wait_deliveries())
        except StripeError as exc:
            return exc.status, hdr, dumps(exc.payload("control"))
        except CheckoutDeclined as exc:
            return 402, hdr, dumps({"error": {"type": "card_error", "message": str(exc)}})
        except (KeyError, ValueError) as exc:
            return 400, hdr, dumps({"error": {"type": "invalid_request_error", "message": str(exc)}})
        return 404, hdr, dumps({"error": "no such control"})
