"""Publishing: the attempts log, a variant's not-before time, the partial index the sweep
claims through, and `chorus_agencies_with_due_publishing()` (SECURITY DEFINER, ids only):
agencies with a scheduled variant whose post is due, or an unfinished attempt (to poll an
asynchronous publish or reconcile a stuck one). Like 0009, a read-only policy for the
migrating (owning) role lets the function see every agency's rows; `chorus_app` is not it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

APP_ROLE = "chorus_app"
TENANT = "NULLIF(current_setting('app.agency_id', true), '')::uuid"
SWEPT = ("posts", "post_variants", "publish_attempts")
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("post_variants", sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_post_variants_scheduled", "post_variants", ["agency_id", "not_before"], unique=False,
                    postgresql_where="status = 'scheduled'")
    op.create_table(
        "publish_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("variant_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=30), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_publish_attempts_agency_id_agencies"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["variant_id"], ["post_variants.id"],
                                name=op.f("fk_publish_attempts_variant_id_post_variants"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publish_attempts")),
        sa.UniqueConstraint("variant_id", "number", name=op.f("uq_publish_attempts_variant_id")),
    )
    op.create_index(op.f("ix_publish_attempts_agency_id"), "publish_attempts", ["agency_id"], unique=False)
    op.create_index(op.f("ix_publish_attempts_variant_id"), "publish_attempts", ["variant_id"], unique=False)
    op.create_index("ix_publish_attempts_unfinished", "publish_attempts", ["agency_id", "started_at"], unique=False,
                    postgresql_where="finished_at IS NULL")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON publish_attempts TO {APP_ROLE}")
    op.execute("ALTER TABLE publish_attempts ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE publish_attempts FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON publish_attempts USING (agency_id = {TENANT}) "
               f"WITH CHECK (agency_id = {TENANT})")
    for table in SWEPT:
        op.execute(f"CREATE POLICY publishing_sweep ON {table} FOR SELECT TO CURRENT_USER USING (true)")
    op.execute(
        """
        CREATE FUNCTION chorus_agencies_with_due_publishing()
        RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
            SELECT v.agency_id
            FROM post_variants v JOIN posts p ON p.id = v.post_id
            WHERE v.status = 'scheduled' AND p.scheduled_at <= now()
              AND (v.not_before IS NULL OR v.not_before <= now())
            UNION
            SELECT a.agency_id FROM publish_attempts a WHERE a.finished_at IS NULL
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION chorus_agencies_with_due_publishing() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION chorus_agencies_with_due_publishing() TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS chorus_agencies_with_due_publishing()")
    for table in SWEPT:
        op.execute(f"DROP POLICY IF EXISTS publishing_sweep ON {table}")
    op.drop_table("publish_attempts")
    op.drop_index("ix_post_variants_scheduled", table_name="post_variants", postgresql_where="status = 'scheduled'")
    op.drop_column("post_variants", "not_before")
