"""Billing: plans and their limits, the agency's subscription (Stripe), entitlements."""
