"""Bulk imports: check every row of a file, then import its posts (all or nothing by default).

Small files run within the request. Larger ones become a job that runs after the request
commits (`run_import_job`, one function taking the job's ids, so the workers issue can make
it a dramatiq actor). A job checks and writes its posts in ONE transaction, committed
together with the job's outcome: a crash or a restart leaves no half import behind, only a
job whose heartbeat stops; readers mark such a job failed after `STALE_AFTER`. Progress is
written beside it in short transactions of its own, so it can be read while the job runs.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import undefer

from domain.agencies.models import ApiKey, Membership
from domain.agencies.rules import Action, Principal, Role
from domain.brands.models import Brand, Campaign
from domain.brands.rules import BrandStatus
from domain.content import schemas as cs
from domain.content.rules import MediaFacts
from domain.content.service import PostService
from domain.core.clock import now
from domain.core.context import Context
from domain.core.db import scoped_session
from domain.core.errors import ConflictError, DomainError, NotFoundError, ValidationFailedError
from domain.core.pagination import Page, PageRequest, paginate, resolve_sort
from domain.imports import rules
from domain.imports import schemas as s
from domain.imports.models import ImportJob
from domain.imports.rules import Problem
from domain.media.models import MediaAsset
from domain.networks.adapters.base import Network
from domain.networks.models import SocialAccount

log = logging.getLogger("chorus.imports")

IMPORT_SORTS = {"created_at": (ImportJob.created_at, ImportJob.id)}
# Problems shown on the job itself; the rest through listImportProblems.
PROBLEMS_SHOWN = 100
# Progress is written at most this often (seconds): it is the job's heartbeat too.
HEARTBEAT_SECONDS = 0.5

Progress = Callable[[int], Awaitable[None]]


class ImportFileInvalidError(ValidationFailedError):
    slug = "import-file-invalid"
    title = "The file cannot be read as an import"


class ImportTooLargeError(DomainError):
    status = 413
    slug = "import-too-large"
    title = "The import is larger than the limit"


class ImportMediaTypeError(DomainError):
    status = 415
    slug = "unsupported-media-type"
    title = "Send the file as multipart/form-data, or the posts as JSON"


class ImportActorGoneError(DomainError):
    status = 409
    slug = "import-actor-gone"
    title = "Whoever started the import may no longer import"


class _JobLost(Exception):
    """The job was marked failed (its heartbeat was late) while it ran: its work is dropped."""


def job_out(job: ImportJob) -> s.ImportJobOut:
    problems = list(job.problems or [])
    summary = dict(job.summary or {})
    counts = msgspec.convert({k: v for k, v in summary.items() if k in s.ImportCounts.__struct_fields__},
                             s.ImportCounts)
    return s.ImportJobOut(
        id=job.id, brand_id=job.brand_id, format=job.format, filename=job.filename, dry_run=job.dry_run,
        atomic=job.atomic, status=job.status, total_rows=job.total_rows, processed_rows=job.processed_rows,
        created_posts=job.created_posts, counts=counts,
        problems=[msgspec.convert(p, s.ImportProblem) for p in problems[:PROBLEMS_SHOWN]],
        problems_truncated=len(problems) > PROBLEMS_SHOWN or counts.problems > len(problems),
        started_at=job.started_at, finished_at=job.finished_at, created_at=job.created_at, updated_at=job.updated_at,
    )


@dataclass
class Outcome:
    status: str
    processed_rows: int
    created_posts: int
    problems: list[dict[str, Any]]
    summary: dict[str, Any]

    def values(self) -> dict[str, Any]:
        return {"status": self.status, "processed_rows": self.processed_rows, "created_posts": self.created_posts,
                "problems": self.problems, "summary": self.summary}


async def _no_progress(processed: int) -> None:
    return None


@dataclass
class ImportService:
    ctx: Context

    @property
    def session(self) -> AsyncSession:
        return self.ctx.session

    # --- starting ----------------------------------------------------------------------------

    async def start(self, brand_id: UUID, data: bytes, *, filename: str = "", content_type: str = "",
                    dry_run: bool = True, atomic: bool = True, fmt: str | None = None) -> tuple[ImportJob, bool]:
        """Check the file and record the job. Returns the job and whether it still has to run
        (in the background, after the commit); a small file is done by the time this returns."""
        self.ctx.require(Action.POSTS_WRITE)
        brand = await self._brand(brand_id)
        if len(data) > rules.MAX_BYTES:
            raise ImportTooLargeError(f"The file is {len(data)} bytes; an import takes at most {rules.MAX_BYTES} "
                                      f"bytes and {rules.MAX_ROWS} rows: split it")
        try:
            parsed = rules.parse(data, filename=filename, content_type=content_type, fmt=fmt)
        except rules.FileInvalid as err:
            raise ImportFileInvalidError(err.message, errors=[{"field": "file", "message": err.message}],
                                         ) from None
        if parsed.total_rows > rules.MAX_ROWS:
            raise ImportTooLargeError(f"The file has {parsed.total_rows} rows; an import takes at most "
                                      f"{rules.MAX_ROWS}: split it")
        principal = self.ctx.principal
        job = ImportJob(
            agency_id=self.ctx.agency_id, brand_id=brand.id, format=parsed.format,
            filename="".join(ch for ch in filename if ch.isprintable())[:255],
            dry_run=dry_run, atomic=atomic, status="queued", total_rows=parsed.total_rows, processed_rows=0,
            created_posts=0, problems=[], summary={}, payload=data, created_by_id=principal.user_id,
            api_key_id=principal.api_key_id, actor_label=principal.label[:320],
        )
        self.session.add(job)
        await self.session.flush()
        await self.ctx.audit("import.started", "import", job.id, {
            "brand_id": brand.id, "format": parsed.format, "rows": parsed.total_rows, "dry_run": dry_run,
            "atomic": atomic})
        if parsed.total_rows > rules.SYNC_ROWS:
            return job, True
        job.status, job.started_at = "running", now()
        outcome = await self.run(brand.id, parsed, dry_run=dry_run, atomic=atomic, job_id=job.id)
        for key, value in outcome.values().items():
            setattr(job, key, value)
        job.finished_at = now()
        await self.session.flush()
        return job, False

    async def start_json(self, brand_id: UUID, body: bytes) -> tuple[ImportJob, bool]:
        """A JSON body: {dry_run, atomic, posts: [...]}; the posts are checked as a JSON file."""
        self.ctx.require(Action.POSTS_WRITE)
        await self._brand(brand_id)
        try:
            request = msgspec.json.decode(body, type=_JsonImport)
        except msgspec.ValidationError as err:
            message = str(err)
            where = rules.error_path(message)
            raise ValidationFailedError(message, errors=[{"field": where, "message": message}]) from None
        except msgspec.DecodeError as err:
            raise _MalformedBodyError(f"The body is not valid JSON: {err}") from None
        return await self.start(brand_id, bytes(request.posts), filename="", content_type="application/json",
                                dry_run=request.dry_run, atomic=request.atomic, fmt="json")

    # --- checking and importing ---------------------------------------------------------------

    async def run(self, brand_id: UUID, parsed: rules.ParsedFile, *, dry_run: bool, atomic: bool,
                  progress: Progress = _no_progress, job_id: UUID | None = None) -> Outcome:
        """`execute` inside a savepoint, so a failed all-or-nothing import leaves no post behind
        while the job's own row (in the same transaction) still records why."""
        try:
            async with self.session.begin_nested():
                return await self.execute(brand_id, parsed, dry_run=dry_run, atomic=atomic, progress=progress,
                                          job_id=job_id)
        except _AtomicWriteFailed as failed:
            return failed.outcome

    async def execute(self, brand_id: UUID, parsed: rules.ParsedFile, *, dry_run: bool, atomic: bool,
                      progress: Progress = _no_progress, job_id: UUID | None = None) -> Outcome:
        """Check every post, then (unless a dry run) write the importable ones in this
        transaction. Atomic: one blocking problem and nothing is written. A problem of the
        header (an unknown or missing column) stops any import: the columns cannot be trusted."""
        self.ctx.require(Action.POSTS_WRITE)
        brand = await self._brand(brand_id)
        lookups = await self._lookups(brand, parsed)
        checked: list[rules.Checked] = []
        done = 0
        for n, source in enumerate(parsed.posts, start=1):
            checked.append(rules.check_post(source, lookups))
            if n % 100 == 0:
                await asyncio.sleep(0)  # long files: let the other requests of this process in
            if dry_run:
                done += len(source.rows)
                await progress(done)
        file_blocked = any(p.blocking for p in parsed.problems)
        problems: list[Problem] = list(parsed.problems) + [p for c in checked for p in c.problems]
        importable = [] if file_blocked else [c for c in checked if not c.blocked]
        summary = {"posts": len(checked), "importable_posts": len(importable),
                   "blocked_posts": len(checked) - len(importable), "scheduled_posts": 0}
        total = parsed.total_rows

        def finish(status: str, created: int, processed: int) -> Outcome:
            kept = rules.ordered(problems)
            summary["problems"] = len(kept)
            summary["blocking_problems"] = sum(1 for p in kept if p.blocking)
            return Outcome(status, processed, created, [p.public() for p in kept[:rules.MAX_PROBLEMS_KEPT]],
                           summary)

        if dry_run:
            return finish("succeeded", 0, total)
        if file_blocked or (atomic and len(importable) < len(checked)):
            return finish("failed", 0, total)

        posts = PostService(self.ctx)
        done = sum(len(c.rows) for c in checked if c.blocked)
        created = scheduled = 0
        await progress(done)
        for item in importable:
            assert item.create is not None
            try:
                async with self.session.begin_nested():
                    loaded = await posts.create(brand.id, item.create)
                    if item.schedule:
                        await posts.schedule(loaded.post.id, cs.ScheduleIn(), None)
            except DomainError as err:
                # Checked a moment ago, so this is a race (an account unlinked meanwhile, say).
                problems.append(Problem(item.rows[0], "", "not_imported", f"{err.title}: {err.detail}"))
                summary["importable_posts"] -= 1
                summary["blocked_posts"] += 1
                if atomic:
                    raise _AtomicWriteFailed(finish("failed", 0, total)) from None
            else:
                created += 1
                scheduled += item.schedule
            done += len(item.rows)
            await progress(done)
        summary["scheduled_posts"] = scheduled
        await self.ctx.audit("import.finished", "import", job_id, {"brand_id": brand.id, "created_posts": created,
                                                                 "scheduled_posts": scheduled})
        return finish("succeeded", created, total)

    async def _lookups(self, brand: Brand, parsed: rules.ParsedFile) -> rules.Lookups:
        accounts = (await self.session.execute(self.ctx.select(
            SocialAccount, SocialAccount.id, SocialAccount.network, SocialAccount.handle, SocialAccount.status,
        ).where(SocialAccount.brand_id == brand.id))).all()
        campaigns = (await self.session.execute(self.ctx.select(Campaign, Campaign.id, Campaign.name).where(
            Campaign.brand_id == brand.id))).all()
        wanted = list({m.media_id for src in parsed.posts if src.post for v in src.post.variants for m in v.media})
        media: dict[UUID, MediaFacts] = {}
        for start in range(0, len(wanted), 1_000):
            rows = (await self.session.execute(self.ctx.select(
                MediaAsset, MediaAsset.id, MediaAsset.kind, MediaAsset.content_type, MediaAsset.size_bytes,
                MediaAsset.width, MediaAsset.height, MediaAsset.duration_ms, MediaAsset.alt_text,
            ).where(MediaAsset.brand_id == brand.id, MediaAsset.id.in_(wanted[start:start + 1_000])))).all()
            for r in rows:
                media[r.id] = MediaFacts(kind=r.kind, content_type=r.content_type, size_bytes=r.size_bytes,
                                         width=r.width, height=r.height, duration_ms=r.duration_ms,
                                         alt_text=r.alt_text)
        return rules.Lookups(
            zone=brand.time_zone, now=now(),
            accounts={a.id: rules.Account(a.id, Network(a.network), a.handle or "", a.status) for a in accounts},
            campaigns={c.id: c.name for c in campaigns}, media=media)

    # --- reading -------------------------------------------------------------------------------

    async def read(self, import_id: UUID) -> ImportJob:
        self.ctx.require(Action.POSTS_READ)
        await expire_stale(self.session, self.ctx.agency_id)
        job = await self.ctx.get(ImportJob, import_id, what="import")
        if not self.ctx.principal.sees_brand(job.brand_id):
            raise NotFoundError("No such import")
        return job

    async def list(self, page: PageRequest, *, brand_id: UUID | None = None) -> Page[s.ImportJobOut]:
        self.ctx.require(Action.POSTS_READ)
        await expire_stale(self.session, self.ctx.agency_id)
        stmt = self.ctx.visible_brands(self.ctx.select(ImportJob), ImportJob.brand_id)
        if brand_id is not None:
            stmt = stmt.where(ImportJob.brand_id == brand_id)
        result = await paginate(self.session, stmt, resolve_sort(IMPORT_SORTS, "-created_at"), page)
        return Page([job_out(job) for job in result.items], result.next_cursor)

    async def problems(self, import_id: UUID, page: PageRequest) -> Page[s.ImportProblem]:
        job = await self.read(import_id)
        offset = _offset(page.cursor)
        items = list(job.problems or [])[offset:offset + page.limit + 1]
        more = len(items) > page.limit
        return Page([msgspec.convert(p, s.ImportProblem) for p in items[:page.limit]],
                    _cursor(offset + page.limit) if more else None)

    async def _brand(self, brand_id: UUID) -> Brand:
        if not self.ctx.principal.sees_brand(brand_id):
            raise NotFoundError("No such brand")
        brand = await self.ctx.get(Brand, brand_id, what="brand")
        if brand.status != BrandStatus.ACTIVE:
            raise ConflictError("The brand is archived")
        return brand


