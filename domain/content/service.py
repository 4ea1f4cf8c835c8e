"""Posts and their per-network variants: write, validate, revise, schedule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.agencies.rules import Action
from domain.agencies.service import check_version
from domain.billing import entitlements
from domain.brands.models import Brand, Campaign
from domain.brands.rules import BrandStatus
from domain.content import rules
from domain.content import schemas as s
from domain.content.models import Post, PostRevision, PostVariant, PostVariantMedia
from domain.content.rules import Issue, MediaFacts, Severity, VariantDraft, VariantStatus
from domain.core.clock import now
from domain.core.context import Context
from domain.core.errors import ConflictError, NotFoundError, ValidationFailedError
from domain.core.pagination import Page, PageRequest, paginate, resolve_sort
from domain.media.models import MediaAsset
from domain.networks.adapters.base import Network
from domain.networks.catalog import CATALOG
from domain.networks.models import SocialAccount
from domain.networks.rules import text_length

POST_SORTS = {
    "created_at": (Post.created_at, Post.id),
    "updated_at": (Post.updated_at, Post.id),
}


class PostLockedError(ConflictError):
    slug = "post-locked"
    title = "The post is being published or was published"


class PostNotReadyError(ValidationFailedError):
    slug = "post-not-ready"
    title = "The post breaks its networks' rules"


class PostTransitionError(ConflictError):
    slug = "post-status-transition"
    title = "The post cannot move to that status"


def _utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationFailedError.field(field, "Give the time with its offset or Z, for example "
                                          "2026-12-20T09:00:00+01:00")
    return value.astimezone(UTC)


def local_time(instant: datetime | None, zone: str) -> str | None:
    return instant.astimezone(ZoneInfo(zone)).isoformat() if instant else None


def _issues_out(issues: list[dict[str, Any]]) -> list[s.IssueOut]:
    return [msgspec.convert(i, s.IssueOut) for i in issues]


@dataclass
class Loaded:
    post: Post
    variants: list[PostVariant]
    media: dict[UUID, list[PostVariantMedia]]
    # What the change did to the post's approval (domain/approvals/service.py Review), if anything.
    review: Any = None


def post_out(loaded: Loaded) -> s.PostOut:
    post = loaded.post
    variants = sorted(loaded.variants, key=lambda v: (v.position, v.created_at))
    return s.PostOut(
        id=post.id, brand_id=post.brand_id, campaign_id=post.campaign_id, title=post.title,
        labels=list(post.labels or []), scheduled_at=post.scheduled_at, time_zone=post.time_zone,
        local_scheduled_at=local_time(post.scheduled_at, post.time_zone), status=post.status,
        revision=post.revision, content_hash=post.content_hash,
        ready=not any(rules.blocking(v.issues or []) for v in variants),
        variants=[
            s.VariantOut(
                id=v.id, social_account_id=v.social_account_id, network=Network(v.network), text=v.text,
                options=dict(v.options or {}),
                media=[s.MediaRef(media_id=m.media_id, alt_text=m.alt_text)
                       for m in sorted(loaded.media.get(v.id, []), key=lambda m: m.position)],
                status=v.status, content_hash=v.content_hash, issues=_issues_out(v.issues or []),
                external_id=v.external_id, external_url=v.external_url, published_at=v.published_at,
                not_before=v.not_before, wait_reason=v.wait_reason,
            )
            for v in variants
        ],
        version=post.version, created_at=post.created_at, updated_at=post.updated_at,
        review=s.ReviewOut(request_id=loaded.review.request_id, status=loaded.review.status,
                           message=loaded.review.message) if loaded.review else None,
    )


@dataclass
class PostService:
    ctx: Context

    @property
    def session(self) -> AsyncSession:
        return self.ctx.session

    # --- reading -------------------------------------------------------------------------

    async def list(self, page: PageRequest, *, brand_id: UUID | None = None, campaign_id: UUID | None = None,
                   status: str | None = None, label: str | None = None, network: Network | None = None,
                   scheduled_from: datetime | None = None, scheduled_to: datetime | None = None) -> Page[s.PostOut]:
        self.ctx.require(Action.POSTS_READ)
        stmt = self.ctx.visible_brands(self.ctx.select(Post), Post.brand_id)
        if brand_id is not None:
            stmt = stmt.where(Post.brand_id == brand_id)
        if campaign_id is not None:
            stmt = stmt.where(Post.campaign_id == campaign_id)
        if status is not None:
            stmt = stmt.where(Post.status == status)
        if label is not None:
            stmt = stmt.where(Post.labels.contains([label]))
        if network is not None:
            stmt = stmt.where(select(PostVariant.id).where(PostVariant.post_id == Post.id,
                                                           PostVariant.network == network.value).exists())
        if scheduled_from is not None:
            stmt = stmt.where(Post.scheduled_at >= _utc(scheduled_from, "scheduled_from"))
        if scheduled_to is not None:
            stmt = stmt.where(Post.scheduled_at < _utc(scheduled_to, "scheduled_to"))
        result = await paginate(self.session, stmt, resolve_sort(POST_SORTS, page.sort or "-created_at"), page)
        loaded = await self._load_many(result.items)
        return Page([post_out(item) for item in loaded], result.next_cursor)

    async def read(self, post_id: UUID) -> Loaded:
        self.ctx.require(Action.POSTS_READ)
        return await self._load(post_id)

    async def _post(self, post_id: UUID, *, lock: bool = False) -> Post:
        post = await self.ctx.get(Post, post_id, lock=lock, what="post")
        if not self.ctx.principal.sees_brand(post.brand_id):
            raise NotFoundError("No such post")
        return post

    async def _load(self, post_id: UUID, *, lock: bool = False) -> Loaded:
        post = await self._post(post_id, lock=lock)
        return (await self._load_many([post]))[0]

    async def _load_many(self, posts: list[Post]) -> list[Loaded]:
        ids = [p.id for p in posts]
        variants = (await self.session.scalars(
            self.ctx.select(PostVariant).where(PostVariant.post_id.in_(ids)))).all() if ids else []
        vids = [v.id for v in variants]
        media = (await self.session.scalars(
            self.ctx.select(PostVariantMedia).where(PostVariantMedia.variant_id.in_(vids)))).all() if vids else []
        by_variant: dict[UUID, list[PostVariantMedia]] = {}
        for m in media:
            by_variant.setdefault(m.variant_id, []).append(m)
        return [Loaded(p, [v for v in variants if v.post_id == p.id], by_variant) for p in posts]

    # --- writing -------------------------------------------------------------------------

    async def create(self, brand_id: UUID, data: s.PostCreate) -> Loaded:
        self.ctx.require(Action.POSTS_WRITE)
        brand = await self._brand(brand_id)
        await entitlements.require_not_frozen(self.session, self.ctx.agency_id, brand_ids=[brand.id])
        if data.campaign_id is not None:
            await self._campaign(brand.id, data.campaign_id)
        post = Post(
            agency_id=self.ctx.agency_id, brand_id=brand.id, campaign_id=data.campaign_id, title=data.title,
            labels=_labels(data.labels), scheduled_at=_utc(data.scheduled_at, "scheduled_at"),
            time_zone=brand.time_zone, status=VariantStatus.DRAFT.value, revision=0, content_hash="",
            created_by_id=self.ctx.principal.user_id,
        )
        self.session.add(post)
        await self.session.flush()
        loaded = Loaded(post, [], {})
        seen: set[UUID] = set()
        for i, variant in enumerate(data.variants):
            if variant.social_account_id in seen:
                raise ValidationFailedError.field(f"variants[{i}].social_account_id",
                                                  "One variant per social account")
            seen.add(variant.social_account_id)
            await self._add_variant(loaded, variant, i, field=f"variants[{i}]")
        await self._settle(loaded, brand)
        await self.ctx.audit("post.created", "post", post.id, {"brand_id": brand.id, "variants": len(data.variants)})
        return loaded

    async def update(self, post_id: UUID, data: s.PostUpdate, expected_version: int | None) -> Loaded:
        self.ctx.require(Action.POSTS_WRITE)
        loaded = await self._load(post_id, lock=True)
        post = loaded.post
        check_version(post.version, expected_version)
        self._check_editable(loaded)
        brand = await self._brand(post.brand_id)
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        if "campaign_id" in changes and changes["campaign_id"] is not None:
            await self._campaign(post.brand_id, changes["campaign_id"])
        if "scheduled_at" in changes:
            changes["scheduled_at"] = _utc(changes["scheduled_at"], "scheduled_at")
            if changes["scheduled_at"] is None and post.status == VariantStatus.SCHEDULED:
                raise PostTransitionError("A scheduled post needs a time: unschedule it first (unschedulePost)")
            if changes["scheduled_at"] is not None and post.status == VariantStatus.SCHEDULED:
                _check_future(changes["scheduled_at"])
                await entitlements.check_post_schedule(
                    self.session, self.ctx.agency_id, post_id=post.id, brand_id=post.brand_id,
                    counted_at=entitlements.counted_at(post.scheduled_at, (v.status for v in loaded.variants)),
                    new_at=changes["scheduled_at"], account_ids=[v.social_account_id for v in loaded.variants])
        if "labels" in changes:
            changes["labels"] = _labels(changes["labels"])
        for key, value in changes.items():
            setattr(post, key, value)
        if "scheduled_at" in changes:
            post.time_zone = brand.time_zone
        await self._settle(loaded, brand)
        await self.ctx.audit("post.updated", "post", post.id, changes)
        return loaded

    async def delete(self, post_id: UUID, expected_version: int | None) -> None:
        self.ctx.require(Action.POSTS_WRITE)
        loaded = await self._load(post_id, lock=True)
        check_version(loaded.post.version, expected_version)
        if any(v.status in rules.LOCKED for v in loaded.variants):
            raise PostLockedError("Published history stays: a post with a published variant cannot be deleted")
        await self.session.delete(loaded.post)
        await self.ctx.audit("post.deleted", "post", post_id, {})

    async def add_variant(self, post_id: UUID, data: s.VariantIn) -> Loaded:
        self.ctx.require(Action.POSTS_WRITE)
        loaded = await self._load(post_id, lock=True)
        self._check_editable(loaded)
        if any(v.social_account_id == data.social_account_id for v in loaded.variants):
            raise ConflictError("This post already has a variant for that account; edit it instead")
        await self._add_variant(loaded, data, max((v.position for v in loaded.variants), default=-1) + 1)
        await self._settle(loaded, await self._brand(loaded.post.brand_id))
        await self.ctx.audit("post.variant_added", "post", post_id, {"social_account_id": data.social_account_id})
        return loaded

    async def update_variant(self, post_id: UUID, variant_id: UUID, data: s.VariantUpdate,
                             expected_version: int | None) -> Loaded:
        self.ctx.require(Action.POSTS_WRITE)
        loaded = await self._load(post_id, lock=True)
        check_version(loaded.post.version, expected_version)
        variant = _variant(loaded, variant_id)
        if variant.status in rules.LOCKED:
            raise PostLockedError("This variant is being published or was published")
        if data.text is not msgspec.UNSET:
            variant.text = data.text
        if data.options is not msgspec.UNSET:
            variant.options = dict(data.options)
        if data.media is not msgspec.UNSET:
            await self._set_media(loaded, variant, data.media, "media")
        await self._settle(loaded, await self._brand(loaded.post.brand_id))
        await self.ctx.audit("post.variant_updated", "post", post_id,
                             {"variant_id": variant_id, "fields": sorted(
                                 k for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET)})
        return loaded

    async def delete_variant(self, post_id: UUID, variant_id: UUID, expected_version: int | None) -> Loaded:
        self.ctx.require(Action.POSTS_WRITE)
        loaded = await self._load(post_id, lock=True)
        check_version(loaded.post.version, expected_version)
        variant = _variant(loaded, variant_id)
        if variant.status in rules.LOCKED:
            raise PostLockedError("This variant is being published or was published")
        await self.session.delete(variant)
        loaded.variants.remove(variant)
        loaded.media.pop(variant.id, None)
        await self._settle(loaded, await self._brand(loaded.post.brand_id))
        await self.ctx.audit("post.variant_removed", "post", post_id, {"variant_id": variant_id})
        return loaded

    async def schedule(self, post_id: UUID, data: s.ScheduleIn, expected_version: int | None) -> Loaded:
        """Commit to publishing at the planned time. Refused while any variant breaks its
        network's rules. Without an approval workflow (the approvals issue), scheduling approves."""
        self.ctx.require(Action.POSTS_WRITE)
        loaded = await self._load(post_id, lock=True)
        post = loaded.post
        check_version(post.version, expected_version)
        self._check_editable(loaded)
        counted = entitlements.counted_at(post.scheduled_at, (v.status for v in loaded.variants))
        if data.scheduled_at is not None:
            post.scheduled_at = _utc(data.scheduled_at, "scheduled_at")
            post.time_zone = (await self._brand(post.brand_id)).time_zone
        if post.scheduled_at is None:
            raise ValidationFailedError.field("scheduled_at", "Give the post a time to publish at")
        _check_future(post.scheduled_at)
        if not loaded.variants:
            raise PostNotReadyError("The post has no variant: add one per social account to publish to",
                                    errors=[{"field": "variants", "message": "at least one variant is needed"}])
        # The plan: not read-only, brand and accounts not frozen, room in the post's month.
        await entitlements.check_post_schedule(
            self.session, self.ctx.agency_id, post_id=post.id, brand_id=post.brand_id, counted_at=counted,
            new_at=post.scheduled_at, account_ids=[v.social_account_id for v in loaded.variants])
        brand = await self._brand(post.brand_id)
        from domain.approvals.service import ApprovalService, workflow_of

        if await workflow_of(self.ctx, brand.id) is not None:
            # Approvals: scheduling sends the post for approval first, unless the current
            # content is already approved (then it is scheduled now).
            await self._settle(loaded, brand, require_ready=True)
            review = await ApprovalService(self.ctx).schedule_with_workflow(loaded)
            loaded.review = review
            await self.session.flush()
            await self.ctx.audit("post.scheduled", "post", post.id, {"scheduled_at": post.scheduled_at,
                                                                     "review": review.status})
            return loaded
        for variant in loaded.variants:
            if variant.status in (VariantStatus.DRAFT, VariantStatus.APPROVED, VariantStatus.FAILED,
                                  VariantStatus.IN_REVIEW):
                variant.status = VariantStatus.SCHEDULED.value
        await self._settle(loaded, brand, require_ready=True)
        await self.ctx.audit("post.scheduled", "post", post.id, {"scheduled_at": post.scheduled_at})
        return loaded

    async def unschedule(self, post_id: UUID, expected_version: int | None) -> Loaded:
        self.ctx.require(Action.POSTS_WRITE)
        loaded = await self._load(post_id, lock=True)
        check_version(loaded.post.version, expected_version)
        self._check_editable(loaded)
        if loaded.post.status != VariantStatus.SCHEDULED:
            raise PostTransitionError(f"The post is {loaded.post.status}, not scheduled")
        for variant in loaded.variants:
            if variant.status == VariantStatus.SCHEDULED:
                variant.status = VariantStatus.DRAFT.value
        await self._settle(loaded, await self._brand(loaded.post.brand_id))
        await self.ctx.audit("post.unscheduled", "post", loaded.post.id, {})
        return loaded

    # --- revisions -----------------------------------------------------------------------

    async def revisions(self, post_id: UUID, page: PageRequest) -> Page[s.RevisionOut]:
        self.ctx.require(Action.POSTS_READ)
        await self._post(post_id)
        stmt = self.ctx.select(PostRevision).where(PostRevision.post_id == post_id)
        result = await paginate(self.session, stmt, resolve_sort(
            {"number": (PostRevision.number, PostRevision.id)}, "-number"), page)
        return Page([s.RevisionOut(number=r.number, content_hash=r.content_hash, author=r.author_label,
                                   created_at=r.created_at) for r in result.items], result.next_cursor)

    async def revision(self, post_id: UUID, number: int) -> s.RevisionDetail:
        self.ctx.require(Action.POSTS_READ)
        await self._post(post_id)
        r = await self._revision(post_id, number)
        return s.RevisionDetail(number=r.number, content_hash=r.content_hash, author=r.author_label,
                                created_at=r.created_at, snapshot=r.snapshot)

    async def diff(self, post_id: UUID, number: int, against: int | None) -> s.RevisionDiff:
        self.ctx.require(Action.POSTS_READ)
        await self._post(post_id)
        after = await self._revision(post_id, number)
        base = against if against is not None else number - 1
        before = await self._revision(post_id, base) if base >= 1 else None
        changes = rules.diff(before.snapshot if before else {}, after.snapshot)
        return s.RevisionDiff(post_id=post_id, from_number=base if before else 0, to_number=number,
                              changes=[s.Change(**c) for c in changes])

    async def _revision(self, post_id: UUID, number: int) -> PostRevision:
        found = await self.session.scalar(self.ctx.select(PostRevision).where(
            PostRevision.post_id == post_id, PostRevision.number == number))
        if found is None:
            raise NotFoundError(f"The post has no revision {number}")
        return found

    # --- checking and copy help --------------------------------------------------------------

    async def check(self, data: s.VariantCheck) -> s.CheckResult:
        self.ctx.require(Action.POSTS_READ)
        facts = await self._media_facts(data.brand_id, data.media, "media") if data.media else []
        draft = VariantDraft(data.network, data.text, dict(data.options), facts)
        issues = [i.public() for i in rules.variant_issues(draft)]
        limits = CATALOG[data.network].limits
        return s.CheckResult(network=data.network, ready=not rules.blocking(issues), issues=_issues_out(issues),
                             length=text_length(data.text, limits.text_counting), limit=limits.text_max,
                             unit=rules._UNITS[limits.text_counting])

    async def suggest_copy(self, post_id: UUID, data: s.CopyRequest) -> s.CopySuggestion:
        """A starting point for another network's copy: the source text fitted to the target
        (hashtags where the network uses them, length), plus the brand's voice to adapt by hand."""
        self.ctx.require(Action.POSTS_READ)
        loaded = await self._load(post_id)
        brand = await self._brand(loaded.post.brand_id, action=Action.POSTS_READ)
        source = data.text
        if data.from_variant_id is not None:
            source = _variant(loaded, data.from_variant_id).text
        if source is None:
            source = next((v.text for v in sorted(loaded.variants, key=lambda v: v.position) if v.text), "")
        profile = brand.profile or {}
        sets = {h["name"]: h["hashtags"] for h in profile.get("hashtag_sets", [])}
        unknown = [name for name in data.hashtag_sets if name not in sets]
        if unknown:
            raise ValidationFailedError.field("hashtag_sets", f"The brand has no hashtag set {unknown[0]!r} "
                                              f"(sets: {', '.join(sorted(sets)) or 'none'})")
        tags = list(dict.fromkeys(t for name in data.hashtag_sets for t in sets[name]))
        text, adaptations = adapt_copy(source, data.network, tags)
        guidelines = [g for g in (
            f"Voice: {profile['voice']}" if profile.get("voice") else "",
            f"Tone: {profile['tone_guidelines']}" if profile.get("tone_guidelines") else "",
            f"Use: {', '.join(profile['do_words'])}" if profile.get("do_words") else "",
            f"Avoid: {', '.join(profile['dont_words'])}" if profile.get("dont_words") else "",
        ) if g]
        avoided = [w for w in profile.get("dont_words", []) if re.search(rf"\b{re.escape(w)}\b", text, re.I)]
        issues = [i.public() for i in rules.variant_issues(VariantDraft(data.network, text))
                  if i.rule not in ("option_required", "media_required")]
        if avoided:
            issues.append(Issue("dont_words", "text", f"the brand avoids: {', '.join(avoided)}",
                                Severity.WARNING, count=len(avoided)).public())
        return s.CopySuggestion(network=data.network, text=text, adaptations=adaptations, guidelines=guidelines,
                                issues=_issues_out(issues))

    # --- internals ---------------------------------------------------------------------------

    async def _brand(self, brand_id: UUID, action: Action = Action.POSTS_WRITE) -> Brand:
        if not self.ctx.principal.sees_brand(brand_id):
            raise NotFoundError("No such brand")
        brand = await self.ctx.get(Brand, brand_id, what="brand")
        if action is Action.POSTS_WRITE and brand.status != BrandStatus.ACTIVE:
            raise ConflictError("The brand is archived")
        return brand

    async def _campaign(self, brand_id: UUID, campaign_id: UUID) -> Campaign:
        campaign = await self.session.scalar(self.ctx.select(Campaign).where(Campaign.id == campaign_id))
        if campaign is None or campaign.brand_id != brand_id:
            raise ValidationFailedError.field("campaign_id", "No such campaign for this brand")
        return campaign

    def _check_editable(self, loaded: Loaded) -> None:
        if any(v.status in rules.LOCKED for v in loaded.variants):
            raise PostLockedError("Part of this post is being published or was published; it can no longer change")

    async def _add_variant(self, loaded: Loaded, data: s.VariantIn, position: int, field: str = "") -> None:
        prefix = f"{field}." if field else ""
        account = await self.session.scalar(self.ctx.select(SocialAccount).where(
            SocialAccount.id == data.social_account_id))
        if account is None or account.brand_id != loaded.post.brand_id:
            raise ValidationFailedError.field(f"{prefix}social_account_id", "No such social account for this brand")
        if account.status == "revoked":
            raise ValidationFailedError.field(f"{prefix}social_account_id", "This account was unlinked; link it again")
        variant = PostVariant(
            agency_id=self.ctx.agency_id, post_id=loaded.post.id, social_account_id=account.id,
            network=account.network, position=position, text=data.text, options=dict(data.options),
            status=VariantStatus.DRAFT.value, content_hash="", issues=[],
        )
        self.session.add(variant)
        await self.session.flush()
        loaded.variants.append(variant)
        await self._set_media(loaded, variant, data.media, f"{prefix}media")

    async def _set_media(self, loaded: Loaded, variant: PostVariant, media: list[s.MediaRef], field: str) -> None:
        ids = [m.media_id for m in media]
        if len(set(ids)) != len(ids):
            raise ValidationFailedError.field(field, "The same media appears twice")
        await self._media_assets(loaded.post.brand_id, ids, field)
        await self.session.execute(delete(PostVariantMedia).where(PostVariantMedia.variant_id == variant.id,
                                                                  PostVariantMedia.agency_id == self.ctx.agency_id))
        rows = [PostVariantMedia(agency_id=self.ctx.agency_id, variant_id=variant.id, media_id=m.media_id,
                                 position=i, alt_text=m.alt_text) for i, m in enumerate(media)]
        self.session.add_all(rows)
        loaded.media[variant.id] = rows

    async def _media_assets(self, brand_id: UUID | None, ids: list[UUID], field: str) -> dict[UUID, MediaAsset]:
        if not ids:
            return {}
        stmt = self.ctx.select(MediaAsset).where(MediaAsset.id.in_(ids))
        found = {m.id: m for m in (await self.session.scalars(stmt)).all()
                 if brand_id is None or m.brand_id == brand_id}
        for i, media_id in enumerate(ids):
            if media_id not in found or not self.ctx.principal.sees_brand(found[media_id].brand_id):
                raise ValidationFailedError.field(f"{field}[{i}].media_id", "No such media in this brand's library")
        return found

    async def _media_facts(self, brand_id: UUID | None, refs: list[s.MediaRef], field: str) -> list[MediaFacts]:
        assets = await self._media_assets(brand_id, [r.media_id for r in refs], field)
        return [_facts(assets[r.media_id], r.alt_text) for r in refs]

    async def _settle(self, loaded: Loaded, brand: Brand, *, require_ready: bool = False) -> None:
        """After any change: validate every variant, hash, derive the status, and record a
        revision when anything changed. A scheduled post must stay valid: an edit that
        breaks a network's rules is refused and nothing is saved."""
        post = loaded.post
        all_ids = [m.media_id for rows in loaded.media.values() for m in rows]
        assets = await self._media_assets(None, list(dict.fromkeys(all_ids)), "media") if all_ids else {}
        same = rules.same_copy_warnings([(str(v.id), v.text) for v in loaded.variants])
        for v in loaded.variants:
            rows = sorted(loaded.media.get(v.id, []), key=lambda m: m.position)
            draft = VariantDraft(Network(v.network), v.text, dict(v.options or {}),
                                 [_facts(assets[m.media_id], m.alt_text) for m in rows])
            found = rules.variant_issues(draft)
            if str(v.id) in same:
                found.append(same[str(v.id)])
            v.issues = [i.public() for i in found]
            v.content_hash = rules.content_hash(_variant_snapshot(v, rows))
        scheduled = post.status == VariantStatus.SCHEDULED or any(
            v.status == VariantStatus.SCHEDULED for v in loaded.variants)
        if require_ready or scheduled:
            problems = [{"field": f"variants[{i}].{issue['field']}", "message": issue["message"]}
                        for i, v in enumerate(sorted(loaded.variants, key=lambda v: v.position))
                        for issue in rules.blocking(v.issues)]
            if problems:
                raise PostNotReadyError(
                    "A scheduled post must keep to its networks' rules: " + problems[0]["message"]
                    if not require_ready else "Fix these before scheduling: " + problems[0]["message"],
                    errors=problems)
        post.status = rules.post_status(v.status for v in loaded.variants)
        snapshot = self._snapshot(loaded)
        digest = rules.content_hash({k: snapshot[k] for k in ("scheduled_at", "variants")})
        last = await self.session.scalar(self.ctx.select(PostRevision, PostRevision.snapshot).where(
            PostRevision.post_id == post.id, PostRevision.number == post.revision)) if post.revision else None
        if last != snapshot:
            post.revision += 1
            self.session.add(PostRevision(
                agency_id=self.ctx.agency_id, post_id=post.id, number=post.revision, content_hash=digest,
                snapshot=snapshot, author_id=self.ctx.principal.user_id, author_label=self.ctx.principal.label))
        changed = bool(post.content_hash) and post.content_hash != digest
        post.content_hash = digest
        post.updated_at = now()  # the post's version moves with any change to its variants
        await self.session.flush()
        if changed:
            # An approval binds to the content it saw: the approvals context supersedes it and,
            # with a workflow, sends the new revision back to review.
            from domain.approvals.service import ApprovalService

            review = await ApprovalService(self.ctx).content_changed(loaded)
            if review is not None:
                loaded.review = review
                await self.session.flush()

    def _snapshot(self, loaded: Loaded) -> dict[str, Any]:
        post = loaded.post
        return {
            "title": post.title,
            "labels": list(post.labels or []),
            "campaign_id": str(post.campaign_id) if post.campaign_id else None,
            "scheduled_at": post.scheduled_at.isoformat() if post.scheduled_at else None,
            "time_zone": post.time_zone,
            "variants": [
                {"key": str(v.social_account_id), "network": v.network,
                 **_variant_snapshot(v, sorted(loaded.media.get(v.id, []), key=lambda m: m.position))}
                for v in sorted(loaded.variants, key=lambda v: v.position)
            ],
        }


