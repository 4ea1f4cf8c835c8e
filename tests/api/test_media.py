"""The media library over the real stack: multipart uploads, the library, deletion rules,
network fit, signed links, tenancy and permissions, and S3 against a real S3-compatible
server (moto) on loopback."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from domain.media import links
from domain.media.service import link_key
from tests import media_files as mf

BASE = "http://testserver.local"


async def upload(tenant, brand_id: str, data: bytes, filename: str = "photo.jpg", content_type: str = "image/jpeg",
                 *, tags: list[str] | None = None, alt_text: str | None = None, token: str | None = None,
                 client: AsyncTestClient | None = None, extra: dict | None = None):
    fields: dict = {**(extra or {})}
    if tags is not None:
        fields["tags"] = tags
    if alt_text is not None:
        fields["alt_text"] = alt_text
    return await (client or tenant.client).post(
        f"/v1/brands/{brand_id}/media", headers=tenant.auth(token),
        files={"file": (filename, data, content_type)}, data=fields)


def stored_files(root: Path, agency_id: str) -> list[Path]:
    folder = root / agency_id
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def incoming_files(settings) -> list[Path]:
    folder = settings.media_incoming_dir()
    return list(folder.iterdir()) if folder.exists() else []


async def library(tenant, **params) -> list[dict]:
    r = await tenant.req("GET", "/v1/media", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


# --- uploads ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "kind", "content_type", "width", "height", "duration_ms"), [
    (mf.image("JPEG", (1080, 1350)), "image", "image/jpeg", 1080, 1350, None),
    (mf.image("PNG", (800, 600)), "image", "image/png", 800, 600, None),
    (mf.image("GIF", (320, 240), frames=2), "gif", "image/gif", 320, 240, None),
    (mf.image("WEBP", (500, 500)), "image", "image/webp", 500, 500, None),
    (mf.video(width=1080, height=1920, duration_ms=12_500), "video", "video/mp4", 1080, 1920, 12_500),
    (mf.mov(width=1920, height=1080, duration_ms=3_000), "video", "video/quicktime", 1920, 1080, 3_000),
], ids=["jpeg", "png", "gif", "webp", "mp4", "mov"])
async def test_upload_reads_each_type_from_its_bytes(tenant, settings, data, kind, content_type, width, height,
                                                     duration_ms):
    brand = await tenant.brand()
    r = await upload(tenant, brand["id"], data, "whatever.bin", "application/octet-stream",
                     tags=["Launch", "summer"], alt_text="A sunny shop front")
    assert r.status_code == 201, r.text
    media = r.json()
    assert (media["kind"], media["content_type"], media["width"], media["height"], media["duration_ms"]) == (
        kind, content_type, width, height, duration_ms)
    assert media["size_bytes"] == len(data) and media["sha256"] == hashlib.sha256(data).hexdigest()
    assert media["tags"] == ["launch", "summer"] and media["alt_text"] == "A sunny shop front"
    assert media["filename"] == "whatever.bin" and media["brand_id"] == brand["id"]
    assert r.headers["etag"] == '"1"' and r.headers["location"] == f"/v1/media/{media['id']}"
    assert set(media["networks"]) == {"x", "facebook", "instagram", "tiktok", "youtube", "linkedin", "threads",
                                      "pinterest"}
    got = await tenant.req("GET", f"/v1/media/{media['id']}")
    assert got.status_code == 200 and got.json() == media
    # The bytes are on disk, under ids only.
    files = stored_files(settings.media_root(), tenant.agency_id)
    assert [f.read_bytes() for f in files] == [data]
    assert files[0].relative_to(settings.media_root()).parts[:2] == (tenant.agency_id, brand["id"])


async def test_sniffing_beats_a_lying_name_and_content_type(tenant, settings):
    brand = await tenant.brand()
    png = mf.image("PNG", (64, 64))
    r = await upload(tenant, brand["id"], png, "../../etc/clip.mp4", "video/mp4")
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == "image/png" and r.json()["kind"] == "image"
    assert r.json()["filename"] == "clip.mp4"  # the path part is dropped: it names nothing on our side
    [stored] = stored_files(settings.media_root(), tenant.agency_id)
    assert stored.suffix == ".png" and "clip" not in str(stored) and ".." not in stored.parts
    # And the other way round: a video called .jpg and sent as image/jpeg is a video.
    r = await upload(tenant, brand["id"], mf.video(), "holiday.jpg", "image/jpeg")
    assert r.status_code == 201 and r.json()["content_type"] == "video/mp4" and r.json()["duration_ms"] == 15_000


@pytest.fixture(scope="module")
async def small_limits(settings, tmp_path_factory):
    """The app with tiny limits and its own media folder."""
    from api.app import create_app

    small = replace(settings, media_max_image_bytes=40_000, media_max_video_bytes=60_000,
                    media_dir=tmp_path_factory.mktemp("media-small"))
    async with AsyncTestClient(create_app(small), base_url=BASE) as client:
        yield small, client


@pytest.mark.parametrize(("body", "status", "slug"), [
    ({"data": b"just some text, not media"}, 415, "media-type-unsupported"),
    ({"data": b"%PDF-1.7 a document"}, 415, "media-type-unsupported"),
    ({"data": b""}, 422, "validation-error"),
    ({"data": b"\x89PNG\r\n\x1a\n" + b"not really" * 50}, 422, "validation-error"),
    ({"data": mf.box(b"ftyp", b"isom" + bytes(4)) + mf.box(b"mdat", bytes(500))}, 422, "validation-error"),
    ({"data": mf.video(tracks=mf.trak(0, 0, b"soun"))}, 422, "validation-error"),
    ({"data": mf.image("JPEG", (2000, 2000)) + bytes(50_000)}, 413, "media-too-large"),
    ({"data": mf.video(mdat_bytes=70_000)}, 413, "media-too-large"),
    ({"data": mf.image("PNG", (10, 10)), "extra": {"colour": "red"}}, 422, "validation-error"),
    ({"data": mf.image("PNG", (10, 10)), "tags": ["ok", "x" * 51]}, 422, "validation-error"),
], ids=["text", "pdf", "empty", "broken-png", "mp4-without-moov", "audio-only", "big-image", "big-video",
        "unknown-field", "long-tag"])
async def test_refused_uploads_leave_nothing_behind(tenant, small_limits, body, status, slug):
    settings, client = small_limits
    brand = await tenant.brand()
    r = await upload(tenant, brand["id"], body["data"], client=client, tags=body.get("tags"), extra=body.get("extra"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/" + slug)
    if status == 413:
        limit = settings.media_max_video_bytes if b"ftyp" in body["data"][:12] else settings.media_max_image_bytes
        assert str(limit) in r.json()["detail"]
    assert await library(tenant, brand_id=brand["id"]) == []
    assert stored_files(settings.media_root(), tenant.agency_id) == []
    assert incoming_files(settings) == []


async def test_an_upload_under_the_small_limits_still_works(tenant, small_limits):
    settings, client = small_limits
    brand = await tenant.brand()
    r = await upload(tenant, brand["id"], mf.image("PNG", (100, 100)), client=client)
    assert r.status_code == 201, r.text
    assert len(stored_files(settings.media_root(), tenant.agency_id)) == 1 and incoming_files(settings) == []


async def test_upload_body_must_be_a_multipart_form_with_one_file(tenant):
    brand = await tenant.brand()
    path = f"/v1/brands/{brand['id']}/media"
    r = await tenant.req("POST", path, json={"file": "aGVsbG8="})
    assert r.status_code == 415 and r.json()["type"].endswith("/media-type-unsupported")
    r = await tenant.req("POST", path, data={"alt_text": "no file"}, files={"other": ("a", b"b", "text/plain")})
    assert r.status_code == 422
    r = await tenant.req("POST", path, data={"alt_text": "x"}, files=[
        ("file", ("a.png", mf.image("PNG", (5, 5)), "image/png")), ("file", ("b.png", mf.image("PNG", (5, 5)), "image/png"))])
    assert r.status_code == 422 and "one file" in r.json()["detail"]
    r = await tenant.req("POST", path, content=b"--xyz\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 400 and r.json()["type"].endswith("/bad-request")
    r = await tenant.req("POST", path, data={"tags": [f"t{i}" for i in range(40)]},
                         files={"file": ("a.png", mf.image("PNG", (5, 5)), "image/png")})
    assert r.status_code == 422 and r.json()["type"].endswith("/validation-error")
    huge = {"Content-Type": "multipart/form-data; boundary=xyz", "Content-Length": str(10**12)}
    r = await tenant.req("POST", path, content=b"--xyz--\r\n", headers=huge)
    assert r.status_code == 413 and r.json()["type"].endswith("/media-too-large")
    assert await library(tenant, brand_id=brand["id"]) == []


async def test_uploading_to_an_archived_or_unknown_brand(tenant):
    brand = await tenant.brand()
    r = await tenant.req("PATCH", f"/v1/brands/{brand['id']}", json={"status": "archived"})
    assert r.status_code == 200
    r = await upload(tenant, brand["id"], mf.image("PNG", (5, 5)))
    assert r.status_code == 409 and r.json()["type"].endswith("/brand-archived")
    r = await upload(tenant, str(uuid.uuid4()), mf.image("PNG", (5, 5)))
    assert r.status_code == 404


async def test_upload_and_delete_are_audited(tenant):
    brand = await tenant.brand()
    media = (await upload(tenant, brand["id"], mf.image("PNG", (5, 5)), "logo.png")).json()
    assert (await tenant.req("DELETE", f"/v1/media/{media['id']}")).status_code == 204
    events = (await tenant.req("GET", "/v1/audit-events", params={"object_id": media["id"]})).json()["items"]
    assert {e["action"] for e in events} == {"media.uploaded", "media.deleted"}
    uploaded = next(e for e in events if e["action"] == "media.uploaded")
    assert uploaded["changes"]["filename"] == "logo.png" and uploaded["changes"]["content_type"] == "image/png"


# --- the library ---------------------------------------------------------------------------------


async def test_list_filters_and_pagination(tenant):
    a, b = await tenant.brand(), await tenant.brand()
    ids = {}
    for name, brand, data, tags in [
        ("red", a, mf.image("PNG", (10, 10)), ["red", "summer"]),
        ("blue", a, mf.image("JPEG", (20, 20)), ["blue", "summer"]),
        ("clip", a, mf.video(), ["summer"]),
        ("other", b, mf.image("PNG", (30, 30)), ["red"]),
    ]:
        r = await upload(tenant, brand["id"], data, f"{name}.bin", tags=tags)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    assert [m["id"] for m in await library(tenant)] == [ids["other"], ids["clip"], ids["blue"], ids["red"]]
    assert {m["id"] for m in await library(tenant, brand_id=a["id"])} == {ids["red"], ids["blue"], ids["clip"]}
    assert [m["id"] for m in await library(tenant, kind="video")] == [ids["clip"]]
    assert {m["id"] for m in await library(tenant, tag="red")} == {ids["red"], ids["other"]}
    assert [m["id"] for m in await library(tenant, tag=["Red", "summer"])] == [ids["red"]]
    assert [m["id"] for m in await library(tenant, sort="filename")] == [ids[n] for n in ("blue", "clip", "other", "red")]
    seen, cursor = [], None
    while True:
        r = await tenant.req("GET", "/v1/media", params={"limit": 1, "sort": "size_bytes",
                                                         **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        seen += [m["size_bytes"] for m in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4 and seen == sorted(seen)
    r = await tenant.req("GET", "/v1/media", params={"cursor": "garbage"})
    assert r.status_code == 422


async def test_edit_tags_alt_text_and_name_with_if_match(tenant):
    brand = await tenant.brand()
    media = (await upload(tenant, brand["id"], mf.image("PNG", (5, 5)), "a.png", tags=["old"])).json()
    path = f"/v1/media/{media['id']}"
    r = await tenant.req("PATCH", path, json={"tags": [" Summer  Launch ", "summer launch", "Promo"],
                                              "alt_text": "Two loaves", "filename": "bread.png"},
                         headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["summer launch", "promo"] and r.json()["alt_text"] == "Two loaves"
    assert r.json()["filename"] == "bread.png" and r.headers["etag"] == '"2"'
    stale = await tenant.req("PATCH", path, json={"tags": []}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert (await tenant.req("GET", path)).json()["tags"] == ["summer launch", "promo"]
    for bad in [{"tags": ["a,b"]}, {"kind": "video"}, {"size_bytes": 1}, {"filename": ""}, {"tags": ["x" * 51]}]:
        r = await tenant.req("PATCH", path, json=bad)
        assert r.status_code == 422, bad
    assert [m["id"] for m in await library(tenant, tag="promo")] == [media["id"]]


# --- deletion -------------------------------------------------------------------------------------


async def _on_a_post(owner_engine, settings, tenant, brand_id: str, media_id: str, status: str) -> str:
    account_id = await tenant.social_account(owner_engine, settings.vault(), brand_id)
    post_id, variant_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO posts (id, agency_id, brand_id, title, labels, time_zone, status, revision, content_hash,"
            " version, created_at, updated_at) VALUES (:id, :agency, :brand, 't', '{}', 'UTC', :status, 0, '', 1,"
            " now(), now())"), {"id": post_id, "agency": tenant.agency_id, "brand": brand_id, "status": status})
        await conn.execute(text(
            "INSERT INTO post_variants (id, agency_id, post_id, social_account_id, network, position, text, options,"
            " status, content_hash, issues, created_at, updated_at) VALUES (:id, :agency, :post, :account, 'x', 0,"
            " 'hi', '{}', :status, '', '[]', now(), now())"),
            {"id": variant_id, "agency": tenant.agency_id, "post": post_id, "account": account_id, "status": status})
        await conn.execute(text(
            "INSERT INTO post_variant_media (id, agency_id, variant_id, media_id, position, alt_text, created_at,"
            " updated_at) VALUES (gen_random_uuid(), :agency, :variant, :media, 0, '', now(), now())"),
            {"agency": tenant.agency_id, "variant": variant_id, "media": media_id})
    return post_id


async def test_delete_unused_media_removes_row_and_bytes(tenant, settings):
    brand = await tenant.brand()
    media = (await upload(tenant, brand["id"], mf.image("PNG", (5, 5)))).json()
    link = (await tenant.req("POST", f"/v1/media/{media['id']}/public-url", json={})).json()
    assert len(stored_files(settings.media_root(), tenant.agency_id)) == 1
    r = await tenant.req("DELETE", f"/v1/media/{media['id']}")
    assert r.status_code == 204
    assert (await tenant.req("GET", f"/v1/media/{media['id']}")).status_code == 404
    assert stored_files(settings.media_root(), tenant.agency_id) == []
    assert (await tenant.client.get(link["url"])).status_code == 404  # every link ends with the file
    assert (await tenant.req("DELETE", f"/v1/media/{media['id']}")).status_code == 404


@pytest.mark.parametrize("status", ["draft", "scheduled", "failed", "published"])
async def test_media_on_a_post_cannot_be_deleted(tenant, settings, owner_engine, status):
    brand = await tenant.brand()
    media = (await upload(tenant, brand["id"], mf.image("JPEG", (50, 50)))).json()
    post_id = await _on_a_post(owner_engine, settings, tenant, brand["id"], media["id"], status)
    r = await tenant.req("DELETE", f"/v1/media/{media['id']}")
    assert r.status_code == 409 and r.json()["type"].endswith("/media-in-use")
    if status == "published":
        assert "published" in r.json()["detail"]
    else:
        assert post_id in r.json()["detail"]
    assert (await tenant.req("GET", f"/v1/media/{media['id']}")).status_code == 200
    assert len(stored_files(settings.media_root(), tenant.agency_id)) == 1


# --- fit per network -------------------------------------------------------------------------------


async def test_networks_map_says_what_fits_where(tenant):
    brand = await tenant.brand()
    banner = (await upload(tenant, brand["id"], mf.image("JPEG", (1600, 400)))).json()  # 4:1
    instagram = banner["networks"]["instagram"]
    assert instagram["fits"] is False
    [issue] = [i for i in instagram["issues"] if i["rule"] == "aspect_ratio"]
    assert "4.00:1" in issue["message"] and "0.80:1 to 1.91:1" in issue["message"]
    assert banner["networks"]["x"]["fits"] is False  # X takes 1:3 to 3:1
    assert banner["networks"]["linkedin"] == {"fits": True, "issues": []}
    assert banner["networks"]["youtube"]["fits"] is False  # takes no images
    assert {i["rule"] for i in banner["networks"]["youtube"]["issues"]} == {"images_not_supported"}
    square = (await upload(tenant, brand["id"], mf.image("JPEG", (1080, 1080)))).json()
    assert square["networks"]["instagram"] == {"fits": True, "issues": []}
    png = (await upload(tenant, brand["id"], mf.image("PNG", (1080, 1080)))).json()
    assert "image_format" in {i["rule"] for i in png["networks"]["instagram"]["issues"]}
    short = (await upload(tenant, brand["id"], mf.video(duration_ms=1_000, width=1080, height=1080))).json()
    assert "video_too_short" in {i["rule"] for i in short["networks"]["instagram"]["issues"]}


# --- signed links --------------------------------------------------------------------------------


async def test_signed_link_serves_the_bytes_without_a_credential(tenant, client, settings):
    brand = await tenant.brand()
    data = mf.image("WEBP", (300, 200))
    media = (await upload(tenant, brand["id"], data, "promo ñ.webp")).json()
    r = await tenant.req("POST", f"/v1/media/{media['id']}/public-url", json={"expires_in": 600})
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["url"].startswith(f"{settings.api_base_url}/media/")
    expires_at = datetime.fromisoformat(link["expires_at"])
    assert timedelta(seconds=590) < expires_at - datetime.now(timezone.utc) <= timedelta(seconds=600)
    got = await client.get(link["url"])  # no Authorization header
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/webp"
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["x-content-type-options"] == "nosniff"
    cache = got.headers["cache-control"]
    assert cache.startswith("private, max-age=") and 0 < int(cache.split("=")[1]) <= 600
    assert got.headers["content-disposition"] == "inline; filename*=UTF-8''promo%20%C3%B1.webp"
    # Without expires_in (or asking for more), the configured lifetime applies.
    r = await tenant.req("POST", f"/v1/media/{media['id']}/public-url", json={"expires_in": 7 * 24 * 3600})
    lifetime = datetime.fromisoformat(r.json()["expires_at"]) - datetime.now(timezone.utc)
    assert lifetime <= timedelta(seconds=settings.media_url_ttl_seconds)
    r = await tenant.req("POST", f"/v1/media/{media['id']}/public-url")
    assert r.status_code == 201


async def test_expired_and_tampered_links(tenant, client, settings):
    brand = await tenant.brand()
    media = (await upload(tenant, brand["id"], mf.image("PNG", (5, 5)))).json()
    key = link_key(settings)
    past = int((datetime.now(timezone.utc) - timedelta(seconds=1)).timestamp())
    expired = links.sign(key, uuid.UUID(tenant.agency_id), uuid.UUID(media["id"]), past)
    r = await client.get(f"/media/{expired}")
    assert r.status_code == 410 and r.json()["type"].endswith("/media-link-expired")
    url = (await tenant.req("POST", f"/v1/media/{media['id']}/public-url", json={})).json()["url"]
    token = url.rsplit("/", 1)[1]
    for bad in [token[:-1] + ("A" if token[-1] != "A" else "B"), token[:30] + ("x" if token[30] != "x" else "y")
                + token[31:], "nonsense", "A" * 96]:
        r = await client.get(f"/media/{bad}")
        assert r.status_code == 404 and r.json()["type"].endswith("/not-found"), bad
    # Signed with another secret: not ours.
    forged = links.sign(links.link_key("guess"), uuid.UUID(tenant.agency_id), uuid.UUID(media["id"]), past + 3600)
    assert (await client.get(f"/media/{forged}")).status_code == 404
    # A well-signed link naming another agency's id pair finds nothing (RLS and the query agree).
    mixed = links.sign(key, uuid.uuid4(), uuid.UUID(media["id"]), past + 3600)
    assert (await client.get(f"/media/{mixed}")).status_code == 404
    assert (await client.get(url)).status_code == 200


# --- tenancy and permissions ------------------------------------------------------------------------


async def test_another_agency_gets_404_everywhere(tenant, other_tenant):
    brand = await tenant.brand()
    media = (await upload(tenant, brand["id"], mf.image("PNG", (5, 5)))).json()
    path = f"/v1/media/{media['id']}"
    for method, url, kwargs in [("GET", path, {}), ("PATCH", path, {"json": {"tags": ["x"]}}), ("DELETE", path, {}),
                                ("POST", f"{path}/public-url", {"json": {}})]:
        r = await other_tenant.req(method, url, **kwargs)
        assert r.status_code == 404, (method, url, r.text)
    r = await upload(other_tenant, brand["id"], mf.image("PNG", (5, 5)))
    assert r.status_code == 404
    assert media["id"] not in {m["id"] for m in await library(other_tenant)}
    assert await library(other_tenant, brand_id=brand["id"]) == []
    assert (await tenant.req("GET", path)).json()["tags"] == []


async def test_roles_and_brand_limits(tenant):
    a, b = await tenant.brand(), await tenant.brand()
    editor, _ = await tenant.member("editor")
    analyst, _ = await tenant.member("analyst")
    limited, _ = await tenant.member("editor", brand_ids=[a["id"]])
    r = await upload(tenant, a["id"], mf.image("PNG", (5, 5)), token=editor)
    assert r.status_code == 201
    in_a = r.json()
    in_b = (await upload(tenant, b["id"], mf.image("PNG", (6, 6)))).json()
    r = await upload(tenant, a["id"], mf.image("PNG", (5, 5)), token=analyst)
    assert r.status_code == 403
    assert (await tenant.req("GET", f"/v1/media/{in_a['id']}", token=analyst)).status_code == 200
    assert (await tenant.req("PATCH", f"/v1/media/{in_a['id']}", token=analyst, json={})).status_code == 403
    assert (await tenant.req("DELETE", f"/v1/media/{in_a['id']}", token=analyst)).status_code == 403
    assert (await tenant.req("POST", f"/v1/media/{in_a['id']}/public-url", token=analyst, json={})).status_code == 201
    # Limited to brand a: brand b's media does not exist for them.
    assert {m["id"] for m in await library(tenant)} >= {in_a["id"], in_b["id"]}
    r = await tenant.req("GET", "/v1/media", token=limited, params={"limit": 200})
    assert {m["brand_id"] for m in r.json()["items"]} == {a["id"]}
    for method, url in [("GET", f"/v1/media/{in_b['id']}"), ("DELETE", f"/v1/media/{in_b['id']}"),
                        ("POST", f"/v1/media/{in_b['id']}/public-url")]:
        assert (await tenant.req(method, url, token=limited, json={} if method == "POST" else None)).status_code == 404
    assert (await upload(tenant, b["id"], mf.image("PNG", (5, 5)), token=limited)).status_code == 404
    key = await tenant.api_key(["media:read"])
    assert (await upload(tenant, a["id"], mf.image("PNG", (5, 5)), token=key)).status_code == 403
    assert (await tenant.req("GET", f"/v1/media/{in_a['id']}", token=key)).status_code == 200
    writer = await tenant.api_key(["media:write"])
    r = await upload(tenant, a["id"], mf.image("PNG", (5, 5)), token=writer)
    assert r.status_code == 201 and r.json()["uploaded_by_id"] is None


# --- S3 -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
async def s3_app(settings, s3_server):
    from api.app import create_app
    from domain.media.storage import S3Storage

    s3_settings = replace(settings, media_storage="s3", media_s3_endpoint_url=s3_server,
                          media_s3_bucket="chorus-media", media_s3_access_key_id="test-key",
                          media_s3_secret_access_key="test-secret", media_s3_addressing_style="path",
                          media_s3_timeout_seconds=5)
    storage = S3Storage.from_settings(s3_settings)
    storage.client.create_bucket(Bucket="chorus-media")
    async with AsyncTestClient(create_app(s3_settings), base_url=BASE) as client:
        yield s3_settings, storage, client


def _keys(storage) -> list[str]:
    return [o["Key"] for o in storage.client.list_objects_v2(Bucket=storage.bucket).get("Contents", [])]


async def test_s3_round_trip(tenant, s3_app):
    s3_settings, storage, client = s3_app
    brand = await tenant.brand()
    data = mf.video(mdat_bytes=300_000)  # large enough to travel in several chunks
    r = await upload(tenant, brand["id"], data, "clip.mp4", "video/mp4", client=client)
    assert r.status_code == 201, r.text
    media = r.json()
    [key] = [k for k in _keys(storage) if k.startswith(f"{tenant.agency_id}/{brand['id']}/")]
    head = storage.client.head_object(Bucket=storage.bucket, Key=key)
    assert head["ContentLength"] == len(data) and head["ContentType"] == "video/mp4"
    assert incoming_files(s3_settings) == []
    link = (await tenant.req("POST", f"/v1/media/{media['id']}/public-url", json={}, )).json()
    got = await client.get(link["url"])
    assert got.status_code == 200 and got.content == data and got.headers["content-type"] == "video/mp4"
    r = await client.delete(f"/v1/media/{media['id']}", headers=tenant.auth())
    assert r.status_code == 204
    assert key not in _keys(storage)
    assert (await client.get(link["url"])).status_code == 404


async def test_s3_storage_refuses_nothing_there_and_odd_keys(s3_app, tmp_path):
    from domain.media.storage import StoredObjectMissingError

    _, storage, _ = s3_app
    missing = f"{uuid.uuid4()}/{uuid.uuid4()}/{uuid.uuid4().hex}.png"
    with pytest.raises(StoredObjectMissingError):
        await storage.open(missing)
    await storage.delete(missing)  # nothing there is not an error
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(ValueError):
        await storage.put("../../etc/passwd", source, "image/png")


async def test_no_database_connection_is_held_while_an_upload_arrives(tenant, settings, owner_engine):
    """A slow upload (a phone on a train, a 1 GB video) must not pin a pooled connection in
    an open transaction: over real HTTP, the body stalls halfway while we look at PostgreSQL."""
    import asyncio

    import httpx

    from api.app import create_app
    from domain.core.settings import APP_DB_ROLE
    from tests.loopback import serve

    brand = await tenant.brand()
    data = mf.image("JPEG", (1200, 800)) + b"\xff" * 40_000  # bytes after the image's end are kept, not read
    boundary = "chorus-test-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    half = len(data) // 2
    seen: list[int] = []

    async def in_transaction() -> int:
        async with owner_engine.connect() as conn:
            return (await conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = :role AND state LIKE 'idle in transaction%'"),
                {"role": APP_DB_ROLE})).scalar()

    async def body():
        yield head + data[:half]
        await asyncio.sleep(0.5)  # the server has the headers and half the file, and waits
        seen.append(await in_transaction())
        yield data[half:] + tail

    # The first half is past what the middlewares look at before the app (max_body_bytes),
    # so the handler is running and waiting for the rest while we look.
    with serve(create_app(replace(settings, max_body_bytes=16_000)), "/healthz") as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            r = await http.post(f"/v1/brands/{brand['id']}/media", content=body(), headers={
                **tenant.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 201, r.text
    assert r.json()["width"] == 1200
    assert seen == [0], "a connection sat idle in a transaction while the body was arriving"
