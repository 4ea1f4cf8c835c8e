"""The agencies whose live subscription is priced per brand or per seat (SECURITY DEFINER,
ids only), so the billing sweep keeps their quantity in step with what changes on its own
(an invitation that expires frees a seat without anyone acting).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

APP_ROLE = "chorus_app"
revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION chorus_billing_per_unit(p_plans text[])
        RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
            SELECT agency_id FROM billing_accounts
            WHERE plan = ANY(p_plans) AND stripe_subscription_id IS NOT NULL
              AND status IN ('trialing', 'active', 'incomplete', 'past_due', 'unpaid')
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION chorus_billing_per_unit(text[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION chorus_billing_per_unit(text[]) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS chorus_billing_per_unit(text[])")
