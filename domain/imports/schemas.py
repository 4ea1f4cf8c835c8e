"""Bulk import bodies and answers. The JSON format reuses the post types of the content studio."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from domain.content.schemas import Copy, Labels, MediaList, Options
from domain.core.schemas import ShortText

AccountRef = Annotated[str, msgspec.Meta(min_length=1, max_length=300, examples=["x:panaderiasol"],
                                         description="`network:handle` of one of the brand's accounts, or its id")]


class ImportVariant(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A variant as in createPost; the account by id or by `network:handle`."""

    social_account_id: UUID | None = None
    account: AccountRef | None = None
    text: Copy = ""
    options: Options = {}
    media: MediaList = []


class ImportPost(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One post of a JSON import: createPost's body plus a wall-clock time in the brand's zone,
    the campaign by name, and whether to schedule it once imported."""

    title: ShortText = ""
    labels: Labels = []
    campaign_id: UUID | None = None
    # The campaign by name (or id), as an alternative to campaign_id.
    campaign: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    # The instant, with its offset; or `local_scheduled_at`, read on the brand's wall clock.
    scheduled_at: datetime | None = None
    local_scheduled_at: Annotated[datetime | None, msgspec.Meta(
        description="Wall-clock time in the brand's time zone, without offset: 2026-12-20T09:00")] = None
    # Schedule right after the import; only a post that keeps its networks' rules can be.
    schedule: bool = False
    variants: Annotated[list[ImportVariant], msgspec.Meta(max_length=20)] = []


class ImportRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A JSON import. By default a dry run: every post is checked and nothing is written."""

    dry_run: bool = True
    # All or nothing: any post that cannot be imported stops the whole import.
    atomic: bool = True
    # Each post is checked on its own: one that does not fit this shape is a problem of its
    # row, not a refusal of the whole body.
    posts: Annotated[list[ImportPost], msgspec.Meta(max_length=5_000)] = []


class ImportProblem(msgspec.Struct, kw_only=True):
    # Spreadsheet row (the header is row 1) or, for JSON, the post's position from 1; 1 for
    # problems of the header or the whole file.
    row: int
    # The CSV column (`text`, `opt_privacy`, ...) or, for JSON, the field's path in the post.
    column: str
    rule: str
    message: str
    # error: breaks a rule; warning: worth a look, never blocks.
    severity: str
    # True when this problem keeps the post out of the import. A draft may break its
    # networks' rules (it is imported, not ready); a post to schedule may not.
    blocking: bool


class ImportCounts(msgspec.Struct, kw_only=True):
    posts: int = 0
    importable_posts: int = 0
    blocked_posts: int = 0
    scheduled_posts: int = 0
    problems: int = 0
    blocking_problems: int = 0


class ImportJobOut(msgspec.Struct, kw_only=True):
    id: UUID
    brand_id: UUID
    format: str
    filename: str
    dry_run: bool
    atomic: bool
    # queued, running, succeeded, failed. A dry run succeeds once every row is checked.
    status: str
    total_rows: int
    processed_rows: int
    created_posts: int
    counts: ImportCounts
    # The first problems, in row order; all of them via listImportProblems.
    problems: list[ImportProblem]
    problems_truncated: bool
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ImportJobPage(msgspec.Struct, kw_only=True):
    items: list[ImportJobOut]
    next_cursor: str | None


class ImportProblemPage(msgspec.Struct, kw_only=True):
    items: list[ImportProblem]
    next_cursor: str | None
