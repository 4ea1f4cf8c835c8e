"""Brands (the agency's clients, with their profile) and their campaigns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.agencies.rules import Action, slugify
from domain.brands import schemas as s
from domain.brands.models import Brand, Campaign
from domain.brands.rules import BrandStatus, CampaignStatus, can_move_campaign, normalize_hashtag
from domain.core.context import Context
from domain.core.errors import ConflictError, NotFoundError, PermissionDeniedError, SlugTakenError, ValidationFailedError
from domain.core.pagination import Page, PageRequest, paginate, resolve_sort
from domain.agencies.service import check_time_zone, check_version
from domain.billing import entitlements
from domain.billing.service import wants_quantity_sync
from domain.billing.plans import Limit

BRAND_SORTS = {"name": (Brand.name, Brand.id), "created_at": (Brand.created_at, Brand.id)}
CAMPAIGN_SORTS = {
    "start_date": (Campaign.start_date, Campaign.id),
    "name": (Campaign.name, Campaign.id),
    "created_at": (Campaign.created_at, Campaign.id),
}


_BRAND_BY_ID = select(Brand.__table__).where(
    Brand.agency_id == bindparam("agency_id"), Brand.id == bindparam("brand_id")
)


class BrandArchivedError(ConflictError):
    slug = "brand-archived"
    title = "The brand is archived"


class CampaignTransitionError(ConflictError):
    slug = "campaign-status-transition"
    title = "The campaign cannot move to that status"


def _profile_to_db(profile: s.BrandProfile) -> dict[str, Any]:
    for hashtag_set in profile.hashtag_sets:
        hashtag_set.hashtags = list(dict.fromkeys(normalize_hashtag(t) for t in hashtag_set.hashtags))
    return msgspec.to_builtins(profile)


def brand_out(brand: Any) -> s.BrandOut:
    """From an ORM Brand or a Core row of the brands table."""
    return s.BrandOut(
        id=brand.id,
        name=brand.name,
        slug=brand.slug,
        time_zone=brand.time_zone,
        language=brand.language,
        status=BrandStatus(brand.status),
        profile=msgspec.convert(brand.profile or {}, s.BrandProfile),
        version=brand.version,
        created_at=brand.created_at,
        updated_at=brand.updated_at,
        publishing_pause=publishing_pause_out(brand),
    )


def publishing_pause_out(brand: Any) -> s.PublishingPause | None:
    if brand.publishing_paused_at is None:
        return None
    return s.PublishingPause(paused_at=brand.publishing_paused_at, reason=brand.publishing_pause_reason or "",
                             paused_by_id=brand.publishing_paused_by_id,
                             source=brand.publishing_pause_source or "manual")


def campaign_out(c: Campaign) -> s.CampaignOut:
    return s.CampaignOut(
        id=c.id,
        brand_id=c.brand_id,
        name=c.name,
        objective=c.objective,  # type: ignore[arg-type]
        description=c.description,
        start_date=c.start_date,
        end_date=c.end_date,
        target_kpis=msgspec.convert(c.target_kpis or [], list[s.Kpi]),
        status=CampaignStatus(c.status),
        version=c.version,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


@dataclass
class BrandService:
    ctx: Context

    @property
    def session(self) -> AsyncSession:
        return self.ctx.session

    async def list(self, page: PageRequest, status: BrandStatus | None = None, q: str | None = None) -> Page[s.BrandOut]:
        self.ctx.require(Action.BRANDS_READ)
        # Core rows, not ORM objects: the list is read far more often than it is written.
        stmt = self.ctx.visible_brands(self.ctx.select(Brand, *Brand.__table__.c), Brand.id)
        if status is not None:
            stmt = stmt.where(Brand.status == status.value)
        if q:
            stmt = stmt.where(Brand.name.ilike(f"%{_escape_like(q)}%", escape="\\"))
        result = await paginate(
            None, stmt, resolve_sort(BRAND_SORTS, page.sort or "name"), page, rows=self.ctx.read
        )
        return Page([brand_out(b) for b in result.items], result.next_cursor)

    async def read(self, brand_id: UUID) -> s.BrandOut:
        """The hot read path: one prebuilt Core statement, no ORM objects."""
        self.ctx.require(Action.BRANDS_READ)
        if not self.ctx.principal.sees_brand(brand_id):
            raise NotFoundError("No such brand")
        row = (await self.ctx.read(_BRAND_BY_ID, {"agency_id": self.ctx.agency_id, "brand_id": brand_id})).first()
        if row is None:
            raise NotFoundError("No such brand")
        return brand_out(row)

    async def get(self, brand_id: UUID, *, action: Action = Action.BRANDS_READ, lock: bool = False) -> Brand:
        self.ctx.require(action)
        if not self.ctx.principal.sees_brand(brand_id):
            raise NotFoundError("No such brand")
        return await self.ctx.get(Brand, brand_id, lock=lock, what="brand")

    async def create(self, data: s.BrandCreate) -> Brand:
        self.ctx.require(Action.BRANDS_WRITE)
        if self.ctx.principal.brand_ids is not None:
            raise PermissionDeniedError("Members limited to some brands cannot add brands")
        check_time_zone(data.time_zone)
        await entitlements.check(self.session, self.ctx.agency_id, Limit.BRANDS)
        brand = Brand(
            agency_id=self.ctx.agency_id,
            name=data.name,
            slug=data.slug or await self._free_slug(slugify(data.name)),
            time_zone=data.time_zone,
            language=data.language,
            status=BrandStatus.ACTIVE.value,
            profile=_profile_to_db(data.profile),
        )
        await self._save_unique(brand, brand.slug)
        await self.ctx.audit("brand.created", "brand", brand.id, {"name": brand.name, "slug": brand.slug})
        await wants_quantity_sync(self.ctx)
        return brand

    async def update(self, brand_id: UUID, data: s.BrandUpdate, expected_version: int | None) -> Brand:
        brand = await self.get(brand_id, action=Action.BRANDS_WRITE, lock=True)
        check_version(brand.version, expected_version)
        changes: dict[str, Any] = {
            k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET and k != "profile"
        }
        if "time_zone" in changes:
            check_time_zone(changes["time_zone"])
        archiving = False
        if "status" in changes:
            changes["status"] = changes["status"].value
            if changes["status"] != brand.status:
                archiving = changes["status"] == BrandStatus.ARCHIVED.value
                if not archiving:  # un-archiving takes a brand slot again
                    await entitlements.check(self.session, self.ctx.agency_id, Limit.BRANDS)
        values = dict(changes)
        if data.profile is not msgspec.UNSET:
            patch = {k: v for k, v in msgspec.structs.asdict(data.profile).items() if v is not msgspec.UNSET}
            merged = {**(brand.profile or {}), **msgspec.to_builtins(patch)}
            values["profile"] = _profile_to_db(msgspec.convert(merged, s.BrandProfile))
            changes["profile"] = sorted(patch)
        brand_id = brand.id
        await self._save_unique(brand, values.get("slug", brand.slug), values)
        await self.ctx.audit("brand.updated", "brand", brand_id, changes)
        if archiving:  # a slot is free: a brand frozen by the plan may thaw
            await entitlements.thaw_after_freeing(self.session, self.ctx.agency_id)
        if "status" in changes:
            await wants_quantity_sync(self.ctx)
        return brand

    async def _save_unique(self, brand: Brand, slug: str, values: dict[str, Any] | None = None) -> None:
        # The changes are made inside the savepoint, so a slug clash rolls back only them
        # and the request can answer 409 instead of failing its whole transaction.
        try:
            async with self.session.begin_nested():
                self.session.add(brand)
                for key, value in (values or {}).items():
                    setattr(brand, key, value)
        except IntegrityError:
            raise SlugTakenError(f"The brand slug {slug!r} is already used in this agency", field="slug") from None

    async def _free_slug(self, base: str) -> str:
        taken = set(
            (
                await self.session.scalars(
                    self.ctx.select(Brand, Brand.slug).where(Brand.slug.like(f"{_escape_like(base)}%", escape="\\"))
                )
            ).all()
        )
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base[:58]}-{n}"
        return candidate


@dataclass
class CampaignService:
    ctx: Context

    @property
    def session(self) -> AsyncSession:
        return self.ctx.session

    async def list(
        self,
        page: PageRequest,
        brand_id: UUID | None = None,
        status: CampaignStatus | None = None,
        active_on: date | None = None,
    ) -> Page[s.CampaignOut]:
        self.ctx.require(Action.CAMPAIGNS_READ)
        stmt = self.ctx.visible_brands(self.ctx.select(Campaign), Campaign.brand_id)
        if brand_id is not None:
            stmt = stmt.where(Campaign.brand_id == brand_id)
        if status is not None:
            stmt = stmt.where(Campaign.status == status.value)
        if active_on is not None:
            stmt = stmt.where(Campaign.start_date <= active_on, Campaign.end_date >= active_on)
        result = await paginate(self.session, stmt, resolve_sort(CAMPAIGN_SORTS, page.sort or "start_date"), page)
        return Page([campaign_out(c) for c in result.items], result.next_cursor)

    async def get(self, campaign_id: UUID, *, action: Action = Action.CAMPAIGNS_READ, lock: bool = False) -> Campaign:
        self.ctx.require(action)
        campaign = await self.ctx.get(Campaign, campaign_id, lock=lock, what="campaign")
        if not self.ctx.principal.sees_brand(campaign.brand_id):
            raise NotFoundError("No such campaign")
        return campaign

    async def create(self, data: s.CampaignCreate) -> Campaign:
        self.ctx.require(Action.CAMPAIGNS_WRITE)
        brand = await self._brand(data.brand_id)
        if brand.frozen_at is not None:  # over the plan's brand limit: no new work on it
            await entitlements.require_not_frozen(self.session, self.ctx.agency_id, brand_ids=[brand.id])
        _check_dates(data.start_date, data.end_date)
        if data.status not in (CampaignStatus.DRAFT, CampaignStatus.PLANNED, CampaignStatus.ACTIVE):
            raise ValidationFailedError.field("status", "A new campaign starts as draft, planned or active")
        campaign = Campaign(
            agency_id=self.ctx.agency_id,
            brand_id=brand.id,
            name=data.name,
            objective=data.objective.value,
            description=data.description,
            start_date=data.start_date,
            end_date=data.end_date,
            target_kpis=msgspec.to_builtins(data.target_kpis),
            status=data.status.value,
        )
        self.session.add(campaign)
        await self.session.flush()
        await self.ctx.audit("campaign.created", "campaign", campaign.id, {"name": campaign.name, "brand_id": str(brand.id)})
        return campaign

    async def update(self, campaign_id: UUID, data: s.CampaignUpdate, expected_version: int | None) -> Campaign:
        campaign = await self.get(campaign_id, action=Action.CAMPAIGNS_WRITE, lock=True)
        check_version(campaign.version, expected_version)
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        _check_dates(changes.get("start_date", campaign.start_date), changes.get("end_date", campaign.end_date))
        if "status" in changes:
            new = changes["status"]
            if not can_move_campaign(CampaignStatus(campaign.status), new):
                raise CampaignTransitionError(f"A {campaign.status} campaign cannot become {new.value}", field="status")
        for key, value in changes.items():
            setattr(campaign, key, msgspec.to_builtins(value) if key == "target_kpis" else getattr(value, "value", value))
        await self.session.flush()
        await self.ctx.audit("campaign.updated", "campaign", campaign.id, changes)
        return campaign

    async def delete(self, campaign_id: UUID) -> None:
        campaign = await self.get(campaign_id, action=Action.CAMPAIGNS_WRITE, lock=True)
        await self.session.delete(campaign)
        await self.ctx.audit("campaign.deleted", "campaign", campaign.id, {"name": campaign.name})

    async def _brand(self, brand_id: UUID) -> Brand:
        if not self.ctx.principal.sees_brand(brand_id):
            raise ValidationFailedError.field("brand_id", "No such brand")
        brand = await self.session.scalar(self.ctx.select(Brand).where(Brand.id == brand_id))
        if brand is None:
            raise ValidationFailedError.field("brand_id", "No such brand")
        if brand.status == BrandStatus.ARCHIVED.value:
            raise BrandArchivedError("Unarchive the brand before planning campaigns for it", field="brand_id")
        return brand


def _check_dates(start: date, end: date) -> None:
    if end < start:
        raise ValidationFailedError.field("end_date", "The campaign cannot end before it starts")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
