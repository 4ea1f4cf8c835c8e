"""The publishing engine with media, network options, first comments and threads, end to end:
files uploaded through the API, posts made through the API and made due with owner SQL, the
real sweep and a real dramatiq Worker (PostgreSQL broker), the real adapters against the
network sandbox over loopback. Chorus itself is served on loopback too, at the address the
engine signs media links for (`api_base_url`): networks that upload bytes (X, LinkedIn,
YouTube, Pinterest video) read them from there; the others get the link (the sandbox, like
Instagram/Threads/Pinterest/Facebook/TikTok, is handed the URL). What arrived is read from the
sandbox (`GET /_sandbox/posts`, the call log)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from sqlalchemy import text

from domain.networks.adapters.base import Network
from tests import media_files as mf
from tests.loopback import serve
from tests.workers.conftest import eventually
from tests.workers.test_publishing import (  # noqa: F401 - fixtures
    _attempts, _due_post, _link, _publish_calls, _sandbox, _sweep, _variants, _who, app_role_engine, pub_worker, sandbox,
)


@pytest.fixture
def chorus(settings):
    """This API on loopback: where the networks (and the adapters that upload bytes) fetch media."""
    from api.app import create_app

    with serve(create_app(settings), "/healthz") as base:
        yield base


# test_publishing's sandbox, worker and app-role engine, with these settings (media links on `chorus`).
@pytest.fixture
def pub_settings(settings, sandbox, chorus):
    return dataclasses.replace(settings, worker_threads=2, network_sandbox_url=sandbox, network_timeout_seconds=1.0,
                               network_apps=(), api_base_url=chorus)


JPEG = mf.image("JPEG", (1080, 1080))
MP4 = mf.video(width=1080, height=1920, duration_ms=15_000)


async def _media(tenant, brand_id: str, kind: str = "image", alt_text: str = "") -> str:
    data, name, mime = (JPEG, "roscon.jpg", "image/jpeg") if kind == "image" else (MP4, "amasando.mp4", "video/mp4")
    r = await tenant.client.post(f"/v1/brands/{brand_id}/media", headers=tenant.auth(),
                                 files={"file": (name, data, mime)}, data={"alt_text": alt_text} if alt_text else {})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _posts(base: str, network: str, who: str) -> list[dict]:
    return (await _sandbox(base, "GET", "/_sandbox/posts", params={"network": network, "identity": who}))["posts"]


async def _calls(base: str, network: str, who: str, kind: str) -> int:
    return (await _sandbox(base, "GET", "/_sandbox/calls", params={"network": network, "identity": who,
                                                                   "kind": kind}))["count"]


async def _external_id(owner_engine, account_id: str) -> str:
    async with owner_engine.connect() as conn:
        return await conn.scalar(text("SELECT external_id FROM social_accounts WHERE id = :id"), {"id": account_id})


async def _published(owner_engine, post_id: str, app_role_engine, worker, *, clock: int = 0,
                     sandbox: str | None = None) -> dict:
    """Sweep until the post's one variant is published (moving the sandbox clock past any
    processing in between); returns the variant."""
    async def check():
        await _sweep(app_role_engine, worker)
        variants = await _variants(owner_engine, post_id)
        variant = next(iter(variants.values()))
        assert variant["status"] not in ("failed", "draft"), variant["error"]
        if variant["status"] == "published":
            return variant
        attempts = await _attempts(owner_engine, str(variant["id"]))
        if clock and sandbox and attempts and attempts[-1]["outcome"] == "processing":
            # Accepted and processing: the provider finishes in sandbox time.
            await _sandbox(sandbox, "POST", "/_sandbox/clock", json={"advance_seconds": clock})
        return None

    return await eventually(check, timeout=40, what="published")


async def _settled_response(owner_engine, variant_id, done) -> dict:
    async def check():
        attempts = await _attempts(owner_engine, str(variant_id))
        return attempts[-1]["response"] if attempts and done(attempts[-1]["response"]) else None

    return await eventually(check, what="follow-ups recorded")


async def test_x_images_then_the_thread_parts_in_order(tenant, owner_engine, pub_settings, sandbox, chorus,
                                                       pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("mx")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    a, b = await _media(tenant, brand["id"], alt_text="Roscón entero"), await _media(tenant, brand["id"])
    post = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "Hilo del roscón",
        "media": [{"media_id": a}, {"media_id": b, "alt_text": "Una porción"}],
        "options": {"thread": ["Segunda parte", "Tercera parte"]}}])
    variant = await _published(owner_engine, post["id"], app_role_engine, pub_worker)
    response = await _settled_response(owner_engine, variant["id"], lambda r: len(r.get("thread_parts", [])) == 2)
    main, second, third = await _posts(sandbox, "x", who)
    assert main["id"] == variant["external_id"] and main["text"] == "Hilo del roscón"
    assert len(main["data"]["media_keys"]) == 2 and main["reply_to"] is None
    # Alt text in order: the library's for the first, the variant's own for the second.
    assert main["data"]["media_alt_texts"] == ["Roscón entero", "Una porción"]
    assert (second["text"], second["reply_to"]) == ("Segunda parte", main["id"])
    assert (third["text"], third["reply_to"]) == ("Tercera parte", second["id"])
    assert response["thread_parts"] == [{"id": second["id"]}, {"id": third["id"]}]
    assert "thread_sending" not in response
    # The bytes were read from Chorus's own signed link (no file extension in it).
    assert await _calls(sandbox, "x", who, "upload") == 8  # initialize, append, finalize, metadata, twice
    assert await _publish_calls(sandbox, "x", who) == 1


async def test_x_video_goes_out_from_the_status_poll_once(tenant, owner_engine, pub_settings, sandbox, chorus,
                                                          pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("mxv")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    video = await _media(tenant, brand["id"], "video")
    post = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "Amasando", "media": [{"media_id": video}]}])
    variant = await _published(owner_engine, post["id"], app_role_engine, pub_worker, clock=30, sandbox=sandbox)
    [tweet] = await _posts(sandbox, "x", who)
    assert tweet["id"] == variant["external_id"] and len(tweet["data"]["media_keys"]) == 1
    [attempt] = await _attempts(owner_engine, str(variant["id"]))
    assert attempt["outcome"] == "published" and attempt["response"]["creating_at"]  # stamped before creating
    assert await _publish_calls(sandbox, "x", who) == 1


async def test_facebook_photo_with_its_first_comment(tenant, owner_engine, pub_settings, sandbox, chorus,
                                                     pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("mfb")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.FACEBOOK, who, "page")
    photo = await _media(tenant, brand["id"], alt_text="Un roscón")
    post = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "Recién hecho", "media": [{"media_id": photo}],
        "options": {"first_comment": "Pedidos en la web"}}])
    variant = await _published(owner_engine, post["id"], app_role_engine, pub_worker)
    response = await _settled_response(owner_engine, variant["id"], lambda r: "first_comment_id" in r)
    [page_post] = await _posts(sandbox, "facebook", who)
    assert page_post["id"] == variant["external_id"] and page_post["text"] == "Recién hecho"
    [url] = page_post["data"]["photos"]
    assert url.startswith(f"{chorus}/media/")  # the signed link at the API's public address
    assert await _calls(sandbox, "facebook", who, "reply") == 1
    assert response["first_comment_id"]


async def test_instagram_carousel_with_its_first_comment(tenant, owner_engine, pub_settings, sandbox, chorus,
                                                         pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("mig")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.INSTAGRAM, who)
    a, b = await _media(tenant, brand["id"]), await _media(tenant, brand["id"])
    post = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "Dos roscones", "media": [{"media_id": a}, {"media_id": b}],
        "options": {"first_comment": "#roscon #reyes"}}])
    variant = await _published(owner_engine, post["id"], app_role_engine, pub_worker)
    await _settled_response(owner_engine, variant["id"], lambda r: "first_comment_id" in r)
    [media] = await _posts(sandbox, "instagram", who)
    assert media["data"]["media_type"] == "CAROUSEL_ALBUM" and media["text"] == "Dos roscones"
    assert await _calls(sandbox, "instagram", who, "upload") == 3  # two items and the carousel
    assert await _calls(sandbox, "instagram", who, "reply") == 1


async def test_instagram_reel_polled_then_its_first_comment_once(tenant, owner_engine, pub_settings, sandbox, chorus,
                                                                 pub_worker, app_role_engine):
    """The container is processed first: the post goes out from the poll, and the first comment
    follows it there too, once, however many sweeps come after."""
    brand = await tenant.brand()
    who = _who("mir")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.INSTAGRAM, who)
    video = await _media(tenant, brand["id"], "video")
    post = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "Amasando", "media": [{"media_id": video}],
        "options": {"placement": "reel", "share_reel_to_feed": True, "first_comment": "Receta en la bio"}}])
    variant = await _published(owner_engine, post["id"], app_role_engine, pub_worker, clock=120, sandbox=sandbox)
    response = await _settled_response(owner_engine, variant["id"], lambda r: "first_comment_id" in r)
    [reel] = await _posts(sandbox, "instagram", who)
    assert (reel["data"]["media_type"], reel["data"]["media_product_type"]) == ("VIDEO", "REELS")
    assert response["creating_at"]
    await _sweep(app_role_engine, pub_worker)
    await _sweep(app_role_engine, pub_worker)
    assert await _calls(sandbox, "instagram", who, "reply") == 1
    assert await _publish_calls(sandbox, "instagram", who) == 1


async def test_threads_image_then_the_thread_parts(tenant, owner_engine, pub_settings, sandbox, chorus, pub_worker,
                                                   app_role_engine):
    brand = await tenant.brand()
    who = _who("mth")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.THREADS, who)
    photo = await _media(tenant, brand["id"])
    post = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "Empieza el hilo", "media": [{"media_id": photo}],
        "options": {"thread": ["Y sigue", "Y acaba"]}}])
    variant = await _published(owner_engine, post["id"], app_role_engine, pub_worker)
    await _settled_response(owner_engine, variant["id"], lambda r: len(r.get("thread_parts", [])) == 2)
    main, second, third = await _posts(sandbox, "threads", who)
    assert main["data"]["media_type"] == "IMAGE" and main["data"]["media_url"].startswith(f"{chorus}/media/")
    assert (second["text"], second["reply_to"]) == ("Y sigue", main["id"])
    assert (third["text"], third["reply_to"]) == ("Y acaba", second["id"])


async def test_linkedin_video_uploaded_then_posted_from_the_poll(tenant, owner_engine, pub_settings, sandbox, chorus,
                                                                 pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("mli")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.LINKEDIN, who,
                          "organization")
    video = await _media(tenant, brand["id"], "video")
    post = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": f"Amasando {uuid.uuid4().hex[:6]}", "media": [{"media_id": video}],
        "options": {"title": "El roscón"}}])
    variant = await _published(owner_engine, post["id"], app_role_engine, pub_worker, clock=60, sandbox=sandbox)
    [share] = await _posts(sandbox, "linkedin", who)
    media = share["data"]["content"]["media"]
    assert media["id"].startswith("urn:li:video:") and media["title"] == "El roscón"
    assert share["id"] == variant["external_id"]
    assert await _publish_calls(sandbox, "linkedin", who) == 1


async def test_pinterest_pin_on_its_board_with_title_and_link(tenant, owner_engine, pub_settings, sandbox, chorus,
                                                              pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("mpi")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.PINTEREST, who, "board")
    board = await _external_id(owner_engine, account)
    photo = await _media(tenant, brand["id"], alt_text="Roscón con nata")
    post = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "Roscón de Reyes", "media": [{"media_id": photo}],
        "options": {"board_id": board, "title": "Roscón", "link": "https://panaderia.example/roscon"}}])
    await _published(owner_engine, post["id"], app_role_engine, pub_worker)
    [pin] = await _posts(sandbox, "pinterest", who)
    assert pin["owner"] == board and pin["data"]["source_type"] == "image_url"
    assert (pin["data"]["title"], pin["data"]["link"], pin["data"]["alt_text"]) == (
        "Roscón", "https://panaderia.example/roscon", "Roscón con nata")
    assert pin["data"]["image_urls"][0].startswith(f"{chorus}/media/")


async def test_pinterest_video_pin_created_once_processed(tenant, owner_engine, pub_settings, sandbox, chorus,
                                                          pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("mpv")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.PINTEREST, who, "board")
    board = await _external_id(owner_engine, account)
    video = await _media(tenant, brand["id"], "video")
    post = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "Amasando", "media": [{"media_id": video}],
        "options": {"board_id": board}}])
    await _published(owner_engine, post["id"], app_role_engine, pub_worker, clock=60, sandbox=sandbox)
    [pin] = await _posts(sandbox, "pinterest", who)
    assert pin["data"]["source_type"] == "video_id" and pin["data"]["video_id"]
    assert await _publish_calls(sandbox, "pinterest", who) == 1


async def test_youtube_video_with_title_privacy_and_audience(tenant, owner_engine, pub_settings, sandbox, chorus,
                                                             pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("myt")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.YOUTUBE, who)
    video = await _media(tenant, brand["id"], "video")
    post = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "Cómo hacemos el roscón", "media": [{"media_id": video}],
        "options": {"title": "Roscón de Reyes", "privacy": "unlisted", "made_for_kids": False, "tags": ["roscon"]}}])
    variant = await _published(owner_engine, post["id"], app_role_engine, pub_worker)
    [video_post] = await _posts(sandbox, "youtube", who)
    assert video_post["id"] == variant["external_id"] and video_post["text"] == "Cómo hacemos el roscón"
    assert (video_post["data"]["title"], video_post["data"]["privacyStatus"]) == ("Roscón de Reyes", "unlisted")
    assert video_post["data"]["tags"] == ["roscon"] and video_post["data"]["selfDeclaredMadeForKids"] is False


async def test_tiktok_video_pulled_by_url_with_the_creators_choices(tenant, owner_engine, pub_settings, sandbox,
                                                                    chorus, pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("mtt")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.TIKTOK, who)
    video = await _media(tenant, brand["id"], "video")
    post = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "Así se hace un roscón", "media": [{"media_id": video}],
        "options": {"privacy": "SELF_ONLY", "disable_comment": True, "disable_duet": False}}])
    await _published(owner_engine, post["id"], app_role_engine, pub_worker, clock=60, sandbox=sandbox)
    [clip] = await _posts(sandbox, "tiktok", who)
    assert clip["data"]["privacy_level"] == "SELF_ONLY" and clip["data"]["video_url"].startswith(f"{chorus}/media/")
    assert (clip["data"]["disable_comment"], clip["data"]["disable_duet"]) == (True, False)
    assert await _publish_calls(sandbox, "tiktok", who) == 1


async def test_facebook_reel_and_photo_story(tenant, owner_engine, pub_settings, sandbox, chorus, pub_worker,
                                             app_role_engine):
    """Placement reel: the reel upload phases, the video handed over by its link; placement
    story: a photo uploaded unpublished, then a photo story. Neither lands in the feed."""
    brand = await tenant.brand()
    who = _who("mfr")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.FACEBOOK, who, "page")
    video, photo = await _media(tenant, brand["id"], "video"), await _media(tenant, brand["id"])
    reel = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "Amasando", "media": [{"media_id": video}],
        "options": {"placement": "reel"}}])
    story = await _due_post(tenant, owner_engine, brand["id"], [{
        "social_account_id": account, "text": "", "media": [{"media_id": photo}], "options": {"placement": "story"}}])
    reel_variant = await _published(owner_engine, reel["id"], app_role_engine, pub_worker, clock=60, sandbox=sandbox)
    story_variant = await _published(owner_engine, story["id"], app_role_engine, pub_worker)
    posts = {p["id"]: p for p in await _posts(sandbox, "facebook", who)}
    reel_post, story_post = posts[reel_variant["external_id"]], posts[story_variant["external_id"]]
    assert reel_post["data"]["status_type"] == "added_reel" and reel_post["text"] == "Amasando"
    assert reel_post["data"]["media_url"].startswith(f"{chorus}/media/")
    assert story_post["data"]["status_type"] == "added_story" and story_post["data"]["story"] is True
    assert story_post["data"]["photos"][0].startswith(f"{chorus}/media/")
    assert await _calls(sandbox, "facebook", who, "upload") == 2  # the reel's start and its upload
