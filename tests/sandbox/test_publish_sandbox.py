"""The network sandbox's publish half: every network's publish call (and two-step flows), lookup,
metrics and comments that grow with the sandbox clock, replies, rate limits in each network's
own shape, and the "timeout after the provider accepted" fault."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from api.sandbox.app import create_sandbox_app
from tests.sandbox.test_oauth_sandbox import assert_auth_error, bearer, connect, free_port

PUB_SCOPES = {
    "x": "tweet.read tweet.write users.read media.write offline.access",
    "facebook": "pages_show_list,pages_read_engagement,pages_manage_posts,pages_manage_engagement,read_insights",
    "instagram": "instagram_business_basic,instagram_business_content_publish,instagram_business_manage_comments,"
                 "instagram_business_manage_insights",
    "tiktok": "user.info.basic,video.publish,video.upload,video.list",
    "youtube": "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.force-ssl",
    "linkedin": "openid profile w_member_social w_organization_social rw_organization_admin",
    "threads": "threads_basic,threads_content_publish,threads_read_replies,threads_manage_replies,"
               "threads_manage_insights",
    "pinterest": "boards:read,pins:read,pins:write,user_accounts:read",
}
NETS = tuple(PUB_SCOPES)
LI_HEADERS = {"LinkedIn-Version": "202510", "X-Restli-Protocol-Version": "2.0.0"}


class Acct(dict):  # type: ignore[type-arg]
    @property
    def h(self) -> dict[str, str]:
        return bearer(self["token"])


async def account(c: Any, n: str, identity: str | None = None) -> Acct:
    """Connect a login and collect what publishing needs (page token, account ids, board...)."""
    if n == "tiktok":  # the default TikTok app is unaudited; an audited one may post publicly
        await c.post("/_sandbox/apps", json={"network": "tiktok", "client_id": "chorus-sandbox-tiktok",
                                             "client_secret": "sandbox-secret-tiktok", "audited": True})
    tok = await connect(c, n, scope=PUB_SCOPES[n], identity=identity)
    a = Acct(token=tok["access_token"], user_token=tok["access_token"])
    ident = identity or "alice"
    info = (await c.get(f"/_sandbox/identities/{n}/{ident}")).json()
    if n == "facebook":
        pages = (await c.get("/facebook/v24.0/me/accounts", headers=bearer(tok["access_token"]))).json()["data"]
        a["page"] = pages[0]["id"]
        a["token"] = pages[0]["access_token"]
    elif n == "instagram":
        a["uid"] = info["user"]["id"]
    elif n == "threads":
        a["uid"] = info["user"]["id"]
    elif n == "x":
        a["uid"] = info["user"]["id"]
    elif n == "linkedin":
        a["person"] = f"urn:li:person:{info['member']['sub']}"
        a["org"] = f"urn:li:organization:{info['organizations'][0]['id']}"
    elif n == "pinterest":
        a["board"] = info["boards"][0]["id"]
    return a


async def clock(c: Any, seconds: float) -> None:
    r = await c.post("/_sandbox/clock", json={"advance_seconds": seconds})
    assert r.status_code == 200


async def publish(c: Any, n: str, a: Acct, text: str = "Hello from Chorus") -> tuple[httpx.Response, str | None]:
    """The network's full publish flow; returns (the publishing call's answer, the new post's id)."""
    if n == "x":
        r = await c.post("/x/2/tweets", json={"text": text}, headers=a.h)
        return r, (r.json()["data"]["id"] if r.status_code == 201 else None)
    if n == "facebook":
        r = await c.post(f"/facebook/v24.0/{a['page']}/feed", data={"message": text}, headers=a.h)
        return r, r.json().get("id") if r.status_code == 200 else None
    if n in ("instagram", "threads"):
        if n == "instagram":
            params = {"image_url": "https://cdn.chorus.test/a.jpg", "caption": text}
            edge, pub = "media", "media_publish"
        else:
            params = {"media_type": "TEXT", "text": text}
            edge, pub = "threads", "threads_publish"
        r = await c.post(f"/{n}/v24.0/{a['uid']}/{edge}" if n == "instagram" else f"/threads/v1.0/{a['uid']}/{edge}",
                         params=params, headers=a.h)
        assert r.status_code == 200, r.text
        cid = r.json()["id"]
        base = "/instagram/v24.0" if n == "instagram" else "/threads/v1.0"
        r = await c.post(f"{base}/{a['uid']}/{pub}", params={"creation_id": cid}, headers=a.h)
        return r, r.json().get("id") if r.status_code == 200 else None
    if n == "tiktok":
        r = await c.post("/tiktok/v2/post/publish/video/init/", headers=a.h, json={
            "post_info": {"title": text, "privacy_level": "PUBLIC_TO_EVERYONE"},
            "source_info": {"source": "PULL_FROM_URL", "video_url": "https://cdn.chorus.test/v.mp4"}})
        if r.status_code != 200:
            return r, None
        pub_id = r.json()["data"]["publish_id"]
        await clock(c, 31)
        s = await c.post("/tiktok/v2/post/publish/status/fetch/", json={"publish_id": pub_id}, headers=a.h)
        assert s.json()["data"]["status"] == "PUBLISH_COMPLETE", s.text
        return r, str(s.json()["data"]["publicaly_available_post_id"][0])
    if n == "youtube":
        r = await c.post("/youtube/upload/youtube/v3/videos", params={"uploadType": "resumable",
                                                                      "part": "snippet,status"},
                         json={"snippet": {"title": text[:100], "description": "d"},
                               "status": {"privacyStatus": "public"}}, headers=a.h)
        if r.status_code != 200:
            return r, None
        r = await c.put(r.headers["location"], content=b"v" * 1000, headers={"Content-Type": "video/mp4"})
        return r, r.json()["id"] if r.status_code == 200 else None
    if n == "linkedin":
        r = await c.post("/linkedin/rest/posts", headers={**a.h, **LI_HEADERS}, json={
            "author": a["org"], "commentary": text, "visibility": "PUBLIC", "lifecycleState": "PUBLISHED",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "isReshareDisabledByAuthor": False})
        return r, r.headers.get("x-restli-id")
    if n == "pinterest":
        r = await c.post("/pinterest/v5/pins", headers=a.h, json={
            "board_id": a["board"], "title": text[:100], "description": text, "link": "https://chorus.test/x",
            "media_source": {"source_type": "image_url", "url": "https://cdn.chorus.test/p.jpg"}})
        return r, r.json().get("id") if r.status_code == 201 else None
    raise ValueError(n)