class _JsonImport(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    dry_run: bool = True
    atomic: bool = True
    posts: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"[]"))


class _MalformedBodyError(DomainError):
    status = 400
    slug = "malformed-body"
    title = "The body is not valid JSON"


class _AtomicWriteFailed(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__("atomic import failed")
        self.outcome = outcome


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"problems:{offset}".encode()).rstrip(b"=").decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, value = raw.split(":")
        if prefix != "problems" or not value.isdigit():
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailedError.field("cursor", "The cursor is not valid for this list") from None


# --- stale jobs ------------------------------------------------------------------------------

_INTERRUPTED = Problem(1, "", "interrupted", "The import stopped before it finished (the server restarted or "
                       "crashed); nothing of it was imported. Upload the file again.").public()


async def expire_stale(session: AsyncSession, agency_id: UUID) -> None:
    """A job whose heartbeat stopped died with its process: say so, rather than 'running' forever."""
    moment = now()
    await session.execute(
        update(ImportJob)
        .where(ImportJob.agency_id == agency_id, ImportJob.status.in_(("queued", "running")),
               ImportJob.updated_at < moment - rules.STALE_AFTER)
        .values(status="failed", finished_at=moment, updated_at=moment,
                problems=ImportJob.problems.op("||")(literal([_INTERRUPTED], JSONB)))
        .execution_options(synchronize_session=False)
    )


