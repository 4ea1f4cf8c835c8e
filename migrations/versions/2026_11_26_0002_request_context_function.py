"""One round trip to start a request: set the tenant and read the caller's access.

`chorus_begin_request` runs as the caller (SECURITY INVOKER): it sets `app.agency_id` and
`app.user_id` for the transaction, then reads the membership or API key under the very
RLS policies it just armed. It replaces two statements on every authenticated request.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION chorus_begin_request(p_agency uuid, p_user uuid, p_key_hash text)
        RETURNS TABLE (
            credential_id uuid, role text, brand_ids uuid[], label text, scopes text[],
            expires_at timestamptz, revoked_at timestamptz, last_used_at timestamptz
        )
        LANGUAGE plpgsql VOLATILE SECURITY INVOKER
        SET search_path = public, pg_temp
        AS $$
        BEGIN
            PERFORM set_config('app.agency_id', coalesce(p_agency::text, ''), true);
            PERFORM set_config('app.user_id', coalesce(p_user::text, ''), true);
            IF p_agency IS NULL THEN
                RETURN;
            END IF;
            IF p_user IS NOT NULL THEN
                RETURN QUERY
                    SELECT m.id, m.role::text, m.brand_ids, u.email::text, NULL::text[],
                           NULL::timestamptz, NULL::timestamptz, NULL::timestamptz
                    FROM memberships m JOIN users u ON u.id = m.user_id
                    WHERE m.agency_id = p_agency AND m.user_id = p_user;
            ELSIF p_key_hash IS NOT NULL THEN
                RETURN QUERY
                    SELECT k.id, NULL::text, NULL::uuid[], k.name::text, k.scopes::text[],
                           k.expires_at, k.revoked_at, k.last_used_at
                    FROM api_keys k
                    WHERE k.agency_id = p_agency AND k.token_hash = p_key_hash;
            END IF;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION chorus_begin_request(uuid, uuid, text) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION chorus_begin_request(uuid, uuid, text) TO chorus_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS chorus_begin_request(uuid, uuid, text)")
