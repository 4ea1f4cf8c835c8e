"""Approval workflows, the requests that walk a post revision through them, every decision,
comments on posts, and client share links with the reviewers who used them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.core.db import Base, TenantMixin


class ApprovalWorkflow(TenantMixin, Base):
    """A brand's ordered approval steps (none: posts are approved when scheduled). Each step:
    {name, kind: internal|client, roles, member_ids, rule: any|all} (domain/approvals/schemas.py)."""

    __tablename__ = "approval_workflows"

    brand_id: Mapped[UUID] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), unique=True)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # Pending requests older than this get a reminder; older than `expire_after_hours` expire.
    remind_after_hours: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expire_after_hours: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class ApprovalRequest(TenantMixin, Base):
    """One post revision going through the workflow. It binds to the revision and content
    hash it was submitted with: an edit supersedes it."""

    __tablename__ = "approval_requests"

    brand_id: Mapped[UUID] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    post_id: Mapped[UUID] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    # The workflow's steps as they were when submitted (a later change does not move it).
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    # Once approved, schedule at the post's time (it was scheduled, or scheduling asked for it).
    then_schedule: Mapped[bool] = mapped_column(Boolean, default=False)
    submitted_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    submitted_label: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # At most one live request per post.
        Index("uq_approval_requests_live_post", "post_id", unique=True,
              postgresql_where="status = 'pending'"),
        Index("ix_approval_requests_agency_status", "agency_id", "status", "created_at"),
    )


class ApprovalDecision(TenantMixin, Base):
    """Who decided what, on which revision, from where. Never updated or deleted."""

    __tablename__ = "approval_decisions"

    request_id: Mapped[UUID] = mapped_column(ForeignKey("approval_requests.id", ondelete="CASCADE"), index=True)
    post_id: Mapped[UUID] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(20))  # approve, request_changes, reject
    comment: Mapped[str] = mapped_column(Text, default="")
    revision: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    reviewer_type: Mapped[str] = mapped_column(String(10))  # member, client
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    share_link_id: Mapped[UUID | None] = mapped_column(ForeignKey("share_links.id", ondelete="SET NULL"),
                                                       nullable=True)
    reviewer_name: Mapped[str] = mapped_column(String(200))
    reviewer_email: Mapped[str] = mapped_column(String(320), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")


class PostComment(TenantMixin, Base):
    """A comment on a post or one variant, threaded, internal or visible to the client."""

    __tablename__ = "post_comments"

    post_id: Mapped[UUID] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[UUID | None] = mapped_column(ForeignKey("post_variants.id", ondelete="CASCADE"),
                                                    nullable=True)
    parent_id: Mapped[UUID | None] = mapped_column(ForeignKey("post_comments.id", ondelete="CASCADE"),
                                                   nullable=True)
    body: Mapped[str] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(10), default="internal")  # internal, client
    author_type: Mapped[str] = mapped_column(String(10))  # member, client
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    share_link_id: Mapped[UUID | None] = mapped_column(ForeignKey("share_links.id", ondelete="SET NULL"),
                                                       nullable=True)
    author_name: Mapped[str] = mapped_column(String(200))
    author_email: Mapped[str] = mapped_column(String(320), default="")
    mentions: Mapped[list[UUID]] = mapped_column(ARRAY(Uuid), default=list)
    revision: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ShareLink(TenantMixin, Base):
    """A capability URL for a client: chosen posts, or a brand's date range. Only the token's
    hash is kept; expiry and revocation are per link."""

    __tablename__ = "share_links"

    brand_id: Mapped[UUID] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    permission: Mapped[str] = mapped_column(String(10))  # view, comment, approve
    post_ids: Mapped[list[UUID]] = mapped_column(ARRAY(Uuid), default=list)
    range_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    range_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Set when a plan change left it over the plan's limit: kept, but frozen (domain/billing/entitlements.py).
    frozen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


class ShareReviewer(TenantMixin, Base):
    """A person who gave their name and email on a share link before deciding."""

    __tablename__ = "share_reviewers"

    share_link_id: Mapped[UUID] = mapped_column(ForeignKey("share_links.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
