"""What the engine sends, and the steps around the main post.

- `build_request`: a variant's text, network options and ordered media (each a signed public
  link to the file at the API's public address, valid long enough for the provider's
  asynchronous processing, with its kind, type, size and alt text), as a `PublishRequest`.
- `follow_ups`: after the main post is published (at once or from a status poll), the first
  comment and each part of a thread (`options.thread`, X and Threads: a reply to the part
  before). Each step is recorded in the attempt's response before its call (`*_sending`)
  and after it (the id or the error), in short transactions of its own, so a re-run of the
  job resumes where it stopped and never posts a step twice; a step whose call was cut off
  is recorded as interrupted and not sent again. A failing step never un-publishes the post.
- `poll`: a status poll that may create the post (X video, Instagram/Threads media_publish,
  LinkedIn video, Pinterest video pin) records `creating_at` first (see Publisher.check_attempt).
- `find_on_account`: the per-network lookup (each adapter's `find_recent`) after an unclear answer.
"""

from __future__ import annotations

import inspect
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.content.models import PostVariant, PostVariantMedia
from domain.content.rules import VariantStatus
from domain.core.clock import now
from domain.media import links
from domain.media.models import MediaAsset
from domain.networks.adapters.base import (
    AccountRef,
    BeforeCreate,
    MediaRef,
    NetworkError,
    PublishRequest,
    Unknown,
    when_of,
)
from domain.networks.models import SocialAccount
from domain.publishing.models import PublishAttempt
from domain.publishing.rules import Outcome

if TYPE_CHECKING:
    from domain.networks.linking import NetworkSettings
    from domain.publishing.service import Publisher

log = logging.getLogger("chorus.publishing")

# Options the engine acts on itself, after the main post; adapters never see them.
ENGINE_OPTIONS = ("first_comment", "thread")


async def build_request(session: AsyncSession, variant: PostVariant, networks: NetworkSettings, *,
                        processing_max_age: timedelta) -> PublishRequest:
    """The request for one variant. Its media links outlive the longest asynchronous processing
    the engine waits for (containers, TikTok's pull, page videos), with the same again to spare."""
    return (await build_requests(session, [variant], networks, processing_max_age=processing_max_age))[variant.id]


async def build_requests(session: AsyncSession, variants: list[PostVariant], networks: NetworkSettings, *,
                         processing_max_age: timedelta) -> dict[UUID, PublishRequest]:
    """`build_request` for a batch: the media of all its variants in one query."""
    if not variants:
        return {}
    media_of: dict[UUID, list[tuple[str | None, MediaAsset]]] = {}
    for variant_id, alt_text, asset in (await session.execute(
            select(PostVariantMedia.variant_id, PostVariantMedia.alt_text, MediaAsset)
            .join(MediaAsset, MediaAsset.id == PostVariantMedia.media_id)
            .where(PostVariantMedia.variant_id.in_([v.id for v in variants]))
            .order_by(PostVariantMedia.variant_id, PostVariantMedia.position, PostVariantMedia.id))).all():
        media_of.setdefault(variant_id, []).append((alt_text, asset))
    requests: dict[UUID, PublishRequest] = {}
    for variant in variants:
        rows = media_of.get(variant.id, [])
        media: list[MediaRef] = []
        if rows:
            if not networks.media_link_key:
                raise RuntimeError("publishing media needs the media link key (network_settings(settings))")
            expires = int((now() + processing_max_age * 2).timestamp())
            base = networks.api_base_url.rstrip("/")
            for alt_text, asset in rows:
                token = links.sign(networks.media_link_key, variant.agency_id, asset.id, expires)
                media.append(MediaRef(
                    url=f"{base}/media/{token}", kind="video" if asset.kind == "video" else "image",
                    mime=asset.content_type, size_bytes=asset.size_bytes, duration_ms=asset.duration_ms,
                    width=asset.width, height=asset.height, alt_text=alt_text or asset.alt_text or ""))
        options = {k: v for k, v in (variant.options or {}).items() if k not in ENGINE_OPTIONS}
        requests[variant.id] = PublishRequest(text=variant.text, options=options, media=tuple(media))
    return requests


# --- creating from a status poll --------------------------------------------------------------


class CreateNext(Exception):
    """Raised from the poll's `before_create`: commit the `creating_at` stamp, then poll again."""


async def poll(client: Any, ref: AccountRef, pending_ref: str, before_create: BeforeCreate | None) -> Any:
    if "before_create" in inspect.signature(client.publish_status).parameters:
        return await client.publish_status(ref, pending_ref, before_create=before_create)
    return await client.publish_status(ref, pending_ref)  # a poll that only reads (TikTok, Facebook video)


async def find_on_account(client: Any, ref: AccountRef, text: str, *, since: datetime) -> tuple[str, str | None] | bool | None:
    """(id, url) when the account's recent posts have this text since `since`, False when they
    do not, None when this network offers no such lookup."""
    finder = getattr(client, "find_recent", None)
    if finder is None:
        return None
    found = await finder(ref, text, since)
    return (found.external_id, found.url) if found is not None else False


# --- after the main post ----------------------------------------------------------------------


def _steps(variant: PostVariant) -> tuple[str | None, list[str]]:
    options = variant.options or {}
    comment = options.get("first_comment")
    thread = options.get("thread")
    return (comment.strip() if isinstance(comment, str) and comment.strip() else None,
            [p for p in thread if isinstance(p, str) and p.strip()] if isinstance(thread, list) else [])