def _variant_snapshot(v: PostVariant, media: list[PostVariantMedia]) -> dict[str, Any]:
    return {"text": v.text, "options": dict(v.options or {}),
            "media": [{"media_id": str(m.media_id), "alt_text": m.alt_text} for m in media]}


def _facts(asset: MediaAsset, alt_text: str) -> MediaFacts:
    return MediaFacts(kind=asset.kind, content_type=asset.content_type, size_bytes=asset.size_bytes,
                      width=asset.width, height=asset.height, duration_ms=asset.duration_ms,
                      alt_text=alt_text or asset.alt_text)


def _variant(loaded: Loaded, variant_id: UUID) -> PostVariant:
    for v in loaded.variants:
        if v.id == variant_id:
            return v
    raise NotFoundError("No such variant on this post")


def _labels(labels: list[str]) -> list[str]:
    return list(dict.fromkeys(label.strip().lower() for label in labels if label.strip()))


def _check_future(instant: datetime) -> None:
    if instant <= now() + timedelta(seconds=30):
        raise ValidationFailedError.field("scheduled_at", "The time to publish at has passed; choose a later one")


_HASHTAG = re.compile(r"(?<![\w#])#\w+")
# Where hashtags read as noise, a suggestion drops them (the team can add them back).
_FEW_HASHTAGS = {Network.LINKEDIN: 3, Network.FACEBOOK: 3, Network.X: 2, Network.THREADS: 1, Network.YOUTUBE: 3,
                 Network.PINTEREST: 5, Network.TIKTOK: 5, Network.INSTAGRAM: 30}


