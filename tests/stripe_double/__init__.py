"""A stateful Stripe API test double served on loopback (see double.py and README.md here)."""

from .double import CheckoutDeclined, StripeDouble, add_interval
from .wire import StripeError, decode_form, sign, sign_bad, sign_stale

__all__ = ["CheckoutDeclined", "StripeDouble", "StripeError", "add_interval", "decode_form", "sign", "sign_bad",
           "sign_stale"]
