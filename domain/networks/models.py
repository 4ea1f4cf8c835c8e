from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ARRAY, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.core.db import Base, TenantMixin


class SocialAccount(TenantMixin, Base):
    """A brand's account (profile, page, board, organization...) on one network.

    Tokens are vault ciphertexts (`<key id>:<fernet>`); they never leave the domain layer.
    """

    __tablename__ = "social_accounts"

    brand_id: Mapped[UUID] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    network: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    account_kind: Mapped[str] = mapped_column(String(30), default="profile")
    handle: Mapped[str] = mapped_column(String(200), default="")
    display_name: Mapped[str] = mapped_column(String(300), default="")
    avatar_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(200)), default=list)
    status: Mapped[str] = mapped_column(String(20), default="connected")
    # Set when a plan change left it over the plan's limit: kept, but frozen (domain/billing/entitlements.py).
    frozen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    access_token_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    connected_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    connected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # A rate limit's reset: none of the account's variants is sent before it (domain/publishing/gate.py).
    publish_not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        UniqueConstraint("agency_id", "brand_id", "network", "external_id"),
        Index("ix_social_accounts_agency_brand", "agency_id", "brand_id", "network"),
    )


class OAuthLink(TenantMixin, Base):
    """One linking attempt: the single-use `state` (stored as a hash), the PKCE verifier and,
    for logins that reach several pages or boards, what the user may pick from."""

    __tablename__ = "oauth_links"

    brand_id: Mapped[UUID] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    network: Mapped[str] = mapped_column(String(20))
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_verifier_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    # The agency's own frontend, where the callback sends the person back (303) when set.
    return_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="started")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # After the callback, for networks with a choice: candidates (no tokens) and the
    # login's token (vault ciphertext) to act for the chosen ones.
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    grant_enc: Mapped[str | None] = mapped_column(Text, nullable=True)


class NetworkApp(TenantMixin, Base):
    """An agency's own app on a network ("bring your own app"); the secret is a vault ciphertext."""

    __tablename__ = "network_apps"

    network: Mapped[str] = mapped_column(String(20))
    client_id: Mapped[str] = mapped_column(String(300))
    client_secret_enc: Mapped[str] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("agency_id", "network"),)
