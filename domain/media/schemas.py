from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

from domain.core.schemas import Input

# Stored lower-cased and trimmed; a comma separates tags in an upload form's `tags` field.
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=50, pattern=r"^[^,]+$", examples=["summer-launch"])]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=30)]
AltText = Annotated[str, msgspec.Meta(max_length=5_000)]
Filename = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
MAX_TAGS = 30
MAX_ALT_TEXT = 5_000


class MediaKind(StrEnum):
    IMAGE = "image"
    GIF = "gif"
    VIDEO = "video"


class MediaIssue(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One network rule the file breaks: `rule` is stable, `message` is for people."""

    rule: str
    message: str
    severity: str
    count: int | None = None
    limit: int | None = None


class MediaFit(msgspec.Struct, kw_only=True):
    """Whether the file, alone in a post, is what the network accepts (no blocking issue)."""

    fits: bool
    issues: list[MediaIssue]


class MediaOut(msgspec.Struct, kw_only=True):
    id: UUID
    brand_id: UUID
    kind: MediaKind
    content_type: str
    size_bytes: int
    width: int | None
    height: int | None
    duration_ms: int | None
    sha256: str
    filename: str
    alt_text: str
    tags: list[str]
    uploaded_by_id: UUID | None
    version: int
    created_at: datetime
    updated_at: datetime
    # Network name -> how the file fares there on its own (feed placement).
    networks: dict[str, MediaFit]


class MediaPage(msgspec.Struct, kw_only=True):
    items: list[MediaOut]
    next_cursor: str | None


class MediaUpdate(Input):
    tags: Tags | msgspec.UnsetType = msgspec.UNSET
    alt_text: AltText | msgspec.UnsetType = msgspec.UNSET
    filename: Filename | msgspec.UnsetType = msgspec.UNSET


class MediaLinkCreate(Input):
    # Seconds the link lives; capped by CHORUS_MEDIA_URL_TTL (and that is the default).
    expires_in: Annotated[int, msgspec.Meta(ge=60, le=7 * 24 * 3600)] | None = None


class MediaLinkOut(msgspec.Struct, kw_only=True):
    url: str
    expires_at: datetime

