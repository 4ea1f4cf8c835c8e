"""`chorus_begin_request` also returns the API key's `frozen_at` (billing: a key frozen by a
plan without API access answers 402 on every request). A function's RETURNS TABLE cannot
be changed in place: drop and create again, in both directions.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SIGNATURE = "chorus_begin_request(uuid, uuid, text)"


def _create(with_frozen: bool) -> None:
    frozen_column = ", frozen_at timestamptz" if with_frozen else ""
    member_frozen = ", NULL::timestamptz" if with_frozen else ""
    key_frozen = ", k.frozen_at" if with_frozen else ""
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
    op.execute(
        f"""
        CREATE FUNCTION chorus_begin_request(p_agency uuid, p_user uuid, p_key_hash text)
        RETURNS TABLE (
            credential_id uuid, role text, brand_ids uuid[], label text, scopes text[],
            expires_at timestamptz, revoked_at timestamptz, last_used_at timestamptz{frozen_column}
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
                           NULL::timestamptz, NULL::timestamptz, NULL::timestamptz{member_frozen}
                    FROM memberships m JOIN users u ON u.id = m.user_id
                    WHERE m.agency_id = p_agency AND m.user_id = p_user;
            ELSIF p_key_hash IS NOT NULL THEN
                RETURN QUERY
                    SELECT k.id, NULL::text, NULL::uuid[], k.name::text, k.scopes::text[],
                           k.expires_at, k.revoked_at, k.last_used_at{key_frozen}
                    FROM api_keys k
                    WHERE k.agency_id = p_agency AND k.token_hash = p_key_hash;
            END IF;
        END
        $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO chorus_app")


def upgrade() -> None:
    _create(with_frozen=True)


def downgrade() -> None:
    _create(with_frozen=False)
