"""The publishing engine: claim due variants, send each one once, record what happened.

The database is the schedule. `claim_due` takes due, scheduled variants with
FOR UPDATE SKIP LOCKED (through the partial index `ix_post_variants_due` on each variant's `due_at`), marks each
`publishing` with a new attempt row, and the caller commits that before any job is sent.
`publish_attempt` runs in the job: it re-checks that the attempt is still the live one (a
second run finds it finished and does nothing), calls the adapter and records the outcome.
An outcome that is not clear (timeout or 5xx after sending) is never re-sent: `check_attempt`
looks the post up on the account; it also polls asynchronous publishes and resolves attempts
stuck with no live worker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.agencies.rules import Principal
from domain.approvals.service import is_publishable, publishable_posts  # noqa: F401 - is_publishable: callers
from domain.brands.models import Brand
from domain.content.models import Post, PostVariant
from domain.content.rules import VariantStatus, post_status
from domain.core.clock import now
from domain.core.context import Context
from domain.core.crypto import Vault
from domain.core.db import scoped_session
from domain.networks.adapters.base import (
    AccountRef,
    AuthExpired,
    Network,
    NetworkError,
    PublishRequest,
    PublishResult,
    RateLimited,
    Rejected,
    Unknown,
    Unreachable,
)
from domain.networks.linking import NetworkSettings, network_settings  # noqa: F401 - its callers import it here
from domain.networks.models import SocialAccount
from domain.networks.tokens import MARGIN as TOKEN_MARGIN
from domain.networks.tokens import AccountNeedsReconnectError, fresh_access_token
from domain.publishing.gate import Gate, account_rate_limited, lock_claims
from domain.publishing.models import PublishAttempt
from domain.publishing.rules import DEFAULT_LIMITS, Outcome, PublishLimits
from domain.publishing.sending import (
    CreateNext,
    build_request,  # noqa: F401 - its callers import it here
    build_requests,
    find_on_account,
    follow_ups,
    has_follow_ups,
    poll,
)

log = logging.getLogger("chorus.publishing")


def client_for(network: Network, networks: NetworkSettings) -> Any:
    from domain.networks.adapters.facebook import FacebookClient
    from domain.networks.adapters.instagram import InstagramClient
    from domain.networks.adapters.linkedin import LinkedInClient
    from domain.networks.adapters.pinterest import PinterestClient
    from domain.networks.adapters.threads import ThreadsClient
    from domain.networks.adapters.tiktok import TikTokClient
    from domain.networks.adapters.x import XClient
    from domain.networks.adapters.youtube import YouTubeClient

    classes = {Network.X: XClient, Network.FACEBOOK: FacebookClient, Network.INSTAGRAM: InstagramClient,
               Network.THREADS: ThreadsClient, Network.TIKTOK: TikTokClient, Network.YOUTUBE: YouTubeClient,
               Network.LINKEDIN: LinkedInClient, Network.PINTEREST: PinterestClient}
    return classes[network](networks.sandbox_base, timeout=networks.timeout_seconds)


async def sync_post(session: AsyncSession, post: Post) -> None:
    """Keep the post's derived status in step and touch the row (the calendar cache keys on it)."""
    statuses = (await session.scalars(select(PostVariant.status).where(PostVariant.post_id == post.id))).all()
    post.status = post_status(statuses)
    post.updated_at = now()


# --- claiming -----------------------------------------------------------------------------


