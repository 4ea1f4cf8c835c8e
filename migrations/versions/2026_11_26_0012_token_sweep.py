"""Which social accounts need their tokens looked after: for the token refresh sweep.

The scheduler connects as `chorus_app`, which row-level security confines to one agency at a
time. `chorus_social_accounts_due_for_tokens(refresh_within, notice_within, access_refresh_networks)`
runs as its owner (SECURITY DEFINER) and returns ids only (agency, account) of connected
accounts that either

- can be refreshed (a stored refresh token, or a network in `access_refresh_networks`, which
  refresh with the access token itself) and whose access token expires within a quarter of
  its current lifetime, at most `refresh_within` and at least 5 minutes; or
- will need their user within `notice_within`: the access token's expiry when it cannot be
  refreshed (Facebook user tokens after ~60 days), the refresh window's end otherwise
  (LinkedIn's `refresh_expires_at`), and whose team has not been told since it was last
  connected.

`workers/tokens.py` applies the same rule in Python to the locked row before acting. The
table FORCEs row-level security, which binds its owner too; a read-only policy for the
migrating (owning) role lets the function see every agency's rows. `chorus_app` is not
that role.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SIGNATURE = "chorus_social_accounts_due_for_tokens(interval, interval, text[])"


def upgrade() -> None:
    op.execute("CREATE POLICY token_sweep ON social_accounts FOR SELECT TO CURRENT_USER USING (true)")
    op.execute(
        """
        CREATE FUNCTION chorus_social_accounts_due_for_tokens(
            refresh_within interval, notice_within interval, access_refresh_networks text[])
        RETURNS TABLE (agency_id uuid, account_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
            SELECT a.agency_id, a.id
            FROM social_accounts a
            CROSS JOIN LATERAL (
                SELECT (a.refresh_token_enc IS NOT NULL OR a.network = ANY(access_refresh_networks)) AS refreshable
            ) r
            WHERE a.status = 'connected'
              AND (
                (r.refreshable AND a.token_expires_at IS NOT NULL
                 AND a.token_expires_at <= now() + LEAST(refresh_within, GREATEST(interval '5 minutes',
                     (a.token_expires_at - COALESCE(a.last_refreshed_at, a.connected_at,
                                                    a.token_expires_at - refresh_within)) / 4)))
                OR ((CASE WHEN r.refreshable THEN a.refresh_expires_at ELSE a.token_expires_at END)
                    <= now() + notice_within
                    -- not when the team was already told since the account was last connected
                    AND NOT COALESCE((a.details -> 'reconnect' ->> 'flagged_at')::timestamptz
                                     >= COALESCE(a.connected_at, '-infinity'::timestamptz), false))
              )
        $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO chorus_app")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
    op.execute("DROP POLICY IF EXISTS token_sweep ON social_accounts")