# --- the job -----------------------------------------------------------------------------------


@dataclass
class _Heartbeat:
    """Writes progress in its own short transactions, at most every HEARTBEAT_SECONDS."""

    factory: async_sessionmaker[AsyncSession]
    agency_id: UUID
    job_id: UUID
    written_at: float = field(default_factory=time.monotonic)

    async def __call__(self, processed: int) -> None:
        if time.monotonic() - self.written_at < HEARTBEAT_SECONDS:
            return
        self.written_at = time.monotonic()
        async with scoped_session(self.factory, agency_id=self.agency_id) as session, session.begin():
            await session.execute(update(ImportJob).where(
                ImportJob.agency_id == self.agency_id, ImportJob.id == self.job_id, ImportJob.status == "running",
            ).values(processed_rows=processed, updated_at=now()))


async def _acting_principal(session: AsyncSession, job: ImportJob) -> Principal:
    """Whoever started the import, with the rights they have now."""
    if job.created_by_id is not None:
        member = await session.scalar(select(Membership).where(
            Membership.agency_id == job.agency_id, Membership.user_id == job.created_by_id))
        if member is not None:
            return Principal(agency_id=job.agency_id, user_id=member.user_id, role=Role(member.role),
                             brand_ids=frozenset(member.brand_ids) if member.brand_ids is not None else None,
                             label=job.actor_label)
    elif job.api_key_id is not None:
        key = await session.scalar(select(ApiKey).where(ApiKey.agency_id == job.agency_id,
                                                        ApiKey.id == job.api_key_id))
        if key is not None and key.revoked_at is None and (key.expires_at is None or key.expires_at > now()):
            return Principal(agency_id=job.agency_id, api_key_id=key.id, scopes=frozenset(key.scopes),
                             label=job.actor_label)
    raise ImportActorGoneError("The member or API key that started this import no longer exists")


