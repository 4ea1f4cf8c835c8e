"""The adapters' publishing clients against the sandbox over real HTTP: the provider's
wire format, lookups, growing metrics, arriving comments, and failures mapped honestly
(a timeout after the provider accepted is Unknown, never a silent retry)."""

from __future__ import annotations


import httpx
import pytest

from domain.networks.adapters.base import AccountRef, Network, PublishRequest, RateLimited, Rejected, Unknown
from domain.networks.adapters.linkedin import LinkedInClient
from domain.networks.adapters.pinterest import PinterestClient
from domain.networks.adapters.x import XClient
from tests.sandbox_consent import consent


async def _account(sandbox_url: str, network: Network, who: str, kind: str | None = None) -> AccountRef:
    grant, target = await consent(sandbox_url, network, who, kind)
    return AccountRef(target.external_id, target.access_token or grant.access_token, target.kind)


async def _sandbox(sandbox_url: str, method: str, path: str, **kwargs):
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=5) as http:
        response = await http.request(method, path, **kwargs)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None


async def test_x_publish_lookup_metrics_comments_and_reply(sandbox_url):
    account = await _account(sandbox_url, Network.X, "pubx1")
    client = XClient(sandbox_url, timeout=2)
    result = await client.publish(account, PublishRequest(text="Roscón de Reyes ya a la venta 👑"))
    assert result.state == "published" and result.external_id and result.url.endswith(result.external_id)
    post = await client.lookup(account, result.external_id)
    assert post is not None and post.text == "Roscón de Reyes ya a la venta 👑"
    before = dict(post.metrics)
    await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 90 * 60})  # within the 2-hour token life
    after = await client.insights(account, result.external_id)
    assert sum(after.values()) > sum(before.values())
    comments = await client.comments(account, result.external_id)
    assert comments, "comments arrive as sandbox time passes"
    reply = await client.reply(account, comments[0]["id"], "¡Gracias!")
    assert reply.external_id and reply.external_id != result.external_id
    assert await client.lookup(account, "1" * 19) is None


async def test_x_rate_limit_and_timeout_after_accepted(sandbox_url):
    account = await _account(sandbox_url, Network.X, "pubx2")
    client = XClient(sandbox_url, timeout=1)
    await _sandbox(sandbox_url, "POST", "/_sandbox/faults",
                   json={"network": "x", "match": "publish", "kind": "status", "status": 429})
    with pytest.raises(RateLimited) as limited:
        await client.publish(account, PublishRequest(text="too fast"))
    assert limited.value.retry_after > 0
    await _sandbox(sandbox_url, "POST", "/_sandbox/faults",
                   json={"network": "x", "match": "publish", "kind": "timeout", "seconds": 2, "effect": "applied"})
    with pytest.raises(Unknown):
        await client.publish(account, PublishRequest(text="accepted, then silence"))
    # The provider did receive it (its log entry lands when its late answer goes out): Chorus
    # must look it up, not send it again.
    import asyncio

    for _ in range(40):
        calls = await _sandbox(sandbox_url, "GET", "/_sandbox/calls", params={"network": "x", "kind": "publish",
                                                                           "identity": "pubx2"})
        if calls["count"] >= 2:
            break
        await asyncio.sleep(0.1)
    assert calls["count"] >= 2
    await _sandbox(sandbox_url, "DELETE", "/_sandbox/faults")


async def test_pinterest_pins_need_a_board_and_an_image(sandbox_url):
    account = await _account(sandbox_url, Network.PINTEREST, "pubpin", kind="board")
    client = PinterestClient(sandbox_url, timeout=2)
    with pytest.raises(Rejected):
        await client.publish(account, PublishRequest(text="no image"))
    pin = await client.publish(account, PublishRequest(
        text="Roscón artesano", media_urls=("https://cdn.example/roscon.jpg",),
        options={"title": "Roscón", "link": "https://panaderiasol.example"}))
    assert pin.external_id and pin.url == f"https://www.pinterest.com/pin/{pin.external_id}/"
    found = await client.lookup(account, pin.external_id)
    assert found is not None and found.text == "Roscón artesano"
    with pytest.raises(Rejected):
        await client.publish(account, PublishRequest(text="x", media_urls=("https://cdn.example/a.jpg",),
                                                     options={"board_id": "999999"}))


