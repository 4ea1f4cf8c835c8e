"""Bulk import through the API: dry runs that report every row's problems, all-or-nothing
imports, jobs for large files, JSON, idempotent retries, tenancy and roles."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tests.api.test_posts import media_asset

MADRID = ZoneInfo("Europe/Madrid")


@pytest.fixture
async def studio(tenant, owner_engine, settings):
    brand = await tenant.brand()
    accounts = {n: await tenant.social_account(owner_engine, settings.vault(), brand["id"], n)
                for n in ("x", "instagram", "tiktok", "youtube")}
    r = await tenant.req("POST", "/v1/campaigns", json={
        "brand_id": brand["id"], "name": "Christmas roscón", "objective": "sales", "start_date": "2026-12-01",
        "end_date": "2027-01-31"})
    assert r.status_code == 201, r.text
    image = await media_asset(tenant, owner_engine, brand["id"])
    return brand, accounts, r.json(), image


def csv_bytes(rows: list[dict[str, str]], *, delimiter: str = ",", columns: list[str] | None = None) -> bytes:
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return out.getvalue().encode()


async def upload(tenant, brand_id, data: bytes, *, dry_run: bool | None = None, atomic: bool | None = None,
                 filename: str = "posts.csv", token: str | None = None, headers: dict | None = None):
    form = {}
    if dry_run is not None:
        form["dry_run"] = "true" if dry_run else "false"
    if atomic is not None:
        form["atomic"] = "true" if atomic else "false"
    return await tenant.client.post(f"/v1/brands/{brand_id}/imports", headers={**tenant.auth(token), **(headers or {})},
                                    files={"file": (filename, data, "text/csv")}, data=form)


async def brand_posts(tenant, brand_id) -> list[dict]:
    r = await tenant.req("GET", "/v1/posts", params={"brand_id": brand_id, "limit": 200})
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def post_count(owner_engine, brand_id) -> int:
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM posts WHERE brand_id = :b"), {"b": brand_id})).scalar()


def where(job) -> set[tuple[int, str, str]]:
    return {(p["row"], p["column"], p["rule"]) for p in job["problems"]}


def local(days: int, hour: int = 9, minute: int = 30) -> datetime:
    """A wall-clock time in Madrid some days ahead."""
    day = (datetime.now(MADRID) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=MADRID)


async def test_dry_run_reports_every_rows_problems_and_writes_nothing(tenant, studio, owner_engine):
    brand, accounts, _, _ = studio
    data = csv_bytes([
        {"post_key": "1", "account": "x:h", "text": "é" * 270 + "\n" + "é" * 10},
        {"post_key": "2", "account": "tiktok:h", "text": "Nuevo roscón", "opt_privacy": ""},
        {"post_key": "3", "account": "x:nobody", "text": "hola"},
        {"post_key": "4", "account": "x:h", "text": "hola", "date": "2026-02-30", "time": "09:00"},
        {"post_key": "5", "account": "x:h", "text": "fine"},
    ], columns=["post_key", "account", "text", "date", "time", "opt_privacy", "colour"])
    r = await upload(tenant, brand["id"], data)  # dry run by default
    assert r.status_code == 201, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/imports/{job['id']}"
    assert job["dry_run"] is True and job["atomic"] is True and job["status"] == "succeeded"
    assert job["total_rows"] == job["processed_rows"] == 5 and job["created_posts"] == 0
    assert where(job) == {
        (1, "colour", "unknown_column"),
        (2, "text", "text_too_long"),
        (3, "opt_privacy", "option_required"), (3, "media_ids", "media_required"),
        (4, "account", "unknown_account"),
        (5, "date", "invalid_date"),
    }
    x = next(p for p in job["problems"] if p["rule"] == "text_too_long")
    assert x == {"row": 2, "column": "text", "rule": "text_too_long", "message": "x: 281 of 280 weighted characters",
                 "severity": "error", "blocking": False}
    assert [p["row"] for p in job["problems"]] == sorted(p["row"] for p in job["problems"])
    assert job["counts"] == {"posts": 5, "importable_posts": 0, "blocked_posts": 5, "scheduled_posts": 0,
                             "problems": 6, "blocking_problems": 3}
    assert await post_count(owner_engine, brand["id"]) == 0

    # Without the account column: the header says so, once.
    r = await upload(tenant, brand["id"], csv_bytes([{"post_key": "1", "text": "hola"}]))
    assert where(r.json()) == {(1, "account", "missing_column")}
    assert await post_count(owner_engine, brand["id"]) == 0

    # The same problems, page by page.
    page = (await tenant.req("GET", f"/v1/imports/{job['id']}/problems", params={"limit": 4})).json()
    rest = (await tenant.req("GET", f"/v1/imports/{job['id']}/problems",
                             params={"limit": 4, "cursor": page["next_cursor"]})).json()
    assert page["items"] + rest["items"] == job["problems"] and rest["next_cursor"] is None
    r = await tenant.req("GET", f"/v1/imports/{job['id']}/problems", params={"cursor": "garbage"})
    assert r.status_code == 422 and r.json()["type"].endswith("/validation-error")


async def test_all_or_nothing_writes_nothing_when_one_row_is_bad(tenant, studio, owner_engine):
    brand, accounts, _, _ = studio
    rows = [{"post_key": str(i), "account": "x:h", "text": f"post {i}"} for i in range(5)]
    rows.append({"post_key": "bad", "account": "instagram:someone-else", "text": "hola"})
    r = await upload(tenant, brand["id"], csv_bytes(rows), dry_run=False)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "failed" and job["created_posts"] == 0 and job["processed_rows"] == 6
    assert where(job) == {(7, "account", "unknown_account")}
    assert job["problems"][0]["blocking"] is True
    assert await post_count(owner_engine, brand["id"]) == 0


async def test_import_writes_posts_with_variants_media_labels_local_times_and_schedules(tenant, studio, owner_engine):
    brand, accounts, campaign, image = studio
    launch = local(10, 9, 30)
    later = (datetime.now(UTC) + timedelta(days=12)).replace(microsecond=0)
    rows = [
        {"post_key": "launch", "title": "Roscón launch", "labels": "Christmas; Launch", "campaign": "christmas roscón",
         "date": launch.date().isoformat(), "time": "09:30", "schedule": "yes", "account": "x:h",
         "text": "Roscón de Reyes, ya en tienda"},
        {"post_key": "tiktok", "scheduled_at": later.isoformat(), "account": "tiktok:h", "text": "En vídeo pronto",
         "opt_privacy": "PUBLIC_TO_EVERYONE"},
        {"post_key": "launch", "account": "instagram:h", "text": "Nuestro roscón, hecho a mano", "media_ids": image,
         "opt_placement": "feed", "opt_first_comment": "#roscon"},
        {"post_key": "thread", "account": str(accounts["x"]), "text": "Un hilo", "opt_thread": "dos || tres"},
    ]
    r = await upload(tenant, brand["id"], csv_bytes(rows), dry_run=False)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "succeeded" and job["created_posts"] == 3 and job["processed_rows"] == 4
    assert job["counts"]["scheduled_posts"] == 1
    # The TikTok draft has no video: imported all the same, and the report says why it is not ready.
    assert where(job) == {(3, "media_ids", "media_required")}
    posts = {p["title"] or p["variants"][0]["text"]: p for p in await brand_posts(tenant, brand["id"])}
    scheduled = posts["Roscón launch"]
    assert scheduled["status"] == "scheduled" and scheduled["labels"] == ["christmas", "launch"]
    assert scheduled["campaign_id"] == campaign["id"] and scheduled["time_zone"] == "Europe/Madrid"
    assert datetime.fromisoformat(scheduled["scheduled_at"]) == launch
    assert datetime.fromisoformat(scheduled["local_scheduled_at"]).replace(tzinfo=None) == launch.replace(tzinfo=None)
    variants = {v["network"]: v for v in scheduled["variants"]}
    assert variants["instagram"]["media"] == [{"media_id": image, "alt_text": ""}]
    assert variants["instagram"]["options"] == {"placement": "feed", "first_comment": "#roscon"}
    assert all(v["status"] == "scheduled" for v in variants.values())
    tiktok = posts["En vídeo pronto"]
    assert tiktok["status"] == "draft" and tiktok["ready"] is False
    assert datetime.fromisoformat(tiktok["scheduled_at"]) == later
    assert posts["Un hilo"]["variants"][0]["options"] == {"thread": ["dos", "tres"]}
    assert posts["Un hilo"]["status"] == "draft" and posts["Un hilo"]["ready"] is True


async def test_atomic_false_imports_the_good_posts_and_reports_the_rest(tenant, studio, owner_engine):
    brand, _, _, _ = studio
    when = local(5).isoformat()
    rows = [
        {"post_key": "good", "account": "x:h", "text": "bien"},
        {"post_key": "draft", "account": "x:h", "text": "é" * 300},
        {"post_key": "to-schedule", "account": "x:h", "text": "é" * 300, "schedule": "yes", "scheduled_at": when},
        {"post_key": "unknown", "account": "youtube:nobody", "text": "hola"},
        {"post_key": "good too", "account": "x:h", "text": "también", "schedule": "yes", "scheduled_at": when},
    ]
    r = await upload(tenant, brand["id"], csv_bytes(rows), dry_run=False, atomic=False)
    job = r.json()
    assert job["status"] == "succeeded" and job["created_posts"] == 3, job
    assert job["counts"] | {} == {"posts": 5, "importable_posts": 3, "blocked_posts": 2, "scheduled_posts": 1,
                                  "problems": 3, "blocking_problems": 2}
    assert {(p["row"], p["rule"], p["blocking"]) for p in job["problems"]} == {
        (3, "text_too_long", False), (4, "text_too_long", True), (5, "unknown_account", True)}
    texts = sorted(p["variants"][0]["text"][:7] for p in await brand_posts(tenant, brand["id"]))
    assert texts == ["bien", "también", "é" * 7]


async def test_a_large_file_runs_as_a_job_with_readable_progress(app, tenant, studio, owner_engine):
    brand, _, _, _ = studio
    rows = [{"post_key": f"p{i}", "account": "x:h", "text": f"Post número {i}", "labels": "bulk"} for i in range(600)]
    r = await upload(tenant, brand["id"], csv_bytes(rows), dry_run=False)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "running", "succeeded") and job["total_rows"] == 600
    seen = []
    for _ in range(1200):  # bounded: at most about two minutes
        current = (await tenant.req("GET", f"/v1/imports/{job['id']}")).json()
        seen.append(current["processed_rows"])
        if current["status"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.1)
    assert current["status"] == "succeeded", current
    assert current["processed_rows"] == 600 and current["created_posts"] == 600
    assert current["started_at"] and current["finished_at"] and current["problems"] == []
    assert seen == sorted(seen) and all(0 <= n <= 600 for n in seen)
    assert await post_count(owner_engine, brand["id"]) == 600
    listed = (await tenant.req("GET", "/v1/imports", params={"brand_id": brand["id"]})).json()["items"]
    assert [j["id"] for j in listed] == [job["id"]]

    # Running the job again (a redelivered message, later) does nothing.
    from domain.imports.service import run_import_job

    # (On the app's own event loop, where its connection pool lives.)
    tenant.client.blocking_portal.call(run_import_job, app.state.session_factory, uuid.UUID(tenant.agency_id),
                                       uuid.UUID(job["id"]))
    assert await post_count(owner_engine, brand["id"]) == 600


async def test_a_large_dry_run_is_a_job_too_and_writes_nothing(tenant, studio, owner_engine):
    brand, _, _, _ = studio
    rows = [{"account": "x:h" if i != 250 else "x:ghost", "text": f"Post {i}"} for i in range(300)]
    r = await upload(tenant, brand["id"], csv_bytes(rows))
    assert r.status_code == 202
    for _ in range(600):
        job = (await tenant.req("GET", f"/v1/imports/{r.json()['id']}")).json()
        if job["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.1)
    assert job["status"] == "succeeded" and job["processed_rows"] == 300 and job["created_posts"] == 0
    assert where(job) == {(252, "account", "unknown_account")}
    assert await post_count(owner_engine, brand["id"]) == 0


async def test_json_import(tenant, studio, owner_engine):
    brand, accounts, campaign, image = studio
    when = local(7, 18, 0)
    body = {"dry_run": False, "atomic": False, "posts": [
        {"title": "JSON launch", "labels": ["json"], "campaign": "Christmas roscón",
         "local_scheduled_at": when.replace(tzinfo=None).isoformat(), "schedule": True,
         "variants": [{"account": "x:h", "text": "Desde JSON"},
                      {"social_account_id": accounts["instagram"], "text": "Foto", "media": [{"media_id": image}]}]},
        {"variants": [{"social_account_id": accounts["tiktok"], "text": "sin privacidad"}], "schedule": True,
         "scheduled_at": when.isoformat()},
        {"variants": [{"account": "x:h", "txt": "typo"}]},
    ]}
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/imports", json=body)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["format"] == "json" and job["created_posts"] == 1 and job["total_rows"] == 3
    assert {(p["row"], p["column"], p["rule"], p["blocking"]) for p in job["problems"]} == {
        (2, "variants[0].options.privacy", "option_required", True),
        (2, "variants[0].media", "media_required", True),
        (3, "variants[0].txt", "invalid_value", True),
    }
    [post] = await brand_posts(tenant, brand["id"])
    assert post["status"] == "scheduled" and datetime.fromisoformat(post["scheduled_at"]) == when
    assert post["campaign_id"] == campaign["id"] and len(post["variants"]) == 2

    # A .json file through the upload form: the same checks.
    import json

    r = await upload(tenant, brand["id"], json.dumps(body["posts"][1:]).encode(), filename="posts.json")
    assert r.status_code == 201 and r.json()["format"] == "json" and r.json()["dry_run"] is True
    assert r.json()["counts"]["blocked_posts"] == 2

    # The body itself must be right.
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/imports", json={"posts": [], "dryrun": False})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "dryrun"
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/imports", content=b"{nope",
                         headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["type"].endswith("/malformed-body")
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/imports", content=b"a,b",
                         headers={"Content-Type": "text/csv"})
    assert r.status_code == 415 and r.json()["type"].endswith("/unsupported-media-type")
    assert await post_count(owner_engine, brand["id"]) == 1


async def test_bom_semicolons_and_formula_looking_cells(tenant, studio):
    brand, _, _, _ = studio
    formula = '=HYPERLINK("http://evil.test","clic")'
    data = codecs.BOM_UTF8 + csv_bytes([
        {"title": "=SUM(A1:A9)", "labels": "uno; dos", "account": "x:h", "text": formula},
        {"title": "+34 600 000 000", "account": "x:h", "text": "@panaderia; -5% hoy"},
    ], delimiter=";")
    r = await upload(tenant, brand["id"], data, dry_run=False)
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    posts = {p["title"]: p for p in await brand_posts(tenant, brand["id"])}
    assert posts["=SUM(A1:A9)"]["variants"][0]["text"] == formula
    assert posts["=SUM(A1:A9)"]["labels"] == ["uno", "dos"]
    assert posts["+34 600 000 000"]["variants"][0]["text"] == "@panaderia; -5% hoy"


@pytest.mark.parametrize(("data", "filename"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "posts.csv"),
    (b"PK\x03\x04\x14\x00\x06\x00", "posts.xlsx"),
    ("account,text\nx:h,caf\xe9\n".encode("latin-1"), "posts.csv"),
    (bytes(range(256)) * 8, "posts.bin"),
    (b'account,text\nx:h,"open quote\n', "posts.csv"),
    (b"", "posts.csv"),
    (b"[{]", "posts.json"),
])
async def test_garbage_is_a_clear_422_and_writes_nothing(tenant, studio, data, filename):
    brand, _, _, _ = studio
    r = await upload(tenant, brand["id"], data, dry_run=False, filename=filename)
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("/import-file-invalid") and r.json()["errors"][0]["field"] == "file"
    assert (await tenant.req("GET", "/v1/imports", params={"brand_id": brand["id"]})).json()["items"] == []


async def test_too_large_is_413_and_writes_nothing(tenant, studio):
    brand, _, _, _ = studio
    r = await upload(tenant, brand["id"], b"account,text\n" + b"x:h," + b"a" * (5 * 1024 * 1024) + b"\n")
    assert r.status_code == 413 and r.json()["type"].endswith("/import-too-large"), r.text
    r = await upload(tenant, brand["id"], b"account,text\n" + b"x:h,hi\n" * 5_001)
    assert r.status_code == 413 and "5001 rows" in r.json()["detail"]
    r = await upload(tenant, brand["id"], b"x" * (6 * 1024 * 1024))
    assert r.status_code == 413
    assert (await tenant.req("GET", "/v1/imports", params={"brand_id": brand["id"]})).json()["items"] == []


async def test_a_retried_upload_with_the_same_key_imports_once(tenant, studio, owner_engine):
    brand, _, _, _ = studio
    data = csv_bytes([{"post_key": str(i), "account": "x:h", "text": f"idem {i}"} for i in range(3)])
    key = str(uuid.uuid4())
    first = await upload(tenant, brand["id"], data, dry_run=False, headers={"Idempotency-Key": key})
    # httpx draws a new multipart boundary for the retry: still the same request.
    second = await upload(tenant, brand["id"], data, dry_run=False, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert second.headers.get("idempotent-replayed") == "true" and second.json()["id"] == first.json()["id"]
    assert await post_count(owner_engine, brand["id"]) == 3
    # A large upload (a background job) too.
    rows = [{"account": "x:h", "text": f"big {i}"} for i in range(250)]
    key = str(uuid.uuid4())
    first = await upload(tenant, brand["id"], csv_bytes(rows), dry_run=False, headers={"Idempotency-Key": key})
    second = await upload(tenant, brand["id"], csv_bytes(rows), dry_run=False, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 202 and second.json()["id"] == first.json()["id"]
    for _ in range(600):
        job = (await tenant.req("GET", f"/v1/imports/{first.json()['id']}")).json()
        if job["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.1)
    assert job["status"] == "succeeded"
    assert await post_count(owner_engine, brand["id"]) == 253
    assert len((await tenant.req("GET", "/v1/imports", params={"brand_id": brand["id"]})).json()["items"]) == 2
    # Another file under the same key is refused, not replayed.
    other = await upload(tenant, brand["id"], csv_bytes(rows[:1]), dry_run=False, headers={"Idempotency-Key": key})
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")


async def test_imports_of_another_agency_are_404(tenant, other_tenant, studio):
    brand, _, _, _ = studio
    job = (await upload(tenant, brand["id"], csv_bytes([{"account": "x:h", "text": "mine"}]))).json()
    for path in (f"/v1/imports/{job['id']}", f"/v1/imports/{job['id']}/problems"):
        r = await other_tenant.req("GET", path)
        assert r.status_code == 404 and r.json()["type"].endswith("/not-found")
    assert (await other_tenant.req("GET", "/v1/imports")).json()["items"] == []
    r = await upload(other_tenant, brand["id"], csv_bytes([{"account": "x:h", "text": "theirs"}]))
    assert r.status_code == 404


async def test_analysts_cannot_import_and_editors_see_only_their_brands(tenant, studio, owner_engine):
    brand, _, _, _ = studio
    data = csv_bytes([{"account": "x:h", "text": "hola"}])
    analyst, _ = await tenant.member("analyst")
    r = await upload(tenant, brand["id"], data, dry_run=False, token=analyst)
    assert r.status_code == 403 and r.json()["type"].endswith("/forbidden")
    job = (await upload(tenant, brand["id"], data)).json()
    assert (await tenant.req("GET", f"/v1/imports/{job['id']}", token=analyst)).status_code == 200
    other = await tenant.brand()
    limited, _ = await tenant.member("editor", brand_ids=[other["id"]])
    assert (await upload(tenant, brand["id"], data, token=limited)).status_code == 404
    assert (await tenant.req("GET", f"/v1/imports/{job['id']}", token=limited)).status_code == 404
    assert (await tenant.req("GET", "/v1/imports", token=limited)).json()["items"] == []
    editor, _ = await tenant.member("editor")
    r = await upload(tenant, brand["id"], data, dry_run=False, token=editor)
    assert r.status_code == 201 and r.json()["created_posts"] == 1
    assert await post_count(owner_engine, brand["id"]) == 1


async def test_a_job_whose_process_died_is_failed_on_read(tenant, studio, owner_engine):
    brand, _, _, _ = studio
    job = (await upload(tenant, brand["id"], csv_bytes([{"account": "x:h", "text": "hola"}]))).json()
    async with owner_engine.begin() as conn:  # as a crash would leave it: running, heartbeat long gone
        await conn.execute(text("UPDATE import_jobs SET status = 'running', finished_at = NULL, "
                                "updated_at = now() - interval '11 minutes' WHERE id = :id"), {"id": job["id"]})
    current = (await tenant.req("GET", f"/v1/imports/{job['id']}")).json()
    assert current["status"] == "failed" and current["finished_at"]
    assert current["problems"][-1]["rule"] == "interrupted"
    # A fresh heartbeat is left alone.
    fresh = (await upload(tenant, brand["id"], csv_bytes([{"account": "x:h", "text": "hola"}]))).json()
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE import_jobs SET status = 'running' WHERE id = :id"), {"id": fresh["id"]})
    assert (await tenant.req("GET", f"/v1/imports/{fresh['id']}")).json()["status"] == "running"


async def test_the_template(tenant, studio):
    brand, _, _, _ = studio
    r = await tenant.req("GET", "/v1/imports/template.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert len(rows) == 3 and rows[0][:3] == ["post_key", "title", "labels"] and "account" in rows[0]
    # Read back as an import: the header is right; only the example accounts are not this brand's.
    job = (await upload(tenant, brand["id"], r.content)).json()
    assert {p["rule"] for p in job["problems"]} <= {"unknown_account", "media_required"}
    assert {(p["row"], p["column"]) for p in job["problems"] if p["rule"] == "unknown_account"} == {
        (2, "account"), (3, "account")}


async def test_a_broken_header_stops_even_a_non_atomic_import(tenant, studio, owner_engine):
    brand, _, _, _ = studio
    data = csv_bytes([{"account": "x:h", "txt": "typo in the column"}])
    r = await upload(tenant, brand["id"], data, dry_run=False, atomic=False)
    assert r.json()["status"] == "failed"
    assert where(r.json()) == {(1, "txt", "unknown_column"), (2, "text", "empty")}
    assert await post_count(owner_engine, brand["id"]) == 0
