"""A brand's publishing pause: who paused it, when, why and from where (manual or crisis),
and when it last resumed (a held post is late from then). The due-publishing function now
leaves out variants of paused brands, so a paused brand's agency is not swept for nothing;
like 0010, a read-only policy for the migrating (owning) role lets it see every brand.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_FUNCTION = """
CREATE OR REPLACE FUNCTION chorus_agencies_with_due_publishing()
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT v.agency_id
    FROM post_variants v JOIN posts p ON p.id = v.post_id
    WHERE v.status = 'scheduled' AND p.scheduled_at <= now()
      AND (v.not_before IS NULL OR v.not_before <= now())
      {paused}
    UNION
    SELECT a.agency_id FROM publish_attempts a WHERE a.finished_at IS NULL
$$
"""
_NOT_PAUSED = ("AND NOT EXISTS (SELECT 1 FROM brands b WHERE b.id = p.brand_id"
               " AND b.publishing_paused_at IS NOT NULL)")


def upgrade() -> None:
    op.add_column("brands", sa.Column("publishing_paused_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("brands", sa.Column("publishing_pause_reason", sa.Text(), nullable=True))
    op.add_column("brands", sa.Column("publishing_paused_by_id", sa.Uuid(), nullable=True))
    op.add_column("brands", sa.Column("publishing_pause_source", sa.String(length=20), nullable=True))
    op.add_column("brands", sa.Column("publishing_resumed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(op.f("fk_brands_publishing_paused_by_id_users"), "brands", "users",
                          ["publishing_paused_by_id"], ["id"], ondelete="SET NULL")
    op.execute("CREATE POLICY publishing_sweep ON brands FOR SELECT TO CURRENT_USER USING (true)")
    op.execute(_FUNCTION.format(paused=_NOT_PAUSED))


def downgrade() -> None:
    op.execute(_FUNCTION.format(paused=""))
    op.execute("DROP POLICY IF EXISTS publishing_sweep ON brands")
    op.drop_constraint(op.f("fk_brands_publishing_paused_by_id_users"), "brands", type_="foreignkey")
    for column in ("publishing_resumed_at", "publishing_pause_source", "publishing_paused_by_id",
                   "publishing_pause_reason", "publishing_paused_at"):
        op.drop_column("brands", column)
