"""The agency's subscription: the billing overview, Checkout, the Customer Portal, plan
changes with proration, cancelling at period end, and the per-brand or per-seat quantity.

Billing is on for an agency when it has a billing account; one is opened at sign-up when
Stripe is configured (with the trial), or on first use for agencies that predate it. With
no Stripe key (self-hosted) nothing here calls Stripe and every limit is open.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from advanced_alchemy.mixins.uuid import uuid7
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.agencies.models import Agency, Membership, User
from domain.agencies.rules import Action, Role
from domain.billing import schemas as s
from domain.billing.models import BillingAccount
from domain.billing.plans import COUNTED, PLANS, UNLIMITED, Limit, Plan, plan
from domain.billing.rules import ACTIVE_STATUSES, DUNNING_STATUSES, ENDED_STATUSES, standing
from domain.billing.stripe_api import StripeCalls, SubscriptionFacts
from domain.billing.sync import apply_subscription, lock_account
from domain.core.clock import now
from domain.core.context import Context
from domain.core.errors import ConflictError, ValidationFailedError
from domain.core.settings import Settings

log = logging.getLogger("chorus.billing")

SYNC_QUANTITY = "billing.sync_quantity"


class BillingOffError(ConflictError):
    slug = "billing-off"
    title = "Billing is off on this installation (no Stripe key): every limit is open"


class NoSubscriptionError(ConflictError):
    slug = "no-subscription"
    title = "The agency has no subscription yet: start one with a Checkout session"


class SubscriptionExistsError(ConflictError):
    slug = "subscription-exists"
    title = "The agency already has a subscription: change its plan instead"


def new_account(agency_id: UUID, settings: Settings) -> BillingAccount:
    """A new agency's account: Chorus's own trial of the trial plan, no card needed."""
    trial_plan = plan(settings.billing_trial_plan) or PLANS[1]
    return BillingAccount(
        id=uuid7(), agency_id=agency_id, plan=trial_plan.key, status="trialing",
        trial_ends_at=now() + timedelta(days=max(settings.billing_trial_days, 0)), quantity=1,
        cancel_at_period_end=False, notices_sent=[], change_seq=0,
    )


async def open_account(session: AsyncSession, agency_id: UUID, settings: Settings) -> BillingAccount | None:
    if not settings.billing_enabled:
        return None
    account = new_account(agency_id, settings)
    session.add(account)
    await session.flush()
    return account


def plan_out(p: Plan, settings: Settings) -> s.PlanOut:
    return s.PlanOut(
        key=p.key, name=p.name, pricing=p.pricing, min_quantity=p.min_quantity,  # type: ignore[arg-type]
        limits=s.PlanLimits(brands=p.brands, seats=p.seats, social_accounts=p.social_accounts,
                            scheduled_posts_per_month=p.scheduled_posts_per_month, share_links=p.share_links,
                            api_access=p.api_access, white_label=p.white_label),
        available=p is UNLIMITED or settings.price_for(p.key) is not None,
    )


def catalog(settings: Settings) -> s.PlanCatalog:
    return s.PlanCatalog(billing_enabled=settings.billing_enabled, trial_days=settings.billing_trial_days,
                         plans=[plan_out(p, settings) for p in PLANS])


def _rank(p: Plan) -> int:
    return PLANS.index(p) if p in PLANS else -1


async def owner_ids(session: AsyncSession, agency_id: UUID) -> list[UUID]:
    rows = await session.scalars(select(Membership.user_id).where(
        Membership.agency_id == agency_id, Membership.role == Role.OWNER.value))
    return list(rows)


NOTICES: dict[str, tuple[str, str]] = {
    "payment_failed": ("A payment for Chorus failed",
                       "Stripe could not take the payment for your Chorus subscription. Everything keeps working "
                       "until {grace}; after that the agency cannot schedule new posts until the payment is made "
                       "(posts already scheduled still go out). Update the card in the billing portal."),
    "action_required": ("A payment for Chorus needs your confirmation",
                        "Your bank asks you to confirm the payment for your Chorus subscription. {link}"),
    "grace_ending": ("Chorus: {days} left to settle the payment",
                     "The payment for your Chorus subscription is still due. On {grace} the agency becomes "
                     "read-only for new scheduling. Update the card in the billing portal."),
    "read_only": ("Chorus is read-only for new scheduling",
                  "The grace period after the failed payment is over: the agency cannot schedule new posts until "
                  "the payment is made. Posts already scheduled still go out."),
    "restored": ("Payment received: Chorus is fully back",
                 "Thank you: the payment went through and the agency can schedule posts again."),
    "ended": ("Your Chorus subscription has ended",
              "The subscription has ended. The agency keeps its data but cannot schedule new posts; choose a plan "
              "to continue."),
    "trial_ending": ("Your Chorus trial ends on {trial}",
                     "Your trial of the {plan} plan ends on {trial}. Choose a plan to keep scheduling posts."),
    "trial_ended": ("Your Chorus trial has ended",
                    "The trial has ended: the agency cannot schedule new posts until it chooses a plan."),
}


async def send_notice(ctx: Context, account: BillingAccount, kind: str, **details: Any) -> None:
    """Tell the agency's owners (in-app and by email) about a billing event."""
    from domain.notifications.service import notify

    title, body = NOTICES[kind]
    p = plan(account.plan)
    values = {"grace": f"{account.grace_ends_at:%Y-%m-%d %H:%M} UTC" if account.grace_ends_at else "soon",
              "trial": f"{account.trial_ends_at:%Y-%m-%d}" if account.trial_ends_at else "soon",
              "plan": p.name if p else account.plan, "days": "", "link": ""} | details
    await notify(ctx, user_ids=await owner_ids(ctx.session, account.agency_id), kind=f"billing.{kind}",
                 title=title.format(**values), body=body.format(**values),
                 data={"status": account.status, "plan": account.plan})