async def test_linkedin_posts_answer_with_a_header_and_refuse_duplicates(sandbox_url):
    account = await _account(sandbox_url, Network.LINKEDIN, "publi", kind="organization")
    client = LinkedInClient(sandbox_url, timeout=2)
    text = "Abrimos nueva tienda en Lavapiés"
    post = await client.publish(account, PublishRequest(text=text))
    assert post.external_id.startswith("urn:li:")
    found = await client.lookup(account, post.external_id)
    assert found is not None and found.text == text
    with pytest.raises(Rejected) as duplicate:
        await client.publish(account, PublishRequest(text=text))
    assert duplicate.value.status == 422 and "DUPLICATE" in str(duplicate.value.code or duplicate.value)


from domain.networks.adapters.facebook import FacebookClient  # noqa: E402
from domain.networks.adapters.instagram import InstagramClient  # noqa: E402
from domain.networks.adapters.threads import ThreadsClient  # noqa: E402


async def test_facebook_page_posts_photos_comments_insights(sandbox_url):
    page = await _account(sandbox_url, Network.FACEBOOK, "pubfb", kind="page")
    client = FacebookClient(sandbox_url, timeout=2)
    post = await client.publish(page, PublishRequest(text="Hoy: roscón recién hecho"))
    assert post.external_id.startswith(page.external_id + "_") and post.url
    photo = await client.publish(page, PublishRequest(text="Mirad", media_urls=("https://cdn.example/r.jpg",)))
    assert photo.external_id and photo.external_id != post.external_id
    assert (await client.lookup(page, post.external_id)).text == "Hoy: roscón recién hecho"
    await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 60 * 60})
    assert sum((await client.insights(page, post.external_id)).values()) > 0
    comments = await client.comments(page, post.external_id)
    assert comments and (await client.reply(page, comments[0]["id"], "¡Gracias!")).external_id
    assert await client.lookup(page, "999999999999999_1") is None


async def test_instagram_container_then_publish(sandbox_url):
    account = await _account(sandbox_url, Network.INSTAGRAM, "pubig")
    client = InstagramClient(sandbox_url, timeout=2)
    with pytest.raises(Rejected):
        await client.publish(account, PublishRequest(text="no media"))
    image = await client.publish(account, PublishRequest(text="Roscón #navidad", media_urls=("https://cdn.example/r.jpg",)))
    assert image.state == "published" and image.external_id and image.url
    reel = await client.publish(account, PublishRequest(text="Amasando", media_urls=("https://cdn.example/r.mp4",)))
    assert reel.state == "processing" and reel.pending_ref
    await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 120})
    done = await client.publish_status(account, reel.pending_ref)
    assert done.state == "published" and done.external_id
    with pytest.raises(Rejected):  # the provider could not fetch the media: the container fails
        broken = await client.publish(account, PublishRequest(text="x", media_urls=("https://cdn.example/broken.mp4",)))
        await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 120})
        await client.publish_status(account, broken.pending_ref)
    await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 30 * 60})
    assert (await client.insights(account, image.external_id))
    comments = await client.comments(account, image.external_id)
    assert comments and (await client.reply(account, comments[0]["id"], "¡Gracias!")).external_id


async def test_threads_text_post_and_reply(sandbox_url):
    account = await _account(sandbox_url, Network.THREADS, "pubth")
    client = ThreadsClient(sandbox_url, timeout=2)
    post = await client.publish(account, PublishRequest(text="¿Roscón con o sin nata?"))
    assert post.state == "published" and post.external_id and post.url
    assert (await client.lookup(account, post.external_id)).text == "¿Roscón con o sin nata?"
    await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 30 * 60})
    assert (await client.insights(account, post.external_id))
    replies = await client.comments(account, post.external_id)
    assert replies and (await client.reply(account, replies[0]["id"], "¡Con nata!")).external_id


async def test_meta_throttling_is_a_rate_limit(sandbox_url):
    page = await _account(sandbox_url, Network.FACEBOOK, "pubfb2", kind="page")
    await _sandbox(sandbox_url, "POST", "/_sandbox/faults", json={
        "network": "facebook", "match": "publish", "kind": "status", "status": 400,
        "body": {"error": {"message": "(#32) Page request limit reached", "type": "OAuthException", "code": 32}},
        "headers": {"X-Business-Use-Case-Usage": '{"1": [{"type": "pages", "estimated_time_to_regain_access": 7}]}'}})
    with pytest.raises(RateLimited) as limited:
        await FacebookClient(sandbox_url, timeout=2).publish(page, PublishRequest(text="x"))
    assert limited.value.retry_after == 7 * 60
    await _sandbox(sandbox_url, "DELETE", "/_sandbox/faults")


from domain.networks.adapters.tiktok import TikTokClient  # noqa: E402