async def claim_due(session: AsyncSession, agency_id: UUID, *, limit: int | None = None,
                    limits: PublishLimits = DEFAULT_LIMITS) -> list[tuple[UUID, UUID]]:
    """Claim up to `limit` (default: the claim batch) due variants of one agency: each becomes
    `publishing` with a new attempt. Returns (variant id, attempt id) pairs; the caller
    commits, then sends the jobs. Variants past their lateness or attempt budget fail here."""
    at = now()
    limit = limits.claim_batch if limit is None else limit
    # Rate-limit resets, quotas and concurrency caps (domain/publishing/gate.py); claims of one
    # agency are serialised so the caps hold across racing sweeps.
    await lock_claims(session, agency_id)
    gate = await Gate.load(session, agency_id, limits, at)
    # The variant's own due instant (its post's time, or later while a wait holds it), kept by
    # the database (migration 0016): the scan runs on the partial index ix_post_variants_due.
    order = (PostVariant.due_at, PostVariant.id)
    paused = (select(Post.id).join(Brand, Brand.id == Post.brand_id)
              .where(Post.id == PostVariant.post_id, Brand.publishing_paused_at.is_not(None)).exists())
    due = (
        select(PostVariant.id.label("id"),
               func.row_number().over(partition_by=PostVariant.social_account_id, order_by=order).label("per_account"),
               func.row_number().over(partition_by=PostVariant.network, order_by=order).label("per_network"))
        # From the variants alone, so the plan starts at the partial index on (agency_id, due_at);
        # a paused brand's variants are held (domain/publishing/pause.py), checked per row.
        .where(PostVariant.agency_id == agency_id, PostVariant.status == VariantStatus.SCHEDULED.value,
               PostVariant.due_at <= at, ~paused, PostVariant.social_account_id.not_in(gate.full_accounts()),
               PostVariant.network.not_in(gate.full_networks()))
    ).subquery()
    rows = (await session.execute(
        select(PostVariant, Post, Brand.publishing_resumed_at)
        .join(due, due.c.id == PostVariant.id)
        .join(Post, Post.id == PostVariant.post_id)
        .join(Brand, Brand.id == Post.brand_id)
        # No account or network gets more rows than its cap: one busy account cannot fill the batch.
        .where(PostVariant.status == VariantStatus.SCHEDULED.value, due.c.per_account <= limits.account_concurrency,
               due.c.per_network <= limits.network_concurrency)
        .order_by(*order)
        .limit(limit)
        .with_for_update(of=[PostVariant, Post], skip_locked=True)
    )).all()
    await gate.prepare(session, [variant for variant, _, _ in rows])
    claimed: list[tuple[UUID, UUID]] = []
    touched: dict[UUID, Post] = {}
    # The batch's attempt numbers and retry markers in two queries (not two per variant).
    ids = [variant.id for variant, _, _ in rows]
    numbers: dict[UUID, int] = dict((await session.execute(
        select(PublishAttempt.variant_id, func.max(PublishAttempt.number))
        .where(PublishAttempt.variant_id.in_(ids)).group_by(PublishAttempt.variant_id))).all()) if ids else {}
    markers: dict[UUID, Any] = {}
    if ids:
        for row in (await session.execute(
                select(PublishAttempt.variant_id, PublishAttempt.number, PublishAttempt.started_at)
                .where(PublishAttempt.variant_id.in_(ids), PublishAttempt.outcome == Outcome.RETRY_REQUESTED.value)
                .order_by(PublishAttempt.number))).all():
            markers[row.variant_id] = row  # the newest one wins
    for variant, post, resumed_at in rows:
        number = numbers.get(variant.id, 0) + 1
        attempt = PublishAttempt(id=uuid4(), agency_id=agency_id, variant_id=variant.id, number=number, started_at=at,
                                 outcome=Outcome.SENDING.value, response={}, message="")
        variant.not_before = None
        variant.wait_reason = None
        # A manual retry (a marker in the log) restarts the lateness clock and the attempt budget.
        marker = markers.get(variant.id)
        base_number = marker.number if marker else 0
        late_from = max(post.scheduled_at, marker.started_at) if marker and post.scheduled_at else post.scheduled_at
        if late_from is not None and resumed_at is not None and resumed_at > late_from:
            late_from = resumed_at  # held by a pause: late from the resume
        if late_from is not None and at - late_from > limits.max_lateness:
            _finish(attempt, Outcome.ABANDONED, "Not published: more than %s late" % limits.max_lateness,
                    code="too_late")
            _fail(variant, "too_late", attempt.message)
        elif number - base_number > limits.max_attempts:
            _finish(attempt, Outcome.ABANDONED, f"Not published after {limits.max_attempts} attempts",
                    code="too_many_attempts")
            _fail(variant, "too_many_attempts", attempt.message)
        elif not gate.admit(variant):
            continue  # waits: its account's reset, a quota slot (both on the variant) or a send slot
        else:
            variant.status = VariantStatus.PUBLISHING.value
            variant.error = None
        session.add(attempt)
        if attempt.finished_at is None:
            claimed.append((variant.id, attempt.id))
        touched[post.id] = post
    await session.flush()
    for post in touched.values():
        await sync_post(session, post)
    if gate.held:
        log.info("publishing claims held", extra={"agency_id": str(agency_id), **gate.held})
    return claimed


def _finish(attempt: PublishAttempt, outcome: Outcome, message: str = "", *, code: str | None = None,
            response: dict[str, Any] | None = None) -> None:
    attempt.outcome = outcome.value
    attempt.finished_at = now()
    attempt.message = message[:2000]
    if code is not None:
        attempt.error = {"code": code, "message": message[:2000]}
    if response:
        attempt.response = {**attempt.response, **response}


