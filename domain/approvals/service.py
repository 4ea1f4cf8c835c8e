"""Approval workflows, the requests that walk one post revision through them, the decisions
(the audit trail) and comments on posts.

Who may act: members through the API (their role and brands), and client reviewers through
a share link (domain/approvals/share.py calls `decide_as_client` and `add_client_comment`
with a Principal that has no user, only the agency and a label).

A request binds to the revision and content hash it was submitted with. PostService calls
`content_changed` whenever a post's content hash moves: a pending or approved request is
superseded and, while the brand has a workflow, the new revision is submitted again by
itself. `is_publishable` is what the publishing worker asks before sending a post out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.agencies.models import Membership, User
from domain.agencies.rules import Action
from domain.agencies.service import check_version
from domain.approvals import schemas as s
from domain.approvals.models import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalWorkflow,
    PostComment,
    ShareLink,
    ShareReviewer,
)
from domain.approvals.rules import (
    Decision,
    Event,
    RequestStatus,
    StepKind,
    StepRule,
    TransitionError,
    awaiting,
    event_for,
    may_review,
    mentions_in,
    reminder_due,
    step_passes,
    transition,
)
from domain.billing import entitlements
from domain.brands.models import Brand
from domain.content import rules as content_rules
from domain.content.models import Post, PostVariant
from domain.content.rules import VariantStatus
from domain.core.clock import now
from domain.core.context import Context
from domain.core.errors import ConflictError, DomainError, NotFoundError, PaymentRequiredError, ValidationFailedError
from domain.core.pagination import Page, PageRequest, paginate, resolve_sort
from domain.notifications.service import notify
from domain.webhooks.service import emit

if TYPE_CHECKING:
    from domain.content.service import Loaded

REQUEST_SORTS = {
    "created_at": (ApprovalRequest.created_at, ApprovalRequest.id),
    "updated_at": (ApprovalRequest.updated_at, ApprovalRequest.id),
}
COMMENT_SORTS = {"created_at": (PostComment.created_at, PostComment.id)}


class ApprovalStateError(ConflictError):
    slug = "approval-state"
    title = "The approval request cannot take that step"


class AlreadyInReviewError(ConflictError):
    slug = "already-in-review"
    title = "The post already has a pending approval request"


class NoWorkflowError(ConflictError):
    slug = "no-approval-workflow"
    title = "The brand has no approval workflow"


class NotAReviewerError(DomainError):
    status = 403
    slug = "not-a-reviewer"
    title = "You are not a reviewer of the request's current step"


class NotAwaitingClientError(ConflictError):
    slug = "not-awaiting-client"
    title = "The request is not awaiting the client"


@dataclass
class Review:
    """What a change did to a post's review, for the post's answer (PostOut.review)."""

    request_id: UUID | None
    status: str
    message: str


def step_out(step: dict[str, Any]) -> s.StepOut:
    return s.StepOut(name=step.get("name", ""), kind=step.get("kind", "internal"),
                     roles=list(step.get("roles") or []), member_ids=[UUID(str(m)) for m in step.get("member_ids") or []],
                     rule=step.get("rule", "any"))


def workflow_out(wf: ApprovalWorkflow) -> s.WorkflowOut:
    return s.WorkflowOut(id=wf.id, brand_id=wf.brand_id, steps=[step_out(x) for x in wf.steps],
                         remind_after_hours=wf.remind_after_hours, expire_after_hours=wf.expire_after_hours,
                         version=wf.version, created_at=wf.created_at, updated_at=wf.updated_at)


def decision_out(d: ApprovalDecision, steps: list[dict[str, Any]]) -> s.DecisionOut:
    name = steps[d.step].get("name", "") if 0 <= d.step < len(steps) else ""
    return s.DecisionOut(id=d.id, step=d.step, step_name=name, decision=d.decision, comment=d.comment,
                         revision=d.revision, content_hash=d.content_hash, reviewer_type=d.reviewer_type,
                         user_id=d.user_id, share_link_id=d.share_link_id, reviewer_name=d.reviewer_name,
                         reviewer_email=d.reviewer_email, ip=d.ip, user_agent=d.user_agent, created_at=d.created_at)


def request_out(req: ApprovalRequest, decisions: list[ApprovalDecision]) -> s.RequestOut:
    return s.RequestOut(
        id=req.id, brand_id=req.brand_id, post_id=req.post_id, revision=req.revision, content_hash=req.content_hash,
        status=req.status, current_step=req.current_step,
        awaiting=awaiting(req.status, req.steps, req.current_step), steps=[step_out(x) for x in req.steps],
        then_schedule=req.then_schedule, submitted_by_id=req.submitted_by_id, submitted_label=req.submitted_label,
        decided_at=req.decided_at, reminded_at=req.reminded_at, expires_at=req.expires_at,
        decisions=[decision_out(d, req.steps) for d in sorted(decisions, key=lambda d: (d.created_at, d.id))],
        version=req.version, created_at=req.created_at, updated_at=req.updated_at)


def comment_out(c: PostComment) -> s.CommentOut:
    return s.CommentOut(id=c.id, post_id=c.post_id, variant_id=c.variant_id, parent_id=c.parent_id, body=c.body,
                        visibility=c.visibility, author_type=c.author_type, author_name=c.author_name,
                        user_id=c.user_id, mentions=list(c.mentions or []), revision=c.revision,
                        created_at=c.created_at)


async def workflow_of(ctx: Context, brand_id: UUID) -> ApprovalWorkflow | None:
    return await ctx.session.scalar(ctx.select(ApprovalWorkflow).where(ApprovalWorkflow.brand_id == brand_id))


async def is_publishable(ctx: Context, post: Post) -> bool:
    """True when the brand has no workflow, or an approved request matches the post's
    current content: a scheduled post whose approval lapsed (it was edited) is not published."""
    if await workflow_of(ctx, post.brand_id) is None:
        return True
    found = await ctx.session.scalar(ctx.select(ApprovalRequest, ApprovalRequest.id).where(
        ApprovalRequest.post_id == post.id, ApprovalRequest.status == RequestStatus.APPROVED.value,
        ApprovalRequest.content_hash == post.content_hash).limit(1))
    return found is not None


async def publishable_posts(ctx: Context, posts: list[Post]) -> set[UUID]:
    """`is_publishable` for a batch of posts, in two queries: the ids of those that may go out."""
    if not posts:
        return set()
    brands = {p.brand_id for p in posts}
    with_workflow = set((await ctx.session.scalars(ctx.select(ApprovalWorkflow, ApprovalWorkflow.brand_id).where(
        ApprovalWorkflow.brand_id.in_(brands)))).all())
    gated = [p for p in posts if p.brand_id in with_workflow]
    ok = {p.id for p in posts if p.brand_id not in with_workflow}
    if gated:
        approved = set((await ctx.session.execute(ctx.select(
            ApprovalRequest, ApprovalRequest.post_id, ApprovalRequest.content_hash).where(
            ApprovalRequest.post_id.in_([p.id for p in gated]),
            ApprovalRequest.status == RequestStatus.APPROVED.value))).all())
        ok |= {p.id for p in gated if (p.id, p.content_hash) in {tuple(r) for r in approved}}
    return ok


approval_holds = is_publishable


@dataclass
class ApprovalService:
    ctx: Context

    @property
    def session(self) -> AsyncSession:
        return self.ctx.session

    # --- workflows -----------------------------------------------------------------------

    async def get_workflow(self, brand_id: UUID) -> ApprovalWorkflow:
        self.ctx.require(Action.POSTS_READ)
        await self._brand(brand_id)
        wf = await workflow_of(self.ctx, brand_id)
        if wf is None:
            raise NotFoundError("The brand has no approval workflow: posts are approved when scheduled")
        return wf

    async def put_workflow(self, brand_id: UUID, data: s.WorkflowIn,
                           expected_version: int | None) -> tuple[ApprovalWorkflow, bool]:
        self.ctx.require(Action.BRANDS_WRITE)
        await self._brand(brand_id)
        steps = await self._validate_steps(data)
        wf = await workflow_of(self.ctx, brand_id)
        created = wf is None
        if wf is None:
            wf = ApprovalWorkflow(agency_id=self.ctx.agency_id, brand_id=brand_id)
            self.session.add(wf)
        else:
            check_version(wf.version, expected_version)
        wf.steps = steps
        wf.remind_after_hours = data.remind_after_hours
        wf.expire_after_hours = data.expire_after_hours
        await self.session.flush()
        await self.ctx.audit("approval_workflow.saved", "brand", brand_id,
                             {"steps": steps, "remind_after_hours": data.remind_after_hours,
                              "expire_after_hours": data.expire_after_hours})
        return wf, created

    async def delete_workflow(self, brand_id: UUID, expected_version: int | None) -> None:
        """Pending requests stay and can still be decided; new posts are approved on scheduling."""
        self.ctx.require(Action.BRANDS_WRITE)
        await self._brand(brand_id)
        wf = await workflow_of(self.ctx, brand_id)
        if wf is None:
            raise NotFoundError("The brand has no approval workflow")
        check_version(wf.version, expected_version)
        await self.session.delete(wf)
        await self.ctx.audit("approval_workflow.deleted", "brand", brand_id, {})

    async def _validate_steps(self, data: s.WorkflowIn) -> list[dict[str, Any]]:
        errors: list[dict[str, str]] = []
        wanted = {m for step in data.steps for m in step.member_ids}
        members = await self._members(wanted) if wanted else {}
        for i, step in enumerate(data.steps):
            if step.kind is StepKind.CLIENT and (step.roles or step.member_ids):
                errors.append({"field": f"steps[{i}]", "message": "a client step names no roles or members: "
                               "clients decide through a share link"})
            if step.kind is StepKind.INTERNAL and not (step.roles or step.member_ids):
                errors.append({"field": f"steps[{i}]", "message": "an internal step needs roles or member_ids"})
            if step.rule is StepRule.ALL and step.kind is StepKind.INTERNAL and not step.member_ids:
                errors.append({"field": f"steps[{i}].rule", "message": "rule `all` needs member_ids "
                               "(everyone named must approve)"})
            for j, member in enumerate(step.member_ids):
                if member not in members:
                    errors.append({"field": f"steps[{i}].member_ids[{j}]", "message": "not a member of the agency"})
        if (data.remind_after_hours is not None and data.expire_after_hours is not None
                and data.expire_after_hours <= data.remind_after_hours):
            errors.append({"field": "expire_after_hours", "message": "expiry must come after the reminder"})
        if errors:
            raise ValidationFailedError(errors[0]["message"], errors=errors)
        return [{"name": step.name, "kind": step.kind.value, "roles": [r.value for r in dict.fromkeys(step.roles)],
                 "member_ids": [str(m) for m in dict.fromkeys(step.member_ids)], "rule": step.rule.value}
                for step in data.steps]

    # --- submitting ----------------------------------------------------------------------

    async def submit(self, post_id: UUID, data: s.SubmitIn) -> ApprovalRequest:
        self.ctx.require(Action.POSTS_WRITE)
        from domain.content.service import PostService

        loaded = await PostService(self.ctx)._load(post_id, lock=True)
        problems = await self._check_submittable(loaded, data.then_schedule, "")
        if problems:
            raise problems[0][0](problems[0][1]["message"], errors=[p[1] for p in problems])
        wf = await workflow_of(self.ctx, loaded.post.brand_id)
        assert wf is not None  # checked above
        return await self._submit(loaded, wf, then_schedule=data.then_schedule)

    async def submit_many(self, data: s.BatchSubmitIn) -> list[ApprovalRequest]:
        """All or nothing: every post is checked first, and every problem is reported."""
        self.ctx.require(Action.POSTS_WRITE)
        from domain.content.service import PostService

        if len(set(data.post_ids)) != len(data.post_ids):
            raise ValidationFailedError.field("post_ids", "The same post appears twice")
        posts = PostService(self.ctx)
        loaded_all = []
        problems: list[tuple[type[DomainError], dict[str, str]]] = []
        for i, post_id in enumerate(data.post_ids):
            try:
                loaded = await posts._load(post_id, lock=True)
            except NotFoundError:
                problems.append((ValidationFailedError, {"field": f"post_ids[{i}]", "message": "No such post"}))
                continue
            loaded_all.append(loaded)
            problems += await self._check_submittable(loaded, data.then_schedule, f"post_ids[{i}]")
        if problems:
            kinds = {p[0] for p in problems}
            kind = kinds.pop() if len(kinds) == 1 else ValidationFailedError
            raise kind(f"{len(problems)} problem(s), nothing was submitted: {problems[0][1]['message']}",
                       errors=[p[1] for p in problems])
        out = []
        for loaded in loaded_all:
            wf = await workflow_of(self.ctx, loaded.post.brand_id)
            assert wf is not None
            out.append(await self._submit(loaded, wf, then_schedule=data.then_schedule))
        return out

    async def _check_submittable(self, loaded: Loaded, then_schedule: bool,
                                 prefix: str) -> list[tuple[type[DomainError], dict[str, str]]]:
        post = loaded.post
        where = prefix or "post"

        def problem(kind: type[DomainError], field: str, message: str) -> tuple[type[DomainError], dict[str, str]]:
            return kind, {"field": ".".join(x for x in (prefix, field) if x) or where, "message": message}

        from domain.content.service import PostNotReadyError

        if await workflow_of(self.ctx, post.brand_id) is None:
            return [problem(NoWorkflowError, "", "The brand has no approval workflow: schedule the post, "
                            "scheduling approves it")]
        if any(v.status in content_rules.LOCKED for v in loaded.variants):
            return [problem(ConflictError, "", "The post is being published or was published")]
        if await self._pending(post.id) is not None:
            return [problem(AlreadyInReviewError, "", "The post already has a pending approval request")]
        if not loaded.variants:
            return [problem(PostNotReadyError, "variants", "The post has no variant: add one before submitting")]
        found = [problem(PostNotReadyError, f"variants[{i}].{issue['field']}", issue["message"])
                 for i, v in enumerate(sorted(loaded.variants, key=lambda v: v.position))
                 for issue in content_rules.blocking(v.issues or [])]
        if then_schedule and (post.scheduled_at is None or post.scheduled_at <= now()):
            found.append(problem(ValidationFailedError, "scheduled_at",
                                 "To schedule once approved, the post needs a time in the future"))
        return found

    async def _submit(self, loaded: Loaded, wf: ApprovalWorkflow, *, then_schedule: bool,
                      automatic: bool = False) -> ApprovalRequest:
        post = loaded.post
        principal = self.ctx.principal
        at = now()
        req = ApprovalRequest(
            agency_id=self.ctx.agency_id, brand_id=post.brand_id, post_id=post.id, revision=post.revision,
            content_hash=post.content_hash, steps=[dict(x) for x in wf.steps], current_step=0,
            status=RequestStatus.PENDING.value, then_schedule=then_schedule, submitted_by_id=principal.user_id,
            submitted_label=principal.label,
            expires_at=at + timedelta(hours=wf.expire_after_hours) if wf.expire_after_hours else None)
        self.session.add(req)
        for v in loaded.variants:
            if v.status not in content_rules.LOCKED:
                v.status = VariantStatus.IN_REVIEW.value
        post.status = content_rules.post_status(v.status for v in loaded.variants)
        await self.session.flush()
        await self.ctx.audit("approval.submitted", "approval_request", req.id,
                             {"post_id": post.id, "revision": post.revision, "content_hash": post.content_hash,
                              "then_schedule": then_schedule, "automatic": automatic})
        await self._notify_step(req, post)
        return req

    # --- deciding ------------------------------------------------------------------------

    async def decide(self, request_id: UUID, data: s.DecisionIn, *, ip: str, user_agent: str) -> ApprovalRequest:
        self.ctx.require(Action.POSTS_READ)
        req = await self._locked(request_id)
        principal = self.ctx.principal
        self._check_pending(req)
        step = req.steps[req.current_step]
        if not may_review(step, role=principal.role.value if principal.role else None,
                          user_id=str(principal.user_id) if principal.user_id else None, client=False):
            if step.get("kind") == StepKind.CLIENT:
                raise NotAReviewerError("The request awaits the client: they decide through a share link")
            raise NotAReviewerError(f"Step {req.current_step + 1} ({step.get('name')}) is decided by "
                                    + _who(step))
        user = await self.session.get(User, principal.user_id) if principal.user_id else None
        return await self._decide(req, data.decision, data.comment, reviewer_type="member",
                                  key=str(principal.user_id), user_id=principal.user_id, share_link_id=None,
                                  name=user.name if user else principal.label,
                                  email=user.email if user else "", ip=ip, user_agent=user_agent)

    async def decide_as_client(self, *, share_link: ShareLink, reviewer: ShareReviewer, post_id: UUID,
                               decision: Decision, comment: str, ip: str, user_agent: str) -> ApprovalRequest:
        """A client reviewer's decision, through a share link the caller has already checked
        (token, expiry, revocation, the approve permission, that the post is on the link)."""
        await self._lock_post(post_id)
        req = await self._pending(post_id, lock=True)
        if req is None or req.brand_id != share_link.brand_id:
            raise NotAwaitingClientError("The post has no pending approval request")
        step = req.steps[req.current_step]
        if not may_review(step, role=None, user_id=None, client=True):
            raise NotAwaitingClientError(f"The request is at step {req.current_step + 1} ({step.get('name')}), "
                                         "which the team decides: not awaiting the client")
        return await self._decide(req, Decision(decision), comment, reviewer_type="client",
                                  key=f"client:{reviewer.email.lower()}", user_id=None,
                                  share_link_id=share_link.id, name=reviewer.name, email=reviewer.email, ip=ip,
                                  user_agent=user_agent)

    async def _decide(self, req: ApprovalRequest, decision: Decision, comment: str, *, reviewer_type: str, key: str,
                      user_id: UUID | None, share_link_id: UUID | None, name: str, email: str, ip: str,
                      user_agent: str) -> ApprovalRequest:
        decision = Decision(decision)
        comment = (comment or "").strip()
        if decision is not Decision.APPROVE and not comment:
            raise ValidationFailedError.field("comment", "Say what should change, or why it is rejected")
        step = req.steps[req.current_step]
        earlier = (await self.session.scalars(self.ctx.select(ApprovalDecision).where(
            ApprovalDecision.request_id == req.id, ApprovalDecision.step == req.current_step,
            ApprovalDecision.decision == Decision.APPROVE.value))).all()
        approvers = {_key(d) for d in earlier}
        if decision is Decision.APPROVE and key in approvers:
            raise ApprovalStateError("You already approved this step; it waits for the others")
        passes = step_passes(step, approvers | {key}) if decision is Decision.APPROVE else True
        try:
            outcome = transition(RequestStatus(req.status), event_for(decision), step=req.current_step,
                                 steps=len(req.steps), step_passes=passes)
        except TransitionError as exc:
            raise ApprovalStateError(str(exc)) from exc
        at = now()
        schedule_refused: str | None = None
        if outcome.status is RequestStatus.APPROVED and req.then_schedule:
            # The last approval schedules the post: the plan must allow it (before anything is
            # written). A team member gets the 402; a client's approval is still recorded and
            # the post stays approved, unscheduled (no billing detail reaches the client).
            post, variants = await self._post(req.post_id)
            if post.scheduled_at is not None and post.scheduled_at > at:
                try:
                    await entitlements.check_post_schedule(
                        self.session, self.ctx.agency_id, post_id=post.id, brand_id=post.brand_id,
                        counted_at=entitlements.counted_at(post.scheduled_at, (v.status for v in variants)),
                        new_at=post.scheduled_at, account_ids=[v.social_account_id for v in variants])
                except PaymentRequiredError as err:
                    if reviewer_type != "client":
                        raise
                    schedule_refused = err.slug
        row = ApprovalDecision(
            agency_id=self.ctx.agency_id, request_id=req.id, post_id=req.post_id, step=req.current_step,
            decision=decision.value, comment=comment, revision=req.revision, content_hash=req.content_hash,
            reviewer_type=reviewer_type, user_id=user_id, share_link_id=share_link_id, reviewer_name=name[:200],
            reviewer_email=email[:320], ip=(ip or "")[:64], user_agent=(user_agent or "")[:500])
        self.session.add(row)
        step_before = req.current_step
        req.status = outcome.status.value
        req.current_step = outcome.step
        if outcome.status is not RequestStatus.PENDING:
            req.decided_at = at
        elif outcome.step != step_before:
            req.reminded_at = None  # a new step, a new wait
        post, variants = await self._post(req.post_id)
        if outcome.status is RequestStatus.APPROVED:
            schedule = req.then_schedule and post.scheduled_at is not None and post.scheduled_at > at
            if schedule_refused is not None:
                schedule = False
                await self.ctx.audit("post.schedule_refused", "post", post.id,
                                     {"reason": schedule_refused, "by_approval": req.id})
            self._set_variants(post, variants, VariantStatus.SCHEDULED if schedule else VariantStatus.APPROVED)
            if schedule:
                await self.ctx.audit("post.scheduled", "post", post.id,
                                     {"scheduled_at": post.scheduled_at, "by_approval": req.id})
        elif outcome.status in (RequestStatus.CHANGES_REQUESTED, RequestStatus.REJECTED):
            self._set_variants(post, variants, VariantStatus.DRAFT)
        await self.session.flush()
        await self.ctx.audit("approval.decided", "approval_request", req.id, {
            "post_id": req.post_id, "step": step_before, "decision": decision.value, "reviewer_type": reviewer_type,
            "reviewer": name, "revision": req.revision, "ip": ip, "user_agent": user_agent, "status": req.status})
        if comment:
            self.session.add(PostComment(
                agency_id=self.ctx.agency_id, post_id=req.post_id, body=comment,
                visibility="client" if reviewer_type == "client" else "internal", author_type=reviewer_type,
                user_id=user_id, share_link_id=share_link_id, author_name=name[:200], author_email=email[:320],
                mentions=[], revision=req.revision))
        await self._notify_decision(req, post, decision, name, comment, moved=outcome.step_passed)
        if outcome.status in (RequestStatus.APPROVED, RequestStatus.CHANGES_REQUESTED):
            await emit(self.ctx, "post.approved" if outcome.status is RequestStatus.APPROVED else "post.changes_requested",
                       {"post_id": req.post_id, "brand_id": req.brand_id, "approval_request_id": req.id,
                        "reviewer_type": reviewer_type, "comment": comment})
        return req

    async def cancel(self, request_id: UUID) -> ApprovalRequest:
        self.ctx.require(Action.POSTS_WRITE)
        req = await self._locked(request_id)
        try:
            outcome = transition(RequestStatus(req.status), Event.CANCEL, step=req.current_step, steps=len(req.steps))
        except TransitionError as exc:
            raise ApprovalStateError(str(exc)) from exc
        req.status, req.decided_at = outcome.status.value, now()
        post, variants = await self._post(req.post_id)
        self._set_variants(post, variants, VariantStatus.DRAFT, only=(VariantStatus.IN_REVIEW,))
        await self.session.flush()
        await self.ctx.audit("approval.cancelled", "approval_request", req.id, {"post_id": req.post_id})
        return req

    # --- the post changed ----------------------------------------------------------------

    async def content_changed(self, loaded: Loaded) -> Review | None:
        """Called by PostService when the post's content hash moved. The approval was for
        another revision: a pending or approved request is superseded, and with a workflow
        the new revision goes back to review by itself (so does a post scheduled or approved
        before the brand had a workflow: it was never approved under it)."""
        post = loaded.post
        live = (await self.session.scalars(self.ctx.select(ApprovalRequest).where(
            ApprovalRequest.post_id == post.id,
            ApprovalRequest.status.in_([RequestStatus.PENDING.value, RequestStatus.APPROVED.value]))
            .with_for_update())).all()
        advanced = {VariantStatus.SCHEDULED, VariantStatus.APPROVED, VariantStatus.IN_REVIEW}
        wf = await workflow_of(self.ctx, post.brand_id)
        if not live and (wf is None or not any(v.status in advanced for v in loaded.variants)):
            return None
        was_scheduled = any(v.status == VariantStatus.SCHEDULED for v in loaded.variants)
        then_schedule = was_scheduled or any(r.then_schedule for r in live)
        for req in live:
            outcome = transition(RequestStatus(req.status), Event.EDIT, step=req.current_step, steps=len(req.steps))
            req.status, req.decided_at = outcome.status.value, now()
            await self.ctx.audit("approval.superseded", "approval_request", req.id,
                                 {"post_id": post.id, "by_revision": post.revision})
        await self.session.flush()  # frees the one-pending-per-post slot
        if wf is None:
            # No workflow any more: scheduled posts stay scheduled (scheduling approves).
            self._set_variants(post, loaded.variants, VariantStatus.DRAFT,
                               only=(VariantStatus.IN_REVIEW, VariantStatus.APPROVED))
            return Review(None, "superseded", "The edit superseded the approval; the brand has no workflow now")
        if any(content_rules.blocking(v.issues or []) for v in loaded.variants):
            self._set_variants(post, loaded.variants, VariantStatus.DRAFT)
            return Review(None, "superseded", "The edit superseded the approval; fix the post's issues and "
                          "submit it again")
        if then_schedule and (post.scheduled_at is None or post.scheduled_at <= now()):
            then_schedule = False
        req = await self._submit(loaded, wf, then_schedule=then_schedule, automatic=True)
        return Review(req.id, "pending", "The post changed after its approval was asked for or given: it went "
                      "back to review" + (" and is scheduled again once approved" if then_schedule else ""))

    async def schedule_with_workflow(self, loaded: Loaded) -> Review:
        """schedulePost on a brand with a workflow: schedule when an approval matches the
        current content; otherwise scheduling sends the post for approval first."""
        post = loaded.post
        approved = await self.session.scalar(self.ctx.select(ApprovalRequest).where(
            ApprovalRequest.post_id == post.id, ApprovalRequest.status == RequestStatus.APPROVED.value,
            ApprovalRequest.content_hash == post.content_hash).limit(1))
        if approved is not None:
            self._set_variants(post, loaded.variants, VariantStatus.SCHEDULED)
            return Review(approved.id, "approved", "Scheduled: the current content was approved")
        pending = await self._pending(post.id, lock=True)
        if pending is not None and pending.content_hash == post.content_hash:
            pending.then_schedule = True
            return Review(pending.id, "pending", "Scheduling sends it for approval first: it is scheduled once "
                          "approved")
        wf = await workflow_of(self.ctx, post.brand_id)
        assert wf is not None
        if pending is not None:  # bound to another revision (cannot normally happen: edits supersede)
            pending.status, pending.decided_at = RequestStatus.SUPERSEDED.value, now()
            await self.session.flush()
        req = await self._submit(loaded, wf, then_schedule=True)
        return Review(req.id, "pending", "Scheduling sends it for approval first: it is scheduled once approved")

    # --- reading -------------------------------------------------------------------------

    async def read(self, request_id: UUID) -> s.RequestOut:
        self.ctx.require(Action.POSTS_READ)
        req = await self._request(request_id)
        return (await self.outs([req]))[0]

    async def list(self, page: PageRequest, *, brand_id: UUID | None = None, post_id: UUID | None = None,
                   status: RequestStatus | None = None, awaiting_me: bool = False) -> Page[s.RequestOut]:
        self.ctx.require(Action.POSTS_READ)
        stmt = self.ctx.visible_brands(self.ctx.select(ApprovalRequest), ApprovalRequest.brand_id)
        if brand_id is not None:
            stmt = stmt.where(ApprovalRequest.brand_id == brand_id)
        if post_id is not None:
            stmt = stmt.where(ApprovalRequest.post_id == post_id)
        if status is not None:
            stmt = stmt.where(ApprovalRequest.status == status.value)
        if awaiting_me:
            stmt = self._awaiting_me(stmt)
        result = await paginate(self.session, stmt, resolve_sort(REQUEST_SORTS, page.sort or "-created_at"), page)
        return Page(await self.outs(result.items), result.next_cursor)

    def _awaiting_me(self, stmt: Any) -> Any:
        """Pending requests whose current step names me or my role (SQL over the steps snapshot),
        minus those I already approved."""
        principal = self.ctx.principal
        if principal.user_id is None or principal.role is None:
            return stmt.where(False)
        current = ApprovalRequest.steps[ApprovalRequest.current_step]
        mine = or_(current["member_ids"].contains([str(principal.user_id)]),
                   current["roles"].contains([principal.role.value]))
        approved = select(ApprovalDecision.id).where(
            ApprovalDecision.request_id == ApprovalRequest.id, ApprovalDecision.step == ApprovalRequest.current_step,
            ApprovalDecision.user_id == principal.user_id, ApprovalDecision.decision == Decision.APPROVE.value)
        return stmt.where(ApprovalRequest.status == RequestStatus.PENDING.value,
                          current["kind"].astext == StepKind.INTERNAL.value, mine, ~approved.exists())

    async def outs(self, reqs: list[ApprovalRequest]) -> list[s.RequestOut]:
        ids = [r.id for r in reqs]
        decisions = (await self.session.scalars(self.ctx.select(ApprovalDecision).where(
            ApprovalDecision.request_id.in_(ids)))).all() if ids else []
        return [request_out(r, [d for d in decisions if d.request_id == r.id]) for r in reqs]

    # --- reminders and expiry ------------------------------------------------------------

    async def remind_and_expire(self, at: datetime | None = None) -> dict[str, int]:
        """For this context's agency: remind reviewers of requests pending longer than the
        workflow's remind_after_hours (once per step), expire those past expire_after_hours.
        The workers' scheduler calls it periodically, per agency, with a system principal."""
        at = at or now()
        counts = {"reminded": 0, "expired": 0}
        due = (await self.session.scalars(self.ctx.select(ApprovalRequest).where(
            ApprovalRequest.status == RequestStatus.PENDING.value, ApprovalRequest.expires_at <= at))).all()
        for found in due:
            # A post being edited right now is left for the next sweep.
            if not await self._lock_post(found.post_id, skip_locked=True):
                continue
            req = await self._pending(found.post_id, lock=True)
            if req is None or req.id != found.id:
                continue
            outcome = transition(RequestStatus(req.status), Event.EXPIRE, step=req.current_step, steps=len(req.steps))
            req.status, req.decided_at = outcome.status.value, at
            post, variants = await self._post(req.post_id)
            self._set_variants(post, variants, VariantStatus.DRAFT, only=(VariantStatus.IN_REVIEW,))
            await self.ctx.audit("approval.expired", "approval_request", req.id, {"post_id": req.post_id})
            if req.submitted_by_id:
                await notify(self.ctx, user_ids=[req.submitted_by_id], kind="approval.decided",
                             title=f"Approval expired: {post.title or 'untitled post'}",
                             body="Nobody decided in time; submit it again when ready.",
                             data={"request_id": str(req.id), "post_id": str(req.post_id), "status": "expired"})
            counts["expired"] += 1
        workflows = {w.brand_id: w for w in (await self.session.scalars(self.ctx.select(ApprovalWorkflow).where(
            ApprovalWorkflow.remind_after_hours.is_not(None)))).all()}
        if workflows:
            pending = (await self.session.scalars(self.ctx.select(ApprovalRequest).where(
                ApprovalRequest.status == RequestStatus.PENDING.value, ApprovalRequest.reminded_at.is_(None),
                ApprovalRequest.brand_id.in_(list(workflows))).with_for_update(skip_locked=True))).all()
            for req in pending:
                hours = workflows[req.brand_id].remind_after_hours or 0
                # The wait counts from when the current step began (submission, or the last decision).
                last = await self.session.scalar(self.ctx.select(ApprovalDecision, ApprovalDecision.created_at).where(
                    ApprovalDecision.request_id == req.id).order_by(ApprovalDecision.created_at.desc()).limit(1))
                if not reminder_due(max(req.created_at, last or req.created_at), at, hours, req.reminded_at):
                    continue
                post, _ = await self._post(req.post_id)
                await self._notify_step(req, post, reminder=True)
                req.reminded_at = at
                counts["reminded"] += 1
        await self.session.flush()
        return counts

    # --- internals -----------------------------------------------------------------------

    async def _brand(self, brand_id: UUID) -> Brand:
        if not self.ctx.principal.sees_brand(brand_id):
            raise NotFoundError("No such brand")
        return await self.ctx.get(Brand, brand_id, what="brand")

    async def _request(self, request_id: UUID, *, lock: bool = False) -> ApprovalRequest:
        req = await self.ctx.get(ApprovalRequest, request_id, lock=lock, what="approval request")
        if not self.ctx.principal.sees_brand(req.brand_id):
            raise NotFoundError("No such approval request")
        return req

    async def _pending(self, post_id: UUID, *, lock: bool = False) -> ApprovalRequest | None:
        stmt = self.ctx.select(ApprovalRequest).where(ApprovalRequest.post_id == post_id,
                                                      ApprovalRequest.status == RequestStatus.PENDING.value)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return await self.session.scalar(stmt)

    async def _lock_post(self, post_id: UUID, *, skip_locked: bool = False) -> bool:
        """Lock order: the post, then its requests (as PostService's edits do), so a decision
        and an edit of the same post wait for each other instead of deadlocking."""
        stmt = self.ctx.select(Post, Post.id).where(Post.id == post_id).with_for_update(skip_locked=skip_locked)
        return await self.session.scalar(stmt) is not None

    async def _locked(self, request_id: UUID) -> ApprovalRequest:
        req = await self._request(request_id)
        await self._lock_post(req.post_id)
        stmt = self.ctx.select(ApprovalRequest).where(ApprovalRequest.id == req.id).with_for_update()
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).one()

    def _check_pending(self, req: ApprovalRequest) -> None:
        if req.status != RequestStatus.PENDING:
            raise ApprovalStateError(f"The request is {req.status}: only a pending request takes decisions")

    async def _post(self, post_id: UUID) -> tuple[Post, list[PostVariant]]:
        post = await self.ctx.get(Post, post_id, what="post")
        variants = list((await self.session.scalars(self.ctx.select(PostVariant).where(
            PostVariant.post_id == post_id))).all())
        return post, variants

    @staticmethod
    def _set_variants(post: Post, variants: list[PostVariant], status: VariantStatus,
                      only: tuple[VariantStatus, ...] | None = None) -> None:
        for v in variants:
            if v.status in content_rules.LOCKED or (only is not None and v.status not in only):
                continue
            v.status = status.value
        post.status = content_rules.post_status(v.status for v in variants)
        post.updated_at = now()

    async def _members(self, user_ids: set[UUID] | None = None, *, roles: list[str] | None = None,
                       brand_id: UUID | None = None) -> dict[UUID, Membership]:
        stmt = self.ctx.select(Membership)
        conditions = []
        if user_ids:
            conditions.append(Membership.user_id.in_(list(user_ids)))
        if roles:
            conditions.append(Membership.role.in_(roles))
        if conditions:
            stmt = stmt.where(or_(*conditions))
        found = (await self.session.scalars(stmt)).all()
        return {m.user_id: m for m in found
                if brand_id is None or m.brand_ids is None or brand_id in (m.brand_ids or [])}

    async def _step_reviewers(self, req: ApprovalRequest) -> list[UUID]:
        step = req.steps[req.current_step]
        if step.get("kind") != StepKind.INTERNAL:
            return []
        named = {UUID(str(m)) for m in step.get("member_ids") or []}
        roles = list(step.get("roles") or [])
        if not named and not roles:
            return []
        members = await self._members(named, roles=roles, brand_id=req.brand_id)
        done = {d.user_id for d in (await self.session.scalars(self.ctx.select(ApprovalDecision).where(
            ApprovalDecision.request_id == req.id, ApprovalDecision.step == req.current_step))).all()}
        return [uid for uid in members if uid not in done]

    async def _notify_step(self, req: ApprovalRequest, post: Post, *, reminder: bool = False) -> None:
        step = req.steps[req.current_step]
        title = post.title or "a post"
        data = {"request_id": str(req.id), "post_id": str(req.post_id), "step": req.current_step,
                "kind": step.get("kind"), "reminder": reminder}
        if step.get("kind") == StepKind.CLIENT:
            # Clients are reached through share links; the team member who submitted is told
            # it waits for the client (and reminded when the client is slow).
            if req.submitted_by_id:
                await notify(self.ctx, user_ids=[req.submitted_by_id], kind="approval.requested",
                             title=("Reminder: " if reminder else "") + f"Waiting for the client: {title}",
                             body=f"Step {req.current_step + 1} of {len(req.steps)}: {step.get('name', '')}. "
                             "Share the post with the client (createShareLink) if you have not yet.", data=data)
            return
        reviewers = await self._step_reviewers(req)
        await notify(self.ctx, user_ids=reviewers, kind="approval.requested",
                     title=("Reminder: " if reminder else "") + f"Approval needed: {title}",
                     body=f"Step {req.current_step + 1} of {len(req.steps)}: {step.get('name', '')}", data=data)

    async def _notify_decision(self, req: ApprovalRequest, post: Post, decision: Decision, who: str, comment: str,
                               *, moved: bool) -> None:
        title = post.title or "a post"
        data = {"request_id": str(req.id), "post_id": str(req.post_id), "decision": decision.value,
                "status": req.status, "step": req.current_step}
        if req.submitted_by_id:
            if decision is Decision.REQUEST_CHANGES:
                await notify(self.ctx, user_ids=[req.submitted_by_id], kind="approval.changes_requested",
                             title=f"Changes requested: {title}", body=f"{who}: {comment}", data=data)
            elif decision is Decision.REJECT or req.status == RequestStatus.APPROVED or (
                    moved and req.steps[req.current_step].get("kind") != StepKind.CLIENT):  # (told below)
                verb = {"rejected": "Rejected", "approved": "Approved"}.get(req.status, "Step approved")
                await notify(self.ctx, user_ids=[req.submitted_by_id], kind="approval.decided",
                             title=f"{verb}: {title}", body=f"{who}" + (f": {comment}" if comment else ""), data=data)
        if req.status == RequestStatus.PENDING and moved:
            await self._notify_step(req, post)