async def test_tiktok_pull_from_url_until_complete(sandbox_url):
    account = await _account(sandbox_url, Network.TIKTOK, "pubtt")
    client = TikTokClient(sandbox_url, timeout=2)
    video = ("https://cdn.example/r.mp4",)
    with pytest.raises(Rejected):  # no default privacy, by TikTok's rules
        await client.publish(account, PublishRequest(text="x", media_urls=video))
    started = await client.publish(account, PublishRequest(text="Así se hace un roscón", media_urls=video,
                                                           options={"privacy": "SELF_ONLY"}))
    assert started.state == "processing" and started.pending_ref
    assert (await client.publish_status(account, started.pending_ref)).state == "processing"
    await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 300})
    done = await client.publish_status(account, started.pending_ref)
    assert done.state == "published"
    # An unaudited app may only post privately; asking for public is refused up front.
    with pytest.raises(Rejected):
        await client.publish(account, PublishRequest(text="x", media_urls=("https://cdn.example/r.mp4",),
                                                     options={"privacy": "PUBLIC_TO_EVERYONE"}))
    failed = await client.publish(account, PublishRequest(text="x", media_urls=("https://cdn.example/broken.mp4",),
                                                          options={"privacy": "SELF_ONLY"}))
    await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 300})
    with pytest.raises(Rejected):
        await client.publish_status(account, failed.pending_ref)


from domain.networks.adapters.youtube import YouTubeClient  # noqa: E402


@pytest.fixture(scope="module")
def media_url():
    """A tiny video served on loopback, as Chorus's media links will be."""
    from tests.loopback import serve

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"video/mp4"), (b"content-length", b"2048")]})
        await send({"type": "http.response.body", "body": b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 2036})

    with serve(app, ready_path="/") as base:
        yield f"{base}/roscon.mp4"


async def test_youtube_resumable_upload_lookup_comments(sandbox_url, media_url):
    account = await _account(sandbox_url, Network.YOUTUBE, "pubyt")
    client = YouTubeClient(sandbox_url, timeout=2)
    with pytest.raises(Rejected):
        await client.publish(account, PublishRequest(text="no title", media_urls=(media_url,)))
    video = await client.publish(account, PublishRequest(
        text="Cómo hacemos el roscón", media_urls=(media_url,), options={"title": "Roscón de Reyes", "tags": ["roscon"]}))
    assert video.state == "published" and len(video.external_id) == 11
    found = await client.lookup(account, video.external_id)
    assert found is not None and found.text == "Cómo hacemos el roscón"
    await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 45 * 60})
    assert sum((await client.insights(account, video.external_id)).values()) > 0
    threads = await client.comments(account, video.external_id)
    assert threads and (await client.reply(account, threads[0]["id"], "¡Gracias!")).external_id
    assert await client.lookup(account, "x" * 11) is None


@pytest.fixture(scope="module")
def image_url():
    from tests.loopback import serve

    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 64

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"image/png")]})
        await send({"type": "http.response.body", "body": png})

    with serve(app, ready_path="/") as base:
        yield f"{base}/roscon.png"


async def test_x_post_with_images_uploads_them_first(sandbox_url, image_url, media_url):
    account = await _account(sandbox_url, Network.X, "pubx3")
    client = XClient(sandbox_url, timeout=2)
    post = await client.publish(account, PublishRequest(text="Dos roscones", media_urls=(image_url, image_url)))
    assert post.external_id
    calls = await _sandbox(sandbox_url, "GET", "/_sandbox/calls", params={"network": "x", "identity": "pubx3"})
    paths = [c["path"] for c in calls["calls"]]
    assert sum(p.endswith("/2/media/upload/initialize") for p in paths) == 2
    assert sum(p.endswith("/finalize") for p in paths) == 2
    with pytest.raises(Rejected):
        await client.publish(account, PublishRequest(text="x", media_urls=(image_url,) * 5))
    with pytest.raises(Rejected):  # images and a video do not mix
        await client.publish(account, PublishRequest(text="x", media_urls=(image_url, media_url)))
    # A video is processed first; the post goes out once X says the media succeeded.
    pending = await client.publish(account, PublishRequest(text="Amasando", media_urls=(media_url,)))
    assert pending.state == "processing" and pending.pending_ref
    assert (await client.publish_status(account, pending.pending_ref)).state == "processing"
    await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 120})
    done = await client.publish_status(account, pending.pending_ref)
    assert done.state == "published" and done.external_id