def _fail(variant: PostVariant, code: str, message: str, **extra: Any) -> None:
    variant.status = VariantStatus.FAILED.value
    variant.error = {"code": code, "message": message[:2000], **extra}


def _dispatched(attempt: PublishAttempt) -> datetime:
    """When the attempt was sent (its dispatch stamp), else when it was claimed."""
    try:
        return datetime.fromisoformat(str(attempt.response["dispatched_at"]))
    except (KeyError, ValueError):
        return attempt.started_at


def _error_of(err: NetworkError) -> dict[str, Any]:
    return {"code": err.code or type(err).__name__.lower(), "status": err.status, "message": str(err)[:2000]}


# --- sending --------------------------------------------------------------------------------


@dataclass
class _Send:
    """One dispatched attempt of a batch: what to send, then what came back."""

    variant_id: UUID
    attempt_id: UUID
    network: Network
    account_id: UUID
    ref_id: str
    kind: Any
    request: PublishRequest
    result: PublishResult | None = None
    error: NetworkError | None = None


def _token_fresh(account: SocialAccount) -> bool:
    """The stored access token may be used as read (no refresh due; see fresh_access_token)."""
    expires = account.token_expires_at
    return bool(account.access_token_enc) and (expires is None or expires > now() + TOKEN_MARGIN)