def _next_step(variant: PostVariant, response: dict[str, Any]) -> tuple[str, int, str] | None:
    comment, thread = _steps(variant)
    if comment and "first_comment_id" not in response and "first_comment_error" not in response:
        return "first_comment", 0, comment
    parts = list(response.get("thread_parts") or [])
    if thread and len(parts) < len(thread) and not any("error" in p for p in parts):
        return "thread", len(parts), thread[len(parts)]
    return None


def has_follow_ups(variant: PostVariant, response: dict[str, Any]) -> bool:
    """Whether `follow_ups` has a step left for this published variant (a first comment, a
    thread part), so a batch opens no transaction for the many posts without one."""
    return _next_step(variant, dict(response or {})) is not None


async def _load(session: AsyncSession, variant_id: UUID, attempt_id: UUID) -> tuple[PostVariant, PublishAttempt,
                                                                                      SocialAccount | None] | None:
    """The published variant and its (newest, published) attempt, locked."""
    variant = await session.scalar(select(PostVariant).where(PostVariant.id == variant_id).with_for_update())
    attempt = await session.scalar(select(PublishAttempt).where(PublishAttempt.id == attempt_id,
                                                                PublishAttempt.variant_id == variant_id)
                                   .with_for_update())
    if variant is None or attempt is None or variant.status != VariantStatus.PUBLISHED.value \
            or attempt.outcome != Outcome.PUBLISHED.value or not variant.external_id:
        return None
    newest = await session.scalar(select(func.max(PublishAttempt.number)).where(PublishAttempt.variant_id == variant_id))
    if attempt.number != newest:
        return None
    return variant, attempt, await session.get(SocialAccount, variant.social_account_id)


async def follow_ups(publisher: Publisher, variant_id: UUID, attempt_id: UUID) -> None:
    """Post what follows the main post, one recorded step at a time (see the module's notes).
    A step with an unclear answer (timeout), or stamped by a run that died, is looked up under
    the post (the adapter's `find_reply`: the conversation on X and Threads, the comments on
    Facebook and Instagram): found, its id is recorded and the thread goes on; not found, it is
    recorded as failed and never sent again."""
    from domain.networks.adapters.base import Network
    from domain.publishing.service import client_for

    client: Any = None
    ref: AccountRef | None = None
    while True:
        async with publisher._tx() as session:
            loaded = await _load(session, variant_id, attempt_id)
            if loaded is None:
                return
            variant, attempt, account = loaded
            response = dict(attempt.response or {})
            step = _next_step(variant, response)
            if step is None:
                return
            kind, index, text = step
            if account is None or account.status != "connected":
                _record(attempt, response, kind, None, "the account needs reconnecting")
                continue
            root = str(variant.external_id)
            reply_to = root if kind == "first_comment" or index == 0 else response["thread_parts"][index - 1]["id"]
            sending = response.get(f"{kind}_sending")
            interrupted = isinstance(sending, dict) and (kind == "first_comment" or sending.get("index") == index)
            stamped_at = when_of(sending.get("at")) if interrupted else None
            if not interrupted:
                stamped_at = now()
                response[f"{kind}_sending"] = {"at": stamped_at.isoformat(), "index": index}
                attempt.response = response
            network, account_id = variant.network, account.id
            external_id, kind_of_account = account.external_id, account.account_kind
        # Committed: a re-run finds the stamp and never sends this step blindly again.
        if client is None:
            client = client_for(Network(network), publisher.networks)
        if ref is None:
            token = await publisher._token(account_id)
            ref = AccountRef(external_id, token, kind_of_account) if token else None
        since = stamped_at or now()
        new_id, error = None, None
        if ref is None:
            error = "the account needs reconnecting"
        elif interrupted:
            new_id = await _find_reply(client, ref, root, text, since)
            if not new_id:
                error = "interrupted while sending and not found under the post; not sent again (check the post)"
        else:
            try:
                if kind == "first_comment":
                    comment_on = getattr(client, "comment_on", None) or client.reply
                    new_id = (await comment_on(ref, reply_to, text)).external_id
                else:
                    new_id = (await client.publish(ref, PublishRequest(text=text, reply_to=reply_to))).external_id
                if not new_id:
                    error = "the network answered without an id"
            except Unknown as err:  # maybe out: look before giving up on it
                new_id = await _find_reply(client, ref, root, text, since)
                error = None if new_id else str(err)[:500]
            except NetworkError as err:  # the post is out; this step's failure is only recorded
                error = str(err)[:500]
        async with publisher._tx() as session:
            loaded = await _load(session, variant_id, attempt_id)
            if loaded is None:
                return
            _, attempt, _ = loaded
            _record(attempt, dict(attempt.response or {}), kind, new_id, error)
        if error:
            log.warning("publishing follow-up failed", extra={"attempt_id": str(attempt_id), "step": kind,
                                                               "error": error})


async def _find_reply(client: Any, ref: AccountRef, root: str, text: str, since: datetime) -> str | None:
    finder = getattr(client, "find_reply", None)
    if finder is None:
        return None
    try:
        return await finder(ref, root, text, since)
    except NetworkError:
        return None


def _record(attempt: PublishAttempt, response: dict[str, Any], kind: str, new_id: str | None,
            error: str | None) -> None:
    response.pop(f"{kind}_sending", None)
    if kind == "first_comment":
        response["first_comment_id" if new_id and not error else "first_comment_error"] = new_id if not error else error
    else:
        response["thread_parts"] = [*response.get("thread_parts", []), {"id": new_id} if not error else {"error": error}]
    attempt.response = response
    if error:  # the publishing log says so; the post itself stays published
        step = "the first comment" if kind == "first_comment" else f"thread part {len(response['thread_parts']) + 1}"
        attempt.message = f"Published; {step} failed: {error}"[:2000]