def _li_headers(account) -> dict[str, str]:
    from domain.networks.adapters.linkedin import HEADERS

    return {"Authorization": f"Bearer {account.access_token}", **HEADERS}


async def _linkedin_post(sandbox_url: str, account, urn: str) -> dict:
    return await _sandbox(sandbox_url, "GET", f"/linkedin/rest/posts/{urn}", headers=_li_headers(account))


async def test_linkedin_image_posts_go_through_the_images_api(sandbox_url, image_url, media_url):
    account = await _account(sandbox_url, Network.LINKEDIN, "publiimg", kind="member")
    client = LinkedInClient(sandbox_url, timeout=2)
    one = await client.publish(account, PublishRequest(text="Un roscón", media_urls=(image_url,),
                                                       options={"alt_text": "Roscón con nata"}))
    assert one.state == "published" and one.external_id.startswith("urn:li:")
    content = (await _linkedin_post(sandbox_url, account, one.external_id))["content"]
    assert content["media"]["id"].startswith("urn:li:image:") and content["media"]["altText"] == "Roscón con nata"
    many = await client.publish(account, PublishRequest(text="Tres roscones", media_urls=(image_url,) * 3,
                                                        options={"alt_text": ["uno", "dos", "tres"]}))
    images = (await _linkedin_post(sandbox_url, account, many.external_id))["content"]["multiImage"]["images"]
    assert [i["altText"] for i in images] == ["uno", "dos", "tres"] and len({i["id"] for i in images}) == 3
    assert (await client.lookup(account, many.external_id)).text == "Tres roscones"
    calls = await _sandbox(sandbox_url, "GET", "/_sandbox/calls", params={"network": "linkedin", "identity": "publiimg",
                                                                        "kind": "upload"})
    assert [c["method"] for c in calls["calls"]] == ["POST", "PUT"] * 4
    before = (await _sandbox(sandbox_url, "GET", "/_sandbox/calls", params={"network": "linkedin"}))["count"]
    with pytest.raises(Rejected):  # 21 images: refused before anything is sent
        await client.publish(account, PublishRequest(text="x", media_urls=(image_url,) * 21))
    with pytest.raises(Rejected):  # images and a video do not mix
        await client.publish(account, PublishRequest(text="x", media_urls=(image_url, media_url)))
    with pytest.raises(Rejected):  # one video per post
        await client.publish(account, PublishRequest(text="x", media_urls=(media_url, media_url)))
    assert (await _sandbox(sandbox_url, "GET", "/_sandbox/calls", params={"network": "linkedin"}))["count"] == before


async def test_linkedin_video_is_processed_then_posted(sandbox_url, media_url):
    account = await _account(sandbox_url, Network.LINKEDIN, "publivid", kind="organization")
    client = LinkedInClient(sandbox_url, timeout=2)
    pending = await client.publish(account, PublishRequest(text="Amasando el roscón", media_urls=(media_url,),
                                                           options={"title": "Amasando"}))
    assert pending.state == "processing" and pending.pending_ref and pending.external_id is None
    assert (await client.publish_status(account, pending.pending_ref)).state == "processing"
    await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 60})
    done = await client.publish_status(account, pending.pending_ref)
    assert done.state == "published" and done.external_id.startswith("urn:li:")
    post = await _linkedin_post(sandbox_url, account, done.external_id)
    assert post["content"]["media"]["id"].startswith("urn:li:video:") and post["content"]["media"]["title"] == "Amasando"
    assert post["author"] == account.external_id and post["commentary"] == "Amasando el roscón"
    paths = [c["path"] for c in (await _sandbox(sandbox_url, "GET", "/_sandbox/calls",
                                                params={"network": "linkedin", "identity": "publivid"}))["calls"]]
    assert sum("/dms-uploads/" in p for p in paths) == 1 and sum(p.endswith("/rest/videos") for p in paths) == 2


async def test_linkedin_video_processing_failure_is_rejected(sandbox_url, media_url):
    account = await _account(sandbox_url, Network.LINKEDIN, "publifail", kind="member")
    client = LinkedInClient(sandbox_url, timeout=2)
    # The upload itself is accepted; LinkedIn then fails to process the video.
    await _sandbox(sandbox_url, "POST", "/_sandbox/faults", json={
        "network": "linkedin", "match": "upload", "kind": "processing_failed", "identity": "publifail"})
    with pytest.raises(Rejected) as failed:
        await client.publish(account, PublishRequest(text="x", media_urls=(media_url,)))
    assert failed.value.code == "PROCESSING_FAILED"
    pending = await client.publish(account, PublishRequest(text="y", media_urls=(media_url,)))
    assert pending.state == "processing"
    await _sandbox(sandbox_url, "POST", "/_sandbox/faults", json={
        "network": "linkedin", "match": "status", "kind": "processing_failed", "identity": "publifail"})
    with pytest.raises(Rejected):
        await client.publish_status(account, pending.pending_ref)
    posts = await _sandbox(sandbox_url, "GET", "/linkedin/rest/posts", params={"q": "author", "author": account.external_id},
                           headers=_li_headers(account))
    assert posts["elements"] == []


