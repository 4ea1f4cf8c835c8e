"""Which agencies have approval reminders or expiries due: for the periodic sweep.

The worker connects as `chorus_app`, which row-level security confines to one agency at a
time, so it cannot list the agencies that need a sweep. `chorus_agencies_with_pending_approvals()`
runs as its owner (SECURITY DEFINER) and returns ids only: agencies with a pending request
that is past its `expires_at`, or not yet reminded for its step while its brand's workflow
reminds and the request is at least that old (a necessary condition; the per-agency job
decides from the step's start). Pending rows are read through the partial unique index on
`approval_requests (post_id) WHERE status = 'pending'`.

The tables FORCE row-level security, which binds their owner too unless it is a superuser
or BYPASSRLS; a read-only policy for the migrating (owning) role on the two tables the
function reads lets it see every agency's rows. `chorus_app` is not that role.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("approval_requests", "approval_workflows")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"CREATE POLICY approval_sweep ON {table} FOR SELECT TO CURRENT_USER USING (true)")
    op.execute(
        """
        CREATE FUNCTION chorus_agencies_with_pending_approvals()
        RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
            SELECT DISTINCT r.agency_id
            FROM approval_requests r
            LEFT JOIN approval_workflows w ON w.brand_id = r.brand_id
            WHERE r.status = 'pending'
              AND (r.expires_at <= now()
                   OR (r.reminded_at IS NULL AND w.remind_after_hours IS NOT NULL
                       AND r.created_at <= now() - make_interval(hours => w.remind_after_hours)))
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION chorus_agencies_with_pending_approvals() FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION chorus_agencies_with_pending_approvals() TO chorus_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS chorus_agencies_with_pending_approvals()")
    for table in TABLES:
        op.execute(f"DROP POLICY IF EXISTS approval_sweep ON {table}")