async def metrics(c: Any, n: str, a: Acct, pid: str) -> dict[str, int]:
    """Read a post back and return some of its counts (the network's own lookup/insights call)."""
    if n == "x":
        r = await c.get(f"/x/2/tweets/{pid}", params={"tweet.fields": "public_metrics,created_at,conversation_id"},
                        headers=a.h)
        m = r.json()["data"]["public_metrics"]
        return {"views": m["impression_count"], "likes": m["like_count"], "comments": m["reply_count"]}
    if n == "facebook":
        r = await c.get(f"/facebook/v24.0/{pid}/insights", params={"metric": "post_impressions,post_clicks"},
                        headers=a.h)
        data = {d["name"]: d["values"][0]["value"] for d in r.json()["data"]}
        p = (await c.get(f"/facebook/v24.0/{pid}", params={"fields": "id,comments.summary(true)"}, headers=a.h)).json()
        return {"views": data["post_impressions"], "likes": data["post_clicks"],
                "comments": p["comments"]["summary"]["total_count"]}
    if n in ("instagram", "threads"):
        base = "/instagram/v24.0" if n == "instagram" else "/threads/v1.0"
        names = "views,likes,comments" if n == "instagram" else "views,likes,replies"
        r = await c.get(f"{base}/{pid}/insights", params={"metric": names}, headers=a.h)
        data = {d["name"]: d["values"][0]["value"] for d in r.json()["data"]}
        return {"views": data["views"], "likes": data["likes"], "comments": data.get("comments", data.get("replies"))}
    if n == "tiktok":
        r = await c.post("/tiktok/v2/video/query/", params={"fields": "id,title,view_count,like_count,comment_count"},
                         json={"filters": {"video_ids": [pid]}}, headers=a.h)
        v = r.json()["data"]["videos"][0]
        return {"views": v["view_count"], "likes": v["like_count"], "comments": v["comment_count"]}
    if n == "youtube":
        r = await c.get("/youtube/youtube/v3/videos", params={"part": "statistics,status", "id": pid}, headers=a.h)
        s = r.json()["items"][0]["statistics"]
        return {"views": int(s["viewCount"]), "likes": int(s["likeCount"]), "comments": int(s["commentCount"])}
    if n == "linkedin":
        r = await c.get("/linkedin/rest/organizationalEntityShareStatistics", headers={**a.h, **LI_HEADERS}, params={
            "q": "organizationalEntity", "organizationalEntity": a["org"], "shares": f"List({pid})"})
        s = r.json()["elements"][0]["totalShareStatistics"]
        return {"views": s["impressionCount"], "likes": s["likeCount"], "comments": s["commentCount"]}
    if n == "pinterest":
        today = time.strftime("%Y-%m-%d", time.gmtime((await c.get("/_sandbox/clock")).json()["now"]))
        r = await c.get(f"/pinterest/v5/pins/{pid}/analytics", headers=a.h, params={
            "start_date": today, "end_date": today, "metric_types": "IMPRESSION,SAVE,PIN_CLICK,OUTBOUND_CLICK"})
        s = r.json()["all"]["summary_metrics"]
        p = (await c.get(f"/pinterest/v5/pins/{pid}", params={"pin_metrics": "true"}, headers=a.h)).json()
        return {"views": p["pin_metrics"]["lifetime_metrics"]["impression"], "likes": s["PIN_CLICK"],
                "comments": p["pin_metrics"]["lifetime_metrics"]["comment"]}
    raise ValueError(n)


async def recent_ids(c: Any, n: str, a: Acct) -> list[str]:
    """The account's recent posts, read back the way Chorus must after an unknown publish outcome."""
    if n == "x":
        r = await c.get(f"/x/2/users/{a['uid']}/tweets", headers=a.h)
        return [t["id"] for t in r.json().get("data", [])]
    if n == "facebook":
        r = await c.get(f"/facebook/v24.0/{a['page']}/published_posts", headers=a.h)
        return [p["id"] for p in r.json()["data"]]
    if n == "instagram":
        r = await c.get(f"/instagram/v24.0/{a['uid']}/media", headers=a.h)
        return [p["id"] for p in r.json()["data"]]
    if n == "threads":
        r = await c.get(f"/threads/v1.0/{a['uid']}/threads", headers=a.h)
        return [p["id"] for p in r.json()["data"]]
    if n == "tiktok":
        await clock(c, 31)
        r = await c.post("/tiktok/v2/video/list/", params={"fields": "id,title"}, json={"max_count": 20}, headers=a.h)
        return [v["id"] for v in r.json()["data"]["videos"]]
    if n == "linkedin":
        r = await c.get("/linkedin/rest/posts", params={"q": "author", "author": a["org"]},
                        headers={**a.h, **LI_HEADERS})
        return [p["id"] for p in r.json()["elements"]]
    if n == "pinterest":
        r = await c.get(f"/pinterest/v5/boards/{a['board']}/pins", headers=a.h)
        return [p["id"] for p in r.json()["items"]]
    raise ValueError(n)


# --- happy paths, lookup, metrics -------------------------------------------------------------

@pytest.mark.parametrize("n", NETS)
async def test_publish_lookup_and_metrics_grow_with_the_clock(sandbox: Any, n: str) -> None:
    a = await account(sandbox, n)
    r, pid = await publish(sandbox, n, a)
    assert r.status_code in (200, 201) and pid, r.text
    first = await metrics(sandbox, n, a, pid)
    assert first == {"views": 0, "likes": 0, "comments": 0}
    await clock(sandbox, 1500)  # (short of the 1-hour access tokens' lifetime)
    later = await metrics(sandbox, n, a, pid)
    assert later["views"] > 0 and later["likes"] > 0, later
    if n not in ("tiktok", "pinterest"):
        assert later["comments"] == 2  # one per 10 sandbox minutes
    await clock(sandbox, 1500)
    again = await metrics(sandbox, n, a, pid)
    assert all(again[k] >= later[k] for k in again) and again["views"] > later["views"]
    assert again == await metrics(sandbox, n, a, pid)  # deterministic for a given instant


async def test_x_publish_shapes_media_lookup_and_delete(sandbox: Any) -> None:
    a = await account(sandbox, "x")
    init = await sandbox.post("/x/2/media/upload/initialize", headers=a.h,
                              json={"media_type": "video/mp4", "total_bytes": 10, "media_category": "tweet_video"})
    assert init.status_code == 200 and set(init.json()["data"]) == {"id", "media_key", "expires_after_secs"}
    mid = init.json()["data"]["id"]
    for i, chunk in enumerate((b"12345", b"67890")):
        ap = await sandbox.post(f"/x/2/media/upload/{mid}/append", headers=a.h, data={"segment_index": str(i)},
                                files={"media": ("blob", chunk, "application/octet-stream")})
        assert ap.status_code == 200, ap.text
    fin = await sandbox.post(f"/x/2/media/upload/{mid}/finalize", headers=a.h)
    assert fin.json()["data"]["processing_info"]["state"] == "pending"
    early = await sandbox.post("/x/2/tweets", json={"text": "vid", "media": {"media_ids": [mid]}}, headers=a.h)
    assert early.status_code == 400 and early.json()["title"] == "Invalid Request"
    st = await sandbox.get("/x/2/media/upload", params={"media_id": mid, "command": "STATUS"}, headers=a.h)
    assert st.json()["data"]["processing_info"]["state"] == "in_progress"
    await clock(sandbox, 11)
    st = await sandbox.get("/x/2/media/upload", params={"media_id": mid, "command": "STATUS"}, headers=a.h)
    assert st.json()["data"]["processing_info"]["state"] == "succeeded"
    r = await sandbox.post("/x/2/tweets", json={"text": "vid", "media": {"media_ids": [mid]}}, headers=a.h)
    assert r.status_code == 201 and r.json() == {"data": {"id": r.json()["data"]["id"], "text": "vid"}}
    assert int(r.headers["x-rate-limit-remaining"]) == 99 and "retry-after" not in r.headers
    tid = r.json()["data"]["id"]
    got = (await sandbox.get(f"/x/2/tweets/{tid}", params={"tweet.fields": "created_at,conversation_id,author_id,"
                                                                          "attachments"}, headers=a.h)).json()["data"]
    assert got["conversation_id"] == tid and got["author_id"] == a["uid"] and got["edit_history_tweet_ids"] == [tid]
    assert got["attachments"]["media_keys"] == [f"7_{mid}"] and got["created_at"].endswith("Z")
    dup = await sandbox.post("/x/2/tweets", json={"text": "vid"}, headers=a.h)
    assert dup.status_code == 403 and "duplicate" in dup.json()["detail"]
    assert (await sandbox.delete(f"/x/2/tweets/{tid}", headers=a.h)).json() == {"data": {"deleted": True}}
    gone = await sandbox.get(f"/x/2/tweets/{tid}", headers=a.h)
    err = gone.json()["errors"][0]
    assert "data" not in gone.json() and err["title"] == "Not Found Error" and err["resource_id"] == tid