async def follow_subscription(ctx: Context, account: BillingAccount, facts: SubscriptionFacts,
                              settings: Settings) -> list[str]:
    """Apply the subscription as Stripe holds it to the agency's account, and recompute what
    the plan freezes when the plan (or whether it has ended) changed. Returns the notices due."""
    from domain.billing.entitlements import apply_plan

    notices, plan_changed = apply_subscription(account, facts, settings, now())
    await ctx.session.flush()
    if plan_changed:
        await apply_plan(ctx.session, ctx.agency_id)
    return notices


class BillingService:
    def __init__(self, ctx: Context, settings: Settings) -> None:
        self.ctx = ctx
        self.settings = settings

    @property
    def session(self) -> AsyncSession:
        return self.ctx.session

    def _stripe(self) -> StripeCalls:
        return StripeCalls(self.settings)

    async def _account(self, *, lock: bool = False) -> BillingAccount | None:
        stmt = self.ctx.select(BillingAccount)
        account = await self.session.scalar(stmt.with_for_update() if lock else stmt)
        if account is None and self.settings.billing_enabled:
            # An agency from before billing was turned on starts its trial now.
            account = await open_account(self.session, self.ctx.agency_id, self.settings)
            await self.ctx.audit("billing.opened", "billing_account", account.id, {"plan": account.plan})  # type: ignore[union-attr]
        return account

    async def _managed(self) -> BillingAccount:
        self.ctx.require(Action.BILLING_MANAGE)
        if not self.settings.billing_enabled:
            raise BillingOffError()
        account = await self._account(lock=True)
        assert account is not None
        return account

    # --- reading -------------------------------------------------------------------

    async def overview(self) -> s.BillingOut:
        from domain.billing.entitlements import frozen_report, usage

        self.ctx.require(Action.BILLING_READ)
        account = await self._account()
        state = standing(account, now())
        counts = await usage(self.session, self.ctx.agency_id)
        current = state.plan
        rows = []
        for limit in COUNTED:
            allowed = current.allows(limit)
            rows.append(s.UsageOut(limit=limit.value, usage=counts.get(limit, 0), allowed=allowed,  # type: ignore[arg-type]
                                   over=allowed is not None and counts.get(limit, 0) > allowed))  # type: ignore[operator]
        frozen = await frozen_report(self.session, self.ctx.agency_id) if account is not None else {}
        return s.BillingOut(
            billing_enabled=account is not None, plan=plan_out(current, self.settings), status=state.status,
            read_only=state.read_only, read_only_reason=state.reason,
            trial_ends_at=account.trial_ends_at if account else None,
            current_period_end=account.current_period_end if account else None,
            cancel_at_period_end=account.cancel_at_period_end if account else False,
            canceled_at=account.canceled_at if account else None,
            past_due_since=account.past_due_since if account else None,
            grace_ends_at=account.grace_ends_at if account else None,
            quantity=account.quantity if account else 1,
            has_customer=bool(account and account.stripe_customer_id),
            usage=rows, frozen=s.FrozenOut(**{k: list(v) for k, v in frozen.items() if k in s.FrozenOut.__struct_fields__}),
        )

    # --- Stripe flows ----------------------------------------------------------------

    def _price(self, key: str) -> tuple[Plan, str]:
        chosen = plan(key)
        price = self.settings.price_for(key) if chosen else None
        if chosen is None or price is None:
            raise ValidationFailedError.field("plan", f"The {key!r} plan cannot be bought here (no Stripe price is configured)")
        return chosen, price

    async def _quantity(self, chosen: Plan) -> int:
        from domain.billing.entitlements import usage

        counts = await usage(self.session, self.ctx.agency_id)
        return chosen.quantity(counts.get(Limit.BRANDS, 0), counts.get(Limit.SEATS, 0))

    def _return_url(self, path: str) -> str:
        base = self.settings.billing_return_url or self.settings.frontend_base_url or self.settings.public_base_url
        return f"{base.rstrip('/')}/{path}"

    async def _customer(self, account: BillingAccount) -> str:
        if account.stripe_customer_id:
            return account.stripe_customer_id
        agency = await self.session.get_one(Agency, self.ctx.agency_id)
        owner = await self.session.scalar(
            select(User.email).join(Membership, Membership.user_id == User.id)
            .where(Membership.agency_id == self.ctx.agency_id, Membership.role == Role.OWNER.value)
            .order_by(Membership.created_at).limit(1))
        customer = await self._stripe().create_customer(
            key=f"chorus:{account.id}:customer", email=owner or "", name=agency.name, agency_id=str(self.ctx.agency_id))
        account.stripe_customer_id = customer
        await self.session.flush()
        return customer

    async def checkout(self, data: s.PlanChoice) -> s.CheckoutSessionOut:
        account = await self._managed()
        chosen, price = self._price(data.plan)
        if account.stripe_subscription_id and account.status not in ENDED_STATUSES:
            raise SubscriptionExistsError()
        customer = await self._customer(account)
        quantity = await self._quantity(chosen)
        params: dict[str, Any] = {
            "mode": "subscription", "customer": customer, "client_reference_id": str(self.ctx.agency_id),
            "line_items": [{"price": price, "quantity": quantity}],
            "success_url": self._return_url("billing?checkout=success&session_id={CHECKOUT_SESSION_ID}"),
            "cancel_url": self._return_url("billing?checkout=cancelled"),
            "metadata": {"agency_id": str(self.ctx.agency_id), "plan": chosen.key},
            "subscription_data": {"metadata": {"agency_id": str(self.ctx.agency_id), "plan": chosen.key}},
        }
        # What is left of Chorus's own trial carries over (Stripe wants it at least 2 days out).
        if (account.status == "trialing" and account.stripe_subscription_id is None and account.trial_ends_at
                and account.trial_ends_at > now() + timedelta(days=2)):
            params["subscription_data"]["trial_end"] = int(account.trial_ends_at.timestamp())
        session = await self._stripe().checkout(
            key=f"chorus:{account.id}:checkout:{account.change_seq}:{chosen.key}:{quantity}", params=params)
        if not session.url:
            raise ValidationFailedError("Stripe gave the Checkout session no address")
        await self.ctx.audit("billing.checkout_started", "billing_account", account.id, {"plan": chosen.key})
        return s.CheckoutSessionOut(id=session.id, url=session.url)

    async def portal(self) -> s.PortalSessionOut:
        account = await self._managed()
        customer = await self._customer(account)
        session = await self._stripe().portal(
            key=f"chorus:{account.id}:portal:{self.ctx.request_id or uuid7()}", customer=customer,
            return_url=self._return_url("billing"))
        if not session.url:
            raise ValidationFailedError("Stripe gave the portal session no address")
        return s.PortalSessionOut(url=session.url)

    async def _live(self) -> BillingAccount:
        account = await self._managed()
        if not account.stripe_subscription_id or account.status in ENDED_STATUSES:
            raise NoSubscriptionError()
        return account

    async def _follow(self, account: BillingAccount, facts: SubscriptionFacts) -> None:
        for kind in await follow_subscription(self.ctx, account, facts, self.settings):
            await send_notice(self.ctx, account, kind)

    async def _applied(self, account: BillingAccount, facts: SubscriptionFacts, action: str,
                       changes: dict[str, Any]) -> s.BillingOut:
        account.change_seq += 1
        await self._follow(account, facts)
        await self.ctx.audit(action, "billing_account", account.id, changes)
        return await self.overview()

    async def refresh(self) -> s.BillingOut:
        """Fetch the customer's subscription from Stripe now instead of waiting for its webhook
        (a frontend back from Checkout, or support): the live one, else the newest."""
        self.ctx.require(Action.BILLING_READ)
        if not self.settings.billing_enabled:
            raise BillingOffError()
        account = await self._account(lock=True)
        assert account is not None
        if not account.stripe_customer_id:
            return await self.overview()
        found = await self._stripe().subscriptions_of(account.stripe_customer_id)
        if account.stripe_subscription_id:
            found.sort(key=lambda f: f.id != account.stripe_subscription_id)
        live = [f for f in found if f.status not in ENDED_STATUSES]
        chosen = (live or found)[:1]
        if chosen:
            await self._follow(account, chosen[0])
        return await self.overview()

    async def change_plan(self, data: s.PlanChoice) -> s.BillingOut:
        account = await self._live()
        chosen, price = self._price(data.plan)
        current = plan(account.plan)
        quantity = await self._quantity(chosen)
        if current is chosen and account.quantity == quantity:
            return await self.overview()
        upgrade = current is None or _rank(chosen) > _rank(current)
        params = {
            "items": [{"id": account.stripe_item_id, "price": price, "quantity": quantity}],
            # An upgrade is invoiced (the prorated difference) now; a downgrade credits the
            # unused time on the next invoice.
            "proration_behavior": "always_invoice" if upgrade else "create_prorations",
            "cancel_at_period_end": False,
            "metadata": {"agency_id": str(self.ctx.agency_id), "plan": chosen.key},
        }
        facts = await self._stripe().update_subscription(
            account.stripe_subscription_id,  # type: ignore[arg-type]
            key=f"chorus:{account.id}:plan:{account.change_seq}:{chosen.key}:{quantity}", params=params)
        return await self._applied(account, facts, "billing.plan_changed",
                                   {"from": account.plan, "to": chosen.key, "quantity": quantity,
                                    "proration": params["proration_behavior"]})

    async def cancel(self) -> s.BillingOut:
        account = await self._live()
        if account.cancel_at_period_end:
            return await self.overview()
        facts = await self._stripe().update_subscription(
            account.stripe_subscription_id,  # type: ignore[arg-type]
            key=f"chorus:{account.id}:cancel:{account.change_seq}", params={"cancel_at_period_end": True})
        return await self._applied(account, facts, "billing.cancel_scheduled", {"cancel_at_period_end": True})

    async def resume(self) -> s.BillingOut:
        account = await self._live()
        if not account.cancel_at_period_end:
            return await self.overview()
        facts = await self._stripe().update_subscription(
            account.stripe_subscription_id,  # type: ignore[arg-type]
            key=f"chorus:{account.id}:resume:{account.change_seq}", params={"cancel_at_period_end": False})
        return await self._applied(account, facts, "billing.cancel_undone", {"cancel_at_period_end": False})