@dataclass
class Publisher:
    """One job's work, in short transactions of its own (tenant set) so that no transaction
    is open while the network is called: the attempt is stamped `dispatched_at` and committed
    before the call, and a run that finds the stamp never sends (a crash after it leaves the
    attempt to the stuck sweep, which looks the post up). `after_commit` is the job's list:
    notification emails go out after the job ends."""

    agency_id: UUID
    factory: async_sessionmaker[AsyncSession]
    vault: Vault
    networks: NetworkSettings
    after_commit: list[Any]
    limits: PublishLimits = DEFAULT_LIMITS

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        async with scoped_session(self.factory, agency_id=self.agency_id) as session, session.begin():
            yield session

    def context(self, session: AsyncSession) -> Context:
        ctx = Context(Principal(agency_id=self.agency_id, label="publishing"), session=session)
        ctx.after_commit = self.after_commit
        return ctx

    async def _load(self, session: AsyncSession, variant_id: UUID,
                    attempt_id: UUID) -> tuple[Post, PostVariant, PublishAttempt] | None:
        variant = await session.get(PostVariant, variant_id)
        if variant is None:
            return None
        # Lock order as the API's: post, then its variant, then the attempt.
        post = await session.scalar(select(Post).where(Post.id == variant.post_id).with_for_update())
        variant = await session.scalar(select(PostVariant).where(PostVariant.id == variant_id)
                                       .with_for_update().execution_options(populate_existing=True))
        attempt = await session.scalar(select(PublishAttempt).where(PublishAttempt.id == attempt_id,
                                                                    PublishAttempt.variant_id == variant_id)
                                       .with_for_update())
        if post is None or variant is None or attempt is None:
            return None
        newest = await session.scalar(select(func.max(PublishAttempt.number))
                                      .where(PublishAttempt.variant_id == variant_id))
        if attempt.number != newest or attempt.finished_at is not None \
                or variant.status != VariantStatus.PUBLISHING.value:
            return None  # not the live attempt any more: a second run changes nothing
        return post, variant, attempt

    async def _token(self, account_id: UUID, *, force: bool = False) -> str | None:
        try:
            return await fresh_access_token(self.factory, self.vault, self.networks, agency_id=self.agency_id,
                                            account_id=account_id, force=force)
        except AccountNeedsReconnectError:
            return None

    async def publish_attempt(self, variant_id: UUID, attempt_id: UUID) -> str:
        """One attempt: a batch of one (see `publish_batch`)."""
        return (await self.publish_batch([(variant_id, attempt_id)]))[attempt_id]

    async def _load_many(self, session: AsyncSession, pairs: Sequence[tuple[UUID, UUID]]
                         ) -> dict[UUID, tuple[Post, PostVariant, PublishAttempt]]:
        """`_load` for a batch in four set-based queries, in the same lock order (posts, then
        their variants, then the attempts; each set in id order). Keyed by attempt id; only the
        attempts still live are returned."""
        variant_ids = list({v for v, _ in pairs})
        attempt_ids = list({a for _, a in pairs})
        post_ids = sorted(set((await session.scalars(
            select(PostVariant.post_id).where(PostVariant.id.in_(variant_ids)))).all()))
        if not post_ids:
            return {}
        posts = {p.id: p for p in (await session.scalars(
            select(Post).where(Post.id.in_(post_ids)).order_by(Post.id).with_for_update()
            .execution_options(populate_existing=True))).all()}
        variants = {v.id: v for v in (await session.scalars(
            select(PostVariant).where(PostVariant.id.in_(variant_ids)).order_by(PostVariant.id).with_for_update()
            .execution_options(populate_existing=True))).all()}
        attempts = {a.id: a for a in (await session.scalars(
            select(PublishAttempt).where(PublishAttempt.id.in_(attempt_ids)).order_by(PublishAttempt.id)
            .with_for_update().execution_options(populate_existing=True))).all()}
        newest: dict[UUID, int] = dict((await session.execute(
            select(PublishAttempt.variant_id, func.max(PublishAttempt.number))
            .where(PublishAttempt.variant_id.in_(variant_ids)).group_by(PublishAttempt.variant_id))).all())
        live: dict[UUID, tuple[Post, PostVariant, PublishAttempt]] = {}
        for variant_id, attempt_id in pairs:
            variant, attempt = variants.get(variant_id), attempts.get(attempt_id)
            post = posts.get(variant.post_id) if variant is not None else None
            if post is None or variant is None or attempt is None or attempt.variant_id != variant_id:
                continue
            if attempt.number != newest.get(variant_id) or attempt.finished_at is not None \
                    or variant.status != VariantStatus.PUBLISHING.value:
                continue  # not the live attempt any more: a second run changes nothing
            live[attempt_id] = (post, variant, attempt)
        return live

    async def publish_batch(self, pairs: Sequence[tuple[UUID, UUID]]) -> dict[UUID, str]:
        """Send a batch of claimed attempts ((variant id, attempt id) pairs; one is a batch of
        one) in three steps, each safe to run again:

        1. One transaction locks the batch's posts, variants and attempts (set-based, the
           lock order of `_load`), re-checks each is the live attempt, not yet dispatched,
           still publishable (approval) and its account connected, stamps `dispatched_at` on
           the ones to send and commits. A re-run finds the stamps and sends nothing.
        2. The sends run concurrently (the claim's per-account and per-network caps already
           bound how many are in flight), each as before: token, publish, one refresh on an
           AuthExpired, the error classified.
        3. One transaction records every result (`_result` / `_network_error` per variant,
           the post roll-up once per post); then the follow-ups of the published ones.
        Returns each attempt's outcome (`skipped` when an earlier run had it)."""
        outcomes: dict[UUID, str] = {}
        todo: list[_Send] = []
        async with self._tx() as session:
            live = await self._load_many(session, pairs)
            for variant_id, attempt_id in pairs:
                if attempt_id not in live:
                    # A re-run (the job died after publishing): resume what follows the post, once the job ends.
                    self.after_commit.append(functools.partial(follow_ups, self, variant_id, attempt_id))
                    outcomes[attempt_id] = "skipped"
            fresh = {a: x for a, x in live.items()
                     if x[2].outcome == Outcome.SENDING.value and not x[2].response.get("dispatched_at")}
            for attempt_id in live.keys() - fresh.keys():
                outcomes[attempt_id] = "skipped"  # sent (or being sent) by an earlier run: the sweep reconciles it
            publishable = await publishable_posts(self.context(session), [post for post, _, _ in fresh.values()])
            accounts = {a.id: a for a in (await session.scalars(select(SocialAccount).where(
                SocialAccount.id.in_({v.social_account_id for _, v, _ in fresh.values()})))).all()} if fresh else {}
            sending: list[tuple[UUID, PostVariant, SocialAccount]] = []
            for attempt_id, (post, variant, attempt) in fresh.items():
                account = accounts.get(variant.social_account_id)
                if post.id not in publishable:
                    message = "Not published: the post's approval no longer matches its content"
                    _finish(attempt, Outcome.NOT_PUBLISHABLE, message, code="approval_lapsed")
                    _fail(variant, "approval_lapsed", message)
                    await self._failed(session, post, variant, message)
                elif account is None or account.status != "connected":
                    message = "The account needs reconnecting"
                    _finish(attempt, Outcome.AUTH_FAILED, message, code="needs_reconnect")
                    _fail(variant, "needs_reconnect", message)
                    await self._failed(session, post, variant, message)
                else:
                    attempt.response = {**attempt.response, "dispatched_at": now().isoformat()}
                    sending.append((attempt_id, variant, account))
                    continue
                outcomes[attempt_id] = attempt.outcome
            requests = await build_requests(session, [v for _, v, _ in sending], self.networks,
                                            processing_max_age=self.limits.processing_max_age)
            tokens: dict[UUID, str | None] = {}
            for attempt_id, variant, account in sending:
                if account.id not in tokens and _token_fresh(account):
                    tokens[account.id] = self.vault.decrypt(account.access_token_enc)
                todo.append(_Send(variant.id, attempt_id, Network(variant.network), account.id,
                                  account.external_id, account.account_kind, requests[variant.id]))
        # Committed: from here on, a second run never sends these.
        if not todo:
            return outcomes
        # Tokens about to expire go through the serialised refresh (one per account).
        stale = {s.account_id for s in todo if s.account_id not in tokens}
        for account_id in stale:
            tokens[account_id] = await self._token(account_id)
        results = await asyncio.gather(*(self._send(s, tokens[s.account_id]) for s in todo), return_exceptions=True)
        # A send that raised something unexpected is left `sending` and stamped: the job fails
        # (after the others are recorded) and the stuck sweep looks that one up, never re-sends.
        crashed = [r for r in results if isinstance(r, BaseException)]
        todo = [s for s, r in zip(todo, results, strict=True) if not isinstance(r, BaseException)]
        published: list[tuple[UUID, UUID]] = []
        async with self._tx() as session:
            live = await self._load_many(session, [(s.variant_id, s.attempt_id) for s in todo]) if todo else {}
            touched: dict[UUID, Post] = {}
            for s in todo:
                loaded = live.get(s.attempt_id)
                if loaded is None:
                    log.warning("publishing attempt resolved elsewhere while sending",
                                extra={"attempt_id": str(s.attempt_id)})
                    outcomes[s.attempt_id] = "skipped"
                    continue
                post, variant, attempt = loaded
                if s.error is not None:
                    await self._network_error(session, post, variant, attempt, s.error, sync=False)
                else:
                    assert s.result is not None
                    await self._result(session, post, variant, attempt, s.result, sync=False)
                touched[post.id] = post
                outcomes[s.attempt_id] = attempt.outcome
                if attempt.outcome == Outcome.PUBLISHED.value and has_follow_ups(variant, attempt.response):
                    published.append((s.variant_id, s.attempt_id))
            await session.flush()
            for post in touched.values():
                await sync_post(session, post)
        if published:
            await asyncio.gather(*(follow_ups(self, v, a) for v, a in published))
        if crashed:
            raise crashed[0]
        return outcomes

    async def _send(self, s: _Send, token: str | None) -> None:
        """One provider call (outside any transaction); the outcome lands on `s`."""
        if token is None:
            s.error = AuthExpired(s.network, "the account needs reconnecting")
            return
        client = client_for(s.network, self.networks)
        ref = AccountRef(s.ref_id, token, s.kind)
        try:
            try:
                s.result = await client.publish(ref, s.request)
            except AuthExpired:
                # Refresh once (the provider refused the token, so nothing went out), then send again.
                token = await self._token(s.account_id, force=True)
                if token is None:
                    raise AuthExpired(s.network, "the account needs reconnecting") from None
                ref = AccountRef(s.ref_id, token, s.kind)
                s.result = await client.publish(ref, s.request)
        except NetworkError as err:
            s.error = err

    async def _result(self, session: AsyncSession, post: Post, variant: PostVariant, attempt: PublishAttempt,
                      result: PublishResult, extra: dict[str, Any] | None = None, *, sync: bool = True) -> None:
        if result.state == "published" and result.external_id:
            response: dict[str, Any] = {"external_id": result.external_id, "url": result.url, **(extra or {})}
            _finish(attempt, Outcome.PUBLISHED, "Published", response=response)
            variant.status = VariantStatus.PUBLISHED.value
            variant.external_id = result.external_id
            variant.external_url = result.url
            variant.published_at = now()
            variant.error = None
            from domain.webhooks.service import emit

            await emit(self.context(session), "post.published", {
                "post_id": post.id, "variant_id": variant.id, "brand_id": post.brand_id, "network": variant.network,
                "social_account_id": variant.social_account_id, "network_post_id": result.external_id,
                "url": result.url, "published_at": variant.published_at})
        else:
            # Accepted, still processing: the sweep polls it (no sleeping here), bounded in age.
            attempt.outcome = Outcome.PROCESSING.value
            attempt.response = {**attempt.response, "pending_ref": result.pending_ref}
            attempt.message = "The provider is processing the post"
        if sync:
            await sync_post(session, post)

    async def _network_error(self, session: AsyncSession, post: Post, variant: PostVariant, attempt: PublishAttempt,
                             err: NetworkError, *, sync: bool = True) -> None:
        if isinstance(err, RateLimited):
            wait = max(1.0, float(err.retry_after))
            _finish(attempt, Outcome.RATE_LIMITED, str(err), response={"retry_after": wait})
            attempt.error = _error_of(err)
            variant.status = VariantStatus.SCHEDULED.value
            variant.not_before = now() + timedelta(seconds=wait)
            variant.wait_reason = "rate_limited"
            # The reset is the account's: its other variants wait for it too (claim_due).
            await account_rate_limited(session, variant.social_account_id, variant.not_before)
        elif isinstance(err, Unreachable):
            _finish(attempt, Outcome.UNREACHABLE, str(err))
            attempt.error = _error_of(err)
            variant.status = VariantStatus.SCHEDULED.value
            variant.not_before = now() + self.limits.unreachable_backoff
        elif isinstance(err, Unknown):
            # Maybe posted: the attempt stays open; `check_attempt` looks it up, never re-sends.
            attempt.outcome = Outcome.UNKNOWN.value
            attempt.error = _error_of(err)
            attempt.message = str(err)[:2000]
        elif isinstance(err, AuthExpired):
            message = f"The network refused the account's authorisation: {err}"
            _finish(attempt, Outcome.AUTH_FAILED, message)
            attempt.error = _error_of(err)
            _fail(variant, "needs_reconnect", message)
            await self._failed(session, post, variant, message)
        else:  # Rejected, or any other refusal: the provider's message, no retry
            _finish(attempt, Outcome.REJECTED, str(err))
            attempt.error = _error_of(err)
            _fail(variant, err.code or "rejected", str(err), status=err.status)
            await self._failed(session, post, variant, str(err))
        if sync:
            await sync_post(session, post)

    async def _failed(self, session: AsyncSession, post: Post, variant: PostVariant, message: str) -> None:
        await sync_post(session, post)
        from domain.webhooks.service import emit

        await emit(self.context(session), "post.failed", {
            "post_id": post.id, "variant_id": variant.id, "brand_id": post.brand_id, "network": variant.network,
            "social_account_id": variant.social_account_id, "message": message[:1000]})
        from domain.publishing.notices import notify_failure

        await notify_failure(self.context(session), post, variant, message)  # the author and who can act, once

    # --- polling and reconciling --------------------------------------------------------------

    async def check_attempt(self, variant_id: UUID, attempt_id: UUID, *, unknown_grace: timedelta | None = None,
                            stuck_after: timedelta | None = None) -> str:
        """Poll a processing attempt; look up an unknown or stuck one on the account. Each step
        runs in one transaction holding the attempt's lock across its (time-limited) provider
        calls, so two checks of one attempt never overlap. A poll about to create the post
        (X video, a container's media_publish...) first commits `creating_at`, then creates it
        in a new transaction; a later check that finds the stamp looks the post up instead."""
        unknown_grace = self.limits.unknown_grace if unknown_grace is None else unknown_grace
        stuck_after = self.limits.stuck_after if stuck_after is None else stuck_after
        outcome = await self._check(variant_id, attempt_id, unknown_grace, stuck_after, create=False)
        if outcome == "create_next":
            outcome = await self._check(variant_id, attempt_id, unknown_grace, stuck_after, create=True)
        if outcome in ("skipped", Outcome.PUBLISHED.value):
            await follow_ups(self, variant_id, attempt_id)
        return outcome

    async def _check(self, variant_id: UUID, attempt_id: UUID, unknown_grace: timedelta, stuck_after: timedelta,
                     *, create: bool) -> str:
        max_age = self.limits.processing_max_age
        async with self._tx() as session:
            loaded = await self._load(session, variant_id, attempt_id)
            if loaded is None:
                return "skipped"
            post, variant, attempt = loaded
            age = now() - attempt.started_at
            outcome = Outcome(attempt.outcome)
            # A sent attempt is stuck only `stuck_after` past its dispatch: a job that waited in a
            # long queue may be mid-call (its post not yet on the account) although claimed long ago.
            if outcome is Outcome.SENDING and now() - _dispatched(attempt) < stuck_after:
                return "live"
            if outcome is Outcome.UNKNOWN and age < unknown_grace:
                return "waiting"
            if outcome is Outcome.SENDING and not attempt.response.get("dispatched_at"):
                # Claimed, never sent (its job was lost): it may go out now, if still in time.
                _finish(attempt, Outcome.ABANDONED, "The job for this attempt never ran", code="job_lost")
                variant.status = VariantStatus.SCHEDULED.value
                await sync_post(session, post)
                return attempt.outcome
            if outcome is Outcome.PROCESSING and age > max_age:
                message = f"The provider was still processing the post after {max_age}"
                _finish(attempt, Outcome.ABANDONED, message, code="processing_timeout")
                _fail(variant, "processing_timeout", message)
                await self._failed(session, post, variant, message)
                return attempt.outcome
            account = await session.get(SocialAccount, variant.social_account_id)
            token = await self._token(account.id) if account is not None else None
            if account is None or token is None:
                message = "The account needs reconnecting"
                _finish(attempt, Outcome.AUTH_FAILED, message, code="needs_reconnect")
                _fail(variant, "needs_reconnect", message)
                await self._failed(session, post, variant, message)
                return attempt.outcome
            ref = AccountRef(account.external_id, token, account.account_kind)
            network = Network(variant.network)
            client = client_for(network, self.networks)
            creating = attempt.response.get("creating_at")
            if create and not creating:
                return "skipped"  # another check resolved the stamp in between
            try:
                if outcome is Outcome.PROCESSING and (create or not creating):
                    async def stamp_first() -> None:
                        if not create:
                            raise CreateNext()

                    try:
                        result = await poll(client, ref, str(attempt.response.get("pending_ref")), stamp_first)
                    except CreateNext:
                        attempt.response = {**attempt.response, "creating_at": now().isoformat()}
                        return "create_next"
                    await self._result(session, post, variant, attempt, result)
                    return attempt.outcome
                if creating and now() - datetime.fromisoformat(str(creating)) < unknown_grace:
                    return "waiting"  # a run was creating the post just now: give the lookup time
                found = await find_on_account(client, ref, variant.text, since=attempt.started_at)
            except (RateLimited, Unknown, Unreachable):
                return "retry_later"  # the sweep comes back
            except NetworkError as err:
                await self._network_error(session, post, variant, attempt, err)
                return attempt.outcome
            if found is False and creating and outcome is Outcome.PROCESSING:
                # The run that stamped it died before creating the post: the next poll creates it.
                attempt.response = {k: v for k, v in attempt.response.items() if k != "creating_at"}
                return "processing"
            if found is None:
                message = ("The outcome of the publish call is unknown and this network cannot be searched here: "
                           "check the account, then retry if the post is not there")
                _finish(attempt, Outcome.ABANDONED, message, code="outcome_unknown")
                _fail(variant, "outcome_unknown", message)
                await self._failed(session, post, variant, message)
                return attempt.outcome
            if found:
                external_id, url = found
                await self._result(session, post, variant, attempt,
                                   PublishResult("published", external_id=external_id, url=url),
                                   {"reconciled": True})
                attempt.message = "Published (found on the account after an unclear answer)"
                return attempt.outcome
            # Looked up and not there: the provider did not take it; a new attempt may go out.
            _finish(attempt, Outcome.ABANDONED, "Not found on the account after an unclear answer",
                    code="not_found_after_unknown")
            variant.status = VariantStatus.SCHEDULED.value
            await sync_post(session, post)
            return attempt.outcome


