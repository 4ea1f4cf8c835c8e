"""A brand's publishing pause: a per-brand switch with a reason.

While a brand is paused, `claim_due` leaves its due variants alone: they stay `scheduled`
(held), are listed by `publishing_report`, and go out at the next sweep after the resume.
Their lateness counts from the resume (`brands.publishing_resumed_at`), so a held post is
not failed as too late for the time it spent paused. A send already claimed before the
pause committed (an attempt `sending`, `processing` or `unknown`) is not interrupted: it
finishes, or is reconciled, as usual.

`pause_publishing` / `resume_publishing` take a locked Brand and are what the crisis code
calls (source `crisis`); the API uses `PublishingPauseService`. Both tell the brand's team
(in-app notifications) and emit the webhooks `brand.publishing_paused` /
`brand.publishing_resumed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import func, select

from domain.agencies.rules import Action
from domain.brands.models import Brand
from domain.content.models import Post, PostVariant
from domain.content.rules import VariantStatus
from domain.core.clock import now
from domain.core.context import Context
from domain.core.errors import ConflictError

# The report lists at most this many held variants (earliest due first); `held_count` has all.
REPORT_MAX = 500


class PauseSource(StrEnum):
    MANUAL = "manual"
    CRISIS = "crisis"


class PublishingAlreadyPausedError(ConflictError):
    slug = "publishing-already-paused"
    title = "The brand's publishing is already paused"


class PublishingNotPausedError(ConflictError):
    slug = "publishing-not-paused"
    title = "The brand's publishing is not paused"


class PublishingPausedError(ConflictError):
    slug = "publishing-paused"
    title = "The brand's publishing is paused"


async def refuse_if_paused(ctx: Context, brand_id: UUID) -> None:
    """publishPostNow on a paused brand says so instead of quietly holding the post."""
    brand = await ctx.session.get(Brand, brand_id)
    if brand is not None and is_paused(brand):
        raise PublishingPausedError(f"Publishing for {brand.name} is paused ({brand.publishing_pause_reason}): "
                                    "resume it first, or leave the post to go out when it resumes")


@dataclass(frozen=True)
class HeldVariant:
    variant_id: UUID
    post_id: UUID
    network: str
    social_account_id: UUID
    # When it became due: its post's time, or later when it waits for a rate limit or quota.
    due_at: datetime


def is_paused(brand: Any) -> bool:
    return brand.publishing_paused_at is not None


async def pause_publishing(ctx: Context, brand: Brand, *, reason: str,
                           source: PauseSource = PauseSource.MANUAL) -> bool:
    """Pause the (locked) brand's publishing. False, changing nothing, when already paused
    (the first pause's reason and source stay)."""
    if is_paused(brand):
        return False
    at = now()
    brand.publishing_paused_at = at
    brand.publishing_pause_reason = reason
    brand.publishing_paused_by_id = ctx.principal.user_id
    brand.publishing_pause_source = source.value
    await ctx.session.flush()
    await ctx.audit("brand.publishing_paused", "brand", brand.id, {"reason": reason, "source": source.value})
    await _tell(ctx, brand, "brand.publishing_paused", f"Publishing paused for {brand.name}",
                f"Posts due for {brand.name} wait until publishing resumes. Reason: {reason}",
                {"reason": reason, "source": source.value, "paused_at": at,
                 "paused_by_id": ctx.principal.user_id})
    return True


async def resume_publishing(ctx: Context, brand: Brand, *, source: PauseSource | None = None) -> bool:
    """Resume the (locked) brand's publishing; its held posts go out at the next sweep (the
    caller's job buffer kicks one). With `source`, only a pause from that source is lifted
    (the crisis code does not lift a person's pause). False when nothing was lifted."""
    if not is_paused(brand) or (source is not None and brand.publishing_pause_source != source.value):
        return False
    at = now()
    paused = {"reason": brand.publishing_pause_reason, "source": brand.publishing_pause_source,
              "paused_at": brand.publishing_paused_at}
    held = await held_count(ctx, brand.id)
    brand.publishing_paused_at = None
    brand.publishing_pause_reason = None
    brand.publishing_paused_by_id = None
    brand.publishing_pause_source = None
    brand.publishing_resumed_at = at
    await ctx.session.flush()
    await ctx.audit("brand.publishing_resumed", "brand", brand.id, {"held": held, **paused})
    await _tell(ctx, brand, "brand.publishing_resumed", f"Publishing resumed for {brand.name}",
                f"{held} held post variant(s) of {brand.name} go out now." if held
                else f"Posts of {brand.name} go out at their times again.",
                {"resumed_at": at, "resumed_by_id": ctx.principal.user_id, "held": held,
                 "paused_at": paused["paused_at"], "source": paused["source"]})
    ctx.jobs.send("publishing.sweep")  # the held posts go out now, not at the next tick
    return True


def _held(ctx: Context, brand_id: UUID, *columns: Any) -> Any:
    return (select(*columns).select_from(PostVariant).join(Post, Post.id == PostVariant.post_id)
            .where(PostVariant.agency_id == ctx.agency_id, Post.brand_id == brand_id,
                   PostVariant.status == VariantStatus.SCHEDULED.value, Post.scheduled_at <= now()))


async def held_count(ctx: Context, brand_id: UUID) -> int:
    return int(await ctx.session.scalar(_held(ctx, brand_id, func.count())) or 0)


async def held_variants(ctx: Context, brand_id: UUID, *, limit: int = REPORT_MAX) -> list[HeldVariant]:
    due = PostVariant.due_at  # the later of the post's time and the variant's wait (migration 0016)
    rows = await ctx.session.execute(
        _held(ctx, brand_id, PostVariant.id, PostVariant.post_id, PostVariant.network, PostVariant.social_account_id,
              due.label("due_at")).order_by(due, PostVariant.id).limit(limit))
    return [HeldVariant(*row) for row in rows]


async def _tell(ctx: Context, brand: Brand, event: str, title: str, body: str, data: dict[str, Any]) -> None:
    from domain.agencies.models import Membership
    from domain.notifications.service import notify
    from domain.webhooks.service import emit

    members = (await ctx.session.scalars(ctx.select(Membership))).all()
    team = [m.user_id for m in members if m.brand_ids is None or brand.id in (m.brand_ids or [])]
    await notify(ctx, user_ids=team, kind=event, title=title, body=body,
                 data={"brand_id": str(brand.id), "source": str(data.get("source") or "")})
    await emit(ctx, event, {"brand_id": brand.id, **data})


@dataclass
class PublishingPauseService:
    """The API's side: pause and resume need BRANDS_WRITE (the brand's managers, not every
    editor), the report POSTS_READ (it lists posts). If-Match as for the brand itself."""

    ctx: Context

    async def _brand(self, brand_id: UUID, action: Action, *, lock: bool) -> Brand:
        from domain.brands.service import BrandService

        return await BrandService(self.ctx).get(brand_id, action=action, lock=lock)

    async def pause(self, brand_id: UUID, reason: str, expected_version: int | None) -> Brand:
        from domain.agencies.service import check_version

        brand = await self._brand(brand_id, Action.BRANDS_WRITE, lock=True)
        check_version(brand.version, expected_version)
        if not await pause_publishing(self.ctx, brand, reason=reason, source=PauseSource.MANUAL):
            raise PublishingAlreadyPausedError(
                f"Publishing has been paused since {brand.publishing_paused_at:%Y-%m-%d %H:%M} UTC "
                f"({brand.publishing_pause_source}): {brand.publishing_pause_reason}")
        return brand

    async def resume(self, brand_id: UUID, expected_version: int | None) -> Brand:
        from domain.agencies.service import check_version

        brand = await self._brand(brand_id, Action.BRANDS_WRITE, lock=True)
        check_version(brand.version, expected_version)
        if not await resume_publishing(self.ctx, brand):
            raise PublishingNotPausedError("The brand's publishing is not paused")
        return brand

    async def report(self, brand_id: UUID) -> tuple[Brand, list[HeldVariant], int]:
        brand = await self._brand(brand_id, Action.POSTS_READ, lock=False)
        if not is_paused(brand):
            return brand, [], 0
        return brand, await held_variants(self.ctx, brand.id), await held_count(self.ctx, brand.id)
