"""Client share links: capability URLs for chosen posts or a brand's date range.

The token is an OpaqueToken (`chs_<agency hex>_<256 random bits>`): the agency part sets the
tenant for row-level security, the SHA-256 of the whole token finds the link. Only the hash
is stored. A reviewer gives a name and email once per link; they are remembered by a
reviewer token (HMAC over link id and reviewer id, nothing stored) that the page keeps in a
cookie and a portal sends as a header. Forms carry a CSRF token derived from it.
"""

from __future__ import annotations

import base64
import calendar as month_calendar
import hashlib
import hmac
import re
from html import escape
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from domain.agencies.models import Agency
from domain.agencies.rules import Action
from domain.approvals import share_schemas as s
from domain.approvals.models import ApprovalDecision, ApprovalRequest, PostComment, ShareLink, ShareReviewer
from domain.approvals.rules import Decision, RequestStatus, StepKind
from domain.billing import entitlements
from domain.billing.plans import Limit
from domain.brands.models import Brand
from domain.calendar import rules as calendar_rules
from domain.content.models import Post, PostVariant, PostVariantMedia
from domain.core.clock import now
from domain.core.context import Context
from domain.core.mail import Email, Mailer
from domain.core.errors import DomainError, NotFoundError, PermissionDeniedError, ValidationFailedError
from domain.core.pagination import Page, PageRequest, paginate, resolve_sort
from domain.core.security import OpaqueToken
from domain.media import links as media_links
from domain.media.models import MediaAsset
from domain.networks.adapters.base import Network
from domain.networks.catalog import CATALOG
from domain.networks.models import SocialAccount

SHARE_PREFIX = "chs"
REVIEWER_HEADER = "X-Share-Reviewer"
# A link's last use is stamped at most this often.
STAMP_EVERY = timedelta(minutes=1)
MEDIA_URL_SECONDS = 3600
DEFAULT_PRIMARY = "#1F2937"
DEFAULT_SECONDARY = "#F3F4F6"
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_PURPOSE = b"chorus/share-reviewer/v1"
SORTS = {"created_at": (ShareLink.created_at, ShareLink.id)}


class ShareLinkGoneError(DomainError):
    status = 410
    slug = "share-link-gone"
    title = "This link is no longer valid"


class SharePermissionError(PermissionDeniedError):
    slug = "share-permission"
    title = "This link does not allow that"


class ReviewerRequiredError(DomainError):
    status = 401
    slug = "share-reviewer-required"
    title = "Give your name and email first"


# --- the token and the reviewer's proof -----------------------------------------------------


def parse_token(value: str) -> OpaqueToken | None:
    return OpaqueToken.parse(value, SHARE_PREFIX)


