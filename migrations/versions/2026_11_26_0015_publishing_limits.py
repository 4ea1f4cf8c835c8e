"""Publishing limits per account: `social_accounts.publish_not_before` (a rate limit's reset:
none of the account's variants is claimed before it) and `post_variants.wait_reason` (why a
scheduled variant's `not_before` holds it: rate_limited or quota), shown on the variant.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("social_accounts", sa.Column("publish_not_before", sa.DateTime(timezone=True), nullable=True))
    op.add_column("post_variants", sa.Column("wait_reason", sa.String(length=30), nullable=True))


def downgrade() -> None:
    op.drop_column("post_variants", "wait_reason")
    op.drop_column("social_accounts", "publish_not_before")
