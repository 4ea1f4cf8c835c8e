"""Content studio: posts with per-network variants, their media and revisions, briefs, the
media library, posting slots, calendar feeds and bulk imports, all under RLS.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

APP_ROLE = "chorus_app"
TENANT = "NULLIF(current_setting('app.agency_id', true), '')::uuid"
TABLES = ["calendar_feeds", "import_jobs", "media_assets", "posting_slots", "posts", "post_revisions",
          "post_variants", "briefs", "post_variant_media"]
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_feeds',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_calendar_feeds_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_calendar_feeds_brand_id_brands'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_calendar_feeds_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_feeds')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_calendar_feeds_token_hash'))
    )
    op.create_index(op.f('ix_calendar_feeds_agency_id'), 'calendar_feeds', ['agency_id'], unique=False)
    op.create_index(op.f('ix_calendar_feeds_brand_id'), 'calendar_feeds', ['brand_id'], unique=False)
    op.create_table('import_jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('format', sa.String(length=10), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('atomic', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=False),
    sa.Column('processed_rows', sa.Integer(), nullable=False),
    sa.Column('created_posts', sa.Integer(), nullable=False),
    sa.Column('problems', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('summary', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=True),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('api_key_id', sa.Uuid(), nullable=True),
    sa.Column('actor_label', sa.String(length=320), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_import_jobs_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_import_jobs_brand_id_brands'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_import_jobs_api_key_id_api_keys'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_import_jobs_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs'))
    )
    op.create_index('ix_import_jobs_agency_created', 'import_jobs', ['agency_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_import_jobs_agency_id'), 'import_jobs', ['agency_id'], unique=False)
    op.create_index(op.f('ix_import_jobs_brand_id'), 'import_jobs', ['brand_id'], unique=False)
    op.create_table('media_assets',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_key', sa.Text(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('alt_text', sa.Text(), nullable=False),
    sa.Column('tags', sa.ARRAY(sa.String(length=50)), nullable=False),
    sa.Column('uploaded_by_id', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_media_assets_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_media_assets_brand_id_brands'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_media_assets_uploaded_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_assets'))
    )
    op.create_index('ix_media_assets_agency_brand_created', 'media_assets', ['agency_id', 'brand_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_media_assets_agency_id'), 'media_assets', ['agency_id'], unique=False)
    op.create_index(op.f('ix_media_assets_brand_id'), 'media_assets', ['brand_id'], unique=False)
    op.create_index('ix_media_assets_tags', 'media_assets', ['tags'], unique=False, postgresql_using='gin')
    op.create_table('posting_slots',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('network', sa.String(length=20), nullable=False),
    sa.Column('weekday', sa.SmallInteger(), nullable=False),
    sa.Column('local_time', sa.Time(), nullable=False),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_posting_slots_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_posting_slots_brand_id_brands'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posting_slots')),
    sa.UniqueConstraint('brand_id', 'network', 'weekday', 'local_time', name=op.f('uq_posting_slots_brand_id'))
    )
    op.create_index(op.f('ix_posting_slots_agency_id'), 'posting_slots', ['agency_id'], unique=False)
    op.create_index(op.f('ix_posting_slots_brand_id'), 'posting_slots', ['brand_id'], unique=False)
    op.create_table('posts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('campaign_id', sa.Uuid(), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('labels', sa.ARRAY(sa.String(length=50)), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_posts_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_posts_brand_id_brands'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_posts_campaign_id_campaigns'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_posts_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posts'))
    )
    op.create_index('ix_posts_agency_brand_scheduled', 'posts', ['agency_id', 'brand_id', 'scheduled_at'], unique=False)
    op.create_index(op.f('ix_posts_agency_id'), 'posts', ['agency_id'], unique=False)
    op.create_index(op.f('ix_posts_brand_id'), 'posts', ['brand_id'], unique=False)
    op.create_index('ix_posts_labels', 'posts', ['labels'], unique=False, postgresql_using='gin')
    op.create_table('post_revisions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('post_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('snapshot', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=True),
    sa.Column('author_label', sa.String(length=200), nullable=False),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_post_revisions_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_post_revisions_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_post_revisions_post_id_posts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_post_revisions')),
    sa.UniqueConstraint('post_id', 'number', name=op.f('uq_post_revisions_post_id'))
    )
    op.create_index(op.f('ix_post_revisions_agency_id'), 'post_revisions', ['agency_id'], unique=False)
    op.create_index(op.f('ix_post_revisions_post_id'), 'post_revisions', ['post_id'], unique=False)
    op.create_table('post_variants',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('post_id', sa.Uuid(), nullable=False),
    sa.Column('social_account_id', sa.Uuid(), nullable=False),
    sa.Column('network', sa.String(length=20), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('options', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('issues', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=True),
    sa.Column('external_url', sa.Text(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_post_variants_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_post_variants_post_id_posts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['social_account_id'], ['social_accounts.id'], name=op.f('fk_post_variants_social_account_id_social_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_post_variants')),
    sa.UniqueConstraint('post_id', 'social_account_id', name=op.f('uq_post_variants_post_id'))
    )
    op.create_index(op.f('ix_post_variants_agency_id'), 'post_variants', ['agency_id'], unique=False)
    op.create_index(op.f('ix_post_variants_post_id'), 'post_variants', ['post_id'], unique=False)
    op.create_index(op.f('ix_post_variants_social_account_id'), 'post_variants', ['social_account_id'], unique=False)
    op.create_table('briefs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('post_id', sa.Uuid(), nullable=True),
    sa.Column('variant_id', sa.Uuid(), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('specs', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('guidelines', sa.Text(), nullable=False),
    sa.Column('references', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('assignee_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('delivered_media_ids', sa.ARRAY(sa.Uuid()), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_briefs_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_briefs_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_briefs_brand_id_brands'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_briefs_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_briefs_post_id_posts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['variant_id'], ['post_variants.id'], name=op.f('fk_briefs_variant_id_post_variants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_briefs'))
    )
    op.create_index('ix_briefs_agency_due', 'briefs', ['agency_id', 'due_at'], unique=False)
    op.create_index(op.f('ix_briefs_agency_id'), 'briefs', ['agency_id'], unique=False)
    op.create_index(op.f('ix_briefs_brand_id'), 'briefs', ['brand_id'], unique=False)
    op.create_index(op.f('ix_briefs_post_id'), 'briefs', ['post_id'], unique=False)
    op.create_table('post_variant_media',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('variant_id', sa.Uuid(), nullable=False),
    sa.Column('media_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('alt_text', sa.Text(), nullable=False),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_post_variant_media_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['media_id'], ['media_assets.id'], name=op.f('fk_post_variant_media_media_id_media_assets'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['variant_id'], ['post_variants.id'], name=op.f('fk_post_variant_media_variant_id_post_variants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_post_variant_media')),
    sa.UniqueConstraint('variant_id', 'media_id', name=op.f('uq_post_variant_media_variant_id'))
    )
    op.create_index(op.f('ix_post_variant_media_agency_id'), 'post_variant_media', ['agency_id'], unique=False)
    op.create_index(op.f('ix_post_variant_media_media_id'), 'post_variant_media', ['media_id'], unique=False)
    op.create_index(op.f('ix_post_variant_media_variant_id'), 'post_variant_media', ['variant_id'], unique=False)

    for table in TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING (agency_id = {TENANT}) WITH CHECK (agency_id = {TENANT})"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.drop_index(op.f('ix_post_variant_media_variant_id'), table_name='post_variant_media')
    op.drop_index(op.f('ix_post_variant_media_media_id'), table_name='post_variant_media')
    op.drop_index(op.f('ix_post_variant_media_agency_id'), table_name='post_variant_media')
    op.drop_table('post_variant_media')
    op.drop_index(op.f('ix_briefs_post_id'), table_name='briefs')
    op.drop_index(op.f('ix_briefs_brand_id'), table_name='briefs')
    op.drop_index(op.f('ix_briefs_agency_id'), table_name='briefs')
    op.drop_index('ix_briefs_agency_due', table_name='briefs')
    op.drop_table('briefs')
    op.drop_index(op.f('ix_post_variants_social_account_id'), table_name='post_variants')
    op.drop_index(op.f('ix_post_variants_post_id'), table_name='post_variants')
    op.drop_index(op.f('ix_post_variants_agency_id'), table_name='post_variants')
    op.drop_table('post_variants')
    op.drop_index(op.f('ix_post_revisions_post_id'), table_name='post_revisions')
    op.drop_index(op.f('ix_post_revisions_agency_id'), table_name='post_revisions')
    op.drop_table('post_revisions')
    op.drop_index('ix_posts_labels', table_name='posts', postgresql_using='gin')
    op.drop_index(op.f('ix_posts_brand_id'), table_name='posts')
    op.drop_index(op.f('ix_posts_agency_id'), table_name='posts')
    op.drop_index('ix_posts_agency_brand_scheduled', table_name='posts')
    op.drop_table('posts')
    op.drop_index(op.f('ix_posting_slots_brand_id'), table_name='posting_slots')
    op.drop_index(op.f('ix_posting_slots_agency_id'), table_name='posting_slots')
    op.drop_table('posting_slots')
    op.drop_index('ix_media_assets_tags', table_name='media_assets', postgresql_using='gin')
    op.drop_index(op.f('ix_media_assets_brand_id'), table_name='media_assets')
    op.drop_index(op.f('ix_media_assets_agency_id'), table_name='media_assets')
    op.drop_index('ix_media_assets_agency_brand_created', table_name='media_assets')
    op.drop_table('media_assets')
    op.drop_index(op.f('ix_import_jobs_brand_id'), table_name='import_jobs')
    op.drop_index(op.f('ix_import_jobs_agency_id'), table_name='import_jobs')
    op.drop_index('ix_import_jobs_agency_created', table_name='import_jobs')
    op.drop_table('import_jobs')
    op.drop_index(op.f('ix_calendar_feeds_brand_id'), table_name='calendar_feeds')
    op.drop_index(op.f('ix_calendar_feeds_agency_id'), table_name='calendar_feeds')
    op.drop_table('calendar_feeds')
