"""Social accounts, OAuth linking attempts and agencies' own network apps, under RLS.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

APP_ROLE = "chorus_app"
TENANT = "NULLIF(current_setting('app.agency_id', true), '')::uuid"
TABLES = ["network_apps", "oauth_links", "social_accounts"]
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_apps',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('network', sa.String(length=20), nullable=False),
    sa.Column('client_id', sa.String(length=300), nullable=False),
    sa.Column('client_secret_enc', sa.Text(), nullable=False),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_network_apps_agency_id_agencies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_apps')),
    sa.UniqueConstraint('agency_id', 'network', name=op.f('uq_network_apps_agency_id'))
    )
    op.create_index(op.f('ix_network_apps_agency_id'), 'network_apps', ['agency_id'], unique=False)
    op.create_table('oauth_links',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('network', sa.String(length=20), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('code_verifier_enc', sa.Text(), nullable=True),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('candidates', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('grant_enc', sa.Text(), nullable=True),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_oauth_links_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_oauth_links_brand_id_brands'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_links_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_links')),
    sa.UniqueConstraint('state_hash', name=op.f('uq_oauth_links_state_hash'))
    )
    op.create_index(op.f('ix_oauth_links_agency_id'), 'oauth_links', ['agency_id'], unique=False)
    op.create_index(op.f('ix_oauth_links_brand_id'), 'oauth_links', ['brand_id'], unique=False)
    op.create_table('social_accounts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('brand_id', sa.Uuid(), nullable=False),
    sa.Column('network', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('account_kind', sa.String(length=30), nullable=False),
    sa.Column('handle', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=300), nullable=False),
    sa.Column('avatar_url', sa.Text(), nullable=True),
    sa.Column('scopes', sa.ARRAY(sa.String(length=200)), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('access_token_enc', sa.Text(), nullable=True),
    sa.Column('refresh_token_enc', sa.Text(), nullable=True),
    sa.Column('token_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refresh_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_refreshed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('connected_by_id', sa.Uuid(), nullable=True),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_social_accounts_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_social_accounts_brand_id_brands'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['connected_by_id'], ['users.id'], name=op.f('fk_social_accounts_connected_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_social_accounts')),
    sa.UniqueConstraint('agency_id', 'brand_id', 'network', 'external_id', name=op.f('uq_social_accounts_agency_id'))
    )
    op.create_index('ix_social_accounts_agency_brand', 'social_accounts', ['agency_id', 'brand_id', 'network'], unique=False)
    op.create_index(op.f('ix_social_accounts_agency_id'), 'social_accounts', ['agency_id'], unique=False)
    op.create_index(op.f('ix_social_accounts_brand_id'), 'social_accounts', ['brand_id'], unique=False)

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
    op.drop_index(op.f('ix_social_accounts_brand_id'), table_name='social_accounts')
    op.drop_index(op.f('ix_social_accounts_agency_id'), table_name='social_accounts')
    op.drop_index('ix_social_accounts_agency_brand', table_name='social_accounts')
    op.drop_table('social_accounts')
    op.drop_index(op.f('ix_oauth_links_brand_id'), table_name='oauth_links')
    op.drop_index(op.f('ix_oauth_links_agency_id'), table_name='oauth_links')
    op.drop_table('oauth_links')
    op.drop_index(op.f('ix_network_apps_agency_id'), table_name='network_apps')
    op.drop_table('network_apps')
