"""pytest fixtures for the Stripe double. Use them with `from tests.stripe_double.fixtures import *  # noqa`
in a test module or conftest (or `pytest_plugins = ["tests.stripe_double.fixtures"]` at the top-level conftest).

- `stripe_double`: a fresh StripeDouble served on 127.0.0.1 (function scope); `.base_url`, `.client()`.
- `stripe_client`: `stripe_double.client()` (StripeClient, max_network_retries=0).
- `stripe_plans`: products and monthly prices made in the double (starter 1900, growth 4900, agency 9900,
  lookup keys chorus_starter_monthly, ...), a dict name -> price id.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.loopback import serve

from .double import StripeDouble

WEBHOOK_SECRET = "whsec_test_double_secret"


@pytest.fixture
def stripe_double() -> Iterator[StripeDouble]:
    double = StripeDouble(webhook_secret=WEBHOOK_SECRET)
    with serve(double, ready_path="/_double/clock") as base:
        double.base_url = base
        yield double
    double.close()


@pytest.fixture
def stripe_client(stripe_double: StripeDouble):
    return stripe_double.client()


@pytest.fixture
def stripe_plans(stripe_double: StripeDouble) -> dict[str, str]:
    client = stripe_double.client()
    out = {}
    for name, amount in (("starter", 1900), ("growth", 4900), ("agency", 9900)):
        product = client.v1.products.create({"name": name.title(), "metadata": {"plan": name}})
        price = client.v1.prices.create({"product": product.id, "currency": "usd", "unit_amount": amount,
                                         "recurring": {"interval": "month"},
                                         "lookup_key": f"chorus_{name}_monthly", "metadata": {"plan": name}})
        out[name] = price.id
    return out
