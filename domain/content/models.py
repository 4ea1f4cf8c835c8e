"""Posts, their per-network variants, the media on each variant, revisions, and briefs."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.core.db import Base, TenantMixin


class Post(TenantMixin, Base):
    """One idea for a brand, published as one variant per target social account.

    `scheduled_at` is the instant (UTC); `time_zone` is the brand's IANA zone beside it, so
    the wall-clock time the team chose survives a later change of the brand's zone.
    `status` is derived from the variants (domain/content/rules.py) and stored for queries."""

    __tablename__ = "posts"

    brand_id: Mapped[UUID] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[UUID | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"), nullable=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    labels: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    revision: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    created_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_posts_agency_brand_scheduled", "agency_id", "brand_id", "scheduled_at"),
        Index("ix_posts_labels", "labels", postgresql_using="gin"),
    )


class PostVariant(TenantMixin, Base):
    """What goes to one social account: its own copy, media and network options."""

    __tablename__ = "post_variants"

    post_id: Mapped[UUID] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    social_account_id: Mapped[UUID] = mapped_column(ForeignKey("social_accounts.id", ondelete="CASCADE"), index=True)
    network: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    # The last validation, kept so lists and calendars can show what breaks without recomputing.
    issues: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # Filled by the publishing workers.
    external_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    external_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    # Publishing waits until then (a provider's rate-limit reset, a retry's back-off); migration 0010.
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Why `not_before` holds a scheduled variant: rate_limited (its account's reset) or quota
    # (the network's per-account cap is used up until then). None otherwise.
    wait_reason: Mapped[str | None] = mapped_column(String(30), nullable=True)
    # When it may go out: the later of the post's `scheduled_at` and `not_before` (NULL while the
    # post has no time). Kept by the database's triggers (migration 0016) on every write of
    # either, never by the code: do not set it.
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        UniqueConstraint("post_id", "social_account_id"),
        # What the publishing sweep claims from: scheduled variants by due time (migration 0016).
        Index("ix_post_variants_due", "agency_id", "due_at", postgresql_where="status = 'scheduled'"),
    )


class PostVariantMedia(TenantMixin, Base):
    """A media asset on a variant, in order."""

    __tablename__ = "post_variant_media"

    variant_id: Mapped[UUID] = mapped_column(ForeignKey("post_variants.id", ondelete="CASCADE"), index=True)
    media_id: Mapped[UUID] = mapped_column(ForeignKey("media_assets.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    alt_text: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("variant_id", "media_id"),)


class PostRevision(TenantMixin, Base):
    """Every edit of a post: the whole content as it was, and its hash. Approvals bind to one."""

    __tablename__ = "post_revisions"

    post_id: Mapped[UUID] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)
    author_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    author_label: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (UniqueConstraint("post_id", "number"),)


class Brief(TenantMixin, Base):
    """What the designer or video maker should make, for a post or one of its variants."""

    __tablename__ = "briefs"

    brand_id: Mapped[UUID] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    post_id: Mapped[UUID | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), nullable=True, index=True)
    variant_id: Mapped[UUID | None] = mapped_column(ForeignKey("post_variants.id", ondelete="CASCADE"), nullable=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    specs: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    guidelines: Mapped[str] = mapped_column(Text, default="")
    references: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    assignee_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    delivered_media_ids: Mapped[list[UUID]] = mapped_column(ARRAY(Uuid), default=list)
    created_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_briefs_agency_due", "agency_id", "due_at"),)