async def sync_quantity(ctx: Context, settings: Settings) -> str:
    """Keep a per-brand or per-seat subscription's quantity equal to the usage it is priced
    on (the job `billing.sync_quantity`, sent when brands or members change). Increases are
    prorated; the key names the row, its change counter and the quantity, so a redelivered
    job reuses it."""
    from domain.billing.entitlements import usage

    if not settings.billing_enabled:
        return "billing off"
    account = await lock_account(ctx.session, ctx.agency_id)
    if account is None or not account.stripe_subscription_id or account.status not in ACTIVE_STATUSES | DUNNING_STATUSES:
        return "no live subscription"
    current = plan(account.plan)
    if current is None or current.pricing == "flat" or not account.stripe_item_id:
        return "flat pricing"
    counts = await usage(ctx.session, ctx.agency_id)
    quantity = current.quantity(counts.get(Limit.BRANDS, 0), counts.get(Limit.SEATS, 0))
    if quantity == account.quantity:
        return "in step"
    facts = await StripeCalls(settings).update_subscription(
        account.stripe_subscription_id, key=f"chorus:{account.id}:quantity:{account.change_seq}:{quantity}",
        params={"items": [{"id": account.stripe_item_id, "quantity": quantity}], "proration_behavior": "create_prorations"})
    before = account.quantity
    await follow_subscription(ctx, account, facts, settings)  # the price is unchanged: no notice is due
    account.change_seq += 1
    await ctx.audit("billing.quantity_changed", "billing_account", account.id, {"from": before, "to": account.quantity})
    return f"quantity {before} -> {account.quantity}"


async def wants_quantity_sync(ctx: Context) -> None:
    """Services call this when brands, members or invitations change. When the agency's
    plan is priced per brand or per seat, the job `billing.sync_quantity` runs after the
    commit and sets the subscription's quantity (one indexed read otherwise)."""
    from domain.billing.entitlements import load

    state = await load(ctx.session, ctx.agency_id)
    if state.enabled and state.plan.pricing != "flat":
        ctx.jobs.send(SYNC_QUANTITY)
