"""Enter a request with the access token's claims: set the tenant and check them.

An access token carries the member's role, brand limits and the membership `version` it
was issued for. `chorus_enter` sets `app.agency_id`/`app.user_id` for the transaction and
raises SQLSTATE 28000 unless that exact membership version still exists, so a removed
member or a changed role stops working at the next request. It returns nothing, so it can
travel in the same simple-protocol message as BEGIN: one round trip opens the request.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION chorus_enter(p_agency uuid, p_user uuid, p_membership_version integer)
        RETURNS void
        LANGUAGE plpgsql VOLATILE SECURITY INVOKER
        SET search_path = public, pg_temp
        AS $$
        BEGIN
            PERFORM set_config('app.agency_id', p_agency::text, true);
            PERFORM set_config('app.user_id', p_user::text, true);
            IF NOT EXISTS (
                SELECT 1 FROM memberships m
                WHERE m.agency_id = p_agency AND m.user_id = p_user AND m.version = p_membership_version
            ) THEN
                RAISE EXCEPTION 'access token is stale' USING ERRCODE = '28000';
            END IF;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION chorus_enter(uuid, uuid, integer) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION chorus_enter(uuid, uuid, integer) TO chorus_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS chorus_enter(uuid, uuid, integer)")