def reviewer_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def _mac(key: bytes, message: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()


def reviewer_token(key: bytes, link_id: UUID, reviewer_id: UUID) -> str:
    return f"{reviewer_id.hex}.{_mac(key, link_id.bytes + reviewer_id.bytes)}"


def reviewer_id_from(key: bytes, link_id: UUID, token: str | None) -> UUID | None:
    """The reviewer a token names, if we signed it for this link."""
    if not token or len(token) > 120:
        return None
    raw_id, _, mac = token.partition(".")
    try:
        reviewer_id = UUID(hex=raw_id)
    except ValueError:
        return None
    if not hmac.compare_digest(mac, _mac(key, link_id.bytes + reviewer_id.bytes)):
        return None
    return reviewer_id


def csrf_token(key: bytes, reviewer: str) -> str:
    return _mac(key, b"csrf:" + reviewer.encode())


def csrf_ok(key: bytes, reviewer: str | None, given: str | None) -> bool:
    return bool(reviewer and given) and hmac.compare_digest(csrf_token(key, reviewer or ""), given or "")


def link_state(link: ShareLink, moment: datetime | None = None) -> str:
    if link.revoked_at is not None:
        return "revoked"
    return "expired" if link.expires_at <= (moment or now()) else "active"


def _link_out(link: ShareLink, cls: Any = s.ShareLinkOut, **extra: Any) -> Any:
    return cls(id=link.id, brand_id=link.brand_id, label=link.label, permission=s.SharePermission(link.permission),
               post_ids=list(link.post_ids or []), range_from=link.range_start, range_to=link.range_end,
               expires_at=link.expires_at, revoked_at=link.revoked_at, last_used_at=link.last_used_at,
               created_by_id=link.created_by_id, created_at=link.created_at, state=link_state(link), **extra)


def _decision_out(d: ApprovalDecision) -> s.ShareDecisionOut:
    return s.ShareDecisionOut(post_id=d.post_id, decision=d.decision, comment=d.comment,
                              reviewer_name=d.reviewer_name, reviewer_email=d.reviewer_email, created_at=d.created_at)


# --- the team's side ------------------------------------------------------------------------


def share_email(to: str, *, agency_name: str, sender: str, brand_name: str, link: ShareLink, url: str,
                posts: int) -> Email:
    """The link, sent to the client in the agency's name (never Chorus's: agencies may be
    white-labelled). Plain text and an escaped HTML part."""
    what = (f"{posts} post{'s' if posts != 1 else ''} for {brand_name}" if not link.range_start else
            f"the plan for {brand_name} from {link.range_start:%d %b %Y} to {link.range_end:%d %b %Y}")
    asks = {"approve": "to approve or ask for changes", "comment": "to comment on",
            "view": "to look at"}[link.permission]
    expires = f"{link.expires_at:%d %b %Y}"
    subject = f"{agency_name}: {what} {asks}"[:200]
    text = (f"Hello,\n\n{sender} at {agency_name} shared {what} with you, {asks}.\n\n"
            f"Open it here (no account needed):\n{url}\n\n"
            f"The link works until {expires}. Please do not forward it: anyone with it can see the posts.\n")
    html = (f"<p>Hello,</p><p>{escape(sender)} at {escape(agency_name)} shared {escape(what)} with you, "
            f"{escape(asks)}.</p><p><a href=\"{escape(url)}\">Open the posts</a> (no account needed)</p>"
            f"<p>The link works until {escape(expires)}. Please do not forward it: anyone with it can see the "
            f"posts.</p>")
    return Email(to=to, subject=subject, text=text, html=html)


@dataclass
class ShareLinkService:
    ctx: Context
    mailer: Mailer | None = None

    async def create(self, brand_id: UUID, data: s.ShareLinkCreate, base_url: str) -> s.ShareLinkCreated:
        self.ctx.require(Action.POSTS_WRITE)
        brand = await self._brand(brand_id)
        if (data.posts is None) == (data.range is None):
            raise ValidationFailedError.field("posts", "Give either `posts` or `range`, not both")
        post_ids: list[UUID] = []
        start = end = None
        if data.posts is not None:
            post_ids = list(dict.fromkeys(data.posts))
            found = set((await self.ctx.session.scalars(self.ctx.select(Post, Post.id).where(
                Post.id.in_(post_ids), Post.brand_id == brand.id))).all())
            missing = [str(p) for p in post_ids if p not in found]
            if missing:
                raise ValidationFailedError.field("posts", f"Not posts of this brand: {', '.join(missing[:5])}")
        else:
            assert data.range is not None
            start, end = data.range.from_, data.range.to
            if end < start:
                raise ValidationFailedError.field("range.to", "`to` is before `from`")
            if (end - start).days + 1 > s.MAX_RANGE_DAYS:
                raise ValidationFailedError.field("range", f"At most {s.MAX_RANGE_DAYS} days")
        await entitlements.require_not_frozen(self.ctx.session, self.ctx.agency_id, brand_ids=[brand.id])
        await entitlements.check(self.ctx.session, self.ctx.agency_id, Limit.SHARE_LINKS)
        token = OpaqueToken.new(SHARE_PREFIX, self.ctx.agency_id)
        link = ShareLink(agency_id=self.ctx.agency_id, brand_id=brand.id, token_hash=token.hashed,
                         label=data.label.strip(), permission=data.permission.value, post_ids=post_ids,
                         range_start=start, range_end=end,
                         expires_at=(now() + timedelta(days=data.expires_in_days)).replace(microsecond=0),
                         created_by_id=self.ctx.principal.user_id)
        self.ctx.session.add(link)
        await self.ctx.session.flush()
        await self.ctx.session.refresh(link)
        await self.ctx.audit("share_link.created", "share_link", link.id, {
            "brand_id": brand.id, "permission": link.permission, "posts": len(post_ids),
            "range": [start, end] if start else None, "expires_at": link.expires_at, "emails": data.emails})
        url = f"{base_url.rstrip('/')}/share/{token.value}"
        if data.emails and self.mailer is not None:
            # Sent once the link is committed. Only the token's hash is stored, so the link
            # cannot be sent again later: create a new one for a new recipient.
            agency = await self.ctx.session.get(Agency, self.ctx.agency_id)
            mails = [share_email(to, agency_name=agency.name if agency else "", sender=self.ctx.principal.label,
                                 brand_name=brand.name, link=link, url=url, posts=len(post_ids))
                     for to in dict.fromkeys(e.lower() for e in data.emails)]
            mailer = self.mailer

            async def send_all() -> None:
                for mail in mails:
                    await mailer.send(mail)

            self.ctx.after_commit.append(send_all)
        return _link_out(link, s.ShareLinkCreated, url=url)

    async def list(self, page: PageRequest, brand_id: UUID | None) -> Page[s.ShareLinkOut]:
        self.ctx.require(Action.POSTS_READ)
        stmt = self.ctx.visible_brands(self.ctx.select(ShareLink), ShareLink.brand_id)
        if brand_id is not None:
            stmt = stmt.where(ShareLink.brand_id == brand_id)
        result = await paginate(self.ctx.session, stmt, resolve_sort(SORTS, page.sort or "-created_at"), page)
        return Page([_link_out(link) for link in result.items], result.next_cursor)

    async def read(self, link_id: UUID) -> s.ShareLinkDetail:
        self.ctx.require(Action.POSTS_READ)
        link = await self._link(link_id)
        reviewers = (await self.ctx.session.scalars(self.ctx.select(ShareReviewer).where(
            ShareReviewer.share_link_id == link.id).order_by(ShareReviewer.created_at, ShareReviewer.id))).all()
        decisions = (await self.ctx.session.scalars(self.ctx.select(ApprovalDecision).where(
            ApprovalDecision.share_link_id == link.id)
            .order_by(ApprovalDecision.created_at, ApprovalDecision.id))).all()
        return _link_out(link, s.ShareLinkDetail, reviewers=[
            s.ShareReviewerOut(id=r.id, name=r.name, email=r.email, created_at=r.created_at) for r in reviewers],
            decisions=[_decision_out(d) for d in decisions])

    async def revoke(self, link_id: UUID) -> None:
        self.ctx.require(Action.POSTS_WRITE)
        link = await self._link(link_id, lock=True)
        if link.revoked_at is None:
            link.revoked_at = now()
            await self.ctx.audit("share_link.revoked", "share_link", link.id, {"brand_id": link.brand_id})
            await self.ctx.session.flush()
            await entitlements.thaw_after_freeing(self.ctx.session, self.ctx.agency_id)

    async def _brand(self, brand_id: UUID) -> Brand:
        brand = await self.ctx.session.scalar(self.ctx.select(Brand).where(Brand.id == brand_id))
        if brand is None or not self.ctx.principal.sees_brand(brand.id):
            raise NotFoundError("No such brand")
        return brand

    async def _link(self, link_id: UUID, *, lock: bool = False) -> ShareLink:
        link = await self.ctx.get(ShareLink, link_id, lock=lock, what="share link")
        if not self.ctx.principal.sees_brand(link.brand_id):
            raise NotFoundError("No such share link")
        return link


# --- the client's side ----------------------------------------------------------------------


@dataclass
class SharedService:
    """What a share link's holder sees and does. `ctx` is a transaction whose tenant is the
    token's agency; its principal can perform no team action."""

    ctx: Context
    reviewer_key: bytes
    media_key: bytes

    async def open(self, token: OpaqueToken) -> ShareLink:
        """The live link. Unknown and tampered tokens are 404; expired and revoked ones 410,
        and neither says whose link it was."""
        link = await self.ctx.session.scalar(self.ctx.select(ShareLink).where(
            ShareLink.token_hash == token.hashed))
        if link is None:
            raise NotFoundError("This link is not valid")
        moment = now()
        # A link frozen by the plan answers like an inactive one: nothing about billing leaks.
        if link_state(link, moment) != "active" or link.frozen_at is not None:
            raise ShareLinkGoneError()
        if link.last_used_at is None or moment - link.last_used_at > STAMP_EVERY:
            await self.ctx.session.execute(update(ShareLink).where(
                ShareLink.id == link.id, ShareLink.agency_id == self.ctx.agency_id).values(last_used_at=moment))
        return link

    async def reviewer(self, link: ShareLink, token: str | None) -> ShareReviewer | None:
        reviewer_id = reviewer_id_from(self.reviewer_key, link.id, token)
        if reviewer_id is None:
            return None
        return await self.ctx.session.scalar(self.ctx.select(ShareReviewer).where(
            ShareReviewer.id == reviewer_id, ShareReviewer.share_link_id == link.id))

    async def register(self, link: ShareLink, data: s.ReviewerIn) -> tuple[ShareReviewer, str]:
        reviewer = ShareReviewer(agency_id=self.ctx.agency_id, share_link_id=link.id, name=data.name.strip(),
                                 email=data.email.strip().lower())
        if not reviewer.name:
            raise ValidationFailedError.field("name", "Give your name")
        self.ctx.session.add(reviewer)
        await self.ctx.session.flush()
        return reviewer, reviewer_token(self.reviewer_key, link.id, reviewer.id)

    async def post_in_link(self, link: ShareLink, post_id: UUID) -> Post:
        post = await self.ctx.session.scalar(self.ctx.select(Post).where(
            Post.id == post_id, Post.brand_id == link.brand_id))
        if post is None:
            raise NotFoundError("No such post on this link")
        if link.range_start is not None and link.range_end is not None:
            brand = await self._brand(link)
            lo, hi = calendar_rules.day_bounds(link.range_start, link.range_end, ZoneInfo(brand.time_zone))
            if post.scheduled_at is None or not lo <= post.scheduled_at < hi:
                raise NotFoundError("No such post on this link")
        elif post.id not in set(link.post_ids or ()):
            raise NotFoundError("No such post on this link")
        return post

    async def decide(self, link: ShareLink, reviewer: ShareReviewer | None, post_id: UUID,
                     data: s.SharedDecisionIn, *, ip: str, user_agent: str) -> ApprovalRequest:
        if link.permission != s.SharePermission.APPROVE:
            raise SharePermissionError("This link lets you view or comment, not decide")
        if reviewer is None:
            raise ReviewerRequiredError()
        comment = clean_text(data.comment)
        if data.decision is s.ClientDecision.REQUEST_CHANGES and not comment:
            raise ValidationFailedError.field("comment", "Say what should change")
        await self.post_in_link(link, post_id)
        from domain.approvals.service import ApprovalService

        return await ApprovalService(self.ctx).decide_as_client(
            share_link=link, reviewer=reviewer, post_id=post_id, decision=Decision(data.decision.value),
            comment=comment, ip=ip[:64], user_agent=user_agent[:500])

    async def comment(self, link: ShareLink, reviewer: ShareReviewer | None, post_id: UUID,
                      data: s.SharedCommentIn) -> Any:
        if link.permission not in (s.SharePermission.COMMENT, s.SharePermission.APPROVE):
            raise SharePermissionError("This link lets you view, not comment")
        if reviewer is None:
            raise ReviewerRequiredError()
        await self.post_in_link(link, post_id)
        if data.variant_id is not None:
            found = await self.ctx.session.scalar(self.ctx.select(PostVariant, PostVariant.id).where(
                PostVariant.id == data.variant_id, PostVariant.post_id == post_id))
            if found is None:
                raise ValidationFailedError.field("variant_id", "Not a variant of this post")
        if data.parent_id is not None:
            found = await self.ctx.session.scalar(self.ctx.select(PostComment, PostComment.id).where(
                PostComment.id == data.parent_id, PostComment.post_id == post_id,
                PostComment.visibility == "client"))
            if found is None:
                raise ValidationFailedError.field("parent_id", "Not a comment on this post")
        from domain.approvals.service import CommentService

        return await CommentService(self.ctx).add_client_comment(
            share_link=link, reviewer=reviewer, post_id=post_id, body=clean_text(data.body), parent_id=data.parent_id,
            variant_id=data.variant_id)

    async def view(self, link: ShareLink, media_base: str = "") -> s.SharedView:
        brand = await self._brand(link)
        zone = ZoneInfo(brand.time_zone)
        agency = await self.ctx.session.get(Agency, self.ctx.agency_id)
        stmt = self.ctx.select(Post).where(Post.brand_id == link.brand_id)
        if link.range_start is not None and link.range_end is not None:
            lo, hi = calendar_rules.day_bounds(link.range_start, link.range_end, zone)
            stmt = stmt.where(Post.scheduled_at >= lo, Post.scheduled_at < hi)
        else:
            stmt = stmt.where(Post.id.in_(list(link.post_ids or [])))
        posts = (await self.ctx.session.scalars(
            stmt.order_by(Post.scheduled_at.asc().nulls_last(), Post.created_at, Post.id))).all()
        ids = [p.id for p in posts]
        variants = (await self.ctx.session.scalars(self.ctx.select(PostVariant).where(
            PostVariant.post_id.in_(ids)).order_by(PostVariant.position, PostVariant.created_at))).all() if ids else []
        accounts = {a.id: a for a in (await self.ctx.session.scalars(self.ctx.select(SocialAccount).where(
            SocialAccount.id.in_({v.social_account_id for v in variants})))).all()} if variants else {}
        media_rows = (await self.ctx.session.execute(
            select(PostVariantMedia, MediaAsset).join(MediaAsset, (MediaAsset.id == PostVariantMedia.media_id)
                                                      & (MediaAsset.agency_id == PostVariantMedia.agency_id))
            .where(PostVariantMedia.agency_id == self.ctx.agency_id,
                   PostVariantMedia.variant_id.in_([v.id for v in variants]))
            .order_by(PostVariantMedia.position))).all() if variants else []
        requests = (await self.ctx.session.scalars(self.ctx.select(ApprovalRequest).where(
            ApprovalRequest.post_id.in_(ids), ApprovalRequest.status == RequestStatus.PENDING.value))).all() if ids else []
        decisions = (await self.ctx.session.scalars(self.ctx.select(ApprovalDecision).where(
            ApprovalDecision.share_link_id == link.id, ApprovalDecision.post_id.in_(ids))
            .order_by(ApprovalDecision.created_at, ApprovalDecision.id))).all() if ids else []
        comments = (await self.ctx.session.scalars(self.ctx.select(PostComment).where(
            PostComment.post_id.in_(ids), PostComment.visibility == "client")
            .order_by(PostComment.created_at, PostComment.id))).all() if ids else []
        expires = int((now() + timedelta(seconds=MEDIA_URL_SECONDS)).timestamp())
        media_by_variant: dict[UUID, list[s.SharedMedia]] = {}
        for attached, asset in media_rows:
            token = media_links.sign(self.media_key, self.ctx.agency_id, asset.id, expires)
            media_by_variant.setdefault(attached.variant_id, []).append(s.SharedMedia(
                kind=asset.kind, url=f"{media_base}/media/{token}", alt_text=attached.alt_text or asset.alt_text,
                width=asset.width, height=asset.height))
        awaiting = {r.post_id for r in requests if _client_step(r)}
        shared_posts = []
        for post in posts:
            local = post.scheduled_at.astimezone(zone) if post.scheduled_at is not None else None
            shared_posts.append(s.SharedPost(
                id=post.id, title=post.title, status=post.status, scheduled_at=post.scheduled_at,
                local_date=local.date() if local else None,
                local_time=calendar_rules.hhmm(local.time()) if local else None,
                local_label=f"{local.strftime('%A %-d %B %Y, %H:%M')} ({brand.time_zone})" if local else None,
                variants=[_variant_out(v, accounts.get(v.social_account_id), media_by_variant.get(v.id, []))
                          for v in variants if v.post_id == post.id],
                awaiting_client=post.id in awaiting,
                decisions=[_decision_out(d) for d in decisions if d.post_id == post.id],
                comments=[s.SharedComment(id=c.id, author=c.author_name, body=c.body, created_at=c.created_at,
                                          parent_id=c.parent_id, variant_id=c.variant_id)
                          for c in comments if c.post_id == post.id]))
        return s.SharedView(
            brand_name=brand.name, time_zone=brand.time_zone,
            branding=branding_of(agency, white_label=(await entitlements.load(self.ctx.session, self.ctx.agency_id))
                                 .plan.white_label),
            permission=s.SharePermission(link.permission), expires_at=link.expires_at,
            range_from=link.range_start, range_to=link.range_end, posts=shared_posts,
            calendar=month_grid(link.range_start, link.range_end, shared_posts)
            if link.range_start is not None and link.range_end is not None else [])

    async def _brand(self, link: ShareLink) -> Brand:
        brand = await self.ctx.session.scalar(self.ctx.select(Brand).where(Brand.id == link.brand_id))
        if brand is None:
            raise NotFoundError("This link is not valid")
        return brand


def clean_text(value: str | None) -> str:
    """Browsers send form text with CRLF line ends; keep one kind."""
    return (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def _client_step(request: ApprovalRequest) -> bool:
    steps = request.steps or []
    return 0 <= request.current_step < len(steps) and steps[request.current_step].get("kind") == StepKind.CLIENT


def _initials(name: str) -> str:
    words = [w for w in re.split(r"\s+", name.strip()) if w]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def _variant_out(variant: PostVariant, account: SocialAccount | None, media: list[s.SharedMedia]) -> s.SharedVariant:
    network = Network(variant.network)
    display = (account.display_name or account.handle) if account else ""
    handle = (account.handle if account else "").lstrip("@")
    first_comment = (variant.options or {}).get("first_comment")
    return s.SharedVariant(
        id=variant.id, network=network, network_name=CATALOG[network].name, display_name=display or "",
        handle=handle, initials=_initials(display or handle), text=variant.text,
        first_comment=first_comment if isinstance(first_comment, str) and first_comment.strip() else None,
        media=media)


def branding_of(agency: Agency | None, *, white_label: bool = True) -> s.SharedBranding:
    """The agency's look. A logo makes the page white-labelled: no mention of Chorus. On a
    plan without white-label (`white_label=False`) the page keeps Chorus's own look."""
    raw = ((agency.branding if agency else None) or {}) if white_label else {}
    logo = raw.get("logo_url") if isinstance(raw.get("logo_url"), str) else None
    primary, secondary = raw.get("primary_color"), raw.get("secondary_color")
    return s.SharedBranding(
        agency_name=agency.name if agency else "", logo_url=logo,
        primary_color=primary if isinstance(primary, str) and _HEX.match(primary) else DEFAULT_PRIMARY,
        secondary_color=secondary if isinstance(secondary, str) and _HEX.match(secondary) else DEFAULT_SECONDARY,
        white_label=bool(logo))


def month_grid(first: date, last: date, posts: list[s.SharedPost]) -> list[s.ShareCalendarMonth]:
    """Monday-first month grids covering the range, each day with its posts."""
    by_day: dict[date, list[UUID]] = {}
    for post in posts:
        if post.local_date is not None:
            by_day.setdefault(post.local_date, []).append(post.id)
    months = []
    year, month = first.year, first.month
    grid = month_calendar.Calendar(firstweekday=0)
    while (year, month) <= (last.year, last.month):
        weeks = [[s.ShareCalendarDay(day=d if d.month == month else None, in_range=first <= d <= last and d.month == month,
                                post_ids=by_day.get(d, []) if d.month == month else [])
                  for d in week] for week in grid.monthdatescalendar(year, month)]
        months.append(s.ShareCalendarMonth(title=date(year, month, 1).strftime("%B %Y"), weeks=weeks))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