def _key(d: ApprovalDecision) -> str:
    return str(d.user_id) if d.reviewer_type == "member" else f"client:{d.reviewer_email.lower()}"


def _who(step: dict[str, Any]) -> str:
    parts = []
    if step.get("roles"):
        parts.append("roles " + ", ".join(step["roles"]))
    if step.get("member_ids"):
        parts.append(f"{len(step['member_ids'])} named member(s)")
    return " or ".join(parts) or "nobody"


# --- comments --------------------------------------------------------------------------


@dataclass
class CommentService:
    ctx: Context

    @property
    def session(self) -> AsyncSession:
        return self.ctx.session

    async def list(self, post_id: UUID, *, client_visible_only: bool,
                   page: PageRequest | None = None) -> Page[s.CommentOut]:
        """Oldest first; a thread is the comments sharing a parent_id. Share-link callers pass
        client_visible_only=True (and have checked the post is on the link)."""
        if not client_visible_only:
            self.ctx.require(Action.POSTS_READ)
        post = await self._post(post_id)
        stmt = self.ctx.select(PostComment).where(PostComment.post_id == post.id)
        if client_visible_only:
            stmt = stmt.where(PostComment.visibility == "client")
        page = page or PageRequest(limit=200)
        result = await paginate(self.session, stmt, resolve_sort(COMMENT_SORTS, page.sort or "created_at"), page)
        return Page([comment_out(c) for c in result.items], result.next_cursor)

    async def add(self, post_id: UUID, data: s.CommentIn) -> PostComment:
        self.ctx.require(Action.POSTS_READ)  # reviewers (analysts too) may comment
        principal = self.ctx.principal
        post = await self._post(post_id)
        await self._check_place(post, data.parent_id, data.variant_id, client=False)
        mentioned = list(dict.fromkeys([*data.mentions, *mentions_in(data.body)]))
        if mentioned:
            members = await ApprovalService(self.ctx)._members(set(mentioned), brand_id=post.brand_id)
            missing = [m for m in mentioned if m not in members]
            if missing:
                raise ValidationFailedError.field("mentions", f"{missing[0]} is not a member who can see this brand")
        user = await self.session.get(User, principal.user_id) if principal.user_id else None
        comment = PostComment(
            agency_id=self.ctx.agency_id, post_id=post.id, variant_id=data.variant_id, parent_id=data.parent_id,
            body=data.body, visibility=data.visibility, author_type="member", user_id=principal.user_id,
            author_name=(user.name if user else principal.label)[:200], author_email=user.email if user else "",
            mentions=mentioned, revision=post.revision)
        self.session.add(comment)
        await self.session.flush()
        await self.ctx.audit("comment.added", "post", post.id, {"comment_id": comment.id,
                                                                "visibility": data.visibility})
        if mentioned:
            await notify(self.ctx, user_ids=mentioned, kind="comment.mention",
                         title=f"{comment.author_name} mentioned you on {post.title or 'a post'}",
                         body=data.body[:500], data={"post_id": str(post.id), "comment_id": str(comment.id)})
        return comment

    async def add_client_comment(self, *, share_link: ShareLink, reviewer: ShareReviewer, post_id: UUID, body: str,
                                 parent_id: UUID | None, variant_id: UUID | None) -> PostComment:
        body = (body or "").strip()
        if not body:
            raise ValidationFailedError.field("body", "Write a comment")
        if len(body) > 10_000:
            raise ValidationFailedError.field("body", "At most 10000 characters")
        post = await self._post(post_id)
        if post.brand_id != share_link.brand_id:
            raise NotFoundError("No such post")
        await self._check_place(post, parent_id, variant_id, client=True)
        comment = PostComment(
            agency_id=self.ctx.agency_id, post_id=post.id, variant_id=variant_id, parent_id=parent_id, body=body,
            visibility="client", author_type="client", share_link_id=share_link.id,
            author_name=reviewer.name[:200], author_email=reviewer.email[:320], mentions=[], revision=post.revision)
        self.session.add(comment)
        await self.session.flush()
        await self.ctx.audit("comment.added", "post", post.id, {"comment_id": comment.id, "visibility": "client",
                                                                "reviewer": reviewer.email})
        return comment

    async def _post(self, post_id: UUID) -> Post:
        post = await self.ctx.get(Post, post_id, what="post")
        if not self.ctx.principal.sees_brand(post.brand_id):
            raise NotFoundError("No such post")
        return post

    async def _check_place(self, post: Post, parent_id: UUID | None, variant_id: UUID | None, *,
                           client: bool) -> None:
        if parent_id is not None:
            parent = await self.session.scalar(self.ctx.select(PostComment).where(PostComment.id == parent_id))
            if parent is None or parent.post_id != post.id or (client and parent.visibility != "client"):
                raise ValidationFailedError.field("parent_id", "No such comment on this post")
        if variant_id is not None:
            variant = await self.session.scalar(self.ctx.select(PostVariant, PostVariant.id).where(
                PostVariant.id == variant_id, PostVariant.post_id == post.id))
            if variant is None:
                raise ValidationFailedError.field("variant_id", "No such variant on this post")
