"""The brand's media library: upload, list, tag, delete, and signed public links.

An upload arrives as an IncomingFile (already on local disk, typed from its bytes, counted
against its limit). Here it is probed, stored under a key made of ids, and recorded. Bytes
are stored before the row is written, and removed again if the row cannot be; a deleted
asset's bytes go only once the deletion is committed.

Deleting: an asset on any post variant is refused (409 `media-in-use`). Remove it from the
posts that are not published yet first; an asset that went out with a published post stays
in the library as that post's record (the variant keeps pointing at it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import anyio.to_thread
import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.agencies.rules import Action
from domain.agencies.service import check_version
from domain.brands.models import Brand
from domain.brands.rules import BrandStatus
from domain.brands.service import BrandArchivedError
from domain.content.models import PostVariant, PostVariantMedia
from domain.content.rules import MediaFacts, Severity, VariantStatus, media_issues
from domain.core.clock import now
from domain.core.context import Context
from domain.core.db import scoped_session
from domain.core.errors import ConflictError, DomainError, NotFoundError, ValidationFailedError
from domain.core.pagination import Page, PageRequest, paginate, resolve_sort
from domain.core.settings import Settings
from domain.media import links
from domain.media import schemas as s
from domain.media.incoming import IncomingFile
from domain.media.models import MediaAsset
from domain.media.probe import MediaUnreadableError, probe
from domain.media.storage import Storage, StoredObjectMissingError
from domain.networks.adapters.base import Network

log = logging.getLogger("chorus.media")

MEDIA_SORTS = {
    "created_at": (MediaAsset.created_at, MediaAsset.id),
    "filename": (MediaAsset.filename, MediaAsset.id),
    "size_bytes": (MediaAsset.size_bytes, MediaAsset.id),
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class MediaInUseError(ConflictError):
    slug = "media-in-use"
    title = "The media is used by posts"


class MediaLinkExpiredError(DomainError):
    status = 410
    slug = "media-link-expired"
    title = "This media link has expired"


# --- what the rest of the studio reads ------------------------------------------------------


def media_facts(asset: MediaAsset, alt_text: str | None = None) -> MediaFacts:
    """An asset as the network rules see it (domain/content/rules.py)."""
    return MediaFacts(kind=asset.kind, content_type=asset.content_type, size_bytes=asset.size_bytes,
                      width=asset.width, height=asset.height, duration_ms=asset.duration_ms,
                      alt_text=asset.alt_text if alt_text is None else alt_text)


def network_fits(asset: MediaAsset) -> dict[str, s.MediaFit]:
    facts = [media_facts(asset)]
    fits = {}
    for network in Network:
        issues = media_issues(network, facts)
        fits[network.value] = s.MediaFit(
            fits=not any(i.severity is Severity.ERROR for i in issues),
            issues=[s.MediaIssue(rule=i.rule, message=i.message, severity=i.severity.value, count=i.count,
                                 limit=i.limit) for i in issues],
        )
    return fits


def media_out(asset: MediaAsset) -> s.MediaOut:
    return s.MediaOut(
        id=asset.id, brand_id=asset.brand_id, kind=s.MediaKind(asset.kind), content_type=asset.content_type,
        size_bytes=asset.size_bytes, width=asset.width, height=asset.height, duration_ms=asset.duration_ms,
        sha256=asset.sha256, filename=asset.filename, alt_text=asset.alt_text, tags=list(asset.tags or []),
        uploaded_by_id=asset.uploaded_by_id, version=asset.version, created_at=asset.created_at,
        updated_at=asset.updated_at, networks=network_fits(asset),
    )


# --- input hygiene ----------------------------------------------------------------------------


def normalize_tags(tags: list[str], field: str = "tags") -> list[str]:
    """Trimmed, inner spaces collapsed, lower-cased, duplicates dropped, order kept."""
    out: list[str] = []
    for tag in tags:
        clean = " ".join(tag.split()).lower()
        if not clean or "," in clean or "\x00" in clean:
            raise ValidationFailedError.field(field, f"Tag {tag!r} is empty or contains a comma")
        if len(clean) > 50:
            raise ValidationFailedError.field(field, f"Tag {clean[:20]!r}... is longer than 50 characters")
        if clean not in out:
            out.append(clean)
    if len(out) > s.MAX_TAGS:
        raise ValidationFailedError.field(field, f"At most {s.MAX_TAGS} tags")
    return out


def clean_filename(name: str, fallback: str) -> str:
    """Only ever shown to people (and offered on download), never used as a path."""
    base = re.split(r"[/\\]", name)[-1]
    base = _CONTROL.sub("", base).strip()
    return base[:255] or fallback


@dataclass
class UploadFields:
    tags: list[str]
    alt_text: str


# --- use cases ----------------------------------------------------------------------------------


@dataclass
class MediaService:
    ctx: Context
    storage: Storage
    settings: Settings

    @property
    def session(self) -> AsyncSession:
        return self.ctx.session

    async def list(self, page: PageRequest, brand_id: UUID | None = None, kind: s.MediaKind | None = None,
                   tags: list[str] | None = None) -> Page[s.MediaOut]:
        self.ctx.require(Action.MEDIA_READ)
        stmt = self.ctx.visible_brands(self.ctx.select(MediaAsset), MediaAsset.brand_id)
        if brand_id is not None:
            stmt = stmt.where(MediaAsset.brand_id == brand_id)
        if kind is not None:
            stmt = stmt.where(MediaAsset.kind == kind.value)
        if tags:
            # Every tag asked for (the GIN index on tags serves @>).
            stmt = stmt.where(MediaAsset.tags.contains(normalize_tags(tags, "tag")))
        result = await paginate(self.session, stmt, resolve_sort(MEDIA_SORTS, page.sort or "-created_at"), page)
        return Page([media_out(a) for a in result.items], result.next_cursor)

    async def get(self, media_id: UUID, *, action: Action = Action.MEDIA_READ, lock: bool = False) -> MediaAsset:
        self.ctx.require(action)
        asset = await self.ctx.get(MediaAsset, media_id, lock=lock, what="media")
        if not self.ctx.principal.sees_brand(asset.brand_id):
            raise NotFoundError("No such media")
        return asset

    async def brand_for_upload(self, brand_id: UUID) -> Brand:
        """Checked before the body is read: a caller who may not upload here sends nothing."""
        self.ctx.require(Action.MEDIA_WRITE)
        if not self.ctx.principal.sees_brand(brand_id):
            raise NotFoundError("No such brand")
        brand = await self.ctx.get(Brand, brand_id, what="brand")
        if brand.status == BrandStatus.ARCHIVED.value:
            raise BrandArchivedError("Unarchive the brand before adding media to it")
        if brand.frozen_at is not None:  # over the plan's brand limit: no new work on it
            from domain.billing.entitlements import require_not_frozen

            await require_not_frozen(self.session, self.ctx.agency_id, brand_ids=[brand.id])
        return brand

    async def create(self, brand: Brand, incoming: IncomingFile, fields: UploadFields) -> MediaAsset:
        self.ctx.require(Action.MEDIA_WRITE)
        sniffed = await incoming.finish()
        assert incoming.path is not None
        try:
            facts = await anyio.to_thread.run_sync(probe, incoming.path, sniffed)
        except MediaUnreadableError as err:
            raise ValidationFailedError.field("file", str(err)) from None
        asset_id = uuid4()
        key = f"{self.ctx.agency_id}/{brand.id}/{uuid4().hex}.{sniffed.extension}"
        await self.storage.put(key, incoming.path, facts.content_type)
        asset = MediaAsset(
            id=asset_id, agency_id=self.ctx.agency_id, brand_id=brand.id, kind=facts.kind,
            content_type=facts.content_type, size_bytes=incoming.size, width=facts.width, height=facts.height,
            duration_ms=facts.duration_ms, sha256=incoming.sha256, storage_key=key,
            filename=clean_filename(incoming.filename, f"upload.{sniffed.extension}"), alt_text=fields.alt_text,
            tags=fields.tags, uploaded_by_id=self.ctx.principal.user_id,
        )
        try:
            self.session.add(asset)
            await self.session.flush()
            await self.ctx.audit("media.uploaded", "media", asset.id, {
                "brand_id": str(brand.id), "kind": asset.kind, "content_type": asset.content_type,
                "size_bytes": asset.size_bytes, "filename": asset.filename, "sha256": asset.sha256})
            await self.session.flush()
        except Exception:
            await _forget(self.storage, key)
            raise
        return asset

    async def update(self, media_id: UUID, data: s.MediaUpdate, expected_version: int | None) -> MediaAsset:
        asset = await self.get(media_id, action=Action.MEDIA_WRITE, lock=True)
        check_version(asset.version, expected_version)
        changes: dict[str, Any] = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        if "tags" in changes:
            changes["tags"] = normalize_tags(changes["tags"])
        if "filename" in changes:
            changes["filename"] = clean_filename(changes["filename"], "")
            if not changes["filename"]:
                raise ValidationFailedError.field("filename", "The file name is empty once cleaned")
        for key, value in changes.items():
            setattr(asset, key, value)
        await self.session.flush()
        await self.ctx.audit("media.updated", "media", asset.id, changes)
        return asset

    async def delete(self, media_id: UUID) -> None:
        # The row lock also waits out anyone attaching this asset to a variant right now
        # (their foreign key check takes a share lock on the same row).
        asset = await self.get(media_id, action=Action.MEDIA_WRITE, lock=True)
        uses = (await self.session.execute(
            self.ctx.select(PostVariantMedia, PostVariant.post_id, PostVariant.status)
            .select_from(PostVariantMedia)
            .join(PostVariant, PostVariant.id == PostVariantMedia.variant_id)
            .where(PostVariantMedia.media_id == asset.id)
        )).all()
        pending = {u.post_id for u in uses if u.status != VariantStatus.PUBLISHED.value}
        if pending:
            shown = ", ".join(sorted(str(p) for p in pending)[:5])
            raise MediaInUseError(
                f"The media is on {len(pending)} post(s) not published yet ({shown}); remove it from them first")
        if uses:
            raise MediaInUseError(
                f"The media went out with {len({u.post_id for u in uses})} published post(s), which keep it as "
                "their record")
        key, info = asset.storage_key, {"filename": asset.filename, "brand_id": str(asset.brand_id),
                                        "sha256": asset.sha256}
        try:
            async with self.session.begin_nested():
                await self.session.delete(asset)
        except IntegrityError:  # attached between our check and the delete
            raise MediaInUseError("The media was just added to a post") from None
        await self.ctx.audit("media.deleted", "media", media_id, info)
        storage = self.storage
        self.ctx.after_commit.append(lambda: _forget(storage, key))

    async def create_link(self, media_id: UUID, data: s.MediaLinkCreate) -> s.MediaLinkOut:
        asset = await self.get(media_id)
        lifetime = min(data.expires_in or self.settings.media_url_ttl_seconds, self.settings.media_url_ttl_seconds)
        expires_at = (now() + timedelta(seconds=lifetime)).replace(microsecond=0)
        token = links.sign(link_key(self.settings), self.ctx.agency_id, asset.id, int(expires_at.timestamp()))
        await self.ctx.audit("media.link_created", "media", asset.id, {"expires_at": expires_at.isoformat()})
        return s.MediaLinkOut(url=f"{self.settings.api_base_url.rstrip('/')}/media/{token}", expires_at=expires_at)


def link_key(settings: Settings) -> bytes:
    return links.link_key(settings.jwt_secret())


async def _forget(storage: Storage, key: str) -> None:
    try:
        await storage.delete(key)
    except Exception:  # noqa: BLE001 - an orphaned file is wasted space, not a failed request
        log.exception("could not delete stored media", extra={"storage_key": key})


# --- the public link ------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkedFile:
    content_type: str
    size_bytes: int
    filename: str
    expires_at: int
    chunks: AsyncIterator[bytes]


async def open_link(factory: async_sessionmaker[AsyncSession], storage: Storage, settings: Settings,
                    token: str) -> LinkedFile:
    """The file behind a signed link. A token we did not sign is a 404, whatever it says."""
    moment = int(now().timestamp())
    try:
        agency_id, media_id, expires_at = links.verify(link_key(settings), token, moment)
    except links.LinkInvalidError:
        raise NotFoundError("No such media") from None
    except links.LinkExpiredError:
        raise MediaLinkExpiredError("Ask for a new link") from None
    # The tenant comes from the signed token; RLS applies as on any request. The session is
    # closed before the bytes flow, so a slow download holds no database connection.
    async with scoped_session(factory, agency_id=agency_id) as session, session.begin():
        row = (await session.execute(
            select(MediaAsset.storage_key, MediaAsset.content_type, MediaAsset.size_bytes, MediaAsset.filename)
            .where(MediaAsset.agency_id == agency_id, MediaAsset.id == media_id)
        )).first()
    if row is None:
        raise NotFoundError("No such media")
    try:
        chunks = await storage.open(row.storage_key)
    except StoredObjectMissingError:
        log.error("media row without stored bytes", extra={"media_id": str(media_id)})
        raise NotFoundError("No such media") from None
    return LinkedFile(row.content_type, row.size_bytes, row.filename, expires_at, chunks)
