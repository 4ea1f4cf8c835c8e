"""Billing: one billing account per agency (under RLS), the Stripe events received (global,
unique by Stripe's event id), `frozen_at` on what a plan's limits can freeze (brands,
social accounts, memberships, API keys, share links), and two SECURITY DEFINER functions
that return ids only: the agency of a Stripe customer (webhook events name customers) and
the agencies whose trial ends within three days or has ended, or whose payment is past due,
and which are not read-only yet (the billing sweep).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

APP_ROLE = "chorus_app"
TENANT = "NULLIF(current_setting('app.agency_id', true), '')::uuid"
FROZEN_TABLES = ("brands", "social_accounts", "memberships", "api_keys", "share_links")
revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _base(table: str) -> list[sa.Column]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("plan", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("trial_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_item_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_price_id", sa.String(length=255), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("past_due_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grace_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_only_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notices_sent", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("stripe_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("change_seq", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_base("billing_accounts"),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_billing_accounts_agency_id_agencies"),
                                ondelete="CASCADE"),
        sa.UniqueConstraint("agency_id", name="uq_billing_accounts_agency_id"),
        sa.UniqueConstraint("stripe_customer_id", name=op.f("uq_billing_accounts_stripe_customer_id")),
        sa.UniqueConstraint("stripe_subscription_id", name=op.f("uq_billing_accounts_stripe_subscription_id")),
    )
    op.create_index(op.f("ix_billing_accounts_agency_id"), "billing_accounts", ["agency_id"], unique=False)
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON billing_accounts TO {APP_ROLE}")
    op.execute("ALTER TABLE billing_accounts ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE billing_accounts FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON billing_accounts USING (agency_id = {TENANT}) WITH CHECK (agency_id = {TENANT})"
    )
    # The SECURITY DEFINER functions below run as the owner, which RLS also binds (FORCE).
    op.execute("CREATE POLICY billing_lookup ON billing_accounts FOR SELECT TO CURRENT_USER USING (true)")

    op.create_table(
        "stripe_events",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("stripe_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        *_base("stripe_events"),
        sa.UniqueConstraint("event_id", name=op.f("uq_stripe_events_event_id")),
    )
    op.create_index(op.f("ix_stripe_events_agency_id"), "stripe_events", ["agency_id"], unique=False)
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON stripe_events TO {APP_ROLE}")
    # An event belongs to no agency until a worker has handled it (then to that agency only).
    op.execute("ALTER TABLE stripe_events ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE stripe_events FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON stripe_events USING (agency_id IS NULL OR agency_id = {TENANT}) "
        f"WITH CHECK (agency_id IS NULL OR agency_id = {TENANT})"
    )

    for table in FROZEN_TABLES:
        op.add_column(table, sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=True))

    op.execute(
        """
        CREATE FUNCTION chorus_agency_for_stripe_customer(p_customer text)
        RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$ SELECT agency_id FROM billing_accounts WHERE stripe_customer_id = p_customer $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION chorus_billing_due(p_at timestamptz)
        RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
            SELECT agency_id FROM billing_accounts
            WHERE read_only_since IS NULL AND (
                (status = 'trialing' AND stripe_subscription_id IS NULL AND trial_ends_at <= p_at + interval '3 days')
                OR (status IN ('past_due', 'unpaid') AND grace_ends_at IS NOT NULL)
            )
        $$
        """
    )
    for fn in ("chorus_agency_for_stripe_customer(text)", "chorus_billing_due(timestamptz)"):
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS chorus_billing_due(timestamptz)")
    op.execute("DROP FUNCTION IF EXISTS chorus_agency_for_stripe_customer(text)")
    for table in FROZEN_TABLES:
        op.drop_column(table, "frozen_at")
    op.execute("DROP POLICY IF EXISTS tenant_isolation ON stripe_events")
    op.drop_index(op.f("ix_stripe_events_agency_id"), table_name="stripe_events")
    op.drop_table("stripe_events")
    op.execute("DROP POLICY IF EXISTS billing_lookup ON billing_accounts")
    op.execute("DROP POLICY IF EXISTS tenant_isolation ON billing_accounts")
    op.drop_index(op.f("ix_billing_accounts_agency_id"), table_name="billing_accounts")
    op.drop_table("billing_accounts")
