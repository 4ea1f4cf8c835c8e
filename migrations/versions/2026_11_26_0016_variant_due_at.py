"""Each variant's own due instant, `post_variants.due_at`: when it may go out, the later of its
post's `scheduled_at` and its own `not_before` (a rate-limit reset, a quota window, a retry's
back-off). NULL while the post has no time. The publishing sweep claims through the partial
index `ix_post_variants_due` (agency_id, due_at) WHERE status = 'scheduled', which replaces
`ix_post_variants_scheduled` (agency_id, not_before).

`due_at` is maintained in ONE place, by the database: a BEFORE INSERT/UPDATE trigger on
post_variants computes it from the row's `not_before` and its post's `scheduled_at` (so every
writer, the ORM or plain SQL, keeps it right), and an AFTER UPDATE OF scheduled_at trigger on
posts recomputes the post's variants. The variant trigger's function reads the post as the
owner (SECURITY DEFINER, the read-only `publishing_sweep` policy of 0010) so the value never
depends on the caller's tenant context; it reads only the row's own post. The posts trigger
runs as the caller (its update of the post's variants is the caller's, under RLS).

`chorus_agencies_with_due_publishing()` (SECURITY DEFINER, ids only) uses the new index too.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_DUE_FUNCTION = """
CREATE OR REPLACE FUNCTION chorus_agencies_with_due_publishing()
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT v.agency_id
    FROM post_variants v JOIN posts p ON p.id = v.post_id
    WHERE {due}
      AND NOT EXISTS (SELECT 1 FROM brands b WHERE b.id = p.brand_id AND b.publishing_paused_at IS NOT NULL)
    UNION
    SELECT a.agency_id FROM publish_attempts a WHERE a.finished_at IS NULL
$$
"""
_DUE_NEW = "v.status = 'scheduled' AND v.due_at <= now()"
_DUE_OLD = ("v.status = 'scheduled' AND p.scheduled_at <= now()\n"
            "      AND (v.not_before IS NULL OR v.not_before <= now())")


def upgrade() -> None:
    op.add_column("post_variants", sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        """
        CREATE FUNCTION chorus_post_variant_due_at() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
        BEGIN
            NEW.due_at := (SELECT greatest(p.scheduled_at, coalesce(NEW.not_before, p.scheduled_at))
                           FROM posts p WHERE p.id = NEW.post_id);
            RETURN NEW;
        END
        $$
        """)
    # Listing due_at among the columns: the posts trigger's "SET due_at = NULL" recomputes it.
    op.execute("CREATE TRIGGER post_variants_due_at BEFORE INSERT OR UPDATE OF not_before, post_id, due_at "
               "ON post_variants FOR EACH ROW EXECUTE FUNCTION chorus_post_variant_due_at()")
    op.execute(
        """
        CREATE FUNCTION chorus_post_due_at() RETURNS trigger
        LANGUAGE plpgsql
        SET search_path = public, pg_temp
        AS $$
        BEGIN
            UPDATE post_variants SET due_at = NULL WHERE post_id = NEW.id;
            RETURN NULL;
        END
        $$
        """)
    op.execute("CREATE TRIGGER posts_due_at AFTER UPDATE OF scheduled_at ON posts FOR EACH ROW "
               "WHEN (OLD.scheduled_at IS DISTINCT FROM NEW.scheduled_at) EXECUTE FUNCTION chorus_post_due_at()")
    # Backfill from the posts, as the owner: FORCE row-level security (no UPDATE policy for the
    # owner) is lifted for the statement, inside the migration's transaction.
    op.execute("ALTER TABLE post_variants NO FORCE ROW LEVEL SECURITY")
    op.execute("UPDATE post_variants v SET due_at = greatest(p.scheduled_at, coalesce(v.not_before, p.scheduled_at)) "
               "FROM posts p WHERE p.id = v.post_id")
    op.execute("ALTER TABLE post_variants FORCE ROW LEVEL SECURITY")
    op.create_index("ix_post_variants_due", "post_variants", ["agency_id", "due_at"], unique=False,
                    postgresql_where="status = 'scheduled'")
    op.drop_index("ix_post_variants_scheduled", table_name="post_variants", postgresql_where="status = 'scheduled'")
    op.execute(_DUE_FUNCTION.format(due=_DUE_NEW))


def downgrade() -> None:
    op.execute(_DUE_FUNCTION.format(due=_DUE_OLD))
    op.create_index("ix_post_variants_scheduled", "post_variants", ["agency_id", "not_before"], unique=False,
                    postgresql_where="status = 'scheduled'")
    op.drop_index("ix_post_variants_due", table_name="post_variants", postgresql_where="status = 'scheduled'")
    op.execute("DROP TRIGGER IF EXISTS posts_due_at ON posts")
    op.execute("DROP FUNCTION IF EXISTS chorus_post_due_at()")
    op.execute("DROP TRIGGER IF EXISTS post_variants_due_at ON post_variants")
    op.execute("DROP FUNCTION IF EXISTS chorus_post_variant_due_at()")
    op.drop_column("post_variants", "due_at")