async def open_attempts(session: AsyncSession, agency_id: UUID,
                        limits: PublishLimits = DEFAULT_LIMITS) -> list[tuple[UUID, UUID]]:
    """Unfinished attempts of one agency: to poll (processing) or reconcile (unknown, stuck)."""
    at = now()
    rows = await session.execute(select(PublishAttempt.variant_id, PublishAttempt.id).where(
        PublishAttempt.agency_id == agency_id, PublishAttempt.finished_at.is_(None),
        (PublishAttempt.outcome == Outcome.PROCESSING.value)
        | ((PublishAttempt.outcome == Outcome.UNKNOWN.value) & (PublishAttempt.started_at <= at - limits.unknown_grace))
        | (PublishAttempt.started_at <= at - limits.stuck_after)))
    return [(r[0], r[1]) for r in rows]


# --- what the API does ----------------------------------------------------------------------


class PublishingService:
    """Publish now, retry a failed variant, cancel, and the publishing log, for the API."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def _loaded(self, post_id: UUID, *, lock: bool = False) -> Any:
        from domain.content.service import PostService

        return await PostService(self.ctx)._load(post_id, lock=lock)

    @staticmethod
    def _variant(loaded: Any, variant_id: UUID) -> PostVariant:
        from domain.core.errors import NotFoundError

        for variant in loaded.variants:
            if variant.id == variant_id:
                return variant
        raise NotFoundError("No such variant")

    def _kick(self) -> None:
        """Sweep this agency now rather than at the next tick (the sweep claims; no delay)."""
        self.ctx.jobs.send("publishing.sweep")

    async def publish_now(self, post_id: UUID) -> Any:
        from domain.agencies.rules import Action
        from domain.content.service import PostTransitionError

        self.ctx.require(Action.POSTS_WRITE)
        loaded = await self._loaded(post_id, lock=True)
        waiting = [v for v in loaded.variants if v.status == VariantStatus.SCHEDULED.value]
        if not waiting or any(v.status in _NOT_YET for v in loaded.variants):
            raise PostTransitionError("Only a scheduled post (every variant approved and scheduled) can be "
                                      f"published now; this one is {loaded.post.status}")
        from domain.publishing.pause import refuse_if_paused

        await refuse_if_paused(self.ctx, loaded.post.brand_id)
        from domain.billing import entitlements

        moment = now()
        await entitlements.check_post_schedule(  # the plan (read-only, frozen, the month's room)
            self.ctx.session, self.ctx.agency_id, post_id=loaded.post.id, brand_id=loaded.post.brand_id,
            counted_at=entitlements.counted_at(loaded.post.scheduled_at, (v.status for v in loaded.variants)),
            new_at=moment, account_ids=[v.social_account_id for v in waiting])
        loaded.post.scheduled_at = moment
        for variant in waiting:
            variant.not_before = None
            variant.wait_reason = None
        await sync_post(self.ctx.session, loaded.post)
        await self.ctx.audit("post.publish_now", "post", loaded.post.id, {"variants": len(waiting)})
        self._kick()
        return loaded

    async def retry(self, post_id: UUID, variant_id: UUID) -> Any:
        from domain.agencies.rules import Action
        from domain.content.service import PostTransitionError

        self.ctx.require(Action.POSTS_WRITE)
        loaded = await self._loaded(post_id, lock=True)
        variant = self._variant(loaded, variant_id)
        if variant.status != VariantStatus.FAILED.value:
            raise PostTransitionError(f"Only a failed variant can be retried; this one is {variant.status}")
        at = now()
        from domain.billing import entitlements

        await entitlements.check_post_schedule(  # the plan (read-only, frozen, the month's room)
            self.ctx.session, self.ctx.agency_id, post_id=loaded.post.id, brand_id=loaded.post.brand_id,
            counted_at=entitlements.counted_at(loaded.post.scheduled_at, (v.status for v in loaded.variants)),
            new_at=loaded.post.scheduled_at or at, account_ids=[variant.social_account_id])
        number = (await self.ctx.session.scalar(select(func.coalesce(func.max(PublishAttempt.number), 0))
                                                .where(PublishAttempt.variant_id == variant.id))) + 1
        # A marker in the log: lateness and the attempt budget count again from here.
        self.ctx.session.add(PublishAttempt(agency_id=self.ctx.agency_id, variant_id=variant.id, number=number,
                                            started_at=at, finished_at=at, outcome=Outcome.RETRY_REQUESTED.value,
                                            response={}, message="Retry requested"))
        variant.status = VariantStatus.SCHEDULED.value
        variant.error = None
        variant.not_before = None
        variant.wait_reason = None
        if loaded.post.scheduled_at is None or loaded.post.scheduled_at < at:
            variant.not_before = at
        await sync_post(self.ctx.session, loaded.post)
        await self.ctx.audit("post.publish_retried", "post", loaded.post.id, {"variant_id": str(variant.id)})
        self._kick()
        return loaded

    async def cancel(self, post_id: UUID) -> Any:
        from domain.agencies.rules import Action
        from domain.content.service import PostTransitionError

        self.ctx.require(Action.POSTS_WRITE)
        loaded = await self._loaded(post_id, lock=True)
        waiting = [v for v in loaded.variants if v.status == VariantStatus.SCHEDULED.value]
        if not waiting:
            raise PostTransitionError("Nothing is waiting to be published (variants being sent cannot be "
                                      "cancelled)")
        for variant in waiting:
            variant.status = VariantStatus.DRAFT.value
            variant.not_before = None
            variant.wait_reason = None
        await sync_post(self.ctx.session, loaded.post)
        await self.ctx.audit("post.publish_cancelled", "post", loaded.post.id, {"variants": len(waiting)})
        return loaded

    async def attempts(self, post_id: UUID, variant_id: UUID) -> list[PublishAttempt]:
        from domain.agencies.rules import Action

        self.ctx.require(Action.POSTS_READ)
        loaded = await self._loaded(post_id)
        variant = self._variant(loaded, variant_id)
        return list((await self.ctx.session.scalars(
            self.ctx.select(PublishAttempt).where(PublishAttempt.variant_id == variant.id)
            .order_by(PublishAttempt.number.desc()))).all())


_NOT_YET = frozenset({VariantStatus.DRAFT.value, VariantStatus.IN_REVIEW.value, VariantStatus.APPROVED.value})
