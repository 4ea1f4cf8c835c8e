"""Outbound webhooks: endpoints (signing secret encrypted), events, deliveries and attempts,
under RLS; a partial index on the pending deliveries' due time; and
`chorus_due_webhook_deliveries(at, max)` (SECURITY DEFINER, ids only) for the retry sweep,
with a read-only policy for the migrating (owning) role like 0009's.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

APP_ROLE = "chorus_app"
TENANT = "NULLIF(current_setting('app.agency_id', true), '')::uuid"
TABLES = ["webhook_endpoints", "webhook_events", "webhook_deliveries", "webhook_attempts"]
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def _base(table: str) -> list[sa.Column]:
    return [
        sa.Column('agency_id', sa.Uuid(), nullable=False),
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f(f'fk_{table}_agency_id_agencies'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}')),
    ]


def upgrade() -> None:
    op.create_table('webhook_endpoints',
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('events', postgresql.ARRAY(sa.String(length=80)), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('secret_enc', sa.Text(), nullable=False),
    *_base('webhook_endpoints'))
    op.create_index(op.f('ix_webhook_endpoints_agency_id'), 'webhook_endpoints', ['agency_id'], unique=False)
    op.create_table('webhook_events',
    sa.Column('type', sa.String(length=80), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    *_base('webhook_events'))
    op.create_index(op.f('ix_webhook_events_agency_id'), 'webhook_events', ['agency_id'], unique=False)
    op.create_table('webhook_deliveries',
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=False),
    sa.Column('replay_of_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'],
                            name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['webhook_events.id'],
                            name=op.f('fk_webhook_deliveries_event_id_webhook_events'), ondelete='CASCADE'),
    *_base('webhook_deliveries'))
    op.create_index(op.f('ix_webhook_deliveries_agency_id'), 'webhook_deliveries', ['agency_id'], unique=False)
    op.create_index(op.f('ix_webhook_deliveries_endpoint_id'), 'webhook_deliveries', ['endpoint_id'], unique=False)
    op.create_index(op.f('ix_webhook_deliveries_event_id'), 'webhook_deliveries', ['event_id'], unique=False)
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_table('webhook_attempts',
    sa.Column('delivery_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=False),
    sa.Column('response_excerpt', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'],
                            name=op.f('fk_webhook_attempts_delivery_id_webhook_deliveries'), ondelete='CASCADE'),
    *_base('webhook_attempts'))
    op.create_index(op.f('ix_webhook_attempts_agency_id'), 'webhook_attempts', ['agency_id'], unique=False)
    op.create_index(op.f('ix_webhook_attempts_delivery_id'), 'webhook_attempts', ['delivery_id'], unique=False)
    for table in TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING (agency_id = {TENANT}) WITH CHECK (agency_id = {TENANT})"
        )
    op.execute("CREATE POLICY webhook_sweep ON webhook_deliveries FOR SELECT TO CURRENT_USER USING (true)")
    op.execute(
        """
        CREATE FUNCTION chorus_due_webhook_deliveries(at timestamptz, max_rows integer)
        RETURNS TABLE (agency_id uuid, delivery_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
            SELECT d.agency_id, d.id
            FROM webhook_deliveries d
            WHERE d.status = 'pending' AND d.next_attempt_at <= at
            ORDER BY d.next_attempt_at
            LIMIT max_rows
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION chorus_due_webhook_deliveries(timestamptz, integer) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION chorus_due_webhook_deliveries(timestamptz, integer) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS chorus_due_webhook_deliveries(timestamptz, integer)")
    op.execute("DROP POLICY IF EXISTS webhook_sweep ON webhook_deliveries")
    for table in TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.drop_table('webhook_attempts')
    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_events')
    op.drop_table('webhook_endpoints')
