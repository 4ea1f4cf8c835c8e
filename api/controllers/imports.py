from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED

from api.auth import requires
from api.controllers.common import Cursor, Limit, page_out, page_request
from api.problems import CREATE, LIST, READ, SECURED, problems
from domain.agencies.rules import Action
from domain.core.context import Context
from domain.core.errors import ValidationFailedError
from domain.imports import rules
from domain.imports import schemas as s
from domain.imports.service import ImportMediaTypeError, ImportService, job_out, spawn

# The file, plus the multipart envelope around it.
UPLOAD_LIMIT = rules.MAX_BYTES + 64 * 1024
_FORM_FIELDS = {"file", "dry_run", "atomic"}


@dataclass
class ImportUpload:
    """multipart/form-data: the file (CSV or JSON), and the two switches."""

    file: UploadFile
    # Check every row and write nothing (the default).
    dry_run: bool = True
    # All or nothing: one post that cannot be imported stops the import (the default).
    atomic: bool = True


def _flag(value: Any, name: str) -> bool:
    if value is None:
        return True
    parsed = rules.parse_bool(str(value))
    if parsed is None or str(value).strip() == "":
        raise ValidationFailedError.field(name, f"{name} must be true or false")
    return parsed


_CREATE_DESCRIPTION = (
    "Upload posts in bulk, as a CSV (`multipart/form-data`, field `file`) or as JSON (a body "
    "`{dry_run, atomic, posts: [...]}` of `ImportPost`, or a `.json` file). By default a **dry run**: every row is "
    "checked and nothing is written; each problem names its `row` (the header is row 1), its `column` and its "
    "`rule`. With `dry_run=false` the posts are imported, **all or nothing** unless `atomic=false` (then the "
    "posts without blocking problems are imported and the others reported). A draft may break its networks' "
    "rules (it is imported, not ready); a row with `schedule` yes must keep them, and is scheduled once imported. "
    f"Files of up to {rules.SYNC_ROWS} rows are done within the request (201, the finished job); larger ones "
    f"answer 202 with a queued job: follow it with getImport. At most {rules.MAX_BYTES // (1024 * 1024)} MB and "
    f"{rules.MAX_ROWS} rows (413 beyond). The CSV format: see getImportTemplate."
)
_ACCESS = requires(Action.POSTS_WRITE, _CREATE_DESCRIPTION)
_TEMPLATE_ACCESS = requires(Action.POSTS_READ, (
    "The header row of an import CSV and two example rows: one post going to X (a thread) and to Instagram. "
    "One row per variant; rows with the same `post_key` are one post. Columns: `post_key`, `title`, `labels` "
    "(separated by `;`), `campaign` (name or id), `date` (YYYY-MM-DD) and `time` (HH:MM) on the brand's wall "
    "clock, or `scheduled_at` (ISO 8601 with offset), `schedule` (yes/no), `account` (`network:handle` or the "
    "account's id; required), `text`, `media_ids` (library ids separated by `;`), and `opt_<option>` for each "
    "network option (`opt_privacy`, `opt_board_id`, ...; `opt_thread` parts separated by ` || `). Comma, "
    "semicolon or tab delimited; UTF-8 with or without BOM."))


class ImportController(Controller):
    path = "/v1"
    tags = ["Imports"]
    security = SECURED

    @get("/imports/template.csv", operation_id="getImportTemplate", summary="The CSV template for imports",
         media_type="text/csv", responses={200: ResponseSpec(data_container=str, media_type="text/csv",
                                                             description="The template", generate_examples=False),
                                           **problems(400, 401, 402, 403, 429)}, **_TEMPLATE_ACCESS)
    async def template(self) -> Response[str]:
        return Response(rules.template_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="chorus-import-template.csv"'})

    @post("/brands/{brand_id:uuid}/imports", operation_id="createImport",
          summary="Check, then import, a file of posts (CSV or JSON)", description=_ACCESS["description"],
          opt={**_ACCESS["opt"], "body_limit": UPLOAD_LIMIT,
               "request_bodies": {"multipart/form-data": ImportUpload, "application/json": s.ImportRequest}},
          request_max_body_size=UPLOAD_LIMIT, status_code=HTTP_201_CREATED,
          responses={202: ResponseSpec(data_container=s.ImportJobOut, description="A larger file: the job is "
                                       "queued; follow it with getImport"),
                     **problems(*CREATE, 404, 415)})
    async def create_import(self, ctx: NamedDependency[Context], brand_id: FromPath[UUID],
                            request: Request[Any, Any, Any]) -> Response[s.ImportJobOut]:
        service = ImportService(ctx)
        media_type = request.content_type[0]
        if media_type == "multipart/form-data":
            form = await request.form()
            unknown = sorted(set(form.keys()) - _FORM_FIELDS)
            if unknown:
                raise ValidationFailedError.field(unknown[0], f"Unknown field {unknown[0]!r}; send file, dry_run "
                                                  "and atomic")
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ValidationFailedError.field("file", "Send the CSV or JSON file in the field 'file'")
            data = await upload.read()
            job, background = await service.start(
                brand_id, data, filename=upload.filename or "", content_type=upload.content_type or "",
                dry_run=_flag(form.get("dry_run"), "dry_run"), atomic=_flag(form.get("atomic"), "atomic"))
        elif media_type == "application/json":
            job, background = await service.start_json(brand_id, await request.body())
        else:
            raise ImportMediaTypeError(f"{media_type or 'No content type'} is not taken here: upload the file as "
                                       "multipart/form-data (field 'file'), or send JSON")
        if background:
            factory, agency_id, job_id = request.app.state.session_factory, ctx.agency_id, job.id

            async def run_after_commit() -> None:
                spawn(factory, agency_id, job_id)

            ctx.after_commit.append(run_after_commit)
        answer = job_out(job)
        return Response(answer, status_code=HTTP_202_ACCEPTED if background else HTTP_201_CREATED,
                        headers={"Location": f"/v1/imports/{job.id}"})

    @get("/imports", operation_id="listImports", summary="Imports, newest first", **requires(Action.POSTS_READ),
         responses=problems(*LIST))
    async def list_imports(self, ctx: NamedDependency[Context], limit: Limit = 50, cursor: Cursor = None,
                           brand_id: FromQuery[UUID | None] = None) -> s.ImportJobPage:
        page = await ImportService(ctx).list(page_request(limit, cursor), brand_id=brand_id)
        return page_out(s.ImportJobPage, page)

    @get("/imports/{import_id:uuid}", operation_id="getImport",
         summary="One import: status, progress, counts and its first problems", **requires(
             Action.POSTS_READ, "Poll it while `status` is queued or running. A job whose process stopped is "
             "reported failed (problem `interrupted`) once its heartbeat is "
             f"{int(rules.STALE_AFTER.total_seconds() // 60)} minutes old; nothing of it was imported."),
         responses=problems(*READ))
    async def get_import(self, ctx: NamedDependency[Context], import_id: FromPath[UUID]) -> s.ImportJobOut:
        return job_out(await ImportService(ctx).read(import_id))

    @get("/imports/{import_id:uuid}/problems", operation_id="listImportProblems",
         summary="Every problem of an import, in row order", **requires(Action.POSTS_READ),
         responses=problems(*READ, 422))
    async def list_problems(self, ctx: NamedDependency[Context], import_id: FromPath[UUID], limit: Limit = 50,
                            cursor: Cursor = None) -> s.ImportProblemPage:
        return page_out(s.ImportProblemPage, await ImportService(ctx).problems(import_id, page_request(limit, cursor)))