def adapt_copy(source: str, network: Network, extra_tags: list[str]) -> tuple[str, list[str]]:
    limits = CATALOG[network].limits
    adaptations: list[str] = []
    body_tags = _HASHTAG.findall(source)
    text = _HASHTAG.sub("", source)
    text = re.sub(r"[ \t]+\n", "\n", re.sub(r"[ \t]{2,}", " ", text)).strip()
    tags = list(dict.fromkeys([*body_tags, *[t if t.startswith("#") else f"#{t}" for t in extra_tags]]))
    keep = _FEW_HASHTAGS[network] if limits.hashtags_max is None else min(limits.hashtags_max, _FEW_HASHTAGS[network])
    if len(tags) > keep:
        adaptations.append(f"kept {keep} of {len(tags)} hashtags, as {CATALOG[network].name} reads best with few")
        tags = tags[:keep]
    if extra_tags:
        adaptations.append("added the brand's hashtag sets")
    tail = (" ".join(tags)) if tags else ""
    joiner = "\n\n" if network in (Network.INSTAGRAM, Network.FACEBOOK, Network.LINKEDIN, Network.TIKTOK) else " "
    full = f"{text}{joiner}{tail}" if tail and text else (text or tail)
    if text_length(full, limits.text_counting) > limits.text_max:
        suffix = f"…{joiner}{tail}" if tail else "…"
        budget = limits.text_max - text_length(suffix, limits.text_counting)
        words = text.split(" ")

        def fits(n: int) -> bool:
            return text_length(" ".join(words[:n]).rstrip(" ,.;:"), limits.text_counting) <= budget

        low, high = 0, len(words)  # the most words that fit: a binary search, lengths only grow
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if fits(mid) else (low, mid - 1)
        cut = " ".join(words[:low]).rstrip(" ,.;:")
        full = cut + suffix if cut else (tail or "")
        adaptations.append(f"shortened to {limits.text_max} {rules._UNITS[limits.text_counting]}")
    return full, adaptations