async def test_facebook_several_photos_are_one_post(sandbox_url):
    page = await _account(sandbox_url, Network.FACEBOOK, "pubfbalbum", kind="page")
    client = FacebookClient(sandbox_url, timeout=2)
    photos = tuple(f"https://cdn.example/roscon-{i}.jpg" for i in range(3))
    post = await client.publish(page, PublishRequest(text="Tres roscones", media_urls=photos))
    assert post.state == "published" and post.external_id.startswith(page.external_id + "_") and post.url
    assert (await client.lookup(page, post.external_id)).text == "Tres roscones"
    calls = (await _sandbox(sandbox_url, "GET", "/_sandbox/calls", params={"network": "facebook",
                                                                         "identity": "pubfbalbum", "kind": "publish"}))
    assert [c["path"].rsplit("/", 1)[1] for c in calls["calls"]] == ["photos"] * 3 + ["feed"]
    feed = await _sandbox(sandbox_url, "GET", f"/facebook/v24.0/{page.external_id}/feed",
                          headers={"Authorization": f"Bearer {page.access_token}"})
    assert [p["id"] for p in feed["data"]] == [post.external_id]  # one post, not three
    with pytest.raises(Rejected):  # more than 10 photos: refused before anything is sent
        await client.publish(page, PublishRequest(text="x", media_urls=photos * 4))


async def test_facebook_video_is_processed_then_its_post_is_found(sandbox_url):
    page = await _account(sandbox_url, Network.FACEBOOK, "pubfbvid", kind="page")
    client = FacebookClient(sandbox_url, timeout=2)
    await _sandbox(sandbox_url, "POST", "/_sandbox/config", json={"network": "facebook", "publish": {"processing_seconds": 90}})
    try:
        pending = await client.publish(page, PublishRequest(text="Amasando el roscón", options={"title": "Amasando"},
                                                            media_urls=("https://cdn.example/amasando.mp4?sig=1",)))
        assert pending.state == "processing" and pending.pending_ref and pending.external_id is None
        assert (await client.publish_status(page, pending.pending_ref)).state == "processing"
        video = await client.lookup(page, pending.pending_ref)  # the video, while it has no post yet
        assert video is not None and video.external_id == pending.pending_ref and video.text == "Amasando el roscón"
        await _sandbox(sandbox_url, "POST", "/_sandbox/clock", json={"advance_seconds": 120})
        done = await client.publish_status(page, pending.pending_ref)
        assert done.state == "published" and done.external_id.startswith(page.external_id + "_") and done.url
        found = await client.lookup(page, done.external_id)
        assert found is not None and found.text == "Amasando el roscón"
        by_video = await client.lookup(page, pending.pending_ref)  # as Graph does: the video leads to its post
        assert by_video is not None and by_video.external_id == done.external_id
        with pytest.raises(Rejected):  # one video, alone
            await client.publish(page, PublishRequest(text="x", media_urls=("https://cdn.example/a.mp4",
                                                                            "https://cdn.example/b.jpg")))
        with pytest.raises(Rejected):  # Graph could not fetch the file
            await client.publish(page, PublishRequest(text="x", media_urls=("https://cdn.example/broken.mp4",)))
        await _sandbox(sandbox_url, "POST", "/_sandbox/faults", json={
            "network": "facebook", "match": "status", "kind": "processing_failed", "identity": "pubfbvid"})
        with pytest.raises(Rejected) as failed:  # processing failed: no post
            await client.publish(page, PublishRequest(text="y", media_urls=("https://cdn.example/c.mp4",)))
        assert failed.value.code == "video_error"
    finally:
        await _sandbox(sandbox_url, "POST", "/_sandbox/config", json={"network": "facebook",
                                                                      "publish": {"processing_seconds": 0}})
    # Without processing time (the default), the post is there at once.
    at_once = await client.publish(page, PublishRequest(text="Listo", media_urls=("https://cdn.example/d.mov",)))
    assert at_once.state == "published" and at_once.external_id
