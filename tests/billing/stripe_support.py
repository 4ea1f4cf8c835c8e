"""Fixtures for billing tests against the Stripe test double: settings pointing the SDK at
it, an app and a worker with those settings, and signed webhook deliveries."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
import stripe
from litestar.testing import AsyncTestClient

from tests.workers.conftest import worker  # noqa: F401 - fixture

WEBHOOK_SECRET = "whsec_chorus_test_secret"
PRICES = (("starter", "price_chorus_starter"), ("growth", "price_chorus_growth"),
          ("agency", "price_chorus_agency"), ("enterprise", "price_chorus_enterprise"))


def signed(event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers Stripe would send for `event`."""
    payload = json.dumps(event, separators=(",", ":"))
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp or int(time.time()))
    return payload.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"}


async def deliver(client: AsyncTestClient, event: dict[str, Any], **kwargs: Any):
    body, headers = signed(event, **kwargs)
    return await client.post("/v1/billing/stripe/webhook", content=body, headers=headers)


def billing_settings_for(settings, stripe_base: str | None, prices: tuple[tuple[str, str], ...] = PRICES, **extra: Any):
    return dataclasses.replace(
        settings, stripe_secret_key="sk_test_chorus", stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=stripe_base, stripe_prices=prices, stripe_timeout_seconds=5.0,
        stripe_max_network_retries=2, worker_threads=2, **extra)


@pytest.fixture
async def billing_client(billing_settings):
    from api.app import create_app

    async with AsyncTestClient(create_app(billing_settings), base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
def worker_settings(billing_settings):
    """tests/workers/conftest.py's `worker` runs with the billing settings."""
    return billing_settings
