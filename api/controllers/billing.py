"""Billing (tag "Billing"): the agency's plan, usage and subscription, Stripe Checkout and the
Customer Portal, plan changes and cancelling; and Stripe's webhook endpoint."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.auth import requires
from api.problems import SECURED, problems
from domain.agencies.rules import Action
from domain.billing import schemas as s
from domain.billing.events import HANDLE, store, verify
from domain.billing.service import BillingService, catalog
from domain.core.context import Context
from domain.core.db import scoped_session
from domain.core.jobs import Job, current_sender

MANAGE = (400, 401, 403, 409, 413, 422, 429, 503)
_OFF = " With billing off (no Stripe key: self-hosted) this answers 409 `billing-off`."


def _service(ctx: Context, state: State) -> BillingService:
    return BillingService(ctx, state.settings)


class BillingController(Controller):
    path = "/v1/billing"
    tags = ["Billing"]
    security = SECURED

    @get("/", operation_id="getBilling", summary="The plan, subscription status, period end, and usage against each limit",
         **requires(Action.BILLING_READ, "`read_only` is true when new scheduling is refused (trial over, or a failed "
                    "payment past its grace period); `frozen` lists what a plan change left over the limits."),
         responses=problems(400, 401, 403, 429, 503))
    async def get_billing(self, ctx: NamedDependency[Context], state: State) -> s.BillingOut:
        return await _service(ctx, state).overview()

    @get("/plans", operation_id="listPlans", summary="The plans, their limits and whether they can be bought here",
         **requires(Action.BILLING_READ), responses=problems(400, 401, 403, 429))
    async def list_plans(self, ctx: NamedDependency[Context], state: State) -> s.PlanCatalog:
        ctx.require(Action.BILLING_READ)
        return catalog(state.settings)

    @post("/refresh", operation_id="refreshBilling",
          summary="Fetch the subscription from Stripe now (for a frontend back from Checkout)",
          **requires(Action.BILLING_READ, "Webhooks bring every change within seconds; this asks Stripe at once and "
                     "answers the billing state." + _OFF),
          responses=problems(400, 401, 403, 409, 429, 503), status_code=HTTP_200_OK)
    async def refresh(self, ctx: NamedDependency[Context], state: State) -> s.BillingOut:
        return await _service(ctx, state).refresh()

    @post("/checkout-sessions", operation_id="createCheckoutSession",
          summary="Start a subscription: a Stripe Checkout page for a plan",
          **requires(Action.BILLING_MANAGE, "Send the person to `url`. What is left of the trial carries over. The "
                     "subscription starts when Stripe confirms the payment (a webhook), not when this returns. "
                     "An agency with a live subscription gets 409 `subscription-exists`: change its plan instead." + _OFF),
          responses=problems(*MANAGE), status_code=HTTP_201_CREATED)
    async def checkout(self, ctx: NamedDependency[Context], state: State,
                       data: JSONBody[s.PlanChoice]) -> s.CheckoutSessionOut:
        return await _service(ctx, state).checkout(data)

    @post("/portal-sessions", operation_id="createPortalSession",
          summary="Stripe's Customer Portal: cards, invoices, billing details",
          **requires(Action.BILLING_MANAGE, "Send the person to `url`; it is short-lived." + _OFF),
          responses=problems(*MANAGE), status_code=HTTP_201_CREATED)
    async def portal(self, ctx: NamedDependency[Context], state: State) -> s.PortalSessionOut:
        return await _service(ctx, state).portal()

    @post("/plan", operation_id="changePlan", summary="Change the plan (prorated)",
          **requires(Action.BILLING_MANAGE, "An upgrade is invoiced now for the rest of the period; a downgrade "
                     "credits the unused time on the next invoice. A downgrade keeps everything but freezes what is "
                     "over the new limits (`frozen` in the answer). Also undoes a scheduled cancel." + _OFF),
          responses=problems(*MANAGE), status_code=HTTP_200_OK)
    async def change_plan(self, ctx: NamedDependency[Context], state: State,
                          data: JSONBody[s.PlanChoice]) -> s.BillingOut:
        return await _service(ctx, state).change_plan(data)

    @post("/cancel", operation_id="cancelSubscription", summary="Cancel at the end of the paid period",
          **requires(Action.BILLING_MANAGE, "Everything keeps working until `current_period_end`; then new scheduling "
                     "stops. `resumeSubscription` undoes it before then." + _OFF),
          responses=problems(*MANAGE), status_code=HTTP_200_OK)
    async def cancel(self, ctx: NamedDependency[Context], state: State) -> s.BillingOut:
        return await _service(ctx, state).cancel()

    @post("/resume", operation_id="resumeSubscription", summary="Keep a subscription that was set to cancel",
          **requires(Action.BILLING_MANAGE, _OFF.strip()), responses=problems(*MANAGE), status_code=HTTP_200_OK)
    async def resume(self, ctx: NamedDependency[Context], state: State) -> s.BillingOut:
        return await _service(ctx, state).resume()


class StripeWebhookController(Controller):
    path = "/v1/billing/stripe"
    tags = ["Billing"]

    @post("/webhook", operation_id="receiveStripeEvent", summary="Stripe's webhook endpoint (for Stripe only)",
          description="Verifies `Stripe-Signature` over the raw body (300 s tolerance): a bad or stale signature is a "
          "400 and stores nothing. Each event is stored once by its id and handled by a worker, which fetches the "
          "subscription from Stripe again before changing anything. 404 when billing is off.",
          opt={"public": True}, responses=problems(400, 404, 413, 429), status_code=HTTP_200_OK)
    async def receive(self, request: Request[Any, Any, Any], state: State) -> s.StripeWebhookAck:
        payload = await request.body()
        event = verify(payload, request.headers.get("stripe-signature"), state.settings)
        async with scoped_session(state.session_factory) as session:
            async with session.begin():
                row_id = await store(session, event)
        if row_id is not None:
            sender = current_sender()
            if sender is not None:
                # Stored first: if the broker is down, the billing sweep sends the job later.
                await sender([Job(HANDLE, {"event_row_id": str(row_id)})])
        return s.StripeWebhookAck(received=True, duplicate=row_id is None)
