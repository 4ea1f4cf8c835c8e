"""Creative briefs: what the designer or video maker should make for a post, sized for each
target network from the adapters' limits, and the media they deliver back onto the variants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from domain.agencies.models import Membership
from domain.agencies.rules import Action
from domain.agencies.service import check_version
from domain.content import schemas as cs
from domain.content.models import Brief
from domain.content.rules import RECOMMENDED_SIZES
from domain.content.service import PostService, _utc
from domain.core.context import Context
from domain.core.errors import ConflictError, NotFoundError, ValidationFailedError
from domain.core.pagination import Page, PageRequest, paginate, resolve_sort
from domain.core.schemas import LongText, Name, ShortText
from domain.networks.adapters.base import Network
from domain.networks.catalog import CATALOG


class BriefKind(StrEnum):
    IMAGE = "image"
    CAROUSEL = "carousel"
    VIDEO = "video"
    STORY = "story"
    REEL = "reel"
    THUMBNAIL = "thumbnail"


class BriefStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    CHANGES_REQUESTED = "changes_requested"
    ACCEPTED = "accepted"
    CANCELLED = "cancelled"


# Who may move a brief where. Delivery happens through deliverBrief, not a status change.
TRANSITIONS: dict[BriefStatus, frozenset[BriefStatus]] = {
    BriefStatus.OPEN: frozenset({BriefStatus.IN_PROGRESS, BriefStatus.CANCELLED}),
    BriefStatus.IN_PROGRESS: frozenset({BriefStatus.OPEN, BriefStatus.CANCELLED}),
    BriefStatus.DELIVERED: frozenset({BriefStatus.ACCEPTED, BriefStatus.CHANGES_REQUESTED, BriefStatus.CANCELLED}),
    BriefStatus.CHANGES_REQUESTED: frozenset({BriefStatus.IN_PROGRESS, BriefStatus.CANCELLED}),
    BriefStatus.ACCEPTED: frozenset(),
    BriefStatus.CANCELLED: frozenset({BriefStatus.OPEN}),
}


class Reference(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^https?://\S+$")] | None = None
    note: ShortText = ""


class BriefCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: Name
    kind: BriefKind
    post_id: UUID | None = None
    variant_id: UUID | None = None
    # Defaults to the networks of the post's variants.
    networks: Annotated[list[Network], msgspec.Meta(max_length=8)] | None = None
    guidelines: LongText = ""
    references: Annotated[list[Reference], msgspec.Meta(max_length=30)] = []
    due_at: datetime | None = None
    assignee_id: UUID | None = None


class BriefUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: Name | msgspec.UnsetType = msgspec.UNSET
    guidelines: LongText | msgspec.UnsetType = msgspec.UNSET
    references: Annotated[list[Reference], msgspec.Meta(max_length=30)] | msgspec.UnsetType = msgspec.UNSET
    due_at: datetime | None | msgspec.UnsetType = msgspec.UNSET
    assignee_id: UUID | None | msgspec.UnsetType = msgspec.UNSET
    status: BriefStatus | msgspec.UnsetType = msgspec.UNSET


class Delivery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    media_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=35)]
    # Put the media on the brief's variant (or on every variant of the post the brief
    # targets) straight away; they are checked against each network's rules there.
    attach: bool = True


class Spec(msgspec.Struct, kw_only=True):
    network: Network
    width: int | None
    height: int | None
    aspect_ratio_min: float | None
    aspect_ratio_max: float | None
    image_formats: list[str]
    image_max_bytes: int | None
    video_max_bytes: int | None
    video_min_seconds: float | None
    video_max_seconds: float | None
    max_items: int


class BriefOut(msgspec.Struct, kw_only=True):
    id: UUID
    brand_id: UUID
    post_id: UUID | None
    variant_id: UUID | None
    title: str
    kind: BriefKind
    specs: list[Spec]
    guidelines: str
    references: list[Reference]
    due_at: datetime | None
    assignee_id: UUID | None
    status: BriefStatus
    delivered_media_ids: list[UUID]
    version: int
    created_at: datetime
    updated_at: datetime


class BriefPage(msgspec.Struct, kw_only=True):
    items: list[BriefOut]
    next_cursor: str | None


def specs_for(kind: BriefKind, networks: list[Network]) -> list[dict[str, Any]]:
    """Format and dimensions per target network, from the adapters' limits."""
    out = []
    for network in dict.fromkeys(networks):
        limits = CATALOG[network].limits
        sizes = RECOMMENDED_SIZES.get(network, {})
        size = sizes.get(kind.value) or sizes.get("video" if kind in (BriefKind.REEL, BriefKind.VIDEO) else "image")
        video = kind in (BriefKind.VIDEO, BriefKind.REEL) or (kind is BriefKind.STORY and not limits.images_max)
        out.append({
            "network": network.value, "width": size[0] if size else None, "height": size[1] if size else None,
            "aspect_ratio_min": limits.aspect_ratio_min, "aspect_ratio_max": limits.aspect_ratio_max,
            "image_formats": [] if video else list(limits.image_formats),
            "image_max_bytes": None if video else limits.image_max_bytes,
            "video_max_bytes": limits.video_max_bytes if video else None,
            "video_min_seconds": limits.video_min_seconds if video else None,
            "video_max_seconds": limits.video_max_seconds if video else None,
            "max_items": (limits.carousel_max or limits.images_max or 1) if kind is BriefKind.CAROUSEL else 1,
        })
    return out