async def run_import_job(factory: async_sessionmaker[AsyncSession], agency_id: UUID, job_id: UUID) -> None:
    """Run one queued import to its end. Safe to call twice: only a queued job is claimed."""
    moment = now()
    async with scoped_session(factory, agency_id=agency_id) as session, session.begin():
        claimed = await session.scalar(update(ImportJob).where(
            ImportJob.agency_id == agency_id, ImportJob.id == job_id, ImportJob.status == "queued",
        ).values(status="running", started_at=moment, updated_at=moment).returning(ImportJob.id))
        if claimed is None:
            return
        job = await session.scalar(select(ImportJob).options(undefer(ImportJob.payload)).where(
            ImportJob.agency_id == agency_id, ImportJob.id == job_id))
        assert job is not None
        session.expunge(job)
    try:
        async with scoped_session(factory, agency_id=agency_id, user_id=job.created_by_id) as session:
            async with session.begin():
                ctx = Context(await _acting_principal(session, job), session=session)
                parsed = rules.parse(job.payload, fmt=job.format)
                outcome = await ImportService(ctx).run(job.brand_id, parsed, dry_run=job.dry_run, atomic=job.atomic,
                                                       progress=_Heartbeat(factory, agency_id, job_id), job_id=job_id)
                finished = await session.execute(update(ImportJob).where(
                    ImportJob.agency_id == agency_id, ImportJob.id == job_id, ImportJob.status == "running",
                ).values(**outcome.values(), finished_at=now(), updated_at=now()))
                if finished.rowcount != 1:  # type: ignore[attr-defined]
                    raise _JobLost()
    except _JobLost:
        log.warning("import job was declared dead while running; its work was dropped", extra={"job_id": str(job_id)})
    except asyncio.CancelledError:
        await asyncio.shield(_fail(factory, agency_id, job_id, _INTERRUPTED))
        raise
    except DomainError as err:
        await _fail(factory, agency_id, job_id,
                    Problem(1, "", err.slug.replace("-", "_"), f"{err.title}: {err.detail}").public())
    except Exception:
        log.exception("import job failed", extra={"job_id": str(job_id)})
        await _fail(factory, agency_id, job_id, Problem(1, "", "internal_error", "The import failed on our side; "
                                                        "nothing of it was imported. Try again later.").public())


async def _fail(factory: async_sessionmaker[AsyncSession], agency_id: UUID, job_id: UUID,
                problem: dict[str, Any]) -> None:
    moment = now()
    async with scoped_session(factory, agency_id=agency_id) as session, session.begin():
        await session.execute(update(ImportJob).where(
            ImportJob.agency_id == agency_id, ImportJob.id == job_id, ImportJob.status.in_(("queued", "running")),
        ).values(status="failed", finished_at=moment, updated_at=moment,
                 problems=ImportJob.problems.op("||")(literal([problem], JSONB))))


# In-process background runs until the workers issue brings dramatiq: strong references, so
# a running task is not garbage-collected, and a way to stop them when the app stops.
_RUNNING: set[asyncio.Task[None]] = set()


def spawn(factory: async_sessionmaker[AsyncSession], agency_id: UUID, job_id: UUID) -> None:
    task = asyncio.get_running_loop().create_task(run_import_job(factory, agency_id, job_id),
                                                  name=f"import-{job_id}")
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def drain(timeout: float = 5.0) -> None:
    """On shutdown: let running imports end, then cancel the rest (they are marked failed)."""
    if not _RUNNING:
        return
    _, pending = await asyncio.wait(set(_RUNNING), timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=timeout)

