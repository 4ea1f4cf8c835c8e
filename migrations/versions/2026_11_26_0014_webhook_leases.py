"""Webhook delivery leases and endpoint auto-disable.

A delivery is claimed (row locked FOR UPDATE SKIP LOCKED, attempt number stamped and
`leased_until` set, committed) before its HTTP request, and its result is recorded in a
second short transaction: no row lock is held while the receiver answers. While leased,
`next_attempt_at` equals `leased_until`, so the retry sweep (`chorus_due_webhook_deliveries`)
picks the delivery up again once the lease runs out (the worker died mid-request).

Endpoints count consecutive failed attempts (`consecutive_failures`, `failing_since`); one
that keeps failing is disabled (`disabled_at`, `disabled_reason`, active false).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_deliveries", sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("webhook_endpoints", sa.Column("consecutive_failures", sa.Integer(), nullable=False,
                                                 server_default="0"))
    op.add_column("webhook_endpoints", sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("webhook_endpoints", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("webhook_endpoints", sa.Column("disabled_reason", sa.String(500), nullable=False,
                                                 server_default=""))
    op.alter_column("webhook_endpoints", "consecutive_failures", server_default=None)
    op.alter_column("webhook_endpoints", "disabled_reason", server_default=None)


def downgrade() -> None:
    op.drop_column("webhook_endpoints", "disabled_reason")
    op.drop_column("webhook_endpoints", "disabled_at")
    op.drop_column("webhook_endpoints", "failing_since")
    op.drop_column("webhook_endpoints", "consecutive_failures")
    op.drop_column("webhook_deliveries", "leased_until")
