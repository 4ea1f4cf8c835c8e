"""Linking attempts may carry the address of the agency's own frontend to return to.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('oauth_links', sa.Column('return_url', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('oauth_links', 'return_url')