async def test_facebook_feed_photos_and_page_token_rules(sandbox: Any) -> None:
    a = await account(sandbox, "facebook")
    user = bearer(a["user_token"])
    denied = await sandbox.post(f"/facebook/v24.0/{a['page']}/feed", data={"message": "hi"}, headers=user)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == 200
    r = await sandbox.post(f"/facebook/v24.0/{a['page']}/feed", data={"message": "hi", "link": "https://chorus.test"},
                           headers=a.h)
    assert r.status_code == 200 and set(r.json()) == {"id"} and r.json()["id"].startswith(a["page"] + "_")
    ph = await sandbox.post(f"/facebook/v24.0/{a['page']}/photos", headers=a.h,
                            data={"url": "https://cdn.chorus.test/p.jpg", "caption": "pic"})
    assert set(ph.json()) == {"id", "post_id"} and ph.json()["post_id"].startswith(a["page"] + "_")
    bad = await sandbox.post(f"/facebook/v24.0/{a['page']}/photos", headers=a.h, data={"url": "https://x/broken.jpg"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == 324
    post = (await sandbox.get(f"/facebook/v24.0/{r.json()['id']}", headers=a.h,
                              params={"fields": "id,message,created_time,permalink_url,is_published"})).json()
    assert post["message"] == "hi" and post["is_published"] is True and post["created_time"].endswith("+0000")
    sched = await sandbox.post(f"/facebook/v24.0/{a['page']}/feed", headers=a.h, data={
        "message": "later", "published": "false", "scheduled_publish_time": str(int(time.time()) + 60)})
    assert sched.status_code == 400 and sched.json()["error"]["code"] == 100  # less than 10 minutes ahead
    other_page = (await sandbox.get("/_sandbox/identities/facebook/alice")).json()["pages"][1]["id"]
    wrong = await sandbox.post(f"/facebook/v24.0/{other_page}/feed", data={"message": "x"}, headers=a.h)
    assert wrong.status_code == 403


async def test_instagram_container_status_then_publish(sandbox: Any) -> None:
    a = await account(sandbox, "instagram")
    base = f"/instagram/v24.0/{a['uid']}"
    reel = await sandbox.post(f"{base}/media", headers=a.h, params={
        "media_type": "REELS", "video_url": "https://cdn.chorus.test/r.mp4", "caption": "reel"})
    cid = reel.json()["id"]
    st = await sandbox.get(f"/instagram/v24.0/{cid}", params={"fields": "status_code,status"}, headers=a.h)
    assert st.json()["status_code"] == "IN_PROGRESS"
    early = await sandbox.post(f"{base}/media_publish", params={"creation_id": cid}, headers=a.h)
    assert early.status_code == 400 and early.json()["error"]["code"] == 9007
    await clock(sandbox, 61)
    st = await sandbox.get(f"/instagram/v24.0/{cid}", params={"fields": "status_code"}, headers=a.h)
    assert st.json() == {"status_code": "FINISHED", "id": cid}
    pub = await sandbox.post(f"{base}/media_publish", params={"creation_id": cid}, headers=a.h)
    mid = pub.json()["id"]
    assert pub.status_code == 200 and set(pub.json()) == {"id"}
    st = await sandbox.get(f"/instagram/v24.0/{cid}", params={"fields": "status_code"}, headers=a.h)
    assert st.json()["status_code"] == "PUBLISHED"
    media = (await sandbox.get(f"/instagram/v24.0/{mid}", headers=a.h, params={
        "fields": "id,permalink,timestamp,like_count,comments_count,media_type,media_product_type"})).json()
    assert media["permalink"].startswith("https://www.instagram.com/reel/") and media["media_product_type"] == "REELS"
    assert media["like_count"] == 0 and media["comments_count"] == 0
    broken = await sandbox.post(f"{base}/media", headers=a.h, params={"image_url": "https://cdn/broken.jpg"})
    st = await sandbox.get(f"/instagram/v24.0/{broken.json()['id']}", params={"fields": "status_code"}, headers=a.h)
    assert st.json()["status_code"] == "ERROR"
    await sandbox.post("/_sandbox/config", json={"network": "instagram", "publish": {"container_ttl_seconds": 600}})
    old = await sandbox.post(f"{base}/media", headers=a.h, params={"image_url": "https://cdn.chorus.test/o.jpg"})
    await clock(sandbox, 601)  # (24 h by default)
    st = await sandbox.get(f"/instagram/v24.0/{old.json()['id']}", params={"fields": "status_code"}, headers=a.h)
    assert st.json()["status_code"] == "EXPIRED"
    lim = (await sandbox.get(f"{base}/content_publishing_limit", params={"fields": "quota_usage,config"},
                             headers=a.h)).json()
    assert lim == {"data": [{"quota_usage": 1, "config": {"quota_total": 100, "quota_duration": 86400}}]}
    # a carousel waits for its children
    kids = [(await sandbox.post(f"{base}/media", headers=a.h, params={
        "image_url": f"https://cdn.chorus.test/{i}.jpg", "is_carousel_item": "true"})).json()["id"] for i in range(2)]
    car = await sandbox.post(f"{base}/media", headers=a.h, params={"media_type": "CAROUSEL", "children": ",".join(kids)})
    assert (await sandbox.post(f"{base}/media_publish", params={"creation_id": car.json()["id"]},
                               headers=a.h)).status_code == 200


async def test_threads_containers_replies_and_limits(sandbox: Any) -> None:
    a = await account(sandbox, "threads")
    base = f"/threads/v1.0/{a['uid']}"
    r, pid = await publish(sandbox, "threads", a, "first thread")
    post = (await sandbox.get(f"/threads/v1.0/{pid}", params={"fields": "id,permalink,text,timestamp,media_type"},
                              headers=a.h)).json()
    assert post["text"] == "first thread" and post["media_type"] == "TEXT_POST" and "threads.com" in post["permalink"]
    vid = await sandbox.post(f"{base}/threads", headers=a.h, params={"media_type": "VIDEO",
                                                                      "video_url": "https://cdn.chorus.test/v.mp4"})
    st = (await sandbox.get(f"/threads/v1.0/{vid.json()['id']}", params={"fields": "id,status,error_message"},
                            headers=a.h)).json()
    assert st["status"] == "IN_PROGRESS"
    await clock(sandbox, 1200)  # two replies arrive
    replies = (await sandbox.get(f"/threads/v1.0/{pid}/replies", params={"fields": "id,text,username,timestamp"},
                                 headers=a.h)).json()
    assert len(replies["data"]) == 2 and replies["data"][0]["username"] == "sandbox_fan_ana" and "paging" in replies
    c = await sandbox.post(f"{base}/threads", headers=a.h, params={
        "media_type": "TEXT", "text": "thanks!", "reply_to_id": replies["data"][0]["id"]})
    rep = await sandbox.post(f"{base}/threads_publish", params={"creation_id": c.json()["id"]}, headers=a.h)
    assert rep.status_code == 200
    conv = (await sandbox.get(f"/threads/v1.0/{pid}/conversation", params={"fields": "id,text,is_reply_owned_by_me"},
                              headers=a.h)).json()["data"]
    assert [x["text"] for x in conv if x["is_reply_owned_by_me"]] == ["thanks!"]
    lim = (await sandbox.get(f"{base}/threads_publishing_limit", headers=a.h)).json()["data"][0]
    assert lim["quota_usage"] == 1 and lim["reply_quota_usage"] == 1 and lim["config"]["quota_total"] == 250
    calls = (await sandbox.get("/_sandbox/calls", params={"network": "threads"})).json()["by_kind"]
    assert calls["publish"] == 1 and calls["reply"] == 1 and calls["upload"] == 3 and calls["status"] == 1


async def test_tiktok_file_upload_status_polling_and_audit(sandbox: Any) -> None:
    tok = await connect(sandbox, "tiktok", scope=PUB_SCOPES["tiktok"])
    h = bearer(tok["access_token"])
    info = (await sandbox.post("/tiktok/v2/post/publish/creator_info/query/", headers=h)).json()
    assert info["error"]["code"] == "ok" and "SELF_ONLY" in info["data"]["privacy_level_options"]
    assert info["data"]["creator_username"] == "alice" and info["data"]["max_video_post_duration_sec"] > 0
    body = {"post_info": {"title": "t", "privacy_level": "PUBLIC_TO_EVERYONE"},
            "source_info": {"source": "FILE_UPLOAD", "video_size": 1000, "chunk_size": 1000, "total_chunk_count": 1}}
    unaudited = await sandbox.post("/tiktok/v2/post/publish/video/init/", json=body, headers=h)
    assert unaudited.status_code == 403
    assert unaudited.json()["error"]["code"] == "unaudited_client_can_only_post_to_private_accounts"
    body["post_info"]["privacy_level"] = "SELF_ONLY"
    init = await sandbox.post("/tiktok/v2/post/publish/video/init/", json=body, headers=h)
    data = init.json()["data"]
    assert init.json()["error"]["code"] == "ok" and data["publish_id"].startswith("v_pub_file~")
    status = await sandbox.post("/tiktok/v2/post/publish/status/fetch/", json={"publish_id": data["publish_id"]},
                                headers=h)
    assert status.json()["data"]["status"] == "PROCESSING_UPLOAD"
    put = await sandbox.put(data["upload_url"], content=b"x" * 500,
                            headers={"Content-Type": "video/mp4", "Content-Range": "bytes 0-499/1000"})
    assert put.status_code == 400  # the declared single chunk is 1000 bytes... but a range must match its body
    put = await sandbox.put(data["upload_url"], content=b"x" * 1000,
                            headers={"Content-Type": "video/mp4", "Content-Range": "bytes 0-999/1000"})
    assert put.status_code == 201
    s = (await sandbox.post("/tiktok/v2/post/publish/status/fetch/", json={"publish_id": data["publish_id"]},
                            headers=h)).json()["data"]
    assert s["status"] == "PROCESSING_UPLOAD" and s["uploaded_bytes"] == 1000
    await clock(sandbox, 31)
    s = (await sandbox.post("/tiktok/v2/post/publish/status/fetch/", json={"publish_id": data["publish_id"]},
                            headers=h)).json()["data"]
    assert s["status"] == "PUBLISH_COMPLETE" and s["publicaly_available_post_id"] == []  # private post
    pull = await sandbox.post("/tiktok/v2/post/publish/video/init/", headers=h, json={
        "post_info": {"title": "p", "privacy_level": "SELF_ONLY"},
        "source_info": {"source": "PULL_FROM_URL", "video_url": "https://cdn.chorus.test/broken.mp4"}})
    pid = pull.json()["data"]["publish_id"]
    assert "upload_url" not in pull.json()["data"]
    s = (await sandbox.post("/tiktok/v2/post/publish/status/fetch/", json={"publish_id": pid}, headers=h)).json()
    assert s["data"]["status"] == "PROCESSING_DOWNLOAD"
    await clock(sandbox, 31)
    s = (await sandbox.post("/tiktok/v2/post/publish/status/fetch/", json={"publish_id": pid}, headers=h)).json()
    assert s["data"] == {"status": "FAILED", "fail_reason": "video_pull_failed", "downloaded_bytes": 1048576}


async def test_youtube_resumable_upload_in_chunks(sandbox: Any) -> None:
    a = await account(sandbox, "youtube")
    r = await sandbox.post("/youtube/upload/youtube/v3/videos", params={"uploadType": "resumable",
                                                                        "part": "snippet,status"},
                           headers={**a.h, "X-Upload-Content-Length": "10", "X-Upload-Content-Type": "video/mp4"},
                           json={"snippet": {"title": "Launch", "description": "desc", "tags": ["a", "b"]},
                                 "status": {"privacyStatus": "private", "publishAt": "2099-01-01T10:00:00Z"}})
    assert r.status_code == 200 and r.content == b""
    loc = r.headers["location"]
    assert "/youtube/upload/youtube/v3/videos?" in loc and "upload_id=" in loc
    p1 = await sandbox.put(loc, content=b"01234", headers={"Content-Range": "bytes 0-4/10"})
    assert p1.status_code == 308 and p1.headers["range"] == "bytes=0-4"
    q = await sandbox.put(loc, headers={"Content-Range": "bytes */10"})
    assert q.status_code == 308 and q.headers["range"] == "bytes=0-4"
    p2 = await sandbox.put(loc, content=b"56789", headers={"Content-Range": "bytes 5-9/10"})
    v = p2.json()
    assert p2.status_code == 200 and v["kind"] == "youtube#video" and len(v["id"]) == 11
    assert v["status"]["uploadStatus"] == "uploaded" and v["status"]["privacyStatus"] == "private"
    assert v["status"]["publishAt"] == "2099-01-01T10:00:00Z" and v["snippet"]["tags"] == ["a", "b"]
    await clock(sandbox, 61)
    got = (await sandbox.get("/youtube/youtube/v3/videos", params={"part": "status,statistics", "id": v["id"]},
                             headers=a.h)).json()
    assert got["kind"] == "youtube#videoListResponse" and got["items"][0]["status"]["uploadStatus"] == "processed"
    assert got["items"][0]["statistics"]["viewCount"] == "0"  # still private
    bad = await sandbox.post("/youtube/upload/youtube/v3/videos", params={"uploadType": "resumable", "part": "snippet"},
                             headers=a.h, json={"snippet": {"title": "x" * 101}})
    assert bad.status_code == 400 and bad.json()["error"]["errors"][0]["reason"] == "invalidTitle"


async def test_linkedin_headers_duplicate_and_lookup(sandbox: Any) -> None:
    a = await account(sandbox, "linkedin")
    post = {"author": a["person"], "commentary": "Hello LinkedIn", "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED"}, "lifecycleState": "PUBLISHED"}
    no_version = await sandbox.post("/linkedin/rest/posts", json=post, headers={**a.h,
                                                                                "X-Restli-Protocol-Version": "2.0.0"})
    assert no_version.status_code == 400 and no_version.json()["code"] == "VERSION_MISSING"
    old = await sandbox.post("/linkedin/rest/posts", json=post, headers={**a.h, "LinkedIn-Version": "202001",
                                                                          "X-Restli-Protocol-Version": "2.0.0"})
    assert old.status_code == 426 and old.json()["code"] == "NONEXISTENT_VERSION"
    no_restli = await sandbox.post("/linkedin/rest/posts", json=post, headers={**a.h, "LinkedIn-Version": "202510"})
    assert no_restli.status_code == 400
    r = await sandbox.post("/linkedin/rest/posts", json=post, headers={**a.h, **LI_HEADERS})
    assert r.status_code == 201 and r.content == b"" and r.headers["x-restli-id"].startswith("urn:li:share:")
    urn = r.headers["x-restli-id"]
    dup = await sandbox.post("/linkedin/rest/posts", json=post, headers={**a.h, **LI_HEADERS})
    assert dup.status_code == 422 and dup.json()["code"] == "DUPLICATE_POST" and urn in dup.json()["message"]
    got = await sandbox.get(f"/linkedin/rest/posts/{urn.replace(':', '%3A')}", headers={**a.h, **LI_HEADERS})
    assert got.status_code == 200 and got.json()["id"] == urn and got.json()["commentary"] == "Hello LinkedIn"
    assert got.json()["author"] == a["person"] and isinstance(got.json()["publishedAt"], int)
    foreign = dict(post, author="urn:li:organization:1", commentary="other")
    assert (await sandbox.post("/linkedin/rest/posts", json=foreign, headers={**a.h, **LI_HEADERS})).status_code == 403


async def test_pinterest_board_rules_and_pin_shape(sandbox: Any) -> None:
    await account(sandbox, "pinterest", identity="bob")  # another login: its boards are "foreign" to alice
    bob_board = (await sandbox.get("/_sandbox/identities/pinterest/bob")).json()["boards"][0]["id"]
    a = await account(sandbox, "pinterest")
    src = {"source_type": "image_url", "url": "https://cdn.chorus.test/p.jpg"}
    missing = await sandbox.post("/pinterest/v5/pins", json={"title": "t", "media_source": src}, headers=a.h)
    assert missing.status_code == 400 and set(missing.json()) == {"code", "message"}
    foreign = await sandbox.post("/pinterest/v5/pins", json={"board_id": bob_board, "media_source": src}, headers=a.h)
    assert foreign.status_code == 403 and set(foreign.json()) == {"code", "message"}
    unknown = await sandbox.post("/pinterest/v5/pins", json={"board_id": "123", "media_source": src}, headers=a.h)
    assert unknown.status_code == 404
    r, pid = await publish(sandbox, "pinterest", a, "A pin")
    pin = r.json()
    assert r.status_code == 201 and pin["board_id"] == a["board"] and pin["title"] == "A pin"
    assert pin["media"]["media_type"] == "image" and pin["created_at"] and pin["link"] == "https://chorus.test/x"
    assert (await sandbox.get(f"/pinterest/v5/pins/{pid}", headers=a.h)).json()["id"] == pid
    assert (await sandbox.delete(f"/pinterest/v5/pins/{pid}", headers=a.h)).status_code == 204
    gone = await sandbox.get(f"/pinterest/v5/pins/{pid}", headers=a.h)
    assert gone.status_code == 404 and gone.json()["message"] == "Pin not found."


# --- comments arrive with the clock, and a reply ---------------------------------------------------

async def comments_and_reply(c: Any, n: str, a: Acct, pid: str) -> tuple[list[str], list[str]]:
    """(texts of the comments listed before the reply, texts after it) using the network's own calls."""
    if n == "x":
        q = {"query": f"conversation_id:{pid}", "tweet.fields": "author_id,conversation_id,in_reply_to_user_id"}
        before = (await c.get("/x/2/tweets/search/recent", params=q, headers=a.h)).json()
        assert before["meta"]["result_count"] == len(before["data"])
        r = await c.post("/x/2/tweets", json={"text": "thanks", "reply": {"in_reply_to_tweet_id": before["data"][0]["id"]}},
                         headers=a.h)
        assert r.status_code == 201
        after = (await c.get("/x/2/tweets/search/recent", params=q, headers=a.h)).json()
        return [t["text"] for t in before["data"]], [t["text"] for t in after["data"]]
    if n == "facebook":
        before = (await c.get(f"/facebook/v24.0/{pid}/comments", headers=a.h)).json()
        assert set(before["data"][0]) == {"created_time", "from", "message", "id"}
        r = await c.post(f"/facebook/v24.0/{before['data'][0]['id']}/comments", data={"message": "thanks"}, headers=a.h)
        assert set(r.json()) == {"id"}
        after = (await c.get(f"/facebook/v24.0/{pid}/comments", params={"filter": "stream"}, headers=a.h)).json()
        return [x["message"] for x in before["data"]], [x["message"] for x in after["data"]]
    if n == "instagram":
        before = (await c.get(f"/instagram/v24.0/{pid}/comments", params={"fields": "id,text,username,timestamp"},
                              headers=a.h)).json()
        cid = before["data"][0]["id"]
        r = await c.post(f"/instagram/v24.0/{cid}/replies", params={"message": "thanks"}, headers=a.h)
        assert set(r.json()) == {"id"}
        replies = (await c.get(f"/instagram/v24.0/{cid}/replies", params={"fields": "id,text"}, headers=a.h)).json()
        return [x["text"] for x in before["data"]], [x["text"] for x in before["data"] + replies["data"]]
    if n == "threads":
        before = (await c.get(f"/threads/v1.0/{pid}/replies", params={"fields": "id,text"}, headers=a.h)).json()
        cont = await c.post(f"/threads/v1.0/{a['uid']}/threads", headers=a.h, params={
            "media_type": "TEXT", "text": "thanks", "reply_to_id": before["data"][0]["id"]})
        assert (await c.post(f"/threads/v1.0/{a['uid']}/threads_publish", params={"creation_id": cont.json()["id"]},
                             headers=a.h)).status_code == 200
        after = (await c.get(f"/threads/v1.0/{pid}/conversation", params={"fields": "id,text"}, headers=a.h)).json()
        return [x["text"] for x in before["data"]], [x["text"] for x in after["data"]]
    if n == "youtube":
        q = {"part": "snippet,replies", "videoId": pid}
        before = (await c.get("/youtube/youtube/v3/commentThreads", params=q, headers=a.h)).json()
        assert before["kind"] == "youtube#commentThreadListResponse"
        top = before["items"][0]["snippet"]["topLevelComment"]
        r = await c.post("/youtube/youtube/v3/comments", params={"part": "snippet"}, headers=a.h,
                         json={"snippet": {"parentId": top["id"], "textOriginal": "thanks"}})
        assert r.json()["kind"] == "youtube#comment" and r.json()["snippet"]["parentId"] == top["id"]
        after = (await c.get("/youtube/youtube/v3/commentThreads", params=q, headers=a.h)).json()
        texts = [t["snippet"]["topLevelComment"]["snippet"]["textOriginal"] for t in after["items"]]
        texts += [x["snippet"]["textOriginal"] for t in after["items"] for x in t.get("replies", {}).get("comments", [])]
        return [t["snippet"]["topLevelComment"]["snippet"]["textOriginal"] for t in before["items"]], texts
    if n == "linkedin":
        h = {**a.h, **LI_HEADERS}
        before = (await c.get(f"/linkedin/rest/socialActions/{pid}/comments", headers=h)).json()
        first = before["elements"][0]
        r = await c.post(f"/linkedin/rest/socialActions/{pid}/comments", headers=h, json={
            "actor": a["org"], "object": pid, "message": {"text": "thanks"}, "parentComment": first["commentUrn"]})
        assert r.status_code == 201 and r.json()["parentComment"] == first["commentUrn"]
        after = (await c.get(f"/linkedin/rest/socialActions/{first['commentUrn']}/comments", headers=h)).json()
        return ([x["message"]["text"] for x in before["elements"]],
                [x["message"]["text"] for x in before["elements"] + after["elements"]])
    raise ValueError(n)


@pytest.mark.parametrize("n", ("x", "facebook", "instagram", "threads", "youtube", "linkedin"))
async def test_comments_arrive_with_the_clock_and_can_be_answered(sandbox: Any, n: str) -> None:
    a = await account(sandbox, n)
    _, pid = await publish(sandbox, n, a)
    assert pid
    await clock(sandbox, 1800)  # three comments, from the fixed test commenters
    before, after = await comments_and_reply(sandbox, n, a, pid)
    assert len(before) == 3 and all("(#" in t for t in before)
    assert "thanks" in after and len(after) == 4


# --- rate limits, each in the network's own shape ----------------------------------------------

@pytest.mark.parametrize("n", NETS)
async def test_rate_limit_in_the_networks_shape(sandbox: Any, n: str) -> None:
    a = await account(sandbox, n)
    if n == "tiktok":  # the real default: 6 inits a minute per token
        body = {"post_info": {"title": "t", "privacy_level": "SELF_ONLY"},
                "source_info": {"source": "PULL_FROM_URL", "video_url": "https://cdn.chorus.test/v.mp4"}}
        for _ in range(6):
            r = await sandbox.post("/tiktok/v2/post/publish/video/init/", json=body, headers=a.h)
            assert r.status_code == 200
        r = await sandbox.post("/tiktok/v2/post/publish/video/init/", json=body, headers=a.h)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded" and r.json()["data"] == {}
        await clock(sandbox, 61)
        assert (await sandbox.post("/tiktok/v2/post/publish/video/init/", json=body, headers=a.h)).status_code == 200
        return
    cfg = await sandbox.post("/_sandbox/config", json={"network": n, "publish": {"rate_limit": 2,
                                                                                     "rate_window": 600}})
    assert cfg.json()["publish"]["rate_limit"] == 2
    for i in range(2):
        r, pid = await publish(sandbox, n, a, f"post {i}")
        assert pid, r.text
    r, pid = await publish(sandbox, n, a, "post 3")
    assert pid is None
    body = r.json()
    if n == "x":
        assert r.status_code == 429 and body["title"] == "Too Many Requests" and "retry-after" not in r.headers
        assert r.headers["x-rate-limit-limit"] == "2" and r.headers["x-rate-limit-remaining"] == "0"
        assert int(r.headers["x-rate-limit-reset"]) > time.time()
    elif n == "facebook":
        assert r.status_code == 400 and body["error"]["code"] == 32 and "x-business-use-case-usage" in r.headers
    elif n in ("instagram", "threads"):
        assert r.status_code == 400 and body["error"]["code"] == 9 and body["error"]["error_subcode"] == 2207042
    elif n == "youtube":
        assert r.status_code == 403 and body["error"]["errors"][0]["reason"] == "quotaExceeded"
    elif n == "linkedin":
        assert r.status_code == 429 and body["status"] == 429
    elif n == "pinterest":
        assert r.status_code == 429 and set(body) == {"code", "message"}
    await clock(sandbox, 601)  # the window passes
    r, pid = await publish(sandbox, n, a, "post 4")
    assert pid, r.text


# --- tokens are required --------------------------------------------------------------------

PUBLISH_CALL = {
    "x": ("POST", "/x/2/tweets", {"json": {"text": "hi"}}),
    "facebook": ("POST", "/facebook/v24.0/123456789012345/feed", {"data": {"message": "hi"}}),
    "instagram": ("POST", "/instagram/v24.0/me/media", {"params": {"image_url": "https://a/b.jpg"}}),
    "threads": ("POST", "/threads/v1.0/me/threads", {"params": {"media_type": "TEXT", "text": "hi"}}),
    "tiktok": ("POST", "/tiktok/v2/post/publish/video/init/", {"json": {}}),
    "youtube": ("POST", "/youtube/upload/youtube/v3/videos?uploadType=resumable&part=snippet", {"json": {}}),
    "linkedin": ("POST", "/linkedin/rest/posts", {"json": {}, "headers": LI_HEADERS}),
    "pinterest": ("POST", "/pinterest/v5/pins", {"json": {}}),
}


@pytest.mark.parametrize("n", NETS)
async def test_publishing_needs_a_valid_token(sandbox: Any, n: str) -> None:
    method, path, kw = PUBLISH_CALL[n]
    headers = dict(kw.get("headers", {}))
    rest = {k: v for k, v in kw.items() if k != "headers"}
    assert_auth_error(n, await sandbox.request(method, path, headers=headers, **rest))
    assert_auth_error(n, await sandbox.request(method, path, headers={**headers, **bearer("nope")}, **rest))
    a = await account(sandbox, n)
    await sandbox.post("/_sandbox/clock", json={"advance_seconds": 400 * 86400})  # every access token has expired
    r, pid = await publish(sandbox, n, a) if n not in ("instagram", "threads") else (None, None)
    if r is not None:
        assert pid is None
        assert_auth_error(n, r)


# --- faults on the new endpoints ---------------------------------------------------------------

async def test_status_faults_and_call_log_kinds(sandbox: Any) -> None:
    a = await account(sandbox, "instagram")
    base = f"/instagram/v24.0/{a['uid']}"
    cid = (await sandbox.post(f"{base}/media", headers=a.h, params={"image_url": "https://cdn.chorus.test/a.jpg"})).json()["id"]
    await sandbox.post("/_sandbox/faults", json={"network": "instagram", "match": "status", "kind": "status",
                                                 "status": 503})
    r = await sandbox.get(f"/instagram/v24.0/{cid}", params={"fields": "status_code"}, headers=a.h)
    assert r.status_code == 503 and r.json()["error"]["is_transient"] is True
    r = await sandbox.get(f"/instagram/v24.0/{cid}", params={"fields": "status_code"}, headers=a.h)
    assert r.json()["status_code"] == "FINISHED"
    await sandbox.post("/_sandbox/faults", json={"network": "instagram", "match": "publish", "kind": "status",
                                                 "status": 500})
    assert (await sandbox.post(f"{base}/media_publish", params={"creation_id": cid}, headers=a.h)).status_code == 500
    assert (await sandbox.get(f"{base}/media", headers=a.h)).json()["data"] == []  # a faulted call changes nothing
    assert (await sandbox.post(f"{base}/media_publish", params={"creation_id": cid}, headers=a.h)).status_code == 200
    calls = (await sandbox.get("/_sandbox/calls", params={"network": "instagram"})).json()
    assert calls["by_kind"]["upload"] == 1 and calls["by_kind"]["status"] == 2 and calls["by_kind"]["publish"] == 2
    assert calls["by_kind"]["lookup"] == 1
    assert (await sandbox.get("/_sandbox/calls", params={"kind": "publish"})).json()["count"] == 2
    t = await account(sandbox, "tiktok")
    await sandbox.post("/_sandbox/faults", json={"network": "tiktok", "match": "status", "kind": "status", "status": 502})
    init = await sandbox.post("/tiktok/v2/post/publish/video/init/", headers=t.h, json={
        "post_info": {"title": "t", "privacy_level": "SELF_ONLY"},
        "source_info": {"source": "PULL_FROM_URL", "video_url": "https://cdn.chorus.test/v.mp4"}})
    s = await sandbox.post("/tiktok/v2/post/publish/status/fetch/", headers=t.h,
                           json={"publish_id": init.json()["data"]["publish_id"]})
    assert s.status_code == 502 and s.json()["error"]["code"] == "internal_error"


# --- a timeout after the provider accepted: the post exists; look it up, do not re-send -----------

@pytest.fixture
async def live() -> Any:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_sandbox_app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            yield c
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("n", NETS)
async def test_timeout_after_accepted_publish_is_found_by_lookup(live: httpx.AsyncClient, n: str) -> None:
    c = live
    a = await account(c, n)
    if n == "youtube":
        init = await c.post("/youtube/upload/youtube/v3/videos", params={"uploadType": "resumable",
                                                                         "part": "snippet,status"},
                            json={"snippet": {"title": "t"}, "status": {"privacyStatus": "public"}}, headers=a.h)
        loc = init.headers["location"]
    await c.post("/_sandbox/faults", json={"network": n, "match": "publish", "kind": "timeout", "seconds": 1.0})
    with pytest.raises(httpx.ReadTimeout):
        if n == "youtube":
            await c.put(loc, content=b"v" * 100, timeout=0.2)
        else:
            await asyncio.wait_for(publish_with_timeout(c, n, a), 5)
    calls = (await c.get("/_sandbox/calls", params={"network": n, "kind": "publish"})).json()
    assert calls["count"] == 1 and calls["calls"][0]["outcome"] == "fault:timeout"
    if n == "youtube":  # Google's way: ask the upload session where it stands
        r = await c.put(loc, headers={"Content-Range": "bytes */100"})
        assert r.status_code == 200 and r.json()["kind"] == "youtube#video"
        return
    found = await recent_ids(c, n, a)
    assert len(found) == 1  # the post exists, exactly once


async def publish_with_timeout(c: httpx.AsyncClient, n: str, a: Acct) -> None:
    original = c.timeout
    c.timeout = httpx.Timeout(0.2)
    try:
        await publish(c, n, a)
    finally:
        c.timeout = original


# --- LinkedIn media: Images API, Videos API, and the checks POST /rest/posts makes ---------------

def li_post(author: str, text: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"author": author, "commentary": text, "visibility": "PUBLIC", "lifecycleState": "PUBLISHED",
            "distribution": {"feedDistribution": "MAIN_FEED"}, "content": content}


async def li_image(c: httpx.AsyncClient, a: Acct, owner: str, upload: bool = True) -> str:
    h = {**a.h, **LI_HEADERS}
    r = await c.post("/linkedin/rest/images", params={"action": "initializeUpload"}, headers=h,
                     json={"initializeUploadRequest": {"owner": owner}})
    assert r.status_code == 200, r.text
    value = r.json()["value"]
    assert set(value) == {"uploadUrlExpiresAt", "uploadUrl", "image"} and value["image"].startswith("urn:li:image:")
    assert value["uploadUrl"].startswith(str(c.base_url).rstrip("/") + "/linkedin/dms-uploads/")
    if upload:
        put = await c.put(value["uploadUrl"], content=b"\x89PNG" + b"\x00" * 60, headers=a.h)
        assert put.status_code == 201 and put.content == b""
    return value["image"]


async def test_linkedin_images_are_uploaded_then_posted(live: httpx.AsyncClient) -> None:
    c = live
    a = await account(c, "linkedin")
    h = {**a.h, **LI_HEADERS}
    waiting = await li_image(c, a, a["person"], upload=False)
    st = await c.get(f"/linkedin/rest/images/{waiting.replace(':', '%3A')}", headers=h)
    assert st.json() == {"owner": a["person"], "id": waiting, "status": "WAITING_UPLOAD"}
    early = await c.post("/linkedin/rest/posts", headers=h, json=li_post(a["person"], "early", {"media": {"id": waiting}}))
    assert early.status_code == 422 and "WAITING_UPLOAD" in early.json()["message"]
    one = await li_image(c, a, a["person"])
    got = (await c.get(f"/linkedin/rest/images/{one}", headers=h)).json()
    assert got["status"] == "AVAILABLE" and got["downloadUrl"] and isinstance(got["downloadUrlExpiresAt"], int)
    r = await c.post("/linkedin/rest/posts", headers=h,
                     json=li_post(a["person"], "one image", {"media": {"id": one, "altText": "a roscón"}}))
    assert r.status_code == 201 and r.headers["x-restli-id"].startswith("urn:li:ugcPost:")
    post = (await c.get(f"/linkedin/rest/posts/{r.headers['x-restli-id'].replace(':', '%3A')}", headers=h)).json()
    assert post["content"] == {"media": {"id": one, "altText": "a roscón"}}
    images = [{"id": await li_image(c, a, a["person"]), "altText": f"photo {i}"} for i in range(3)]
    r = await c.post("/linkedin/rest/posts", headers=h, json=li_post(a["person"], "three", {"multiImage": {"images": images}}))
    assert r.status_code == 201
    post = (await c.get(f"/linkedin/rest/posts/{r.headers['x-restli-id']}", headers=h)).json()
    assert post["content"]["multiImage"]["images"] == images
    lone = await c.post("/linkedin/rest/posts", headers=h,
                        json=li_post(a["person"], "lone", {"multiImage": {"images": images[:1]}}))
    assert lone.status_code == 422 and lone.json()["code"] == "UNPROCESSABLE_ENTITY"
    bad = await c.put(f"/linkedin/dms-uploads/sp/v2/{one.rsplit(':', 1)[1]}/uploadedImage/0", params={"ut": "nope"},
                      content=b"x")
    assert bad.status_code == 404


async def test_linkedin_posts_refuse_unknown_and_foreign_media(live: httpx.AsyncClient) -> None:
    c = live
    a = await account(c, "linkedin")
    h = {**a.h, **LI_HEADERS}
    unknown = await c.post("/linkedin/rest/posts", headers=h,
                           json=li_post(a["person"], "x", {"media": {"id": "urn:li:image:D4E10AQnothere"}}))
    assert unknown.status_code == 422 and "does not exist" in unknown.json()["message"]
    assert unknown.json()["status"] == 422 and set(unknown.json()) == {"status", "code", "message"}
    org_image = await li_image(c, a, a["org"])  # alice's organisation owns it, not alice
    other_owner = await c.post("/linkedin/rest/posts", headers=h, json=li_post(a["person"], "x", {"media": {"id": org_image}}))
    assert other_owner.status_code == 422 and "does not belong" in other_owner.json()["message"]
    assert (await c.post("/linkedin/rest/posts", headers=h,
                         json=li_post(a["org"], "the org's own", {"media": {"id": org_image}}))).status_code == 201
    b = await account(c, "linkedin", identity="bob")
    bobs = await li_image(c, b, b["person"])
    foreign = await c.post("/linkedin/rest/posts", headers=h, json=li_post(a["person"], "x", {"media": {"id": bobs}}))
    assert foreign.status_code == 422 and "does not belong" in foreign.json()["message"]
    assert (await c.get(f"/linkedin/rest/images/{bobs}", headers=h)).status_code == 403
    denied = await c.post("/linkedin/rest/images", params={"action": "initializeUpload"}, headers=h,
                          json={"initializeUploadRequest": {"owner": b["person"]}})
    assert denied.status_code == 403 and denied.json()["code"] == "ACCESS_DENIED"
    mixed = await c.post("/linkedin/rest/posts", headers=h, json=li_post(a["person"], "x", {"multiImage": {"images": [
        {"id": await li_image(c, a, a["person"])}, {"id": "urn:li:video:D5610AQnotanimage"}]}}))
    assert mixed.status_code == 422 and "not an image urn" in mixed.json()["message"]


async def test_linkedin_video_parts_finalize_processing_then_post(live: httpx.AsyncClient) -> None:
    from api.sandbox.publish import LI_PART_BYTES

    c = live
    a = await account(c, "linkedin")
    h = {**a.h, **LI_HEADERS}
    size = LI_PART_BYTES + 10
    video_bytes = bytes(range(256)) * (size // 256) + b"\x07" * (size % 256)
    r = await c.post("/linkedin/rest/videos", params={"action": "initializeUpload"}, headers=h, json={
        "initializeUploadRequest": {"owner": a["person"], "fileSizeBytes": size, "uploadCaptions": False,
                                    "uploadThumbnail": False}})
    assert r.status_code == 200, r.text
    value = r.json()["value"]
    assert set(value) == {"uploadUrlsExpireAt", "video", "uploadInstructions", "uploadToken"} and value["uploadToken"]
    video, parts = value["video"], value["uploadInstructions"]
    assert video.startswith("urn:li:video:")
    assert [(p["firstByte"], p["lastByte"]) for p in parts] == [(0, LI_PART_BYTES - 1), (LI_PART_BYTES, size - 1)]
    status = await c.get(f"/linkedin/rest/videos/{video}", headers=h)
    assert status.json()["status"] == "WAITING_UPLOAD"

    def finalize(part_ids: list[str], token: str = value["uploadToken"]) -> Any:
        return c.post("/linkedin/rest/videos", params={"action": "finalizeUpload"}, headers=h, json={
            "finalizeUploadRequest": {"video": video, "uploadToken": token, "uploadedPartIds": part_ids}})

    assert (await finalize([])).status_code == 400  # no part is in yet
    short = await c.put(parts[0]["uploadUrl"], content=video_bytes[:10])
    assert short.status_code == 400 and short.json()["status"] == 400
    etags = []
    for p in parts:
        put = await c.put(p["uploadUrl"], content=video_bytes[p["firstByte"]:p["lastByte"] + 1],
                          headers={"Content-Type": "application/octet-stream"})
        assert put.status_code == 200 and put.headers["etag"]
        etags.append(put.headers["etag"])
    assert (await finalize(etags[::-1])).status_code == 400
    assert (await finalize(etags, token="wrong")).status_code == 400
    done = await finalize(etags)
    assert done.status_code == 200 and done.content == b""
    assert (await c.get(f"/linkedin/rest/videos/{video}", headers=h)).json()["status"] == "PROCESSING"
    content = {"media": {"id": video, "title": "Amasando"}}
    early = await c.post("/linkedin/rest/posts", headers=h, json=li_post(a["person"], "vid", content))
    assert early.status_code == 422 and "PROCESSING" in early.json()["message"]
    await clock(c, 31)
    ready = (await c.get(f"/linkedin/rest/videos/{video}", headers=h)).json()
    assert ready["status"] == "AVAILABLE" and ready["owner"] == a["person"] and ready["id"] == video
    r = await c.post("/linkedin/rest/posts", headers=h, json=li_post(a["person"], "vid", content))
    assert r.status_code == 201
    post = (await c.get(f"/linkedin/rest/posts/{r.headers['x-restli-id']}", headers=h)).json()
    assert post["content"] == content and post["commentary"] == "vid"
    calls = (await c.get("/_sandbox/calls", params={"network": "linkedin", "kind": "upload"})).json()
    assert calls["count"] == 1 + 1 + 2 + 3 + 1 and all(x["identity"] == "alice" for x in calls["calls"])


async def test_linkedin_video_processing_failure_fault(live: httpx.AsyncClient) -> None:
    c = live
    a = await account(c, "linkedin")
    h = {**a.h, **LI_HEADERS}

    async def upload() -> str:
        r = await c.post("/linkedin/rest/videos", params={"action": "initializeUpload"}, headers=h, json={
            "initializeUploadRequest": {"owner": a["person"], "fileSizeBytes": 100, "uploadCaptions": False,
                                        "uploadThumbnail": False}})
        value = r.json()["value"]
        assert value["uploadToken"] == "" and len(value["uploadInstructions"]) == 1
        put = await c.put(value["uploadInstructions"][0]["uploadUrl"], content=b"v" * 100)
        fin = await c.post("/linkedin/rest/videos", params={"action": "finalizeUpload"}, headers=h, json={
            "finalizeUploadRequest": {"video": value["video"], "uploadToken": "",
                                      "uploadedPartIds": [put.headers["etag"]]}})
        assert fin.status_code == 200
        return value["video"]

    r = await c.post("/_sandbox/faults", json={"network": "linkedin", "match": "status", "kind": "processing_failed"})
    assert r.status_code == 201
    video = await upload()
    assert (await c.get(f"/linkedin/rest/videos/{video}", headers=h)).json()["status"] == "PROCESSING_FAILED"
    await clock(c, 120)
    assert (await c.get(f"/linkedin/rest/videos/{video}", headers=h)).json()["status"] == "PROCESSING_FAILED"
    refused = await c.post("/linkedin/rest/posts", headers=h, json=li_post(a["person"], "x", {"media": {"id": video}}))
    assert refused.status_code == 422 and "PROCESSING_FAILED" in refused.json()["message"]
    fine = await upload()  # the fault was spent on one call
    await clock(c, 31)
    assert (await c.get(f"/linkedin/rest/videos/{fine}", headers=h)).json()["status"] == "AVAILABLE"
    log = (await c.get("/_sandbox/calls", params={"network": "linkedin", "kind": "status"})).json()["calls"]
    assert log[0]["outcome"] == "fault:processing_failed" and log[0]["status"] == 200


# --- Facebook: page videos, and several photos in one post ------------------------------------------

async def test_facebook_unpublished_photos_attached_to_one_post(live: httpx.AsyncClient) -> None:
    c = live
    a = await account(c, "facebook")
    base = f"/facebook/v24.0/{a['page']}"
    photos = []
    for i in range(3):
        r = await c.post(f"{base}/photos", headers=a.h, data={"url": f"https://cdn.chorus.test/{i}.jpg",
                                                              "published": "false"})
        assert r.status_code == 200 and set(r.json()) == {"id"}, r.text
        photos.append(r.json()["id"])
    assert (await c.get(f"{base}/feed", headers=a.h)).json()["data"] == []  # unpublished photos make no post
    form = {"message": "Tres roscones"} | {f"attached_media[{i}]": json.dumps({"media_fbid": p})
                                          for i, p in reversed(list(enumerate(photos)))}
    r = await c.post(f"{base}/feed", headers=a.h, data=form)
    assert r.status_code == 200 and set(r.json()) == {"id"} and r.json()["id"].startswith(a["page"] + "_")
    post = (await c.get(f"/facebook/v24.0/{r.json()['id']}", headers=a.h,
                        params={"fields": "id,message,status_type,full_picture,is_published"})).json()
    assert post["status_type"] == "added_photos" and post["full_picture"] == "https://cdn.chorus.test/0.jpg"
    assert post["message"] == "Tres roscones" and post["is_published"] is True
    again = await c.post(f"{base}/feed", headers=a.h, data={"message": "again", "attached_media[0]": json.dumps(
        {"media_fbid": photos[0]})})
    assert again.status_code == 400 and again.json()["error"]["code"] == 100  # each photo goes in one post
    published = (await c.post(f"{base}/photos", headers=a.h, data={"url": "https://cdn.chorus.test/p.jpg"})).json()
    r = await c.post(f"{base}/feed", headers=a.h, data={"attached_media[0]": json.dumps({"media_fbid": published["id"]})})
    assert r.status_code == 400 and r.json()["error"]["type"] == "OAuthException"
    unknown = await c.post(f"{base}/feed", headers=a.h, data={"attached_media[0]": '{"media_fbid": "123"}'})
    assert unknown.status_code == 400 and "attached_media[0]" in unknown.json()["error"]["message"]
    as_list = [(await c.post(f"{base}/photos", headers=a.h, data={"url": f"https://cdn.chorus.test/l{i}.jpg",
                                                                  "published": "false"})).json()["id"] for i in range(2)]
    r = await c.post(f"{base}/feed", headers=a.h, data={
        "message": "list", "attached_media": json.dumps([{"media_fbid": p} for p in as_list])})
    assert r.status_code == 200, r.text


async def test_facebook_page_video_is_processed_then_posted(live: httpx.AsyncClient) -> None:
    c = live
    a = await account(c, "facebook")
    base = f"/facebook/v24.0/{a['page']}"
    await c.post("/_sandbox/config", json={"network": "facebook", "publish": {"processing_seconds": 60}})
    r = await c.post(f"{base}/videos", headers=a.h, data={"file_url": "https://cdn.chorus.test/roscon.mp4",
                                                          "description": "Amasando", "title": "Roscón"})
    assert r.status_code == 200 and set(r.json()) == {"id"}, r.text
    vid = r.json()["id"]
    fields = {"fields": "id,title,description,status,post_id,permalink_url,published,created_time"}
    video = (await c.get(f"/facebook/v24.0/{vid}", headers=a.h, params=fields)).json()
    assert video["status"]["video_status"] == "processing" and "post_id" not in video and video["published"] is False
    assert video["title"] == "Roscón" and video["description"] == "Amasando" and video["created_time"].endswith("+0000")
    assert (await c.get(f"{base}/feed", headers=a.h)).json()["data"] == []
    assert (await c.get(f"{base}/scheduled_posts", headers=a.h)).json()["data"] == []
    await clock(c, 61)
    video = (await c.get(f"/facebook/v24.0/{vid}", headers=a.h, params=fields)).json()
    assert video["status"]["video_status"] == "ready" and video["published"] is True
    post = (await c.get(f"/facebook/v24.0/{video['post_id']}", headers=a.h,
                        params={"fields": "id,message,status_type,is_published"})).json()
    assert post == {"id": video["post_id"], "message": "Amasando", "status_type": "added_video", "is_published": True}
    assert [p["id"] for p in (await c.get(f"{base}/feed", headers=a.h)).json()["data"]] == [video["post_id"]]
    calls = (await c.get("/_sandbox/calls", params={"network": "facebook", "path": f"/facebook/v24.0/{vid}"})).json()
    assert calls["by_kind"] == {"status": 2}
    # The page node itself is still a page.
    page = (await c.get(f"/facebook/v24.0/{a['page']}", headers=a.h, params={"fields": "id,name"})).json()
    assert set(page) == {"id", "name"}


async def test_facebook_page_video_errors_in_metas_shape(live: httpx.AsyncClient) -> None:
    c = live
    a = await account(c, "facebook")
    base = f"/facebook/v24.0/{a['page']}"
    for form, code in (({"description": "no file"}, 353), ({"file_url": "ftp://cdn.chorus.test/v.mp4"}, 100),
                       ({"file_url": "not a url"}, 100), ({"file_url": "https://cdn.chorus.test/broken.mp4"}, 389)):
        r = await c.post(f"{base}/videos", headers=a.h, data=form)
        assert r.status_code == 400 and r.json()["error"]["code"] == code and r.json()["error"]["fbtrace_id"], form
    user = await c.post(f"{base}/videos", headers=bearer(a["user_token"]), data={"file_url": "https://cdn.chorus.test/v.mp4"})
    assert user.status_code == 403 and user.json()["error"]["code"] == 200  # a page token is needed
    await c.post("/_sandbox/faults", json={"network": "facebook", "match": "status", "kind": "processing_failed"})
    await c.post("/_sandbox/config", json={"network": "facebook", "publish": {"processing_seconds": 30}})
    vid = (await c.post(f"{base}/videos", headers=a.h, data={"file_url": "https://cdn.chorus.test/v.mp4"})).json()["id"]
    video = (await c.get(f"/facebook/v24.0/{vid}", headers=a.h, params={"fields": "status,post_id"})).json()
    assert video["status"]["video_status"] == "error" and "post_id" not in video
    await clock(c, 60)
    assert (await c.get(f"/facebook/v24.0/{vid}", headers=a.h, params={"fields": "status"})).json()[
        "status"]["video_status"] == "error"
    assert (await c.get(f"{base}/feed", headers=a.h)).json()["data"] == []