def brief_out(b: Brief) -> BriefOut:
    return BriefOut(
        id=b.id, brand_id=b.brand_id, post_id=b.post_id, variant_id=b.variant_id, title=b.title,
        kind=BriefKind(b.kind), specs=msgspec.convert(b.specs or [], list[Spec]), guidelines=b.guidelines,
        references=msgspec.convert(b.references or [], list[Reference]), due_at=b.due_at, assignee_id=b.assignee_id,
        status=BriefStatus(b.status), delivered_media_ids=list(b.delivered_media_ids or []), version=b.version,
        created_at=b.created_at, updated_at=b.updated_at,
    )


BRIEF_SORTS = {"created_at": (Brief.created_at, Brief.id)}


@dataclass
class BriefService:
    ctx: Context

    @property
    def session(self) -> AsyncSession:
        return self.ctx.session

    async def create(self, brand_id: UUID, data: BriefCreate) -> Brief:
        self.ctx.require(Action.POSTS_WRITE)
        posts = PostService(self.ctx)
        brand = await posts._brand(brand_id)
        networks = list(data.networks or [])
        if data.variant_id is not None and data.post_id is None:
            raise ValidationFailedError.field("post_id", "Give the post the variant belongs to")
        if data.post_id is not None:
            loaded = await posts._load(data.post_id)
            if loaded.post.brand_id != brand.id:
                raise ValidationFailedError.field("post_id", "No such post for this brand")
            variants = loaded.variants
            if data.variant_id is not None:
                variants = [v for v in variants if v.id == data.variant_id]
                if not variants:
                    raise ValidationFailedError.field("variant_id", "No such variant on this post")
            if not networks:
                networks = [Network(v.network) for v in sorted(variants, key=lambda v: v.position)]
        if not networks:
            raise ValidationFailedError.field("networks", "Say which networks the media is for, or give a post")
        if data.assignee_id is not None:
            await self._member(data.assignee_id)
        brief = Brief(
            agency_id=self.ctx.agency_id, brand_id=brand.id, post_id=data.post_id, variant_id=data.variant_id,
            title=data.title, kind=data.kind.value, specs=specs_for(data.kind, networks), guidelines=data.guidelines,
            references=msgspec.to_builtins(data.references), due_at=_utc(data.due_at, "due_at"),
            assignee_id=data.assignee_id, status=BriefStatus.OPEN.value, delivered_media_ids=[],
            created_by_id=self.ctx.principal.user_id,
        )
        self.session.add(brief)
        await self.session.flush()
        await self.ctx.audit("brief.created", "brief", brief.id, {"post_id": data.post_id, "kind": data.kind})
        return brief

    async def get(self, brief_id: UUID, *, action: Action = Action.POSTS_READ, lock: bool = False) -> Brief:
        self.ctx.require(action)
        brief = await self.ctx.get(Brief, brief_id, lock=lock, what="brief")
        if not self.ctx.principal.sees_brand(brief.brand_id):
            raise NotFoundError("No such brief")
        return brief

    async def list(self, page: PageRequest, *, brand_id: UUID | None = None, post_id: UUID | None = None,
                   status: BriefStatus | None = None, assignee_id: UUID | None = None,
                   due_before: datetime | None = None) -> Page[BriefOut]:
        self.ctx.require(Action.POSTS_READ)
        stmt = self.ctx.visible_brands(self.ctx.select(Brief), Brief.brand_id)
        if brand_id is not None:
            stmt = stmt.where(Brief.brand_id == brand_id)
        if post_id is not None:
            stmt = stmt.where(Brief.post_id == post_id)
        if status is not None:
            stmt = stmt.where(Brief.status == status.value)
        if assignee_id is not None:
            stmt = stmt.where(Brief.assignee_id == assignee_id)
        if due_before is not None:
            stmt = stmt.where(Brief.due_at < _utc(due_before, "due_before"))
        result = await paginate(self.session, stmt, resolve_sort(BRIEF_SORTS, page.sort or "-created_at"), page)
        return Page([brief_out(b) for b in result.items], result.next_cursor)

    async def update(self, brief_id: UUID, data: BriefUpdate, expected_version: int | None) -> Brief:
        brief = await self.get(brief_id, action=Action.POSTS_WRITE, lock=True)
        check_version(brief.version, expected_version)
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        if "status" in changes:
            target = changes["status"]
            current = BriefStatus(brief.status)
            if target is not current and target not in TRANSITIONS[current]:
                raise BriefTransitionError(f"A brief that is {current.value} cannot become {target.value}"
                                           + (" (deliver media with deliverBrief)" if target is BriefStatus.DELIVERED
                                              else ""))
            changes["status"] = target.value
        if changes.get("assignee_id") is not None:
            await self._member(changes["assignee_id"])
        if "due_at" in changes:
            changes["due_at"] = _utc(changes["due_at"], "due_at")
        if "references" in changes:
            changes["references"] = msgspec.to_builtins(changes["references"])
        for key, value in changes.items():
            setattr(brief, key, value)
        await self.session.flush()
        await self.ctx.audit("brief.updated", "brief", brief.id, changes)
        return brief

    async def delete(self, brief_id: UUID) -> None:
        brief = await self.get(brief_id, action=Action.POSTS_WRITE, lock=True)
        await self.session.delete(brief)
        await self.ctx.audit("brief.deleted", "brief", brief_id, {})

    async def deliver(self, brief_id: UUID, data: Delivery) -> Brief:
        """The maker hands the media over: recorded on the brief and, with `attach`, put on
        the variants it was for (checked there against each network's rules)."""
        brief = await self.get(brief_id, action=Action.POSTS_WRITE, lock=True)
        if brief.status in (BriefStatus.ACCEPTED, BriefStatus.CANCELLED):
            raise BriefTransitionError(f"The brief is {brief.status}; reopen it first")
        posts = PostService(self.ctx)
        await posts._media_assets(brief.brand_id, list(data.media_ids), "media_ids")
        if data.attach and brief.post_id is not None:
            loaded = await posts._load(brief.post_id)
            targets = [v for v in loaded.variants if brief.variant_id is None or v.id == brief.variant_id]
            networks = {spec["network"] for spec in brief.specs or []}
            for variant in sorted(targets, key=lambda v: v.position):
                if brief.variant_id is None and variant.network not in networks:
                    continue
                current = [cs.MediaRef(media_id=m.media_id, alt_text=m.alt_text)
                           for m in sorted(loaded.media.get(variant.id, []), key=lambda m: m.position)]
                have = {m.media_id for m in current}
                media = current + [cs.MediaRef(media_id=m) for m in data.media_ids if m not in have]
                await posts.update_variant(brief.post_id, variant.id, cs.VariantUpdate(media=media), None)
        brief.delivered_media_ids = list(dict.fromkeys([*(brief.delivered_media_ids or []), *data.media_ids]))
        brief.status = BriefStatus.DELIVERED.value
        await self.session.flush()
        await self.ctx.audit("brief.delivered", "brief", brief.id, {"media_ids": data.media_ids,
                                                                     "attached": data.attach})
        return brief

    async def _member(self, user_id: UUID) -> None:
        member = await self.session.scalar(self.ctx.select(Membership).where(Membership.user_id == user_id))
        if member is None:
            raise ValidationFailedError.field("assignee_id", "Not a member of this agency")


class BriefTransitionError(ConflictError):
    slug = "brief-status-transition"
    title = "The brief cannot move to that status"

