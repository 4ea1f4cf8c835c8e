"""The publish half of the sandbox: posting, media, status, lookup, metrics, comments and replies.

Every endpoint needs a token from the OAuth half (``handlers.authed``), checks the network's
scopes, and answers in the network's own wire format (see README.md, "Publish half").
Routes register into ``handlers.ROUTES`` when this module is imported (app.py does).

Endpoint kinds (for faults and the call log): ``publish`` (the call that creates the public
post), ``reply``, ``upload`` (media ingestion and IG/Threads containers), ``status`` (polling
processing), ``lookup`` (reading posts back, lists of posts, creator info), ``comments``,
``insights``, ``limits`` (publishing quotas) and ``delete``.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
import re
import time
from typing import Any
from urllib.parse import unquote

from litestar import Response

from api.sandbox import identities as ids
from api.sandbox.content import Comment, Container, ContentStore, Post, Upload, digest_int, metric
from api.sandbox.dialects import (
    api_forbidden, google_api_error, json_response, linkedin_error, log_id, meta_error, pinterest_error,
    tiktok_api_error, x_problem,
)
from api.sandbox.handlers import GV, Ctx, authed, facebook_node, linkedin_version_error, route
from api.sandbox.state import Grant, Token

# --- small helpers --------------------------------------------------------------------------


def _now(ctx: Ctx) -> float:
    return ctx.state.clock.now()


def _store(ctx: Ctx) -> ContentStore:
    return ctx.state.content


def _scopes(grant: Grant) -> set[str]:
    return set(grant.scopes)


def _base(ctx: Ctx) -> str:
    return str(ctx.request.base_url).rstrip("/")


def iso_meta(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(t))


def iso_z(t: float, millis: bool = False) -> str:
    s = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    return s + (f".{int((t % 1) * 1000):03d}Z" if millis else "Z")


def meta_params(ctx: Ctx) -> dict[str, str]:
    """Graph takes parameters in the query, a form or a JSON body."""
    out = dict(ctx.query)
    out.pop("access_token", None)
    out.update(ctx.form)
    if isinstance(ctx.json, dict):
        for k, v in ctx.json.items():
            out[k] = v if isinstance(v, str) else json.dumps(v)
    return out


def fields_of(value: str | None, default: str) -> list[str]:
    return [f.strip() for f in (value or default).split(",") if f.strip()]


def is_true(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def json_or_none(value: str | None) -> Any:
    try:
        return json.loads(value) if value else None
    except ValueError:
        return None


def broken(url: str | None) -> bool:
    """A media URL that 'cannot be fetched': contains 'broken', or is not http(s)."""
    return not url or "broken" in url or not re.match(r"^https?://", url)


def meta_unknown_object(obj: str, method: str = "get") -> Response:
    return meta_error(f"Unsupported {method} request. Object with ID '{obj}' does not exist, cannot be loaded due to "
                      "missing permissions, or does not support this operation. Please read the Graph API "
                      "documentation at https://developers.facebook.com/docs/graph-api", 100, subcode=33,
                      type_="GraphMethodException")


def meta_missing(param: str) -> Response:
    return meta_error(f"(#100) The parameter {param} is required", 100)


def throttle_meta(network: str, reset_at: float, now: float, key: str) -> Response:
    """Meta's publishing throttles answer HTTP 400 (as Graph does) with the throttle code."""
    minutes = max(1, int((reset_at - now) // 60) + 1)
    if network == "facebook":
        usage = json.dumps({key: [{"type": "pages", "call_count": 100, "total_cputime": 12, "total_time": 15,
                                   "estimated_time_to_regain_access": minutes}]})
        return meta_error("(#32) Page request limit reached", 32, headers={"X-Business-Use-Case-Usage": usage},
                          transient=True)
    if network == "instagram":
        return meta_error("Application request limit reached", 9, subcode=2207042, type_="OAuthException",
                          transient=False, headers={"X-App-Usage": json.dumps({"call_count": 100})})
    return meta_error("The user has reached their publishing limit for the last 24 hours. Please try again later.", 9,
                      subcode=2207042, transient=False)


def x_rate_headers(limit: int, remaining: int, reset_at: float) -> dict[str, str]:
    return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(int(reset_at))}


def x_invalid(message: str) -> Response:
    return json_response({"errors": [{"message": message}], "title": "Invalid Request",
                          "detail": "One or more parameters to your request was invalid.",
                          "type": "https://api.x.com/2/problems/invalid-request"}, 400)


# --- peek: who owns an upload session (for faults and the call log) ---------------------------

def peek_upload(ctx: Ctx) -> tuple[str | None, str | None]:
    up = _store(ctx).uploads.get(ctx.query.get("upload_id") or "")
    if up is None:
        m = re.search(r"/media-upload/(\d+)", ctx.rel)
        up = _store(ctx).uploads.get(m.group(1)) if m else None
    if up is None:
        m = re.search(r"/dms-uploads/sp/v2/([A-Za-z0-9_-]+)/uploaded(Image|Video)/", ctx.rel)
        up = _store(ctx).uploads.get(f"urn:li:{m.group(2).lower()}:{m.group(1)}") if m else None
    if up is None:
        return None, None
    g = ctx.state.grants.get(up.grant_id)
    return (g.identity, g.client_id) if g else (None, None)


# ===========================================================================================
# X
# ===========================================================================================

X_TWEET_SCOPES = {"tweet.read", "tweet.write", "users.read"}


def x_weighted_length(text: str) -> int:
    rest = re.sub(r"https?://\S+", "", text)
    n = 23 * len(re.findall(r"https?://\S+", text))
    for ch in rest:
        n += 2 if ord(ch) >= 0x1100 else 1
    return n


def x_find(st: ContentStore, tid: str) -> Post | Comment | None:
    p = st.posts.get(tid)
    if p is not None and p.network == "x" and not p.deleted:
        return p
    c = st.comments.get(tid)
    if c is not None and c.network == "x":
        return c
    return None


def x_tweet_kind(ctx: Ctx) -> str:
    return "reply" if isinstance(ctx.json, dict) and ctx.json.get("reply") else "publish"


def x_tweet_json(st: ContentStore, obj: Post | Comment, fields: list[str], now: float) -> dict[str, Any]:
    if isinstance(obj, Post):
        data: dict[str, Any] = {"id": obj.id, "text": obj.text, "edit_history_tweet_ids": [obj.id]}
        extra = {"created_at": iso_z(obj.created_at, True), "author_id": obj.owner,
                 "conversation_id": obj.data.get("conversation_id", obj.id)}
        if obj.reply_to:
            extra["in_reply_to_user_id"] = obj.data.get("in_reply_to_user_id")
            extra["referenced_tweets"] = [{"type": "replied_to", "id": obj.reply_to}]
        if obj.data.get("media_keys"):
            extra["attachments"] = {"media_keys": obj.data["media_keys"]}
        start = obj.created_at
        replies = st.comment_count(obj.id) if not obj.reply_to else 0
    else:
        data = {"id": obj.id, "text": obj.text, "edit_history_tweet_ids": [obj.id]}
        root = st.posts.get(obj.post_id)
        extra = {"created_at": iso_z(obj.created_at, True), "author_id": obj.author_id, "conversation_id": obj.post_id,
                 "in_reply_to_user_id": root.owner if root else None,
                 "referenced_tweets": [{"type": "replied_to", "id": obj.parent_id or obj.post_id}]}
        start = obj.created_at
        replies = len(st.comments_of(obj.post_id, obj.id))
    reposts = metric(obj.id, "reposts", start, now)
    extra["public_metrics"] = {"retweet_count": reposts, "repost_count": reposts, "reply_count": replies,
                               "like_count": metric(obj.id, "likes", start, now),
                               "quote_count": metric(obj.id, "quotes", start, now),
                               "bookmark_count": metric(obj.id, "bookmarks", start, now),
                               "impression_count": metric(obj.id, "impressions", start, now)}
    for f in fields:
        if f in extra and extra[f] is not None:
            data[f] = extra[f]
    return data


def x_not_found(tid: str) -> dict[str, Any]:
    return {"value": tid, "detail": f"Could not find tweet with id: [{tid}].", "title": "Not Found Error",
            "resource_type": "tweet", "parameter": "id", "resource_id": tid,
            "type": "https://api.x.com/2/problems/resource-not-found"}


@route("x", "POST", r"/2/tweets", x_tweet_kind)
async def x_create_tweet(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert tok and grant
    if not X_TWEET_SCOPES <= _scopes(grant):
        return api_forbidden("x", "tweet.write")
    body = ctx.json
    if not isinstance(body, dict):
        return x_invalid("Request body must be a JSON object.")
    st, now = _store(ctx), _now(ctx)
    user = ids.x_user(grant.identity)
    text = body.get("text")
    media = body.get("media") or {}
    media_ids = media.get("media_ids") if isinstance(media, dict) else None
    if not text and not media_ids:
        return x_invalid("$.text: text or media is required.")
    if text is not None and not isinstance(text, str):
        return x_invalid("$.text: expected a string.")
    text = text or ""
    if x_weighted_length(text) > 280:
        return x_problem(403, "Forbidden", "Your Tweet text is too long.")
    allowed, limit, remaining, reset_at = st.check_rate("x", user["id"], now)
    if not allowed:
        return x_problem(429, "Too Many Requests", "Too Many Requests", headers=x_rate_headers(limit, 0, reset_at))
    media_keys, media_alt = [], []
    for mid in media_ids or []:
        up = st.uploads.get(str(mid))
        if up is None or up.network != "x" or up.finished_at is None or x_media_state(ctx, up) != "succeeded" \
                or ctx.state.grants[up.grant_id].identity != grant.identity:
            return x_invalid("Your media IDs are invalid.")
        media_keys.append(up.meta["media_key"])
        media_alt.append(up.meta.get("alt_text"))
    reply_to = None
    conversation = None
    in_reply_user = None
    reply = body.get("reply")
    if reply:
        target_id = str((reply or {}).get("in_reply_to_tweet_id") or "")
        st.sync_comments("x", now)
        target = x_find(st, target_id)
        if target is None:
            return x_problem(403, "Forbidden", "You attempted to reply to a Tweet that is deleted or not visible to you.")
        reply_to = target_id
        if isinstance(target, Post):
            conversation = target.data.get("conversation_id", target.id)
            in_reply_user = target.owner
        else:
            conversation = target.post_id
            in_reply_user = target.author_id
    window = st.setting("x", "duplicate_window_seconds")
    if text and any(p.network == "x" and p.owner == user["id"] and not p.deleted and p.text == text
                    and now - p.created_at < window for p in st.posts.values()):
        return x_problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
    st.hit("x", user["id"], now)
    tid = st.snowflake(now)
    post = Post(id=tid, network="x", grant_id=grant.id, identity=grant.identity, owner=user["id"], created_at=now,
                text=text, reply_to=reply_to,
                data={"conversation_id": conversation or tid, "in_reply_to_user_id": in_reply_user,
                      "media_keys": media_keys, "media_alt_texts": media_alt})
    st.posts[tid] = post
    if reply_to and conversation in st.posts:
        parent = None if reply_to == conversation else reply_to
        st.comments[tid] = Comment(id=tid, network="x", post_id=conversation, parent_id=parent,
                                   author_name=user["name"], author_username=user["username"], author_id=user["id"],
                                   text=text, created_at=now, own=True)
    return json_response({"data": {"id": tid, "text": text}}, 201, x_rate_headers(limit, remaining - 1, reset_at))


@route("x", "GET", r"/2/tweets/(?P<id>\d{1,19})", "lookup")
async def x_get_tweet(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    if not {"tweet.read", "users.read"} <= _scopes(grant):
        return api_forbidden("x", "tweet.read")
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("x", now)
    obj = x_find(st, ctx.groups["id"])
    if obj is None:
        return json_response({"errors": [x_not_found(ctx.groups["id"])]})
    return json_response({"data": x_tweet_json(st, obj, fields_of(ctx.query.get("tweet.fields"), ""), now)})


@route("x", "GET", r"/2/tweets", "lookup")
async def x_get_tweets(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("x", now)
    wanted = [i for i in (ctx.query.get("ids") or "").split(",") if i]
    if not wanted:
        return x_invalid("The `ids` query parameter can not be empty")
    fields = fields_of(ctx.query.get("tweet.fields"), "")
    data, errors = [], []
    for tid in wanted:
        obj = x_find(st, tid)
        if obj is None:
            errors.append(x_not_found(tid))
        else:
            data.append(x_tweet_json(st, obj, fields, now))
    body: dict[str, Any] = {}
    if data:
        body["data"] = data
    if errors:
        body["errors"] = errors
    return json_response(body)


@route("x", "DELETE", r"/2/tweets/(?P<id>\d{1,19})", "delete")
async def x_delete_tweet(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    if not X_TWEET_SCOPES <= _scopes(grant):
        return api_forbidden("x", "tweet.write")
    post = _store(ctx).posts.get(ctx.groups["id"])
    if post is None or post.network != "x" or post.deleted:
        return json_response({"data": {"deleted": False}})
    if post.identity != grant.identity:
        return x_problem(403, "Forbidden", "You are not allowed to delete this Tweet.")
    post.deleted = True
    _store(ctx).comments.pop(post.id, None)
    return json_response({"data": {"deleted": True}})


def x_page(items: list[dict[str, Any]], ctx: Ctx, default: int = 10) -> dict[str, Any]:
    try:
        size = max(5, min(100, int(ctx.query.get("max_results") or default)))
        start = int(base64.urlsafe_b64decode((ctx.query.get("next_token") or ctx.query.get("pagination_token")
                                              or "MA==").encode()).decode() or 0)
    except ValueError:
        start, size = 0, default
    page = items[start:start + size]
    meta: dict[str, Any] = {"result_count": len(page)}
    if page:
        meta["newest_id"] = page[0]["id"]
        meta["oldest_id"] = page[-1]["id"]
    if start + size < len(items):
        meta["next_token"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    body: dict[str, Any] = {}
    if page:
        body["data"] = page
    body["meta"] = meta
    return body


@route("x", "GET", r"/2/tweets/search/recent", "comments")
async def x_search_recent(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    if not {"tweet.read", "users.read"} <= _scopes(grant):
        return api_forbidden("x", "tweet.read")
    query = ctx.query.get("query") or ""
    if not query:
        return x_invalid("The `query` query parameter can not be empty")
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("x", now)
    m = re.search(r"conversation_id:(\d+)", query)
    hits: list[Comment] = []
    if m:
        hits = [c for c in st.comments.values() if c.network == "x" and c.post_id == m.group(1)
                and now - c.created_at <= 7 * 86400]
    else:
        words = [w for w in query.split() if ":" not in w]
        hits = [c for c in st.comments.values() if c.network == "x" and all(w.lower() in c.text.lower() for w in words)]
    hits.sort(key=lambda c: (c.created_at, c.id), reverse=True)
    fields = fields_of(ctx.query.get("tweet.fields"), "")
    return json_response(x_page([x_tweet_json(st, c, fields, now) for c in hits], ctx))


@route("x", "GET", r"/2/users/(?P<id>\d{1,19})/tweets", "lookup")
async def x_user_tweets(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx)
    if err:
        return err
    assert grant
    if not {"tweet.read", "users.read"} <= _scopes(grant):
        return api_forbidden("x", "tweet.read")
    st, now = _store(ctx), _now(ctx)
    posts = sorted((p for p in st.posts.values() if p.network == "x" and p.owner == ctx.groups["id"] and not p.deleted),
                   key=lambda p: (p.created_at, p.id), reverse=True)
    fields = fields_of(ctx.query.get("tweet.fields"), "")
    return json_response(x_page([x_tweet_json(st, p, fields, now) for p in posts], ctx))


X_MEDIA_TYPES = {"video/mp4", "video/webm", "video/mp2t", "video/quicktime", "image/jpeg", "image/gif", "image/bmp",
                 "image/png", "image/webp", "image/pjpeg", "image/tiff", "text/srt", "text/vtt"}


def x_media_grant(ctx: Ctx) -> tuple[Token | None, Grant | None, Response | None]:
    tok, grant, err = authed(ctx)
    if err:
        return None, None, err
    assert grant
    if "media.write" not in _scopes(grant):
        return None, None, api_forbidden("x", "media.write")
    return tok, grant, None


def x_media_processed(up: Upload) -> bool:
    return up.meta["media_type"].startswith("video/") or up.meta.get("media_category") in ("tweet_video", "tweet_gif",
                                                                                            "amplify_video")


def x_media_state(ctx: Ctx, up: Upload) -> str:
    if up.finished_at is None:
        return "pending"
    if not x_media_processed(up):
        return "succeeded"
    if _now(ctx) < up.finished_at + _store(ctx).setting("x", "processing_seconds"):
        return "in_progress"
    return "succeeded"


def x_media_body(ctx: Ctx, up: Upload, finalize: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"id": up.id, "media_key": up.meta["media_key"], "size": up.total,
                            "expires_after_secs": max(0, int(up.created_at + 86400 - _now(ctx)))}
    if x_media_processed(up) and up.finished_at is not None:
        state = x_media_state(ctx, up)
        done = up.finished_at + _store(ctx).setting("x", "processing_seconds")
        if finalize and state == "in_progress":
            state = "pending"
        info: dict[str, Any] = {"state": state}
        if state in ("pending", "in_progress"):
            left = max(1, int(done - _now(ctx)))
            info["check_after_secs"] = min(5, left)
            proc = _store(ctx).setting("x", "processing_seconds") or 1
            info["progress_percent"] = int(100 * max(0.0, min(1.0, 1 - left / proc)))
        else:
            info["progress_percent"] = 100
        data["processing_info"] = info
    return data


@route("x", "POST", r"/2/media/upload/initialize", "upload")
async def x_media_init(ctx: Ctx) -> Response:
    tok, grant, err = x_media_grant(ctx)
    if err:
        return err
    assert grant
    body = ctx.json if isinstance(ctx.json, dict) else {}
    mtype, total = body.get("media_type"), body.get("total_bytes")
    if mtype not in X_MEDIA_TYPES:
        return x_invalid("$.media_type: must be one of the supported media types.")
    if not isinstance(total, int) or total <= 0:
        return x_invalid("$.total_bytes: must be a positive integer.")
    if mtype.startswith("image/") and mtype != "image/gif" and total > 5 * 1024 * 1024:
        return x_invalid("File size exceeds 5242880 bytes.")
    if total > 512 * 1024 * 1024:
        return x_invalid("File size exceeds 536870912 bytes.")
    st, now = _store(ctx), _now(ctx)
    mid = st.snowflake(now)
    category = body.get("media_category") or ("tweet_video" if mtype.startswith("video/") else
                                              "tweet_gif" if mtype == "image/gif" else "tweet_image")
    prefix = {"tweet_video": "7", "amplify_video": "13", "tweet_gif": "16"}.get(category, "3")
    st.uploads[mid] = Upload(id=mid, network="x", grant_id=grant.id, created_at=now, total=total,
                             meta={"media_type": mtype, "media_category": category, "media_key": f"{prefix}_{mid}"})
    return json_response({"data": {"id": mid, "media_key": f"{prefix}_{mid}", "expires_after_secs": 86400}})


def x_upload_of(ctx: Ctx, grant: Grant) -> Upload | None:
    up = _store(ctx).uploads.get(ctx.groups.get("id") or ctx.query.get("media_id") or "")
    if up is None or up.network != "x" or ctx.state.grants[up.grant_id].identity != grant.identity:
        return None
    return up


@route("x", "POST", r"/2/media/upload/(?P<id>\d{1,19})/append", "upload")
async def x_media_append(ctx: Ctx) -> Response:
    tok, grant, err = x_media_grant(ctx)
    if err:
        return err
    assert grant
    up = x_upload_of(ctx, grant)
    if up is None:
        return x_invalid("Invalid media_id.")
    if up.finished_at is not None:
        return x_invalid("Media upload was already finalized.")
    chunk: bytes
    segment: Any
    if isinstance(ctx.json, dict):
        try:
            chunk = base64.b64decode(ctx.json.get("media") or "", validate=True)
        except ValueError:
            return x_invalid("$.media: must be base64.")
        segment = ctx.json.get("segment_index")
    else:
        form = await ctx.request.form()
        media = form.get("media")
        if media is None:
            return x_invalid("media is required.")
        chunk = await media.read() if hasattr(media, "read") else str(media).encode()
        segment = form.get("segment_index")
    try:
        index = int(segment)
    except (TypeError, ValueError):
        return x_invalid("segment_index is required.")
    if not 0 <= index <= 999:
        return x_invalid("segment_index must be between 0 and 999.")
    if len(chunk) > 5 * 1024 * 1024:
        return x_invalid("Segment exceeds 5 MB.")
    up.received[index] = len(chunk)
    return json_response({"data": {"expires_at": int(up.created_at + 86400)}})


@route("x", "POST", r"/2/media/upload/(?P<id>\d{1,19})/finalize", "upload")
async def x_media_finalize(ctx: Ctx) -> Response:
    tok, grant, err = x_media_grant(ctx)
    if err:
        return err
    assert grant
    up = x_upload_of(ctx, grant)
    if up is None:
        return x_invalid("Invalid media_id.")
    if up.finished_at is None:
        if up.received_bytes != up.total:
            return x_invalid(f"File size mismatch: expected {up.total} bytes, received {up.received_bytes}.")
        up.finished_at = _now(ctx)
    return json_response({"data": x_media_body(ctx, up, finalize=True)})


@route("x", "POST", r"/2/media/metadata", "upload")
async def x_media_metadata(ctx: Ctx) -> Response:
    """Alt text for an uploaded image or GIF: `{"id", "metadata": {"alt_text": {"text"}}}` (at most 1,000
    characters) -> `{"data": {"id", "associated_metadata": {...}}}`."""
    tok, grant, err = x_media_grant(ctx)
    if err:
        return err
    assert grant
    body = ctx.json if isinstance(ctx.json, dict) else {}
    up = _store(ctx).uploads.get(str(body.get("id") or ""))
    if up is None or up.network != "x" or ctx.state.grants[up.grant_id].identity != grant.identity:
        return x_invalid("Invalid media_id.")
    alt = ((body.get("metadata") or {}).get("alt_text") or {}).get("text")
    if not isinstance(alt, str) or not alt or len(alt) > 1000:
        return x_invalid("$.metadata.alt_text.text: a text of 1 to 1000 characters is required.")
    up.meta["alt_text"] = alt
    return json_response({"data": {"id": up.id, "associated_metadata": {"alt_text": {"text": alt}}}})


@route("x", "GET", r"/2/media/upload", "status")
async def x_media_status(ctx: Ctx) -> Response:
    tok, grant, err = x_media_grant(ctx)
    if err:
        return err
    assert grant
    if not ctx.query.get("media_id"):
        return x_invalid("The `media_id` query parameter can not be empty")
    up = x_upload_of(ctx, grant)
    if up is None:
        return x_invalid("Invalid media_id.")
    return json_response({"data": x_media_body(ctx, up)})


# ===========================================================================================
# Facebook Pages
# ===========================================================================================

FB_POST = r"(?P<id>\d+_\d+)"
FB_INSIGHTS = {
    "post_impressions": ("impressions", "Lifetime Post Total Impressions",
                         "Lifetime: The number of times your Page's post entered a person's screen."),
    "post_impressions_unique": ("reach", "Lifetime Post Total Reach",
                                "Lifetime: The number of people who had your Page's post enter their screen."),
    "post_impressions_organic": ("impressions", "Lifetime Post Organic Impressions",
                                 "Lifetime: The number of times your Page's post entered a person's screen through "
                                 "unpaid distribution."),
    "post_impressions_paid": (None, "Lifetime Post Paid Impressions",
                              "Lifetime: The number of times your Page's post entered a person's screen through paid "
                              "distribution."),
    "post_media_view": ("views", "Lifetime Post Media Views", "Lifetime: The number of times your post was viewed."),
    "post_engaged_users": ("engaged_users", "Lifetime Engaged Users",
                           "Lifetime: The number of unique people who engaged in certain ways with your Page post."),
    "post_clicks": ("clicks", "Lifetime Post Clicks", "Lifetime: The number of clicks anywhere in your post."),
    "post_reactions_like_total": ("likes", "Lifetime Like Reactions", "Lifetime: Total like reactions of a post."),
    "post_reactions_by_type_total": ("reactions", "Lifetime Post Reactions by Type",
                                     "Lifetime: Total post reactions by type."),
}
FB_DEFAULT_INSIGHTS = "post_impressions,post_impressions_unique,post_engaged_users,post_clicks"


def fb_pages_of(grant: Grant) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in ids.facebook_pages(grant.identity)}


def fb_auth(ctx: Ctx, page_id: str, *, scope: tuple[str, ...], task: str | None, need_page_token: bool = True,
            what: str = "pages_manage_posts") -> tuple[Token | None, Grant | None, Response | None]:
    tok, grant, err = authed(ctx, kinds=("access", "page"))
    if err:
        return None, None, err
    assert tok and grant
    page = fb_pages_of(grant).get(page_id)
    if page is None:
        return None, None, meta_unknown_object(page_id, "post" if ctx.method == "POST" else "get")
    if need_page_token and tok.kind != "page":
        return None, None, meta_error("(#200) If posting to a page, requires both pages_read_engagement and "
                                      "pages_manage_posts as an admin with sufficient administrative permission", 200,
                                      status=403)
    if tok.kind == "page" and tok.page_id != page_id:
        return None, None, meta_error("(#200) The page access token does not belong to this page", 200, status=403)
    if scope and not set(scope) & _scopes(grant):
        return None, None, meta_error(f"(#200) Requires {what} permission to manage the object", 200, status=403)
    if task and task not in page["tasks"]:
        return None, None, meta_error(f"(#200) The user needs the {task} task on the page to do this", 200, status=403)
    return tok, grant, None


def fb_find(st: ContentStore, obj_id: str) -> Post | Comment | None:
    p = st.posts.get(obj_id)
    if p is not None and p.network == "facebook" and not p.deleted:
        return p
    c = st.comments.get(obj_id)
    if c is not None and c.network == "facebook":
        return c
    return None


def fb_rate(ctx: Ctx, page_id: str) -> Response | None:
    st, now = _store(ctx), _now(ctx)
    allowed, _, _, reset_at = st.check_rate("facebook", page_id, now)
    if not allowed:
        return throttle_meta("facebook", reset_at, now, page_id)
    st.hit("facebook", page_id, now)
    return None


def fb_new_post(ctx: Ctx, grant: Grant, page_id: str, text: str, p: dict[str, str], **data: Any) -> Post | Response:
    now = _now(ctx)
    published = str(p.get("published", "true")).lower() != "false"
    sched_raw = p.get("scheduled_publish_time")
    sched: float | None = None
    if sched_raw:
        try:
            sched = float(sched_raw) if re.fullmatch(r"\d+(\.\d+)?", sched_raw) else \
                float(calendar.timegm(time.strptime(sched_raw[:19], "%Y-%m-%dT%H:%M:%S")))
        except ValueError:
            return meta_error("(#100) The specified scheduled publish time is invalid.", 100)
        if published:
            return meta_error("(#100) Published posts must not have a scheduled publish time.", 100)
        if not now + 600 <= sched <= now + 30 * 86400:
            return meta_error("(#100) The specified scheduled publish time is invalid.", 100)
    err = fb_rate(ctx, page_id)
    if err:
        return err
    st = _store(ctx)
    pid = f"{page_id}_{st.new_digits(16, 'fb-post', page_id)}"
    post = Post(id=pid, network="facebook", grant_id=grant.id, identity=grant.identity, owner=page_id, created_at=now,
                text=text, data={"published_at": sched if sched else now, "scheduled_publish_time": sched,
                                 "unpublished": not published and sched is None, **data})
    st.posts[pid] = post
    return post


@route("facebook", "POST", GV + r"/(?P<page>\d+)/feed", "publish")
async def fb_feed(ctx: Ctx) -> Response:
    page_id = ctx.groups["page"]
    tok, grant, err = fb_auth(ctx, page_id, scope=("pages_manage_posts",), task="CREATE_CONTENT")
    if err:
        return err
    assert grant
    p = meta_params(ctx)
    message, link = p.get("message") or "", p.get("link") or ""
    photos = fb_attached_photos(ctx, page_id, p)
    if isinstance(photos, Response):
        return photos
    if not message and not link and not photos:
        return meta_error("(#100) Missing message or attachment", 100)
    if len(message) > 63206:
        return meta_error("(#100) Message is too long", 100)
    post = fb_new_post(ctx, grant, page_id, message, p, link=link or None, photos=[ph.meta["url"] for ph in photos],
                       photo_ids=[ph.id for ph in photos],
                       status_type="added_photos" if photos else "shared_story" if link else "mobile_status_update")
    if isinstance(post, Response):
        return post
    for photo in photos:
        photo.meta["post"] = post.id
    return json_response({"id": post.id})


def fb_attached_photos(ctx: Ctx, page_id: str, p: dict[str, str]) -> list[Upload] | Response:
    """`attached_media[i]={"media_fbid": ...}` (or one `attached_media` JSON list), in index order: photos of
    this page uploaded with `published=false` and not attached to a post yet."""
    refs: list[tuple[int, Any]] = []
    for k, v in p.items():
        if k == "attached_media" and isinstance(json_or_none(v), list):
            refs += list(enumerate(json_or_none(v)))
        elif k.startswith("attached_media"):
            m = re.fullmatch(r"attached_media\[(\d+)\]", k)
            if m is None:
                return meta_error(f"(#100) Unknown parameter {k}: use attached_media[0], attached_media[1], ...", 100)
            refs.append((int(m.group(1)), json_or_none(v)))
    photos: list[Upload] = []
    for i, ref in sorted(refs, key=lambda r: r[0]):
        fbid = str(ref.get("media_fbid")) if isinstance(ref, dict) else None
        photo = _store(ctx).uploads.get(fbid or "")
        if photo is None or photo.network != "facebook" or photo.meta.get("kind", "photo") != "photo" \
                or photo.meta.get("page") != page_id:
            return meta_error(f"(#100) param attached_media[{i}] has an invalid media_fbid {fbid}", 100)
        if photo.meta.get("post") or photo in photos:
            return meta_error(f"(#100) attached_media[{i}]: photo {fbid} is already published or attached; upload "
                              "it with published=false for each post", 100)
        photos.append(photo)
    return photos


@route("facebook", "POST", GV + r"/(?P<page>\d+)/photos", "publish")
async def fb_photos(ctx: Ctx) -> Response:
    page_id = ctx.groups["page"]
    tok, grant, err = fb_auth(ctx, page_id, scope=("pages_manage_posts",), task="CREATE_CONTENT")
    if err:
        return err
    assert grant
    p = meta_params(ctx)
    url = p.get("url")
    if not url:
        return meta_error("(#324) Requires upload file", 324)
    if broken(url):
        return meta_error("(#324) Missing or invalid image file", 324)
    st = _store(ctx)
    photo_id = st.new_digits(16, "fb-photo", page_id)
    st.uploads[photo_id] = Upload(id=photo_id, network="facebook", grant_id=grant.id, created_at=_now(ctx),
                                  finished_at=_now(ctx), meta={"page": page_id, "url": url})
    if str(p.get("published", "true")).lower() == "false" and not p.get("scheduled_publish_time"):
        return json_response({"id": photo_id})
    caption = p.get("caption") or p.get("message") or ""
    post = fb_new_post(ctx, grant, page_id, caption, p, photos=[url], status_type="added_photos", photo_id=photo_id)
    if isinstance(post, Response):
        return post
    st.uploads[photo_id].meta["post"] = post.id
    return json_response({"id": photo_id, "post_id": post.id})


# Facebook page videos: POST /{page}/videos with a file_url (Graph pulls the file; the sandbox only checks
# that it is an http(s) URL). The video is processed for `processing_seconds`; its page post appears then.

def fb_video_state(ctx: Ctx, up: Upload) -> str:
    if up.meta.get("failed"):
        return "error"
    return "processing" if _now(ctx) < up.meta["ready_at"] else "ready"


def fb_video_failed(st: ContentStore, up: Upload) -> None:
    """A video that failed processing never becomes a post."""
    up.meta["failed"] = True
    post = st.posts.get(up.meta.get("post") or "")
    if post is not None:
        post.deleted = True


@route("facebook", "POST", GV + r"/(?P<page>\d+)/videos", "publish")
async def fb_videos(ctx: Ctx) -> Response:
    page_id = ctx.groups["page"]
    tok, grant, err = fb_auth(ctx, page_id, scope=("pages_manage_posts",), task="CREATE_CONTENT")
    if err:
        return err
    assert grant
    p = meta_params(ctx)
    url = p.get("file_url") or ""
    if not url:
        return meta_error("(#353) Missing video file: the sandbox takes a file_url (no upload in the body, no "
                          "upload handle)", 353)
    if not re.match(r"^https?://[^/\s?#]+", url):
        return meta_error("(#100) file_url must be an http or https URL", 100)
    if "broken" in url:
        return meta_error("(#389) Unable to fetch video file from URL.", 389)
    description = p.get("description") or ""
    if len(description) > 63206:
        return meta_error("(#100) Description is too long", 100)
    st, now = _store(ctx), _now(ctx)
    video_id = st.new_digits(16, "fb-video", page_id)
    ready_at = now + st.setting("facebook", "processing_seconds")
    post = fb_new_post(ctx, grant, page_id, description, p, status_type="added_video", video_id=video_id)
    if isinstance(post, Response):
        return post
    post.data["published_at"] = max(post.data["published_at"], ready_at)  # it goes live once processed
    st.uploads[video_id] = Upload(id=video_id, network="facebook", grant_id=grant.id, created_at=now, finished_at=now,
                                  meta={"kind": "video", "page": page_id, "url": url, "title": p.get("title") or "",
                                        "description": description, "ready_at": ready_at, "post": post.id})
    if ctx.fail_processing:
        fb_video_failed(st, st.uploads[video_id])
    return json_response({"id": video_id})


FB_VERSION = "v24.0"  # the version the sandbox writes into the upload URLs it hands out


# Page reels and stories (Graph's upload phases): start -> {video_id, upload_url}; the bytes or a
# `file_url` header go to the upload host (rupload.facebook.com, here the sandbox's own
# /video-upload/...); finish publishes. Photo stories take a photo uploaded with published=false.

def fb_phase_kind(ctx: Ctx) -> str:
    return "publish" if meta_params(ctx).get("upload_phase") == "finish" else "upload"


@route("facebook", "POST", GV + r"/(?P<page>\d+)/(?P<what>video_reels|video_stories)", fb_phase_kind)
async def fb_video_phases(ctx: Ctx) -> Response:
    page_id, what = ctx.groups["page"], ctx.groups["what"]
    tok, grant, err = fb_auth(ctx, page_id, scope=("pages_manage_posts",), task="CREATE_CONTENT")
    if err:
        return err
    assert grant
    p = meta_params(ctx)
    st, now = _store(ctx), _now(ctx)
    phase = p.get("upload_phase")
    if phase == "start":
        video_id = st.new_digits(16, "fb-video", page_id)
        st.uploads[video_id] = Upload(id=video_id, network="facebook", grant_id=grant.id, created_at=now,
                                      meta={"kind": "video", "page": page_id, "url": "", "title": "",
                                            "description": "", "ready_at": now, "post": "", "product": what})
        return json_response({"video_id": video_id,
                              "upload_url": f"{_base(ctx)}/facebook/video-upload/{FB_VERSION}/{video_id}"})
    if phase != "finish":
        return meta_error("(#100) upload_phase must be start or finish", 100)
    up = st.uploads.get(p.get("video_id") or "")
    if up is None or up.network != "facebook" or up.meta.get("product") != what or up.meta["page"] != page_id:
        return meta_error(f"(#100) Invalid video_id {p.get('video_id')}", 100)
    if not up.meta["url"]:
        return meta_error("(#6000) There was a problem uploading your video file: upload it before finishing", 6000)
    if up.meta["post"]:
        return meta_error("(#100) This video was already published", 100)
    if what == "video_reels" and p.get("video_state") != "PUBLISHED":
        return meta_error("(#100) Only video_state=PUBLISHED is supported by the sandbox", 100)
    description = p.get("description") or ""
    ready_at = now + st.setting("facebook", "processing_seconds")
    post = fb_new_post(ctx, grant, page_id, description, {}, video_id=up.id, story=what == "video_stories",
                       status_type="added_reel" if what == "video_reels" else "added_story",
                       media_url=up.meta["url"])
    if isinstance(post, Response):
        return post
    post.data["published_at"] = max(post.data["published_at"], ready_at)
    up.meta.update(description=description, ready_at=ready_at, post=post.id, finished=True)
    up.finished_at = now
    if ctx.fail_processing:
        fb_video_failed(st, up)
    return json_response({"success": True, **({"post_id": post.id} if what == "video_stories" else {})})


@route("facebook", "POST", r"/video-upload" + GV + r"/(?P<id>\d+)", "upload")
async def fb_rupload(ctx: Ctx) -> Response:
    """Stands in for rupload.facebook.com: a `file_url` header (the sandbox never fetches it), or bytes."""
    up = _store(ctx).uploads.get(ctx.groups["id"])
    if up is None or up.network != "facebook" or not up.meta.get("product"):
        return meta_error(f"(#100) Invalid video id {ctx.groups['id']}", 100)
    _, _, err = fb_auth(ctx, up.meta["page"], scope=("pages_manage_posts",), task="CREATE_CONTENT")
    if err:
        return err
    url = ctx.header("file_url") or ""
    body = await ctx.request.body()
    if url and not re.match(r"^https?://[^/\s?#]+", url):
        return meta_error("(#100) file_url must be an http or https URL", 100)
    if not url and not body:
        return meta_error("(#6000) There was a problem uploading your video file", 6000)
    if "broken" in url:
        return meta_error("(#389) Unable to fetch video file from URL.", 389)
    up.meta["url"] = url or f"upload:{len(body)}"
    return json_response({"success": True})


@route("facebook", "POST", GV + r"/(?P<page>\d+)/photo_stories", "publish")
async def fb_photo_story(ctx: Ctx) -> Response:
    page_id = ctx.groups["page"]
    tok, grant, err = fb_auth(ctx, page_id, scope=("pages_manage_posts",), task="CREATE_CONTENT")
    if err:
        return err
    assert grant
    p = meta_params(ctx)
    photo = _store(ctx).uploads.get(p.get("photo_id") or "")
    if photo is None or photo.network != "facebook" or photo.meta.get("kind", "photo") != "photo" \
            or photo.meta.get("page") != page_id or photo.meta.get("post"):
        return meta_error(f"(#100) Invalid photo_id {p.get('photo_id')}: upload it with published=false", 100)
    post = fb_new_post(ctx, grant, page_id, "", {}, photos=[photo.meta["url"]], photo_id=photo.id, story=True,
                       status_type="added_story")
    if isinstance(post, Response):
        return post
    photo.meta["post"] = post.id
    return json_response({"success": True, "post_id": post.id})


def fb_video_of(ctx: Ctx) -> Upload | None:
    up = _store(ctx).uploads.get(ctx.groups.get("node") or "")
    return up if up is not None and up.network == "facebook" and up.meta.get("kind") == "video" else None


def fb_node_kind(ctx: Ctx) -> str:
    if fb_video_of(ctx) is None:
        return "profile"  # a page or the user: handlers.facebook_node
    return "status" if "status" in fields_of(ctx.query.get("fields"), "") else "lookup"


def fb_video_json(ctx: Ctx, up: Upload, fields: list[str]) -> dict[str, Any]:
    st, now = _store(ctx), _now(ctx)
    state = fb_video_state(ctx, up)
    post = st.posts.get(up.meta["post"])
    page_id = up.meta["page"]
    page = next((pg for pg in ids.facebook_pages(post.identity) if pg["id"] == page_id), None) if post else None
    live = state == "ready" and post is not None and fb_is_published(post, now)
    progress = 100 if state != "processing" else int(100 * max(0.0, min(0.99, 1 - (up.meta["ready_at"] - now) / max(
        1.0, st.setting("facebook", "processing_seconds")))))
    full: dict[str, Any] = {
        "id": up.id, "description": up.meta["description"] or None, "title": up.meta["title"] or None,
        "created_time": iso_meta(up.created_at), "updated_time": iso_meta(up.created_at),
        "permalink_url": f"https://www.facebook.com/{page_id}/videos/{up.id}/",
        "from": {"name": page["name"], "id": page_id} if page else None,
        "post_id": post.id if post is not None and state == "ready" else None,
        "published": live, "source": up.meta["url"] if state == "ready" else None,
        "status": {"video_status": state, "processing_progress": progress,
                   "uploading_phase": {"status": "complete"},
                   "processing_phase": {"status": {"processing": "in_progress", "ready": "complete"}.get(state, "error")},
                   "publishing_phase": {"status": "complete" if live else "not_started",
                                        "publish_status": "published" if live else "not_published"}},
    }
    out = {f: full[f] for f in fields if full.get(f) is not None}
    out["id"] = up.id
    return out


@route("facebook", "GET", GV + r"/(?P<node>\d+)", fb_node_kind, first=True)
async def fb_get_video(ctx: Ctx) -> Response:
    """A video id is a Graph node like a page id: videos are answered here, the rest by facebook_node."""
    up = fb_video_of(ctx)
    if up is None:
        return await facebook_node(ctx)
    tok, grant, err = authed(ctx, kinds=("access", "page"))
    if err:
        return err
    _, _, err = fb_auth(ctx, up.meta["page"], scope=("pages_read_engagement", "pages_read_user_content",
                                                     "pages_manage_posts"), task=None, need_page_token=False,
                        what="pages_read_engagement")
    if err:
        return err
    if ctx.fail_processing and fb_video_state(ctx, up) == "processing":
        fb_video_failed(_store(ctx), up)
    return json_response(fb_video_json(ctx, up, fields_of(ctx.query.get("fields"), "id,description,updated_time")))


def fb_is_published(post: Post, now: float) -> bool:
    return not post.data.get("unpublished") and now >= post.data.get("published_at", post.created_at)


def fb_post_json(st: ContentStore, post: Post, fields: list[str], now: float) -> dict[str, Any]:
    page_id = post.owner
    page = next((pg for pg in ids.facebook_pages(post.identity) if pg["id"] == page_id), {"name": "", "id": page_id})
    start = post.data.get("published_at", post.created_at)
    published = fb_is_published(post, now)
    shares = metric(post.id, "shares", start, now) if published else 0
    likes = metric(post.id, "likes", start, now) if published else 0
    full: dict[str, Any] = {
        "id": post.id, "message": post.text or None, "created_time": iso_meta(post.created_at),
        "updated_time": iso_meta(post.created_at), "permalink_url":
            f"https://www.facebook.com/{page_id}/posts/{post.id.split('_')[1]}",
        "is_published": published, "status_type": post.data.get("status_type"),
        "from": {"name": page["name"], "id": page_id}, "link": post.data.get("link"),
        "full_picture": (post.data.get("photos") or [None])[0],
        "scheduled_publish_time": int(post.data["scheduled_publish_time"]) if post.data.get("scheduled_publish_time")
        and not published else None,
        "shares": {"count": shares} if shares else None,
    }
    out: dict[str, Any] = {}
    for f in fields:
        base = f.split(".")[0].split("{")[0]
        if base in ("reactions", "likes"):
            out[base] = {"data": [], "summary": {"total_count": likes, "can_like": True, "has_liked": False}}
        elif base == "comments":
            out[base] = {"data": [], "summary": {"order": "chronological", "total_count": st.comment_count(post.id),
                                                 "can_comment": True}}
        elif full.get(base) is not None:
            out[base] = full[base]
    out["id"] = post.id
    return out


def fb_comment_json(c: Comment, fields: list[str], st: ContentStore) -> dict[str, Any]:
    full = {"id": c.id, "message": c.text, "created_time": iso_meta(c.created_at),
            "from": {"name": c.author_name, "id": c.author_id}, "like_count": 0,
            "comment_count": len(st.comments_of(c.post_id, c.id)), "can_comment": c.parent_id is None,
            "parent": {"id": c.parent_id} if c.parent_id else None, "is_hidden": False}
    out = {f: full[f] for f in fields if full.get(f) is not None}
    out["id"] = c.id
    return out


def fb_reader(ctx: Ctx, obj: Post | Comment, *, scope: tuple[str, ...], task: str | None,
              what: str) -> Response | None:
    post = obj if isinstance(obj, Post) else _store(ctx).posts.get(obj.post_id)
    if post is None:
        return meta_unknown_object(obj.id)
    _, _, err = fb_auth(ctx, post.owner, scope=scope, task=task, need_page_token=False, what=what)
    return err


@route("facebook", "GET", GV + r"/" + FB_POST, "lookup")
async def fb_get_object(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx, kinds=("access", "page"))
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("facebook", now)
    obj = fb_find(st, ctx.groups["id"])
    if obj is None:
        return meta_unknown_object(ctx.groups["id"])
    err = fb_reader(ctx, obj, scope=("pages_read_engagement", "pages_read_user_content", "pages_manage_posts"),
                    task=None, what="pages_read_engagement")
    if err:
        return err
    if isinstance(obj, Post):
        return json_response(fb_post_json(st, obj, fields_of(ctx.query.get("fields"), "created_time,message,id"), now))
    return json_response(fb_comment_json(obj, fields_of(ctx.query.get("fields"), "created_time,from,message,id"), st))


@route("facebook", "DELETE", GV + r"/" + FB_POST, "delete")
async def fb_delete_object(ctx: Ctx) -> Response:
    st = _store(ctx)
    obj = fb_find(st, ctx.groups["id"])
    if obj is None:
        tok, grant, err = authed(ctx, kinds=("access", "page"))
        return err or meta_unknown_object(ctx.groups["id"], "delete")
    post = obj if isinstance(obj, Post) else st.posts.get(obj.post_id)
    assert post is not None
    tok, grant, err = fb_auth(ctx, post.owner, scope=("pages_manage_posts", "pages_manage_engagement"), task=None)
    if err:
        return err
    if isinstance(obj, Post):
        obj.deleted = True
    else:
        st.comments.pop(obj.id, None)
    return json_response({"success": True})


def meta_paged(items: list[dict[str, Any]], ctx: Ctx, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        limit = max(1, min(100, int(ctx.query.get("limit") or 25)))
        start = int(base64.urlsafe_b64decode((ctx.query.get("after") or "MA==").encode()).decode() or 0)
    except ValueError:
        limit, start = 25, 0
    page = items[start:start + limit]
    body: dict[str, Any] = {"data": page}
    if page:
        paging: dict[str, Any] = {"cursors": {"before": base64.urlsafe_b64encode(str(start).encode()).decode(),
                                              "after": base64.urlsafe_b64encode(str(start + len(page)).encode()).decode()}}
        if start + limit < len(items):
            paging["next"] = f"{_base(ctx)}{ctx.path}?limit={limit}&after={paging['cursors']['after']}"
        body["paging"] = paging
    body.update(extra or {})
    return body


@route("facebook", "GET", GV + r"/" + FB_POST + r"/comments", "comments")
async def fb_comments(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx, kinds=("access", "page"))
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("facebook", now)
    obj = fb_find(st, ctx.groups["id"])
    if obj is None:
        return meta_unknown_object(ctx.groups["id"])
    err = fb_reader(ctx, obj, scope=("pages_read_engagement", "pages_read_user_content"), task=None,
                    what="pages_read_engagement")
    if err:
        return err
    post_id = obj.id if isinstance(obj, Post) else obj.post_id
    if isinstance(obj, Post) and ctx.query.get("filter") == "stream":
        items = sorted((c for c in st.comments.values() if c.post_id == post_id), key=lambda c: (c.created_at, c.id))
    else:
        items = st.comments_of(post_id, None if isinstance(obj, Post) else obj.id)
    if ctx.query.get("order") == "reverse_chronological":
        items.reverse()
    fields = fields_of(ctx.query.get("fields"), "created_time,from,message,id")
    extra = None
    if is_true(ctx.query.get("summary")):
        extra = {"summary": {"order": ctx.query.get("order") or "chronological", "total_count": len(items),
                             "can_comment": True}}
    return json_response(meta_paged([fb_comment_json(c, fields, st) for c in items], ctx, extra))


@route("facebook", "POST", GV + r"/" + FB_POST + r"/comments", "reply")
async def fb_reply(ctx: Ctx) -> Response:
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("facebook", now)
    obj = fb_find(st, ctx.groups["id"])
    if obj is None:
        tok, grant, err = authed(ctx, kinds=("access", "page"))
        return err or meta_unknown_object(ctx.groups["id"], "post")
    post = obj if isinstance(obj, Post) else st.posts[obj.post_id]
    tok, grant, err = fb_auth(ctx, post.owner, scope=("pages_manage_engagement",), task="MODERATE",
                              what="pages_manage_engagement")
    if err:
        return err
    p = meta_params(ctx)
    message = p.get("message") or ""
    if not message and not p.get("attachment_url"):
        return meta_error("(#100) Missing message or attachment", 100)
    if isinstance(obj, Comment) and obj.parent_id:
        obj = st.comments[obj.parent_id]  # Facebook threads are two levels deep
    page = fb_pages_of(grant).get(post.owner) if grant else None
    cid = f"{post.id.split('_')[1]}_{st.new_digits(16, 'fb-comment', post.id)}"
    st.comments[cid] = Comment(id=cid, network="facebook", post_id=post.id,
                               parent_id=obj.id if isinstance(obj, Comment) else None,
                               author_name=page["name"] if page else "", author_username="", author_id=post.owner,
                               text=message, created_at=now, own=True)
    return json_response({"id": cid})


@route("facebook", "GET", GV + r"/" + FB_POST + r"/insights(?:/(?P<metric>[a-z_,]+))?", "insights")
async def fb_insights(ctx: Ctx) -> Response:
    tok, grant, err = authed(ctx, kinds=("access", "page"))
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    post = st.posts.get(ctx.groups["id"])
    if post is None or post.network != "facebook" or post.deleted:
        return meta_unknown_object(ctx.groups["id"])
    _, _, err = fb_auth(ctx, post.owner, scope=("read_insights", "pages_read_engagement"), task="ANALYZE",
                        need_page_token=False, what="read_insights")
    if err:
        return err
    names = fields_of(ctx.groups.get("metric") or ctx.query.get("metric"), FB_DEFAULT_INSIGHTS)
    unknown = [n for n in names if n not in FB_INSIGHTS]
    if unknown:
        return meta_error(f"(#100) The value must be a valid insights metric: {unknown[0]}", 100)
    start = post.data.get("published_at", post.created_at)
    alive = fb_is_published(post, now)
    data = []
    for name in names:
        key, title, desc = FB_INSIGHTS[name]
        if key == "reactions":
            value: Any = {"like": metric(post.id, "likes", start, now) if alive else 0,
                          "love": metric(post.id, "saves", start, now) if alive else 0}
        else:
            value = metric(post.id, key, start, now) if key and alive else 0
        data.append({"name": name, "period": "lifetime", "values": [{"value": value}], "title": title,
                     "description": desc, "id": f"{post.id}/insights/{name}/lifetime"})
    return json_response({"data": data, "paging": {
        "previous": f"{_base(ctx)}{ctx.path}?metric={','.join(names)}&since=0&until=0",
        "next": f"{_base(ctx)}{ctx.path}?metric={','.join(names)}&since=0&until=0"}})


@route("facebook", "GET", GV + r"/(?P<page>\d+)/(?:feed|posts|published_posts|scheduled_posts)", "lookup")
async def fb_page_posts(ctx: Ctx) -> Response:
    page_id = ctx.groups["page"]
    tok, grant, err = fb_auth(ctx, page_id, scope=("pages_read_engagement", "pages_read_user_content",
                                                   "pages_manage_posts"), task=None, need_page_token=False,
                              what="pages_read_engagement")
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    scheduled = ctx.rel.endswith("scheduled_posts")
    # A video being processed is not a scheduled post: it goes live (or fails) on its own.
    posts = [p for p in st.posts.values() if p.network == "facebook" and p.owner == page_id and not p.deleted
             and not p.data.get("story") and (not fb_is_published(p, now) and not (p.data.get("video_id") and not p.data["scheduled_publish_time"])
                  if scheduled else fb_is_published(p, now))]
    posts.sort(key=lambda p: (p.created_at, p.id), reverse=True)
    fields = fields_of(ctx.query.get("fields"), "created_time,message,id")
    return json_response(meta_paged([fb_post_json(st, p, fields, now) for p in posts], ctx))


# ===========================================================================================
# Instagram (graph.instagram.com, Instagram Login) and Threads: two-step containers
# ===========================================================================================

IG_INSIGHTS = {
    "reach": ("reach", "Accounts reached", "The number of unique accounts that have seen this post at least once."),
    "likes": ("likes", "Likes", "The number of likes on your post."),
    "comments": ("comments", "Comments", "The number of comments on your post."),
    "saved": ("saves", "Saved", "The number of saves of your post."),
    "shares": ("shares", "Shares", "The number of shares of your post."),
    "views": ("views", "Views", "The number of times your content was played or displayed."),
    "total_interactions": ("interactions", "Interactions", "The number of likes, saves, comments and shares on your "
                                                           "post, minus the number of unlikes, unsaves and deleted "
                                                           "comments."),
    "impressions": ("impressions", "Impressions", "The number of times your post was on screen."),
}
TH_INSIGHTS = {
    "views": ("views", "Views", "The number of times your post was viewed."),
    "likes": ("likes", "Likes", "The number of likes on your post."),
    "replies": ("comments", "Replies", "The number of replies on your post."),
    "reposts": ("reposts", "Reposts", "The number of times your post was reposted."),
    "quotes": ("quotes", "Quotes", "The number of times your post was quoted."),
    "shares": ("shares", "Shares", "The number of times your post was shared."),
}


def ig_account_ids(identity: str) -> tuple[str, set[str]]:
    user = ids.instagram_user(identity)
    return user["id"], {user["id"], str(user["user_id"]), "me"}


def th_account_ids(identity: str) -> tuple[str, set[str]]:
    user = ids.threads_user(identity)
    return user["id"], {user["id"], "me"}


def mt_auth(ctx: Ctx, account: str | None, scope: str | tuple[str, ...]) -> tuple[Grant | None, str, Response | None]:
    """Instagram/Threads: a valid user token, the account is the login's own, and one of the scopes."""
    tok, grant, err = authed(ctx)
    if err:
        return None, "", err
    assert grant
    canonical, accepted = (ig_account_ids if ctx.network == "instagram" else th_account_ids)(grant.identity)
    if account is not None and account not in accepted:
        return None, "", meta_unknown_object(account, "post" if ctx.method == "POST" else "get")
    scopes = (scope,) if isinstance(scope, str) else scope
    if scopes and not set(scopes) & _scopes(grant):
        return None, "", api_forbidden(ctx.network, scopes[0])
    return grant, canonical, None


def container_status(st: ContentStore, c: Container, now: float) -> str:
    if c.published_id:
        return "PUBLISHED"
    if now - c.created_at >= st.setting(c.network, "container_ttl_seconds"):
        return "EXPIRED"
    url = c.params.get("video_url") or c.params.get("image_url")
    if c.media_type not in ("TEXT", "CAROUSEL") and broken(url):
        return "ERROR"
    if c.children:
        states = [container_status(st, st.containers[k], now) for k in c.children if k in st.containers]
        if "ERROR" in states or "EXPIRED" in states:
            return "ERROR"
        if "IN_PROGRESS" in states:
            return "IN_PROGRESS"
        return "FINISHED"
    if c.params.get("video_url") and now < c.created_at + st.setting(c.network, "processing_seconds"):
        return "IN_PROGRESS"
    return "FINISHED"


def container_json(st: ContentStore, c: Container, fields: list[str], now: float) -> dict[str, Any]:
    status = container_status(st, c, now)
    if c.network == "instagram":
        text = {"ERROR": "Error: Media download has failed. The media URI doesn't meet our requirements. (2207052)",
                "IN_PROGRESS": "In Progress: Media is still being processed.", "EXPIRED": "Expired: the container "
                "was not published within 24 hours."}.get(status, status.title())
        full: dict[str, Any] = {"id": c.id, "status_code": status, "status": text}
    else:
        full = {"id": c.id, "status": status}
        if status == "ERROR":
            full["error_message"] = "FAILED_DOWNLOADING_VIDEO" if c.params.get("video_url") else "UNKNOWN"
    out = {f: full[f] for f in fields if f in full}
    out["id"] = c.id
    return out


def mt_shortcode(pid: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(pid.encode()).digest()).decode()[:11].replace("-", "A")


def mt_post_json(st: ContentStore, post: Post, fields: list[str], now: float) -> dict[str, Any]:
    start = post.created_at
    code = mt_shortcode(post.id)
    if post.network == "instagram":
        user = ids.instagram_user(post.identity)
        product = post.data["media_product_type"]
        full: dict[str, Any] = {
            "id": post.id, "caption": post.text or None, "media_type": post.data["media_type"],
            "media_product_type": product, "media_url": post.data.get("media_url"),
            "permalink": f"https://www.instagram.com/{'reel' if product == 'REELS' else 'p'}/{code}/",
            "shortcode": code, "timestamp": iso_meta(start), "username": user["username"], "owner": {"id": post.owner},
            "like_count": metric(post.id, "likes", start, now), "comments_count": st.comment_count(post.id),
            "is_comment_enabled": True,
        }
        default = "id"
    else:
        user = ids.threads_user(post.identity)
        full = {
            "id": post.id, "media_product_type": "THREADS", "media_type": post.data["media_type"],
            "permalink": f"https://www.threads.com/@{user['username']}/post/{code}", "owner": {"id": post.owner},
            "username": user["username"], "text": post.text or None, "timestamp": iso_meta(start), "shortcode": code,
            "is_quote_post": False, "has_replies": bool(st.comments_of(post.id)), "media_url": post.data.get("media_url"),
            "is_reply": post.reply_to is not None,
        }
        if post.reply_to:
            full["replied_to"] = {"id": post.reply_to}
            full["root_post"] = {"id": post.data.get("root", post.reply_to)}
        default = "id"
    out = {f: full[f] for f in fields_of(",".join(fields), default) if full.get(f) is not None}
    out["id"] = post.id
    return out


def mt_comment_json(st: ContentStore, c: Comment, fields: list[str], owner_identity: str) -> dict[str, Any]:
    if c.network == "instagram":
        full: dict[str, Any] = {"id": c.id, "text": c.text, "timestamp": iso_meta(c.created_at),
                                "username": c.author_username, "from": {"id": c.author_id, "username": c.author_username},
                                "like_count": 0, "hidden": False, "media": {"id": c.post_id},
                                "parent_id": c.parent_id}
        default = "timestamp,text,id"
    else:
        user = ids.threads_user(owner_identity)
        code = mt_shortcode(c.id)
        full = {"id": c.id, "text": c.text, "timestamp": iso_meta(c.created_at), "media_product_type": "THREADS",
                "media_type": "TEXT_POST", "permalink": f"https://www.threads.com/@{c.author_username}/post/{code}",
                "shortcode": code, "username": c.author_username, "is_quote_post": False,
                "has_replies": bool(st.comments_of(c.post_id, c.id)), "is_reply": True,
                "is_reply_owned_by_me": c.own, "root_post": {"id": c.post_id},
                "replied_to": {"id": c.parent_id or c.post_id}, "hide_status": "NOT_HUSHED",
                "reply_audience": "EVERYONE"}
        default = "id,text,timestamp,username"
        del user
    out = {f: full[f] for f in fields_of(",".join(fields), default) if full.get(f) is not None}
    out["id"] = c.id
    return out


def mt_find(st: ContentStore, network: str, obj_id: str) -> Post | Comment | Container | None:
    c = st.containers.get(obj_id)
    if c is not None and c.network == network:
        return c
    p = st.posts.get(obj_id)
    if p is not None and p.network == network and not p.deleted:
        return p
    cm = st.comments.get(obj_id)
    if cm is not None and cm.network == network:
        return cm
    return None


def mt_node_kind(ctx: Ctx) -> str:
    c = ctx.state.content.containers.get(ctx.groups.get("id") or "")
    return "status" if c is not None and c.network == ctx.network else "lookup"


async def mt_create_container(ctx: Ctx) -> Response:
    n = ctx.network
    scope = "instagram_business_content_publish" if n == "instagram" else "threads_content_publish"
    grant, owner, err = mt_auth(ctx, ctx.groups["user"], scope)
    if err:
        return err
    assert grant
    st, now = _store(ctx), _now(ctx)
    p = meta_params(ctx)
    text = p.get("caption" if n == "instagram" else "text") or ""
    carousel_item = is_true(p.get("is_carousel_item"))
    if n == "instagram":
        mtype = (p.get("media_type") or ("VIDEO" if p.get("video_url") else "IMAGE")).upper()
        if mtype not in ("IMAGE", "VIDEO", "REELS", "CAROUSEL", "STORIES"):
            return meta_error("(#100) The media_type must be one of IMAGE, REELS, CAROUSEL, STORIES", 100)
        if mtype == "VIDEO" and not carousel_item:
            return meta_error("The VIDEO media type is deprecated; use REELS instead.", 100, subcode=2207067)
        if len(text) > 2200:
            return meta_error("The caption is longer than 2200 characters.", 100, subcode=2207010)
        if text.count("#") > 30:
            return meta_error("The caption has more than 30 hashtags.", 100, subcode=2207010)
    else:
        mtype = (p.get("media_type") or "TEXT").upper()
        if mtype not in ("TEXT", "IMAGE", "VIDEO", "CAROUSEL"):
            return meta_error("(#100) Param media_type must be one of {TEXT, IMAGE, VIDEO, CAROUSEL}", 100)
        if len(text.encode("utf-8")) > 500 and len(text) > 500:
            return meta_error("(#100) Param text must be at most 500 characters long.", 100)
        if mtype == "TEXT" and not text:
            return meta_missing("text")
    children: list[str] = []
    if mtype == "CAROUSEL":
        children = [c for c in re.split(r"[,\s]+", (p.get("children") or "").strip("[]").replace('"', "")) if c]
        lo, hi = (2, 10) if n == "instagram" else (2, 20)
        if not lo <= len(children) <= hi:
            return meta_error(f"(#100) A carousel needs between {lo} and {hi} children", 100,
                              subcode=2207028 if n == "instagram" else None)
        for k in children:
            child = st.containers.get(k)
            if child is None or child.network != n or child.owner != owner or not child.params.get("is_carousel_item"):
                return meta_error(f"(#100) Invalid carousel child {k}", 100)
    elif mtype in ("IMAGE", "STORIES") and not p.get("video_url"):
        if not p.get("image_url"):
            return meta_missing("image_url")
    elif mtype in ("VIDEO", "REELS") or (mtype == "STORIES" and p.get("video_url")):
        if not p.get("video_url"):
            return meta_missing("video_url")
    reply_to = p.get("reply_to_id")
    if reply_to:
        if n == "instagram":
            return meta_error("(#100) Unknown parameter reply_to_id", 100)
        st.sync_comments(n, now)
        target = mt_find(st, n, reply_to)
        if target is None or isinstance(target, Container):
            return meta_error(f"(#100) Invalid reply_to_id {reply_to}", 100)
    cid = st.new_digits(17, f"{n}-container", owner)
    params = {k: v for k, v in p.items() if k in ("image_url", "video_url", "caption", "text", "alt_text",
                                                   "reply_to_id", "reply_control", "location_id", "cover_url",
                                                   "share_to_feed")}
    if carousel_item:
        params["is_carousel_item"] = "true"
    st.containers[cid] = Container(id=cid, network=n, grant_id=grant.id, owner=owner, created_at=now, media_type=mtype,
                                   params=params, children=children)
    return json_response({"id": cid})


async def mt_publish(ctx: Ctx) -> Response:
    n = ctx.network
    scope = "instagram_business_content_publish" if n == "instagram" else "threads_content_publish"
    grant, owner, err = mt_auth(ctx, ctx.groups["user"], scope)
    if err:
        return err
    assert grant
    st, now = _store(ctx), _now(ctx)
    p = meta_params(ctx)
    creation = p.get("creation_id")
    if not creation:
        return meta_missing("creation_id")
    c = st.containers.get(creation)
    if c is None or c.network != n or c.owner != owner:
        return meta_unknown_object(creation, "post") if n == "threads" else \
            meta_error("Media ID is not available", 9007, subcode=2207027)
    status = container_status(st, c, now)
    if c.params.get("is_carousel_item"):
        return meta_error("(#100) A carousel item cannot be published on its own", 100)
    if status == "PUBLISHED":
        return meta_error("Media ID is not available: this container was already published", 9007, subcode=2207027) \
            if n == "instagram" else meta_error("(#100) The container was already published", 100, subcode=4279016)
    if status == "EXPIRED":
        return meta_error("The container has expired. Create a new one.", 100, subcode=2207008 if n == "instagram"
                          else 4279009)
    if status in ("IN_PROGRESS", "ERROR"):
        if n == "instagram":
            return meta_error("Media ID is not available: the media is not ready for publishing, please wait for a "
                              "moment", 9007, subcode=2207027)
        return meta_error("Media Not Found: the container is not ready to be published", 24, subcode=4279009)
    is_reply = bool(c.params.get("reply_to_id"))
    limit_key, rate_key = ("reply_rate_limit", f"replies:{owner}") if is_reply else ("rate_limit", owner)
    allowed, _, _, reset_at = st.check_rate(n, rate_key, now, limit_key=limit_key)
    if not allowed:
        return throttle_meta(n, reset_at, now, owner)
    st.hit(n, rate_key, now)
    pid = st.new_digits(17, f"{n}-media", owner)
    media_type = {"IMAGE": "IMAGE", "VIDEO": "VIDEO", "REELS": "VIDEO", "CAROUSEL": "CAROUSEL_ALBUM",
                  "STORIES": "VIDEO" if c.params.get("video_url") else "IMAGE"}.get(c.media_type, c.media_type) \
        if n == "instagram" else {"TEXT": "TEXT_POST", "IMAGE": "IMAGE", "VIDEO": "VIDEO",
                                  "CAROUSEL": "CAROUSEL_ALBUM"}[c.media_type]
    product = {"REELS": "REELS", "STORIES": "STORY"}.get(c.media_type, "FEED")
    text = c.params.get("caption" if n == "instagram" else "text", "")
    post = Post(id=pid, network=n, grant_id=grant.id, identity=grant.identity, owner=owner, created_at=now, text=text,
                data={"media_type": media_type, "media_product_type": product, "container": c.id,
                      "media_url": c.params.get("image_url") or c.params.get("video_url")})
    c.published_id = pid
    if is_reply:
        target = mt_find(st, n, c.params["reply_to_id"])
        root = target.data.get("root", target.id) if isinstance(target, Post) else \
            target.post_id if isinstance(target, Comment) else None
        post.reply_to = c.params["reply_to_id"]
        post.data["root"] = root
        user = ids.threads_user(grant.identity)
        if root in st.posts:
            parent = None if c.params["reply_to_id"] == root else c.params["reply_to_id"]
            st.comments[pid] = Comment(id=pid, network=n, post_id=root, parent_id=parent, author_name=user["name"],
                                       author_username=user["username"], author_id=owner, text=text, created_at=now,
                                       own=True)
    st.posts[pid] = post
    return json_response({"id": pid})


def mt_publish_kind(ctx: Ctx) -> str:
    creation = meta_params(ctx).get("creation_id") or ""
    c = ctx.state.content.containers.get(creation)
    return "reply" if c is not None and c.params.get("reply_to_id") else "publish"


async def mt_get_node(ctx: Ctx) -> Response:
    n = ctx.network
    grant, owner, err = mt_auth(ctx, None, ())
    if err:
        return err
    assert grant
    st, now = _store(ctx), _now(ctx)
    st.sync_comments(n, now)
    obj = mt_find(st, n, ctx.groups["id"])
    fields = fields_of(ctx.query.get("fields"), "id")
    if obj is None:
        return meta_unknown_object(ctx.groups["id"])
    if isinstance(obj, Container):
        if obj.owner != owner:
            return meta_unknown_object(obj.id)
        return json_response(container_json(st, obj, fields, now))
    if isinstance(obj, Post):
        if obj.owner != owner:
            return meta_unknown_object(obj.id)
        return json_response(mt_post_json(st, obj, fields, now))
    root = st.posts.get(obj.post_id)
    if root is None or root.owner != owner:
        return meta_unknown_object(obj.id)
    return json_response(mt_comment_json(st, obj, fields_of(ctx.query.get("fields"), ""), root.identity))


async def mt_delete_node(ctx: Ctx) -> Response:
    n = ctx.network
    grant, owner, err = mt_auth(ctx, None, ("threads_delete", "threads_content_publish") if n == "threads"
                                else ("instagram_business_manage_comments",))
    if err:
        return err
    st = _store(ctx)
    obj = mt_find(st, n, ctx.groups["id"])
    if isinstance(obj, Post) and obj.owner == owner:
        obj.deleted = True
        return json_response({"success": True, "deleted_id": obj.id} if n == "threads" else {"success": True})
    if isinstance(obj, Comment):
        st.comments.pop(obj.id, None)
        return json_response({"success": True})
    return meta_unknown_object(ctx.groups["id"], "delete")


async def mt_list_media(ctx: Ctx) -> Response:
    n = ctx.network
    grant, owner, err = mt_auth(ctx, ctx.groups["user"], ())
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    posts = [p for p in st.posts.values() if p.network == n and p.owner == owner and not p.deleted
             and (n == "instagram" or (p.reply_to is None) == ctx.rel.endswith("/threads"))]
    posts.sort(key=lambda p: (p.created_at, p.id), reverse=True)
    fields = fields_of(ctx.query.get("fields"), "id")
    return json_response(meta_paged([mt_post_json(st, p, fields, now) for p in posts], ctx))


async def mt_comments(ctx: Ctx) -> Response:
    """IG: GET /{media}/comments, GET /{comment}/replies. Threads: GET /{post}/replies|conversation."""
    n = ctx.network
    scope = ("instagram_business_manage_comments", "instagram_business_basic") if n == "instagram" else \
        ("threads_read_replies", "threads_manage_replies", "threads_basic")
    grant, owner, err = mt_auth(ctx, None, scope)
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    st.sync_comments(n, now)
    obj = mt_find(st, n, ctx.groups["id"])
    if obj is None or isinstance(obj, Container):
        return meta_unknown_object(ctx.groups["id"])
    root = obj if isinstance(obj, Post) else st.posts.get(obj.post_id)
    if root is None or root.owner != owner:
        return meta_unknown_object(ctx.groups["id"])
    if isinstance(obj, Post) and obj.reply_to:  # a Threads reply post: its replies are comments under it
        items: list[Comment] = []
        cm = st.comments.get(obj.id)
        if cm is not None:
            items = st.comments_of(cm.post_id, cm.id)
    elif ctx.rel.endswith("/conversation"):
        items = sorted((c for c in st.comments.values() if c.post_id == root.id), key=lambda c: (c.created_at, c.id))
    else:
        items = st.comments_of(root.id, None if isinstance(obj, Post) else obj.id)
    if ctx.query.get("reverse") in ("true", "1"):
        items.reverse()
    fields = fields_of(ctx.query.get("fields"), "")
    return json_response(meta_paged([mt_comment_json(st, c, fields, root.identity) for c in items], ctx))


async def ig_reply(ctx: Ctx) -> Response:
    """POST /{comment}/replies or POST /{media}/comments (message)."""
    grant, owner, err = mt_auth(ctx, None, ("instagram_business_manage_comments",))
    if err:
        return err
    assert grant
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("instagram", now)
    obj = mt_find(st, "instagram", ctx.groups["id"])
    want_comment = ctx.rel.endswith("/replies")
    if obj is None or isinstance(obj, Container) or (want_comment != isinstance(obj, Comment)):
        return meta_unknown_object(ctx.groups["id"], "post")
    root = obj if isinstance(obj, Post) else st.posts.get(obj.post_id)
    if root is None or root.owner != owner:
        return meta_unknown_object(ctx.groups["id"], "post")
    message = meta_params(ctx).get("message") or ""
    if not message:
        return meta_missing("message")
    if isinstance(obj, Comment) and obj.parent_id:
        obj = st.comments[obj.parent_id]  # IG replies are one level deep
    user = ids.instagram_user(grant.identity)
    cid = st.new_digits(17, "ig-comment", root.id)
    st.comments[cid] = Comment(id=cid, network="instagram", post_id=root.id,
                               parent_id=obj.id if isinstance(obj, Comment) else None, author_name=user["name"],
                               author_username=user["username"], author_id=owner, text=message, created_at=now,
                               own=True)
    return json_response({"id": cid})


async def mt_insights(ctx: Ctx) -> Response:
    n = ctx.network
    table = IG_INSIGHTS if n == "instagram" else TH_INSIGHTS
    scope = "instagram_business_manage_insights" if n == "instagram" else "threads_manage_insights"
    grant, owner, err = mt_auth(ctx, None, scope)
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    st.sync_comments(n, now)
    post = st.posts.get(ctx.groups["id"])
    if post is None or post.network != n or post.deleted or post.owner != owner:
        return meta_unknown_object(ctx.groups["id"])
    raw = ctx.query.get("metric")
    if not raw:
        return meta_error("(#100) The parameter metric is required", 100)
    names = fields_of(raw, "")
    unknown = [m for m in names if m not in table]
    if unknown:
        return meta_error(f"(#100) metric[0] must be one of the following values: {', '.join(table)}", 100)
    data = []
    for name in names:
        key, title, desc = table[name]
        if key == "comments":
            value = st.comment_count(post.id)
        elif key == "interactions":
            value = sum(metric(post.id, k, post.created_at, now) for k in ("likes", "saves", "shares")) + \
                st.comment_count(post.id)
        else:
            value = metric(post.id, key, post.created_at, now)
        data.append({"name": name, "period": "lifetime", "values": [{"value": value}], "title": title,
                     "description": desc, "id": f"{post.id}/insights/{name}/lifetime"})
    return json_response({"data": data})


async def mt_limit(ctx: Ctx) -> Response:
    n = ctx.network
    grant, owner, err = mt_auth(ctx, ctx.groups["user"], ())
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    win = st.setting(n, "rate_window")
    used = len(st.window(n, owner, now, win))
    full: dict[str, Any] = {"quota_usage": used,
                            "config": {"quota_total": int(st.setting(n, "rate_limit")), "quota_duration": int(win)}}
    if n == "threads":
        full["reply_quota_usage"] = len(st.window(n, f"replies:{owner}", now, win))
        full["reply_config"] = {"quota_total": int(st.setting(n, "reply_rate_limit")), "quota_duration": int(win)}
        default = "quota_usage,config,reply_quota_usage,reply_config"
    else:
        default = "quota_usage"
    wanted = fields_of(ctx.query.get("fields"), default)
    return json_response({"data": [{k: full[k] for k in wanted if k in full}]})


IG_NODE = r"(?P<id>\d+)"
IG_USER = r"(?P<user>\d+|me)"
for _n in ("instagram", "threads"):
    route(_n, "POST", GV + r"/" + IG_USER + (r"/media" if _n == "instagram" else r"/threads"), "upload")(
        mt_create_container)
    route(_n, "POST", GV + r"/" + IG_USER + (r"/media_publish" if _n == "instagram" else r"/threads_publish"),
          mt_publish_kind)(mt_publish)
    route(_n, "GET", GV + r"/" + IG_USER + (r"/content_publishing_limit" if _n == "instagram"
                                            else r"/threads_publishing_limit"), "limits")(mt_limit)
    route(_n, "GET", GV + r"/" + IG_USER + (r"/media" if _n == "instagram" else r"/threads"),
          "lookup")(mt_list_media)
    route(_n, "GET", GV + r"/" + IG_NODE + r"/insights", "insights")(mt_insights)
    route(_n, "GET", GV + r"/" + IG_NODE, mt_node_kind)(mt_get_node)
    route(_n, "DELETE", GV + r"/" + IG_NODE, "delete")(mt_delete_node)
route("instagram", "GET", GV + r"/" + IG_NODE + r"/(?:comments|replies)", "comments")(mt_comments)
route("instagram", "POST", GV + r"/" + IG_NODE + r"/(?:comments|replies)", "reply")(ig_reply)
route("threads", "GET", GV + r"/" + IG_NODE + r"/(?:replies|conversation)", "comments")(mt_comments)


# ===========================================================================================
# TikTok (Content Posting API)
# ===========================================================================================

TT_PRIVACY = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY"]
MB = 1024 * 1024


def tt_ok(data: dict[str, Any]) -> Response:
    return json_response({"data": data, "error": {"code": "ok", "message": "", "log_id": log_id()}})


def tt_auth(ctx: Ctx, scopes: tuple[str, ...]) -> tuple[Token | None, Grant | None, Response | None]:
    tok, grant, err = authed(ctx)
    if err:
        return None, None, err
    assert grant
    if not set(scopes) & _scopes(grant):
        return None, None, api_forbidden("tiktok", scopes[0])
    return tok, grant, None


@route("tiktok", "POST", r"/v2/post/publish/creator_info/query", "lookup")
async def tt_creator_info(ctx: Ctx) -> Response:
    tok, grant, err = tt_auth(ctx, ("video.publish",))
    if err:
        return err
    assert grant
    user = ids.tiktok_user(grant.identity)
    return tt_ok({"creator_avatar_url": user["avatar_url"], "creator_username": user["username"],
                  "creator_nickname": user["display_name"], "privacy_level_options": list(TT_PRIVACY),
                  "comment_disabled": False, "duet_disabled": False, "stitch_disabled": True,
                  "max_video_post_duration_sec": 600})


TT_SWITCHES = ("disable_comment", "disable_duet", "disable_stitch")


def tt_settle(ctx: Ctx, up: Upload) -> str:
    """The publish task's status now; creates the post when it completes."""
    st, now = _store(ctx), _now(ctx)
    if up.meta.get("failed"):
        return "FAILED"
    if up.finished_at is None:
        return "PROCESSING_UPLOAD"
    done = up.finished_at + st.setting("tiktok", "processing_seconds")
    if now < done:
        return "PROCESSING_DOWNLOAD" if up.meta["source"] == "PULL_FROM_URL" else "PROCESSING_UPLOAD"
    if up.meta["source"] == "PULL_FROM_URL" and broken(up.meta.get("video_url")):
        up.meta["failed"] = "video_pull_failed"
        return "FAILED"
    if up.post_id is None:
        g = ctx.state.grants[up.grant_id]
        vid = str(st.snowflake(done))
        post_info = up.meta["post_info"]
        st.posts[vid] = Post(id=vid, network="tiktok", grant_id=g.id, identity=g.identity,
                             owner=ids.tiktok_user(g.identity)["open_id"], created_at=done,
                             text=post_info.get("title") or "", data={"privacy_level": post_info["privacy_level"],
                                                                      "publish_id": up.id,
                                                                      "video_url": up.meta.get("video_url"),
                                                                      **{k: bool(post_info[k]) for k in TT_SWITCHES
                                                                         if k in post_info}})
        up.post_id = vid
    return "PUBLISH_COMPLETE"


@route("tiktok", "POST", r"/v2/post/publish/(?:video|inbox/video)/init", "publish")
async def tt_init(ctx: Ctx) -> Response:
    tok, grant, err = tt_auth(ctx, ("video.publish", "video.upload"))
    if err:
        return err
    assert tok and grant
    inbox = "/inbox/" in ctx.rel
    if not inbox and "video.publish" not in _scopes(grant):
        return api_forbidden("tiktok", "video.publish")
    st, now = _store(ctx), _now(ctx)
    allowed, _, _, _ = st.check_rate("tiktok", tok.value, now)
    if not allowed:
        return tiktok_api_error(429, "rate_limit_exceeded", "API rate limit was exceeded. Please retry later.")
    st.hit("tiktok", tok.value, now)
    body = ctx.json if isinstance(ctx.json, dict) else None
    if body is None:
        return tiktok_api_error(400, "invalid_params", "The request body must be JSON.")
    post_info = body.get("post_info") or {}
    source = body.get("source_info") or {}
    if not inbox:
        privacy = post_info.get("privacy_level")
        if privacy not in TT_PRIVACY:
            return tiktok_api_error(400, "invalid_params", "post_info.privacy_level is invalid.")
        app = ctx.state.app("tiktok", grant.client_id)
        if privacy != "SELF_ONLY" and not (app and app.audited):
            return tiktok_api_error(403, "unaudited_client_can_only_post_to_private_accounts",
                                    "Please review our integration guidelines at "
                                    "https://developers.tiktok.com/doc/content-sharing-guidelines/")
        if len((post_info.get("title") or "").encode("utf-16-le")) // 2 > 2200:
            return tiktok_api_error(400, "invalid_params", "post_info.title is too long.")
    else:
        post_info = {"privacy_level": "SELF_ONLY", "title": ""}
    kind = source.get("source")
    meta: dict[str, Any] = {"source": kind, "post_info": post_info, "inbox": inbox}
    if kind == "FILE_UPLOAD":
        size, chunk, count = source.get("video_size"), source.get("chunk_size"), source.get("total_chunk_count")
        if not all(isinstance(v, int) and v > 0 for v in (size, chunk, count)):
            return tiktok_api_error(400, "invalid_params", "video_size, chunk_size and total_chunk_count are required.")
        assert isinstance(size, int) and isinstance(chunk, int) and isinstance(count, int)
        if size > 4096 * MB:
            return tiktok_api_error(400, "invalid_file_upload", "The video is larger than 4 GB.")
        if size < 5 * MB:
            ok = chunk == size and count == 1
        else:
            ok = 5 * MB <= chunk <= 64 * MB and count == max(1, size // chunk) and count <= 1000
        if not ok:
            return tiktok_api_error(400, "invalid_params", "The chunk_size or total_chunk_count is invalid.")
        meta.update(chunk_size=chunk, chunk_count=count)
        prefix = "v_inbox_file~v2-1." if inbox else "v_pub_file~v2-1."
    elif kind == "PULL_FROM_URL":
        url = source.get("video_url")
        if not isinstance(url, str) or not url:
            return tiktok_api_error(400, "invalid_params", "source_info.video_url is required.")
        meta["video_url"] = url
        prefix = "v_inbox_url~v2-1." if inbox else "v_pub_url~v2-1."
        size = 0
    else:
        return tiktok_api_error(400, "invalid_params", "source_info.source must be FILE_UPLOAD or PULL_FROM_URL.")
    pub_id = prefix + st.new_digits(19, "tt-publish", grant.id)
    up = Upload(id=pub_id, network="tiktok", grant_id=grant.id, created_at=now, total=size, meta=meta)
    if kind == "PULL_FROM_URL":
        up.finished_at = now
    else:
        up.meta["upload_token"] = hashlib.sha256(f"{pub_id}/{grant.id}".encode()).hexdigest()[:32]
    st.uploads[pub_id] = up
    data: dict[str, Any] = {"publish_id": pub_id}
    if kind == "FILE_UPLOAD":
        data["upload_url"] = f"{_base(ctx)}/tiktok/video/?upload_id={pub_id}&upload_token={up.meta['upload_token']}"
    return tt_ok(data)


CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


@route("tiktok", "PUT", r"/video", "upload")
async def tt_upload(ctx: Ctx) -> Response:
    up = _store(ctx).uploads.get(ctx.query.get("upload_id") or "")
    if up is None or up.network != "tiktok" or ctx.query.get("upload_token") != up.meta.get("upload_token"):
        return tiktok_api_error(404, "invalid_params", "The upload_id or upload_token is invalid.")
    if up.finished_at is not None:
        return tiktok_api_error(400, "invalid_params", "The upload is already complete.")
    ctype = (ctx.header("content-type") or "").split(";")[0].strip().lower()
    if ctype not in ("video/mp4", "video/quicktime", "video/webm"):
        return tiktok_api_error(400, "invalid_file_upload", "Content-Type must be video/mp4, video/quicktime or "
                                                            "video/webm.")
    m = CONTENT_RANGE.match(ctx.header("content-range") or "")
    if not m:
        return tiktok_api_error(400, "invalid_params", "A Content-Range header 'bytes first-last/total' is required.")
    first, last, total = (int(g) for g in m.groups())
    body = await ctx.request.body()
    if total != up.total or last < first or last >= total or len(body) != last - first + 1:
        return tiktok_api_error(400, "invalid_params", "Content-Range does not match the body or the video_size.")
    size, count = up.meta["chunk_size"], up.meta["chunk_count"]
    index = first // size
    expected = size if index < count - 1 else total - (count - 1) * size
    if first != index * size or index >= count or len(body) != expected:
        return tiktok_api_error(400, "invalid_params", f"Chunk {index} must start at byte {index * size} and be "
                                                       f"{expected} bytes long (the last chunk takes the remainder).")
    up.received[first] = len(body)
    if up.received_bytes >= up.total:
        up.finished_at = _now(ctx)
        return Response(content=b"", status_code=201)
    return Response(content=b"", status_code=206)


@route("tiktok", "POST", r"/v2/post/publish/status/fetch", "status")
async def tt_status(ctx: Ctx) -> Response:
    tok, grant, err = tt_auth(ctx, ("video.publish", "video.upload"))
    if err:
        return err
    assert grant
    pub_id = (ctx.json or {}).get("publish_id") if isinstance(ctx.json, dict) else None
    up = _store(ctx).uploads.get(pub_id or "")
    if up is None or up.network != "tiktok" or ctx.state.grants[up.grant_id].identity != grant.identity:
        return tiktok_api_error(400, "invalid_publish_id", "The publish_id is invalid or does not belong to the user.")
    status = tt_settle(ctx, up)
    if up.meta.get("inbox") and status == "PUBLISH_COMPLETE":
        status = "SEND_TO_USER_INBOX"
    data: dict[str, Any] = {"status": status}
    if status == "FAILED":
        data["fail_reason"] = up.meta["failed"]
    if up.meta["source"] == "FILE_UPLOAD":
        data["uploaded_bytes"] = up.received_bytes
    else:
        data["downloaded_bytes"] = 0 if status == "PROCESSING_DOWNLOAD" else 1048576
    if status == "PUBLISH_COMPLETE":
        public = up.meta["post_info"].get("privacy_level") != "SELF_ONLY"
        data["publicaly_available_post_id"] = [int(up.post_id)] if public and up.post_id else []
    return tt_ok(data)


TT_VIDEO_FIELDS = ("id", "create_time", "cover_image_url", "share_url", "video_description", "duration", "height",
                   "width", "title", "embed_html", "embed_link", "like_count", "comment_count", "share_count",
                   "view_count")


def tt_video_json(ctx: Ctx, post: Post, fields: list[str]) -> dict[str, Any]:
    st, now = _store(ctx), _now(ctx)
    user = ids.tiktok_user(post.identity)
    full = {"id": post.id, "create_time": int(post.created_at), "title": post.text, "video_description": post.text,
            "cover_image_url": f"{ids.MEDIA_HOST}/tiktok/covers/{post.id}.jpg",
            "share_url": f"https://www.tiktok.com/@{user['username']}/video/{post.id}", "duration": 15,
            "height": 1920, "width": 1080, "embed_link": f"https://www.tiktok.com/player/v1/{post.id}",
            "embed_html": f'<blockquote class="tiktok-embed" data-video-id="{post.id}"></blockquote>',
            "like_count": metric(post.id, "likes", post.created_at, now),
            "comment_count": st.comment_count(post.id), "share_count": metric(post.id, "shares", post.created_at, now),
            "view_count": metric(post.id, "views", post.created_at, now)}
    return {f: full[f] for f in fields if f in full}


def tt_fields(ctx: Ctx) -> list[str] | Response:
    fields = fields_of(ctx.query.get("fields"), "")
    if not fields:
        return tiktok_api_error(400, "invalid_params", "The fields parameter is required.")
    bad = [f for f in fields if f not in TT_VIDEO_FIELDS]
    if bad:
        return tiktok_api_error(400, "invalid_params", f"Invalid fields: {','.join(bad)}")
    return fields


def tt_user_posts(ctx: Ctx, grant: Grant) -> list[Post]:
    st = _store(ctx)
    for up in list(st.uploads.values()):
        if up.network == "tiktok" and ctx.state.grants[up.grant_id].identity == grant.identity:
            tt_settle(ctx, up)
    st.sync_comments("tiktok", _now(ctx))
    posts = [p for p in st.posts.values() if p.network == "tiktok" and p.identity == grant.identity and not p.deleted]
    return sorted(posts, key=lambda p: (p.created_at, p.id), reverse=True)


@route("tiktok", "POST", r"/v2/video/query", "lookup")
async def tt_video_query(ctx: Ctx) -> Response:
    tok, grant, err = tt_auth(ctx, ("video.list",))
    if err:
        return err
    assert grant
    fields = tt_fields(ctx)
    if isinstance(fields, Response):
        return fields
    wanted = ((ctx.json or {}).get("filters") or {}).get("video_ids") if isinstance(ctx.json, dict) else None
    if not isinstance(wanted, list) or not 1 <= len(wanted) <= 20:
        return tiktok_api_error(400, "invalid_params", "filters.video_ids must list 1 to 20 ids.")
    posts = {p.id: p for p in tt_user_posts(ctx, grant)}
    return tt_ok({"videos": [tt_video_json(ctx, posts[str(v)], fields) for v in wanted if str(v) in posts]})


@route("tiktok", "POST", r"/v2/video/list", "lookup")
async def tt_video_list(ctx: Ctx) -> Response:
    tok, grant, err = tt_auth(ctx, ("video.list",))
    if err:
        return err
    assert grant
    fields = tt_fields(ctx)
    if isinstance(fields, Response):
        return fields
    body = ctx.json if isinstance(ctx.json, dict) else {}
    count = max(1, min(20, int(body.get("max_count") or 10)))
    cursor = body.get("cursor")
    posts = tt_user_posts(ctx, grant)
    if cursor:
        posts = [p for p in posts if p.created_at * 1000 < int(cursor)]
    page = posts[:count]
    return tt_ok({"videos": [tt_video_json(ctx, p, fields) for p in page],
                  "cursor": int(page[-1].created_at * 1000) if page else 0, "has_more": len(posts) > count})


# ===========================================================================================
# YouTube (Data API v3)
# ===========================================================================================

YT_UPLOAD_SCOPES = ("https://www.googleapis.com/auth/youtube.upload", "https://www.googleapis.com/auth/youtube",
                    "https://www.googleapis.com/auth/youtube.force-ssl")
YT_READ_SCOPES = ("https://www.googleapis.com/auth/youtube.readonly", "https://www.googleapis.com/auth/youtube",
                  "https://www.googleapis.com/auth/youtube.force-ssl", "https://www.googleapis.com/auth/youtube.upload")
YT_COMMENT_SCOPES = ("https://www.googleapis.com/auth/youtube.force-ssl", "https://www.googleapis.com/auth/youtube")
YT_UPLOAD = r"(?:/resumable)?/upload/youtube/v3/videos"


def yt_auth(ctx: Ctx, scopes: tuple[str, ...]) -> tuple[Grant | None, dict[str, Any] | None, Response | None]:
    tok, grant, err = authed(ctx)
    if err:
        return None, None, err
    assert grant
    if not set(scopes) & _scopes(grant):
        return None, None, api_forbidden("youtube", "youtube")
    channel = ids.youtube_channel(grant.identity)
    return grant, channel, None


def yt_etag(*parts: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256("/".join(parts).encode()).digest()).decode()[:27]


def yt_video_json(ctx: Ctx, post: Post, parts: set[str]) -> dict[str, Any]:
    st, now = _store(ctx), _now(ctx)
    d = post.data
    out: dict[str, Any] = {"kind": "youtube#video", "etag": yt_etag(post.id, str(int(now))), "id": post.id}
    channel = ids.youtube_channel(post.identity) or {"id": post.owner, "snippet": {"title": ""}}
    if "snippet" in parts:
        thumbs = {k: {"url": f"https://i.ytimg.com/vi/{post.id}/{k}.jpg", "width": w, "height": h}
                  for k, w, h in (("default", 120, 90), ("medium", 320, 180), ("high", 480, 360))}
        out["snippet"] = {"publishedAt": iso_z(post.created_at), "channelId": channel["id"], "title": d["title"],
                          "description": post.text, "thumbnails": thumbs, "channelTitle": channel["snippet"]["title"],
                          "tags": d.get("tags") or None, "categoryId": d.get("categoryId", "22"),
                          "liveBroadcastContent": "none",
                          "localized": {"title": d["title"], "description": post.text}}
        if not out["snippet"]["tags"]:
            del out["snippet"]["tags"]
    processed = now >= post.created_at + st.setting("youtube", "processing_seconds")
    privacy = d["privacyStatus"]
    if d.get("publishAt") and now >= d["publishAt"]:
        privacy = "public"
    if "status" in parts:
        status = {"uploadStatus": "processed" if processed else "uploaded", "privacyStatus": privacy,
                  "license": d.get("license", "youtube"), "embeddable": d.get("embeddable", True),
                  "publicStatsViewable": True, "madeForKids": bool(d.get("selfDeclaredMadeForKids", False)),
                  "selfDeclaredMadeForKids": bool(d.get("selfDeclaredMadeForKids", False))}
        if d.get("publishAt") and privacy == "private":
            status["publishAt"] = iso_z(d["publishAt"])
        out["status"] = status
    live_from = d["publishAt"] if d.get("publishAt") else post.created_at
    if "statistics" in parts:
        live = privacy != "private" and processed
        out["statistics"] = {"viewCount": str(metric(post.id, "views", live_from, now) if live else 0),
                             "likeCount": str(metric(post.id, "likes", live_from, now) if live else 0),
                             "favoriteCount": "0", "commentCount": str(st.comment_count(post.id))}
    if "contentDetails" in parts:
        out["contentDetails"] = {"duration": "PT1M5S", "dimension": "2d", "definition": "hd", "caption": "false",
                                 "licensedContent": False, "contentRating": {}, "projection": "rectangular"}
    if "processingDetails" in parts:
        out["processingDetails"] = {"processingStatus": "succeeded" if processed else "processing"}
    return out


def yt_publish_kind(ctx: Ctx) -> str:
    if ctx.method == "POST":
        return "upload"
    up = ctx.state.content.uploads.get(ctx.query.get("upload_id") or "")
    rng = ctx.header("content-range")
    if rng is None:
        return "publish"
    if rng.startswith("bytes */"):
        return "status"
    m = CONTENT_RANGE.match(rng)
    if m and int(m.group(2)) + 1 == int(m.group(3)):
        return "publish"
    del up
    return "upload"


@route("youtube", "POST", YT_UPLOAD, yt_publish_kind)
async def yt_insert(ctx: Ctx) -> Response:
    grant, channel, err = yt_auth(ctx, YT_UPLOAD_SCOPES)
    if err:
        return err
    assert grant
    if ctx.query.get("uploadType") != "resumable":
        return google_api_error(400, "Only uploadType=resumable is supported by the sandbox.", "badRequest",
                                "INVALID_ARGUMENT")
    part = ctx.query.get("part")
    if not part:
        return google_api_error(400, "Required parameter: part", "required", "INVALID_ARGUMENT",
                                extra={"location": "part", "locationType": "parameter"})
    if channel is None:
        return google_api_error(401, "Unauthorized", "youtubeSignupRequired", "UNAUTHENTICATED", domain="youtube.header",
                                extra={"location": "Authorization", "locationType": "header"})
    body = ctx.json if isinstance(ctx.json, dict) else {}
    snippet, status = body.get("snippet") or {}, body.get("status") or {}
    title = snippet.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 100 or "<" in title or ">" in title:
        return google_api_error(400, "The request metadata specifies an invalid video title.", "invalidTitle",
                                "INVALID_ARGUMENT", domain="youtube.video")
    description = snippet.get("description") or ""
    if len(description.encode()) > 5000 or "<" in description or ">" in description:
        return google_api_error(400, "The request metadata specifies an invalid video description.",
                                "invalidDescription", "INVALID_ARGUMENT", domain="youtube.video")
    tags = snippet.get("tags") or []
    if sum(len(t) + (2 if " " in t else 0) for t in tags) + max(0, len(tags) - 1) > 500:
        return google_api_error(400, "The request metadata specifies invalid video keywords.", "invalidTags",
                                "INVALID_ARGUMENT", domain="youtube.video")
    privacy = status.get("privacyStatus", "public")
    if privacy not in ("public", "private", "unlisted"):
        return google_api_error(400, "Invalid value for privacyStatus.", "invalidVideoMetadata", "INVALID_ARGUMENT",
                                domain="youtube.video")
    publish_at: float | None = None
    if status.get("publishAt"):
        try:
            publish_at = float(calendar.timegm(time.strptime(status["publishAt"][:19], "%Y-%m-%dT%H:%M:%S")))
        except (ValueError, TypeError):
            publish_at = None
        if publish_at is None or privacy != "private" or publish_at <= _now(ctx):
            return google_api_error(400, "The request metadata specifies an invalid scheduled publishing time.",
                                    "invalidPublishAt", "INVALID_ARGUMENT", domain="youtube.video")
    st, now = _store(ctx), _now(ctx)
    allowed, _, _, _ = st.check_rate("youtube", channel["id"], now)
    if not allowed:
        return google_api_error(403, "The request cannot be completed because you have exceeded your "
                                     "<a href=\"/youtube/v3/getting-started#quota\">quota</a>.", "quotaExceeded",
                                "PERMISSION_DENIED", domain="youtube.quota")
    st.hit("youtube", channel["id"], now)
    sid = "ABgVH" + base64.urlsafe_b64encode(hashlib.sha256(f"{grant.id}/{next(st._seq)}/{now}".encode())
                                              .digest()).decode().rstrip("=")
    total = ctx.header("x-upload-content-length")
    st.uploads[sid] = Upload(id=sid, network="youtube", grant_id=grant.id, created_at=now,
                             total=int(total) if total and total.isdigit() else 0,
                             meta={"title": title, "description": description, "tags": tags,
                                   "categoryId": snippet.get("categoryId", "22"), "privacyStatus": privacy,
                                   "publishAt": publish_at, "part": part,
                                   "selfDeclaredMadeForKids": status.get("selfDeclaredMadeForKids", False),
                                   "channel": channel["id"]})
    location = f"{_base(ctx)}/youtube/upload/youtube/v3/videos?uploadType=resumable&part={part}&upload_id={sid}"
    return Response(content=b"", status_code=200, headers={"Location": location, "X-GUploader-UploadID": sid})


@route("youtube", "PUT", YT_UPLOAD, yt_publish_kind)
async def yt_upload(ctx: Ctx) -> Response:
    st, now = _store(ctx), _now(ctx)
    up = st.uploads.get(ctx.query.get("upload_id") or "")
    if up is None or up.network != "youtube":
        return google_api_error(404, "Upload session not found.", "notFound", "NOT_FOUND")
    body = await ctx.request.body()
    rng = ctx.header("content-range")
    if up.post_id is None:
        if rng is None:
            up.received = {0: len(body)}
            up.total = len(body)
        elif rng.startswith("bytes */"):
            pass
        else:
            m = CONTENT_RANGE.match(rng)
            if not m:
                return google_api_error(400, "Invalid Content-Range header.", "badContent", "INVALID_ARGUMENT")
            first, last, total = (int(g) for g in m.groups())
            if first != up.received_bytes or len(body) != last - first + 1 or (up.total and total != up.total):
                return google_api_error(400, "Content-Range does not continue the upload.", "badContent",
                                        "INVALID_ARGUMENT")
            up.total = total
            up.received[first] = len(body)
        if up.total == 0 or up.received_bytes < up.total:
            headers = {"X-GUploader-UploadID": up.id}
            if up.received_bytes:
                headers["Range"] = f"bytes=0-{up.received_bytes - 1}"
            return Response(content=b"", status_code=308, headers=headers)
        g = ctx.state.grants[up.grant_id]
        vid = base64.urlsafe_b64encode(hashlib.sha256(f"yt/{up.id}".encode()).digest()).decode()[:11]
        m = up.meta
        st.posts[vid] = Post(id=vid, network="youtube", grant_id=g.id, identity=g.identity, owner=m["channel"],
                             created_at=now, text=m["description"],
                             data={k: m[k] for k in ("title", "tags", "categoryId", "privacyStatus", "publishAt",
                                                     "selfDeclaredMadeForKids")})
        up.post_id = vid
        up.finished_at = now
    post = st.posts[up.post_id]
    parts = {p.strip() for p in up.meta["part"].split(",")}
    return json_response(yt_video_json(ctx, post, parts | {"snippet", "status"}), 200)


def yt_list(kind: str, items: list[dict[str, Any]], ctx: Ctx, default: int = 5) -> dict[str, Any]:
    try:
        size = max(1, min(100, int(ctx.query.get("maxResults") or default)))
        start = int(base64.urlsafe_b64decode((ctx.query.get("pageToken") or "MA==").encode()).decode() or 0)
    except ValueError:
        size, start = default, 0
    page = items[start:start + size]
    body: dict[str, Any] = {"kind": kind, "etag": yt_etag(kind, str(len(items)))}
    if start + size < len(items):
        body["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    body["pageInfo"] = {"totalResults": len(items), "resultsPerPage": size}
    body["items"] = page
    return body


@route("youtube", "GET", r"/youtube/v3/videos", "lookup")
async def yt_videos_list(ctx: Ctx) -> Response:
    grant, channel, err = yt_auth(ctx, YT_READ_SCOPES)
    if err:
        return err
    part = ctx.query.get("part")
    if not part:
        return google_api_error(400, "Required parameter: part", "required", "INVALID_ARGUMENT",
                                extra={"location": "part", "locationType": "parameter"})
    if not ctx.query.get("id"):
        return google_api_error(400, "No filter selected. Expected one of: myRating, chart, id",
                                "missingRequiredParameter", "INVALID_ARGUMENT", domain="youtube.parameter")
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("youtube", now)
    parts = {p.strip() for p in part.split(",")}
    items = []
    for vid in ctx.query["id"].split(","):
        post = st.posts.get(vid.strip())
        if post is None or post.network != "youtube" or post.deleted:
            continue
        items.append(yt_video_json(ctx, post, parts))
    return json_response(yt_list("youtube#videoListResponse", items, ctx, 50))


@route("youtube", "GET", r"/youtube/v3/playlistItems", "lookup")
async def yt_playlist_items(ctx: Ctx) -> Response:
    """The channel's uploads playlist (`UU` + the channel id after `UC`), newest first, as
    playlistItems answers it. Other playlists do not exist in the sandbox."""
    grant, channel, err = yt_auth(ctx, YT_READ_SCOPES)
    if err:
        return err
    if not ctx.query.get("part"):
        return google_api_error(400, "Required parameter: part", "required", "INVALID_ARGUMENT",
                                extra={"location": "part", "locationType": "parameter"})
    playlist = ctx.query.get("playlistId") or ""
    if not channel or playlist != "UU" + channel["id"][2:]:
        return google_api_error(404, "The playlist identified with the request's playlistId parameter cannot be "
                                     "found.", "playlistNotFound", "NOT_FOUND", domain="youtube.playlistItem")
    st = _store(ctx)
    posts = sorted((p for p in st.posts.values() if p.network == "youtube" and p.owner == channel["id"]
                    and not p.deleted), key=lambda p: (p.created_at, p.id), reverse=True)
    items = []
    for position, post in enumerate(posts):
        video = yt_video_json(ctx, post, {"snippet"})
        snippet = {**video["snippet"], "playlistId": playlist, "position": position,
                   "resourceId": {"kind": "youtube#video", "videoId": post.id},
                   "videoOwnerChannelId": channel["id"]}
        items.append({"kind": "youtube#playlistItem", "etag": yt_etag(playlist, post.id),
                      "id": yt_etag("item", playlist, post.id), "snippet": snippet,
                      "contentDetails": {"videoId": post.id, "videoPublishedAt": snippet["publishedAt"]}})
    return json_response(yt_list("youtube#playlistItemListResponse", items, ctx, 5))


@route("youtube", "DELETE", r"/youtube/v3/videos", "delete")
async def yt_videos_delete(ctx: Ctx) -> Response:
    grant, channel, err = yt_auth(ctx, YT_COMMENT_SCOPES)
    if err:
        return err
    assert grant
    post = _store(ctx).posts.get(ctx.query.get("id") or "")
    if post is None or post.network != "youtube" or post.deleted or post.identity != grant.identity:
        return google_api_error(404, "The video that you are trying to delete cannot be found.", "videoNotFound",
                                "NOT_FOUND", domain="youtube.video")
    post.deleted = True
    return Response(content=b"", status_code=204)


def yt_comment_json(c: Comment, video_owner: str) -> dict[str, Any]:
    snippet: dict[str, Any] = {
        "channelId": video_owner, "videoId": c.post_id, "textDisplay": c.text, "textOriginal": c.text,
        "authorDisplayName": f"@{c.author_username}" if not c.own else c.author_name,
        "authorProfileImageUrl": f"{ids.MEDIA_HOST}/youtube/avatars/{c.author_id}.jpg",
        "authorChannelUrl": f"http://www.youtube.com/@{c.author_username}", "authorChannelId": {"value": c.author_id},
        "canRate": True, "viewerRating": "none", "likeCount": 0, "publishedAt": iso_z(c.created_at),
        "updatedAt": iso_z(c.created_at)}
    if c.parent_id:
        snippet["parentId"] = c.parent_id
        del snippet["videoId"]
    return {"kind": "youtube#comment", "etag": yt_etag(c.id), "id": c.id, "snippet": snippet}


def yt_thread_json(st: ContentStore, c: Comment, video: Post, with_replies: bool) -> dict[str, Any]:
    replies = st.comments_of(c.post_id, c.id)
    out: dict[str, Any] = {"kind": "youtube#commentThread", "etag": yt_etag("t", c.id, str(len(replies))), "id": c.id,
                           "snippet": {"channelId": video.owner, "videoId": video.id,
                                       "topLevelComment": yt_comment_json(c, video.owner), "canReply": True,
                                       "totalReplyCount": len(replies), "isPublic": True}}
    if with_replies and replies:
        out["replies"] = {"comments": [yt_comment_json(r, video.owner) for r in replies]}
    return out


def yt_video_not_found() -> Response:
    return google_api_error(404, "The video identified by the <code><a href=\"/youtube/v3/docs/commentThreads/list#"
                                 "videoId\">videoId</a></code> parameter could not be found.", "videoNotFound",
                            "NOT_FOUND", domain="youtube.commentThread",
                            extra={"location": "videoId", "locationType": "parameter"})


@route("youtube", "GET", r"/youtube/v3/commentThreads", "comments")
async def yt_threads(ctx: Ctx) -> Response:
    grant, channel, err = yt_auth(ctx, YT_READ_SCOPES)
    if err:
        return err
    if not ctx.query.get("part"):
        return google_api_error(400, "Required parameter: part", "required", "INVALID_ARGUMENT",
                                extra={"location": "part", "locationType": "parameter"})
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("youtube", now)
    video = st.posts.get(ctx.query.get("videoId") or "")
    if video is None or video.network != "youtube" or video.deleted:
        return yt_video_not_found()
    tops = st.comments_of(video.id)
    if ctx.query.get("order", "time") == "time":
        tops.reverse()
    with_replies = "replies" in ctx.query["part"]
    return json_response(yt_list("youtube#commentThreadListResponse",
                                 [yt_thread_json(st, c, video, with_replies) for c in tops], ctx, 20))


@route("youtube", "POST", r"/youtube/v3/commentThreads", "reply")
async def yt_thread_insert(ctx: Ctx) -> Response:
    grant, channel, err = yt_auth(ctx, YT_COMMENT_SCOPES)
    if err:
        return err
    assert grant
    st, now = _store(ctx), _now(ctx)
    snippet = (ctx.json or {}).get("snippet") if isinstance(ctx.json, dict) else None
    snippet = snippet or {}
    video = st.posts.get(snippet.get("videoId") or "")
    if video is None or video.network != "youtube" or video.deleted:
        return yt_video_not_found()
    text = ((snippet.get("topLevelComment") or {}).get("snippet") or {}).get("textOriginal")
    if not text:
        return google_api_error(400, "The comment text is empty.", "commentTextRequired", "INVALID_ARGUMENT",
                                domain="youtube.commentThread")
    c = yt_new_comment(st, grant, channel, video, None, text, now)
    return json_response(yt_thread_json(st, c, video, False))


def yt_new_comment(st: ContentStore, grant: Grant, channel: dict[str, Any] | None, video: Post, parent: str | None,
                   text: str, now: float) -> Comment:
    ch = channel or {"id": "", "snippet": {"title": "", "customUrl": "@"}}
    cid = ("Ugz" + hashlib.sha256(f"{video.id}/{next(st._seq)}".encode()).hexdigest()[:23]) if parent is None else \
        f"{parent}.{hashlib.sha256(f'{parent}/{next(st._seq)}'.encode()).hexdigest()[:22]}"
    c = Comment(id=cid, network="youtube", post_id=video.id, parent_id=parent, author_name=ch["snippet"]["title"],
                author_username=ch["snippet"].get("customUrl", "@").lstrip("@"), author_id=ch["id"], text=text,
                created_at=now, own=True)
    st.comments[cid] = c
    return c


@route("youtube", "POST", r"/youtube/v3/comments", "reply")
async def yt_comment_insert(ctx: Ctx) -> Response:
    grant, channel, err = yt_auth(ctx, YT_COMMENT_SCOPES)
    if err:
        return err
    assert grant
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("youtube", now)
    snippet = ((ctx.json or {}).get("snippet") if isinstance(ctx.json, dict) else None) or {}
    parent = st.comments.get(snippet.get("parentId") or "")
    if parent is None or parent.network != "youtube":
        return google_api_error(404, "The comment identified by the parentId parameter could not be found.",
                                "parentCommentNotFound", "NOT_FOUND", domain="youtube.comment")
    if parent.parent_id:
        return google_api_error(400, "The parentId must be a top-level comment.", "operationNotSupported",
                                "INVALID_ARGUMENT", domain="youtube.comment")
    text = snippet.get("textOriginal")
    if not text:
        return google_api_error(400, "The comment text is empty.", "commentTextRequired", "INVALID_ARGUMENT",
                                domain="youtube.comment")
    video = st.posts[parent.post_id]
    c = yt_new_comment(st, grant, channel, video, parent.id, text, now)
    return json_response(yt_comment_json(c, video.owner))


@route("youtube", "GET", r"/youtube/v3/comments", "comments")
async def yt_comments_list(ctx: Ctx) -> Response:
    grant, channel, err = yt_auth(ctx, YT_READ_SCOPES)
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("youtube", now)
    parent = st.comments.get(ctx.query.get("parentId") or "")
    if parent is None or parent.network != "youtube":
        return google_api_error(404, "The comment identified by the parentId parameter could not be found.",
                                "commentNotFound", "NOT_FOUND", domain="youtube.comment")
    video = st.posts[parent.post_id]
    return json_response(yt_list("youtube#commentListResponse",
                                 [yt_comment_json(c, video.owner) for c in st.comments_of(parent.post_id, parent.id)],
                                 ctx, 20))


# ===========================================================================================
# LinkedIn (Posts API, Rest.li 2.0)
# ===========================================================================================

LI_MIN_VERSION = "202401"


def li_headers_error(ctx: Ctx) -> Response | None:
    if (e := linkedin_version_error(ctx)) is not None:
        return e
    version = (ctx.header("linkedin-version") or "")[:6]
    if version < LI_MIN_VERSION:
        return linkedin_error(426, f"Requested version {version} is not active", code="NONEXISTENT_VERSION")
    if ctx.header("x-restli-protocol-version") != "2.0.0":
        return linkedin_error(400, "Rest.li protocol version 2.0.0 is required: send the header "
                                   "X-Restli-Protocol-Version: 2.0.0", code="ILLEGAL_ARGUMENT")
    return None


def li_auth(ctx: Ctx) -> tuple[Grant | None, Response | None]:
    tok, grant, err = authed(ctx)
    if err:
        return None, err
    if (e := li_headers_error(ctx)) is not None:
        return None, e
    return grant, None


def li_member_urn(identity: str) -> str:
    return f"urn:li:person:{ids.linkedin_member(identity)['sub']}"


def li_can_act(grant: Grant, urn: str, *, write: bool = True) -> bool:
    if urn == li_member_urn(grant.identity):
        return "w_member_social" in grant.scopes if write else True
    for org in ids.linkedin_orgs(grant.identity):
        if urn == f"urn:li:organization:{org['id']}":
            if not write:
                return bool({"rw_organization_admin", "r_organization_admin", "r_organization_social",
                             "w_organization_social"} & set(grant.scopes))
            return "w_organization_social" in grant.scopes and org["role"] in ("ADMINISTRATOR", "CONTENT_ADMINISTRATOR")
    return False


def li_urn(raw: str) -> str:
    value = unquote(raw)
    return unquote(value) if "%" in value else value


def li_post_json(st: ContentStore, post: Post) -> dict[str, Any]:
    d = post.data
    ms = int(post.created_at * 1000)
    out: dict[str, Any] = {"id": post.id, "author": post.owner, "commentary": post.text, "visibility": d["visibility"],
                           "distribution": d["distribution"], "lifecycleState": d["lifecycleState"],
                           "isReshareDisabledByAuthor": d.get("isReshareDisabledByAuthor", False),
                           "lifecycleStateInfo": {"isEditedByAuthor": False}, "createdAt": ms, "lastModifiedAt": ms,
                           "publishedAt": ms}
    if d.get("content"):
        out["content"] = d["content"]
    return out


def li_find_post(st: ContentStore, urn: str) -> Post | None:
    p = st.posts.get(urn)
    return p if p is not None and p.network == "linkedin" and not p.deleted else None


# --- LinkedIn media: Images API and Videos API ---------------------------------------------------
# initializeUpload gives upload URLs that the sandbox serves itself (standing in for
# www.linkedin.com/dms-uploads); videos are finalized with the ETags of their parts, then
# PROCESSING for `processing_seconds` (sandbox clock) before AVAILABLE. A post may only use media
# of its own author that is AVAILABLE.

LI_PART_BYTES = 4 * 1024 * 1024  # every video part but the last (the Videos API's part size)
LI_VIDEO_MAX_BYTES = 500 * 1024 * 1024
LI_UPLOAD_URL_TTL = 86400.0
LI_MEDIA_URN = re.compile(r"^urn:li:(image|video):([A-Za-z0-9_-]+)$")
LI_UPLOAD_PATH = r"/dms-uploads/sp/v2/(?P<key>[A-Za-z0-9_-]+)/(?P<what>uploadedImage|uploadedVideo)/(?P<part>\d+)"


def li_media(st: ContentStore, urn: str, kind: str | None = None) -> Upload | None:
    up = st.uploads.get(urn)
    if up is None or up.network != "linkedin" or (kind is not None and up.meta.get("kind") != kind):
        return None
    return up


def li_media_status(ctx: Ctx, up: Upload) -> str:
    if up.meta.get("failed"):
        return "PROCESSING_FAILED"
    if up.finished_at is None:
        return "WAITING_UPLOAD"
    if up.meta["kind"] == "video" and _now(ctx) < up.finished_at + _store(ctx).setting("linkedin", "processing_seconds"):
        return "PROCESSING"
    return "AVAILABLE"


def li_upload_url(ctx: Ctx, up: Upload, part: int) -> str:
    what = "uploadedImage" if up.meta["kind"] == "image" else "uploadedVideo"
    key = up.id.rsplit(":", 1)[1]
    return (f"{_base(ctx)}/linkedin/dms-uploads/sp/v2/{key}/{what}/{part}"
            f"?ca=vector_feedshare&cn=uploads&ut={up.meta['signature']}")


def li_init_request(ctx: Ctx, grant: Grant, resource: str) -> tuple[dict[str, Any], str, Response | None]:
    body = ctx.json if isinstance(ctx.json, dict) else None
    req = body.get("initializeUploadRequest") if body else None
    if not isinstance(req, dict):
        return {}, "", linkedin_error(422, "ERROR :: /initializeUploadRequest :: field is required but not found and "
                                           "has no default value", code="UNPROCESSABLE_ENTITY")
    owner = req.get("owner")
    if not isinstance(owner, str) or not re.match(r"^urn:li:(person|organization):", owner):
        return {}, "", linkedin_error(422, "ERROR :: /initializeUploadRequest/owner :: invalid urn",
                                      code="UNPROCESSABLE_ENTITY")
    if not li_can_act(grant, owner):
        return {}, "", linkedin_error(403, f"Not enough permissions to access: {resource}.ACTION.{LI_MIN_VERSION}",
                                      service_code=100, code="ACCESS_DENIED")
    return req, owner, None


def li_new_media(ctx: Ctx, grant: Grant, kind: str, owner: str, total: int = 0) -> Upload:
    st, now = _store(ctx), _now(ctx)
    raw = hashlib.sha256(st.new_digits(19, "li-media", kind, grant.id).encode()).digest()[:9]
    urn = f"urn:li:{kind}:{'D4E10AQ' if kind == 'image' else 'D5610AQ'}{base64.urlsafe_b64encode(raw).decode()}"
    up = Upload(id=urn, network="linkedin", grant_id=grant.id, created_at=now, total=total,
                meta={"kind": kind, "owner": owner, "expires_at": now + LI_UPLOAD_URL_TTL, "etags": {},
                      "signature": hashlib.sha256(f"li-upload/{urn}/{grant.id}".encode()).hexdigest()[:32]})
    if ctx.fail_processing:
        up.meta["failed"] = True
    st.uploads[urn] = up
    return up


@route("linkedin", "POST", r"/rest/images", "upload")
async def li_images_action(ctx: Ctx) -> Response:
    grant, err = li_auth(ctx)
    if err:
        return err
    assert grant
    if ctx.query.get("action") != "initializeUpload":
        return linkedin_error(400, "Unsupported action: the Images API takes action=initializeUpload",
                              code="ILLEGAL_ARGUMENT")
    _, owner, err = li_init_request(ctx, grant, "images")
    if err:
        return err
    up = li_new_media(ctx, grant, "image", owner)
    return json_response({"value": {"uploadUrlExpiresAt": int(up.meta["expires_at"] * 1000),
                                    "uploadUrl": li_upload_url(ctx, up, 0), "image": up.id}})


@route("linkedin", "POST", r"/rest/videos", "upload")
async def li_videos_action(ctx: Ctx) -> Response:
    grant, err = li_auth(ctx)
    if err:
        return err
    assert grant
    action = ctx.query.get("action")
    if action == "initializeUpload":
        return li_video_init(ctx, grant)
    if action == "finalizeUpload":
        return li_video_finalize(ctx, grant)
    return linkedin_error(400, "Unsupported action: the Videos API takes action=initializeUpload or "
                               "action=finalizeUpload", code="ILLEGAL_ARGUMENT")


def li_video_init(ctx: Ctx, grant: Grant) -> Response:
    req, owner, err = li_init_request(ctx, grant, "videos")
    if err:
        return err
    size = req.get("fileSizeBytes")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        return linkedin_error(422, "ERROR :: /initializeUploadRequest/fileSizeBytes :: must be a positive number of "
                                   "bytes", code="UNPROCESSABLE_ENTITY")
    if size > LI_VIDEO_MAX_BYTES:
        return linkedin_error(400, f"The video is larger than {LI_VIDEO_MAX_BYTES} bytes", code="ILLEGAL_ARGUMENT")
    if req.get("uploadCaptions") or req.get("uploadThumbnail"):
        return linkedin_error(400, "The sandbox takes no captions or thumbnail uploads: send uploadCaptions and "
                                   "uploadThumbnail false", code="ILLEGAL_ARGUMENT")
    up = li_new_media(ctx, grant, "video", owner, total=size)
    parts = [(first, min(size, first + LI_PART_BYTES) - 1) for first in range(0, size, LI_PART_BYTES)]
    up.meta["parts"] = parts
    # As on LinkedIn, a single-part upload has an empty token; a multi-part one a token to repeat at finalize.
    up.meta["upload_token"] = "" if len(parts) == 1 else hashlib.sha256(f"li-token/{up.id}".encode()).hexdigest()
    return json_response({"value": {
        "uploadUrlsExpireAt": int(up.meta["expires_at"] * 1000), "video": up.id,
        "uploadInstructions": [{"uploadUrl": li_upload_url(ctx, up, i), "firstByte": first, "lastByte": last}
                               for i, (first, last) in enumerate(parts)],
        "uploadToken": up.meta["upload_token"]}})


def li_video_finalize(ctx: Ctx, grant: Grant) -> Response:
    body = ctx.json if isinstance(ctx.json, dict) else {}
    req = body.get("finalizeUploadRequest")
    if not isinstance(req, dict) or not isinstance(req.get("video"), str):
        return linkedin_error(422, "ERROR :: /finalizeUploadRequest/video :: field is required but not found and has "
                                   "no default value", code="UNPROCESSABLE_ENTITY")
    up = li_media(_store(ctx), req["video"], "video")
    if up is None:
        return linkedin_error(404, f"Not Found: {req['video']}", code="NOT_FOUND")
    if not li_can_act(grant, up.meta["owner"]):
        return linkedin_error(403, f"Not enough permissions to access: videos.ACTION.{LI_MIN_VERSION}",
                              service_code=100, code="ACCESS_DENIED")
    if (req.get("uploadToken") or "") != up.meta["upload_token"]:
        return linkedin_error(400, "The uploadToken does not match this video's upload", code="ILLEGAL_ARGUMENT")
    etags = up.meta["etags"]
    missing = [i for i in range(len(up.meta["parts"])) if i not in etags]
    if missing:
        return linkedin_error(400, f"Part {missing[0]} of {len(up.meta['parts'])} has not been uploaded",
                              code="ILLEGAL_ARGUMENT")
    if req.get("uploadedPartIds") != [etags[i] for i in range(len(up.meta["parts"]))]:
        return linkedin_error(400, "uploadedPartIds must list the ETag of every uploaded part, in order",
                              code="ILLEGAL_ARGUMENT")
    if up.finished_at is None:
        up.finished_at = _now(ctx)
    if ctx.fail_processing:
        up.meta["failed"] = True
    return Response(content=b"", status_code=200)


@route("linkedin", "PUT", LI_UPLOAD_PATH, "upload")
async def li_upload_part(ctx: Ctx) -> Response:
    """Stands in for www.linkedin.com/dms-uploads: the signed upload URLs of initializeUpload."""
    kind = "image" if ctx.groups["what"] == "uploadedImage" else "video"
    st, now = _store(ctx), _now(ctx)
    up = li_media(st, f"urn:li:{kind}:{ctx.groups['key']}", kind)
    if up is None or ctx.query.get("ut") != up.meta["signature"]:
        return linkedin_error(404, "No upload at this URL", code="NOT_FOUND")
    if now > up.meta["expires_at"]:
        return linkedin_error(403, "The upload URL has expired: initialize the upload again", code="ACCESS_DENIED")
    part = int(ctx.groups["part"])
    data = await ctx.request.body()
    if kind == "image":
        if part != 0:
            return linkedin_error(404, "No upload at this URL", code="NOT_FOUND")
        if not data:
            return linkedin_error(400, "The image is empty", code="ILLEGAL_ARGUMENT")
        up.total, up.received = len(data), {0: len(data)}
        if up.finished_at is None:
            up.finished_at = now
        if ctx.fail_processing:
            up.meta["failed"] = True
        return Response(content=b"", status_code=201)
    if up.finished_at is not None:
        return linkedin_error(400, "The upload of this video is already finalized", code="ILLEGAL_ARGUMENT")
    if part >= len(up.meta["parts"]):
        return linkedin_error(404, "No upload at this URL", code="NOT_FOUND")
    first, last = up.meta["parts"][part]
    if len(data) != last - first + 1:
        return linkedin_error(400, f"Part {part} must be bytes {first}-{last} of the video ({last - first + 1} bytes), "
                                   f"not {len(data)} bytes", code="ILLEGAL_ARGUMENT")
    etag = "/ambry-video/signedId/" + hashlib.sha256(up.id.encode() + bytes([part % 256]) + data).hexdigest()[:40]
    up.meta["etags"][part] = etag
    up.received[part] = len(data)
    if ctx.fail_processing:
        up.meta["failed"] = True
    return Response(content=b"", status_code=200, headers={"ETag": etag})


@route("linkedin", "GET", r"/rest/(?P<what>images|videos)/(?P<urn>[^/]+)", "status")
async def li_media_get(ctx: Ctx) -> Response:
    grant, err = li_auth(ctx)
    if err:
        return err
    assert grant
    urn = li_urn(ctx.groups["urn"])
    up = li_media(_store(ctx), urn, ctx.groups["what"][:-1])
    if up is None:
        return linkedin_error(404, f"Not Found: {urn}", code="NOT_FOUND")
    if not li_can_act(grant, up.meta["owner"], write=False):
        return linkedin_error(403, f"Not enough permissions to access: {ctx.groups['what']}.GET.{LI_MIN_VERSION}",
                              service_code=100, code="ACCESS_DENIED")
    status = li_media_status(ctx, up)
    if ctx.fail_processing and status in ("WAITING_UPLOAD", "PROCESSING"):
        up.meta["failed"] = True
        status = "PROCESSING_FAILED"
    out: dict[str, Any] = {"owner": up.meta["owner"], "id": up.id, "status": status}
    if status == "AVAILABLE":
        out["downloadUrl"] = f"{ids.MEDIA_HOST}/linkedin/media/{up.id.rsplit(':', 1)[1]}"
        out["downloadUrlExpiresAt"] = int((_now(ctx) + 3600) * 1000)
        if up.meta["kind"] == "video":
            out.update(aspectRatioWidth=16.0, aspectRatioHeight=9.0)
    return json_response(out)


def li_content_error(ctx: Ctx, author: str, content: Any) -> Response | None:
    """A post's media must exist, belong to the author and be AVAILABLE (LinkedIn checks all three)."""
    if content is None:
        return None

    def bad(path: str, problem: str) -> Response:
        return linkedin_error(422, f"ERROR :: {path} :: {problem}", code="UNPROCESSABLE_ENTITY")

    if not isinstance(content, dict):
        return bad("/content", "expected a record")
    media, multi = content.get("media"), content.get("multiImage")
    if media is not None and multi is not None:
        return bad("/content", "a post has one of media or multiImage, not both")
    refs: list[tuple[str, Any, str | None]] = []
    if media is not None:
        if not isinstance(media, dict) or not isinstance(media.get("id"), str):
            return bad("/content/media/id", "field is required but not found and has no default value")
        refs.append(("/content/media/id", media["id"], None))
    if multi is not None:
        images = multi.get("images") if isinstance(multi, dict) else None
        if not isinstance(images, list) or not 2 <= len(images) <= 20:
            return bad("/content/multiImage/images", "a multiImage post takes 2 to 20 images")
        for i, image in enumerate(images):
            path = f"/content/multiImage/images/{i}/id"
            if not isinstance(image, dict) or not isinstance(image.get("id"), str):
                return bad(path, "field is required but not found and has no default value")
            refs.append((path, image["id"], "image"))
    for path, urn, kind in refs:
        m = LI_MEDIA_URN.match(urn)
        if m is None or (kind is not None and m.group(1) != kind):
            return bad(path, f"{urn} is not {'an image' if kind == 'image' else 'an image or video'} urn")
        up = li_media(_store(ctx), urn, m.group(1))
        if up is None:
            return bad(path, f"{urn} does not exist")
        if up.meta["owner"] != author:
            return bad(path, f"{urn} does not belong to the author {author}")
        status = li_media_status(ctx, up)
        if status != "AVAILABLE":
            return bad(path, f"{urn} is not AVAILABLE (its status is {status})")
    return None


@route("linkedin", "POST", r"/rest/posts", "publish")
async def li_create_post(ctx: Ctx) -> Response:
    grant, err = li_auth(ctx)
    if err:
        return err
    assert grant
    body = ctx.json if isinstance(ctx.json, dict) else None
    if body is None:
        return linkedin_error(400, "Request body must be JSON", code="ILLEGAL_ARGUMENT")
    for key in ("author", "visibility", "distribution", "lifecycleState"):
        if key not in body:
            return linkedin_error(422, f"ERROR :: /{key} :: field is required but not found and has no default value",
                                  code="UNPROCESSABLE_ENTITY")
    author = body["author"]
    if not isinstance(author, str) or not re.match(r"^urn:li:(person|organization):", author):
        return linkedin_error(422, "ERROR :: /author :: invalid urn", code="UNPROCESSABLE_ENTITY")
    if not li_can_act(grant, author):
        return linkedin_error(403, f"Not enough permissions to access: partnerApiPostsExternal.CREATE.{LI_MIN_VERSION}",
                              service_code=100, code="ACCESS_DENIED")
    if body["visibility"] not in ("PUBLIC", "CONNECTIONS", "LOGGED_IN", "CONTAINER"):
        return linkedin_error(422, "ERROR :: /visibility :: invalid enum value", code="UNPROCESSABLE_ENTITY")
    if body["lifecycleState"] not in ("PUBLISHED", "DRAFT"):
        return linkedin_error(422, "ERROR :: /lifecycleState :: invalid enum value", code="UNPROCESSABLE_ENTITY")
    commentary = body.get("commentary") or ""
    if len(commentary) > 3000:
        return linkedin_error(422, "ERROR :: /commentary :: length exceeds 3000 characters", code="UNPROCESSABLE_ENTITY")
    if (e := li_content_error(ctx, author, body.get("content"))) is not None:
        return e
    st, now = _store(ctx), _now(ctx)
    member = li_member_urn(grant.identity)
    allowed, _, _, _ = st.check_rate("linkedin", member, now)
    if not allowed:
        return linkedin_error(429, "Resource level throttle limit for calls to this resource is reached.")
    window = st.setting("linkedin", "duplicate_window_seconds")
    dup = next((p for p in st.posts.values() if p.network == "linkedin" and p.owner == author and not p.deleted
                and p.text == commentary and now - p.created_at < window and commentary), None)
    if dup is not None:
        return json_response({"errorDetailType": "com.linkedin.common.error.BadRequest", "code": "DUPLICATE_POST",
                              "message": f"Content is a duplicate of {dup.id}", "status": 422,
                              "errorDetails": {"inputErrors": [{"description": "Duplicate post is detected",
                                                                "input": {"inputPath": {"fieldPath": "/commentary"}},
                                                                "code": "DUPLICATE_POST"}]}}, 422)
    st.hit("linkedin", member, now)
    content = body.get("content")
    kind = "ugcPost" if isinstance(content, dict) and ("media" in content or "multiImage" in content) else "share"
    urn = f"urn:li:{kind}:{st.snowflake(now)}"
    st.posts[urn] = Post(id=urn, network="linkedin", grant_id=grant.id, identity=grant.identity, owner=author,
                         created_at=now, text=commentary,
                         data={"visibility": body["visibility"], "distribution": body["distribution"],
                               "lifecycleState": body["lifecycleState"], "content": content,
                               "isReshareDisabledByAuthor": bool(body.get("isReshareDisabledByAuthor", False))})
    return Response(content=b"", status_code=201, headers={"x-restli-id": urn, "x-linkedin-id": urn})


@route("linkedin", "GET", r"/rest/posts/(?P<urn>[^/]+)", "lookup")
async def li_get_post(ctx: Ctx) -> Response:
    grant, err = li_auth(ctx)
    if err:
        return err
    post = li_find_post(_store(ctx), li_urn(ctx.groups["urn"]))
    if post is None:
        return linkedin_error(404, f"Not Found: {li_urn(ctx.groups['urn'])}", code="NOT_FOUND")
    return json_response(li_post_json(_store(ctx), post))


@route("linkedin", "DELETE", r"/rest/posts/(?P<urn>[^/]+)", "delete")
async def li_delete_post(ctx: Ctx) -> Response:
    grant, err = li_auth(ctx)
    if err:
        return err
    assert grant
    post = li_find_post(_store(ctx), li_urn(ctx.groups["urn"]))
    if post is not None:
        if not li_can_act(grant, post.owner):
            return linkedin_error(403, "Not enough permissions to delete this post", service_code=100,
                                  code="ACCESS_DENIED")
        post.deleted = True
    return Response(content=b"", status_code=204)


def li_paged(elements: list[dict[str, Any]], ctx: Ctx) -> dict[str, Any]:
    try:
        start = int(ctx.query.get("start") or 0)
        count = max(1, min(100, int(ctx.query.get("count") or 10)))
    except ValueError:
        start, count = 0, 10
    return {"paging": {"start": start, "count": count, "links": [], "total": len(elements)},
            "elements": elements[start:start + count]}


@route("linkedin", "GET", r"/rest/posts", "lookup")
async def li_find_posts(ctx: Ctx) -> Response:
    grant, err = li_auth(ctx)
    if err:
        return err
    assert grant
    if ctx.query.get("q") != "author" or not ctx.query.get("author"):
        return linkedin_error(400, "Invalid query parameters passed to request", code="ILLEGAL_ARGUMENT")
    author = li_urn(ctx.query["author"])
    if not li_can_act(grant, author, write=False):
        return linkedin_error(403, "Not enough permissions to access: partnerApiPostsExternal.FINDER-author",
                              service_code=100, code="ACCESS_DENIED")
    st = _store(ctx)
    posts = sorted((p for p in st.posts.values() if p.network == "linkedin" and p.owner == author and not p.deleted),
                   key=lambda p: (p.created_at, p.id), reverse=True)
    return json_response(li_paged([li_post_json(st, p) for p in posts], ctx))


def li_comment_json(c: Comment) -> dict[str, Any]:
    ms = int(c.created_at * 1000)
    activity = "urn:li:activity:" + str(digest_int("li-activity", c.post_id) % 10 ** 19)
    out: dict[str, Any] = {"actor": c.author_id, "commentUrn": f"urn:li:comment:({activity},{c.id})",
                           "created": {"actor": c.author_id, "time": ms}, "id": c.id,
                           "lastModified": {"actor": c.author_id, "time": ms}, "message": {"text": c.text,
                                                                                          "attributes": []},
                           "object": c.post_id,
                           "likesSummary": {"selectedLikes": [], "aggregatedTotalLikes": 0, "likedByCurrentUser": False,
                                            "totalLikes": 0}}
    if c.parent_id:
        out["parentComment"] = f"urn:li:comment:({activity},{c.parent_id})"
    return out


def li_target(st: ContentStore, urn: str) -> tuple[Post | None, Comment | None]:
    m = re.match(r"^urn:li:comment:\((.+),(\d+)\)$", urn)
    if m:
        c = st.comments.get(m.group(2))
        if c is None or c.network != "linkedin":
            return None, None
        return st.posts.get(c.post_id), c
    return li_find_post(st, urn), None


@route("linkedin", "GET", r"/rest/socialActions/(?P<urn>.+)/comments", "comments")
async def li_comments(ctx: Ctx) -> Response:
    grant, err = li_auth(ctx)
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("linkedin", now)
    post, parent = li_target(st, li_urn(ctx.groups["urn"]))
    if post is None:
        return linkedin_error(404, "Not Found", code="NOT_FOUND")
    items = st.comments_of(post.id, parent.id if parent else None)
    items.reverse()
    return json_response(li_paged([li_comment_json(c) for c in items], ctx))


@route("linkedin", "POST", r"/rest/socialActions/(?P<urn>.+)/comments", "reply")
async def li_comment(ctx: Ctx) -> Response:
    grant, err = li_auth(ctx)
    if err:
        return err
    assert grant
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("linkedin", now)
    post, parent = li_target(st, li_urn(ctx.groups["urn"]))
    if post is None:
        return linkedin_error(404, "Not Found", code="NOT_FOUND")
    body = ctx.json if isinstance(ctx.json, dict) else {}
    actor = body.get("actor") or ""
    text = (body.get("message") or {}).get("text") if isinstance(body.get("message"), dict) else None
    if not actor or not text:
        return linkedin_error(422, "ERROR :: /actor or /message :: field is required", code="UNPROCESSABLE_ENTITY")
    if not li_can_act(grant, actor):
        return linkedin_error(403, "Not enough permissions to access: socialActions.comments.CREATE", service_code=100,
                              code="ACCESS_DENIED")
    parent_comment = body.get("parentComment")
    if parent is None and parent_comment:
        _, parent = li_target(st, parent_comment)
    if parent is not None and parent.parent_id:
        parent = st.comments.get(parent.parent_id)
    cid = st.new_digits(19, "li-comment", post.id)
    name = ids.linkedin_member(grant.identity)["name"]
    c = Comment(id=cid, network="linkedin", post_id=post.id, parent_id=parent.id if parent else None,
                author_name=name, author_username="", author_id=actor, text=text, created_at=now, own=True)
    st.comments[cid] = c
    out = li_comment_json(c)
    return json_response(out, 201, {"x-restli-id": cid})


def li_stats(st: ContentStore, post: Post, now: float) -> dict[str, Any]:
    t0 = post.created_at
    impressions = metric(post.id, "impressions", t0, now)
    likes = metric(post.id, "likes", t0, now)
    clicks = metric(post.id, "clicks", t0, now)
    shares = metric(post.id, "shares", t0, now)
    comments = st.comment_count(post.id)
    engagement = (likes + clicks + shares + comments) / impressions if impressions else 0.0
    return {"uniqueImpressionsCount": metric(post.id, "reach", t0, now), "shareCount": shares,
            "engagement": round(engagement, 6), "clickCount": clicks, "likeCount": likes,
            "impressionCount": impressions, "commentCount": comments}


@route("linkedin", "GET", r"/rest/socialActions/(?P<urn>[^/]+)", "insights")
async def li_social_actions(ctx: Ctx) -> Response:
    grant, err = li_auth(ctx)
    if err:
        return err
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("linkedin", now)
    urn = li_urn(ctx.groups["urn"])
    post = li_find_post(st, urn)
    if post is None:
        return linkedin_error(404, "Not Found", code="NOT_FOUND")
    likes = metric(post.id, "likes", post.created_at, now)
    return json_response({"target": urn,
                          "likesSummary": {"selectedLikes": [], "aggregatedTotalLikes": likes,
                                           "likedByCurrentUser": False, "totalLikes": likes},
                          "commentsSummary": {"selectedComments": [],
                                              "totalFirstLevelComments": len(st.comments_of(post.id)),
                                              "aggregatedTotalComments": st.comment_count(post.id)}})


@route("linkedin", "GET", r"/rest/organizationalEntityShareStatistics", "insights")
async def li_share_stats(ctx: Ctx) -> Response:
    grant, err = li_auth(ctx)
    if err:
        return err
    assert grant
    if ctx.query.get("q") != "organizationalEntity" or not ctx.query.get("organizationalEntity"):
        return linkedin_error(400, "Invalid query parameters passed to request", code="ILLEGAL_ARGUMENT")
    org = li_urn(ctx.query["organizationalEntity"])
    if not org.startswith("urn:li:organization:") or not li_can_act(grant, org, write=False):
        return linkedin_error(403, "Not enough permissions to access: organizationalEntityShareStatistics.FINDER",
                              service_code=100, code="ACCESS_DENIED")
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("linkedin", now)
    wanted: list[str] = []
    for key in ("shares", "ugcPosts"):
        raw = li_urn(ctx.query.get(key) or "")
        m = re.match(r"^List\((.*)\)$", raw)
        if m:
            wanted += [li_urn(u) for u in m.group(1).split(",") if u]
    for k, v in ctx.query.items():
        if re.match(r"^(shares|ugcPosts)\[\d+\]$", k):
            wanted.append(li_urn(v))
    posts = [p for p in st.posts.values() if p.network == "linkedin" and p.owner == org and not p.deleted]
    elements = []
    if wanted:
        for urn in wanted:
            post = li_find_post(st, urn)
            if post is None or post.owner != org:
                continue
            key = "ugcPost" if ":ugcPost:" in urn else "share"
            elements.append({"organizationalEntity": org, key: urn, "totalShareStatistics": li_stats(st, post, now)})
    else:
        total = {"uniqueImpressionsCount": 0, "shareCount": 0, "engagement": 0.0, "clickCount": 0, "likeCount": 0,
                 "impressionCount": 0, "commentCount": 0}
        for post in posts:
            for k, v in li_stats(st, post, now).items():
                if k != "engagement":
                    total[k] += v
        if total["impressionCount"]:
            total["engagement"] = round((total["likeCount"] + total["clickCount"] + total["shareCount"] +
                                         total["commentCount"]) / total["impressionCount"], 6)
        elements.append({"organizationalEntity": org, "totalShareStatistics": total})
    return json_response({"paging": {"start": 0, "count": 10, "links": []}, "elements": elements})


# ===========================================================================================
# Pinterest (v5)
# ===========================================================================================

PIN_METRICS = {"IMPRESSION": "impressions", "SAVE": "saves", "PIN_CLICK": "clicks", "OUTBOUND_CLICK": "outbound_clicks",
               "TOTAL_REACTIONS": "likes", "USER_FOLLOW": "follows", "PROFILE_VISIT": "profile_visits",
               "VIDEO_MRC_VIEW": "views", "VIDEO_START": "views", "TOTAL_COMMENTS": "comments", "SAVE_RATE": "save_rate"}


def pin_auth(ctx: Ctx, scopes: set[str]) -> tuple[Grant | None, Response | None]:
    tok, grant, err = authed(ctx)
    if err:
        return None, err
    assert grant
    if not scopes <= _scopes(grant):
        return None, api_forbidden("pinterest", "pins")
    return grant, None


def pin_json(st: ContentStore, post: Post, now: float, with_metrics: bool = False) -> dict[str, Any]:
    d = post.data
    if d.get("video_id"):
        media: dict[str, Any] = {"media_type": "video", "cover_image_url": f"{ids.MEDIA_HOST}/pinterest/{post.id}.jpg",
                                 "video_url": None, "duration": 15000, "height": 1920, "width": 1080}
    else:
        media = {"media_type": "image", "images": {
            size: {"width": w, "height": h, "url": f"{ids.MEDIA_HOST}/pinterest/{size}/{post.id}.jpg"}
            for size, w, h in (("150x150", 150, 150), ("400x300", 400, 300), ("600x", 600, 900),
                               ("1200x", 1200, 1800))}}
    out: dict[str, Any] = {"id": post.id, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(post.created_at)),
                           "link": d.get("link"), "title": d.get("title"), "description": post.text or None,
                           "dominant_color": "#6E7874", "alt_text": d.get("alt_text"), "creative_type": "REGULAR"
                           if not d.get("video_id") else "VIDEO", "board_id": post.owner, "board_section_id": None,
                           "board_owner": {"username": ids.username(post.identity)}, "is_owner": True, "media": media,
                           "parent_pin_id": None, "is_standard": True, "has_been_promoted": False,
                           "pin_metrics": None}
    if with_metrics:
        life = {"pin_click": metric(post.id, "clicks", post.created_at, now),
                "impression": metric(post.id, "impressions", post.created_at, now),
                "clickthrough": metric(post.id, "outbound_clicks", post.created_at, now),
                "reaction": metric(post.id, "likes", post.created_at, now), "comment": st.comment_count(post.id)}
        out["pin_metrics"] = {"90d": {k: life[k] for k in ("pin_click", "impression", "clickthrough")},
                              "lifetime_metrics": life}
    return out


def pin_find(st: ContentStore, pin_id: str, grant: Grant) -> Post | None:
    p = st.posts.get(pin_id)
    return p if p is not None and p.network == "pinterest" and not p.deleted and p.identity == grant.identity else None


def foreign_board(ctx: Ctx, board_id: str) -> bool:
    identities = {g.identity for g in ctx.state.grants.values() if g.network == "pinterest"}
    return any(b["id"] == board_id for ident in identities for b in ids.pinterest_boards(ident))


@route("pinterest", "POST", r"/v5/pins", "publish")
async def pin_create(ctx: Ctx) -> Response:
    grant, err = pin_auth(ctx, {"pins:write", "boards:read"})
    if err:
        return err
    assert grant
    body = ctx.json if isinstance(ctx.json, dict) else None
    if body is None:
        return pinterest_error(400, 1, "Invalid request: the body must be a JSON object.")
    board_id = body.get("board_id")
    if not board_id:
        return pinterest_error(400, 1, "Invalid request body: board_id is required.")
    board = next((b for b in ids.pinterest_boards(grant.identity) if b["id"] == str(board_id)), None)
    if board is None:
        if foreign_board(ctx, str(board_id)):
            return pinterest_error(403, 403, "Not authorized to access board or Pin.")
        return pinterest_error(404, 404, "Board not found.")
    if board["privacy"] == "SECRET" and not {"pins:write_secret", "boards:read_secret"} <= _scopes(grant):
        return pinterest_error(403, 29, "You are not permitted to access that resource.")
    for key, cap in (("title", 100), ("description", 800), ("link", 2048), ("alt_text", 500)):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > cap):
            return pinterest_error(400, 1, f"Invalid request body: {key} must be a string of at most {cap} characters.")
    source = body.get("media_source") or {}
    stype = source.get("source_type") if isinstance(source, dict) else None
    st, now = _store(ctx), _now(ctx)
    video_id = None
    if stype == "image_url":
        if broken(source.get("url")):
            return pinterest_error(400, 1, "Sorry! We could not fetch the image at media_source.url.")
    elif stype == "image_base64":
        if not source.get("data") or source.get("content_type") not in ("image/jpeg", "image/png"):
            return pinterest_error(400, 1, "Invalid request body: image_base64 needs data and content_type.")
    elif stype == "multiple_image_urls":
        items = source.get("items") or []
        if not 2 <= len(items) <= 5 or any(broken((i or {}).get("url")) for i in items):
            return pinterest_error(400, 1, "Invalid request body: a carousel needs 2 to 5 fetchable images.")
    elif stype == "video_id":
        up = st.uploads.get(str(source.get("media_id") or ""))
        if up is None or up.network != "pinterest" or pin_media_status(ctx, up) != "succeeded":
            return pinterest_error(400, 1, "Invalid request body: media_id is not an uploaded, processed video.")
        video_id = up.id
    else:
        return pinterest_error(400, 1, "Invalid request body: media_source.source_type is required.")
    allowed, _, _, _ = st.check_rate("pinterest", grant.identity, now)
    if not allowed:
        return pinterest_error(429, 8, "You have exceeded your rate limit. Try again later.")
    st.hit("pinterest", grant.identity, now)
    pin_id = st.new_digits(18, "pin", board["id"])
    post = Post(id=pin_id, network="pinterest", grant_id=grant.id, identity=grant.identity, owner=board["id"],
                created_at=now, text=body.get("description") or "",
                data={"title": body.get("title"), "link": body.get("link"), "alt_text": body.get("alt_text"),
                      "video_id": video_id, "source_type": stype,
                      "image_urls": [source.get("url")] if stype == "image_url" else
                      [(i or {}).get("url") for i in source.get("items") or []]})
    st.posts[pin_id] = post
    return json_response(pin_json(st, post, now), 201)


@route("pinterest", "GET", r"/v5/pins/(?P<id>\d+)", "lookup")
async def pin_get(ctx: Ctx) -> Response:
    grant, err = pin_auth(ctx, {"pins:read", "boards:read"})
    if err:
        return err
    assert grant
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("pinterest", now)
    post = pin_find(st, ctx.groups["id"], grant)
    if post is None:
        return pinterest_error(404, 404, "Pin not found.")
    return json_response(pin_json(st, post, now, is_true(ctx.query.get("pin_metrics"))))


@route("pinterest", "DELETE", r"/v5/pins/(?P<id>\d+)", "delete")
async def pin_delete(ctx: Ctx) -> Response:
    grant, err = pin_auth(ctx, {"pins:write", "boards:read"})
    if err:
        return err
    assert grant
    post = pin_find(_store(ctx), ctx.groups["id"], grant)
    if post is None:
        return pinterest_error(404, 404, "Pin not found.")
    post.deleted = True
    return Response(content=b"", status_code=204)


@route("pinterest", "GET", r"/v5/pins", "lookup")
async def pin_list(ctx: Ctx) -> Response:
    grant, err = pin_auth(ctx, {"pins:read", "boards:read"})
    if err:
        return err
    assert grant
    return pin_listing(ctx, grant, None)


@route("pinterest", "GET", r"/v5/boards/(?P<board>\d+)/pins", "lookup")
async def pin_board_list(ctx: Ctx) -> Response:
    grant, err = pin_auth(ctx, {"pins:read", "boards:read"})
    if err:
        return err
    assert grant
    if not any(b["id"] == ctx.groups["board"] for b in ids.pinterest_boards(grant.identity)):
        return pinterest_error(404, 404, "Board not found.")
    return pin_listing(ctx, grant, ctx.groups["board"])


def pin_listing(ctx: Ctx, grant: Grant, board: str | None) -> Response:
    st, now = _store(ctx), _now(ctx)
    pins = sorted((p for p in st.posts.values() if p.network == "pinterest" and p.identity == grant.identity
                   and not p.deleted and (board is None or p.owner == board)),
                  key=lambda p: (p.created_at, p.id), reverse=True)
    try:
        size = max(1, min(250, int(ctx.query.get("page_size") or 25)))
        start = int(base64.urlsafe_b64decode((ctx.query.get("bookmark") or "MA==").encode()).decode() or 0)
    except ValueError:
        return pinterest_error(400, 1, "Invalid parameters.")
    items = pins[start:start + size]
    nxt = start + size
    return json_response({"items": [pin_json(st, p, now, is_true(ctx.query.get("pin_metrics"))) for p in items],
                          "bookmark": base64.urlsafe_b64encode(str(nxt).encode()).decode() if nxt < len(pins) else None})


def day_start(date: str) -> float:
    return float(calendar.timegm(time.strptime(date, "%Y-%m-%d")))


@route("pinterest", "GET", r"/v5/pins/(?P<id>\d+)/analytics", "insights")
async def pin_analytics(ctx: Ctx) -> Response:
    grant, err = pin_auth(ctx, {"pins:read", "boards:read"})
    if err:
        return err
    assert grant
    st, now = _store(ctx), _now(ctx)
    st.sync_comments("pinterest", now)
    post = pin_find(st, ctx.groups["id"], grant)
    if post is None:
        return pinterest_error(404, 404, "Pin not found.")
    q = ctx.query
    try:
        start, end = day_start(q.get("start_date") or ""), day_start(q.get("end_date") or "")
    except ValueError:
        return pinterest_error(400, 400, "Invalid pins analytics parameters.")
    names = [m for m in (q.get("metric_types") or "").split(",") if m]
    if names == ["ALL"] or "ALL" in names:
        names = ["IMPRESSION", "OUTBOUND_CLICK", "PIN_CLICK", "SAVE", "SAVE_RATE", "TOTAL_COMMENTS", "TOTAL_REACTIONS"]
    today = day_start(time.strftime("%Y-%m-%d", time.gmtime(now)))
    if not names or any(m not in PIN_METRICS for m in names) or start > end or start < today - 90 * 86400 \
            or end > today + 86400:
        return pinterest_error(400, 400, "Invalid pins analytics parameters.")

    def cum(name: str, t: float) -> float:
        key = PIN_METRICS[name]
        if key == "comments":
            return float(sum(1 for c in st.comments.values() if c.post_id == post.id and c.created_at <= t))
        return float(metric(post.id, key, post.created_at, max(post.created_at, t)))

    def values(lo: float, hi: float) -> dict[str, float]:
        hi = min(hi, now)
        out: dict[str, float] = {}
        for name in names:
            if name == "SAVE_RATE":
                continue
            out[name] = cum(name, hi) - cum(name, lo) if hi > lo else 0
        if "SAVE_RATE" in names:
            imp = cum("IMPRESSION", hi) - cum("IMPRESSION", lo) if hi > lo else 0
            saves = cum("SAVE", hi) - cum("SAVE", lo) if hi > lo else 0
            out["SAVE_RATE"] = round(saves / imp, 4) if imp else 0
        return {k: (int(v) if k != "SAVE_RATE" else v) for k, v in out.items()}

    daily = []
    d = start
    while d <= end:
        status = "READY" if d + 86400 <= now else "PROCESSING" if d <= now else "ESTIMATE"
        if d + 86400 <= post.created_at:
            status = "BEFORE_PIN_CREATED"
        daily.append({"date": time.strftime("%Y-%m-%d", time.gmtime(d)), "data_status": status,
                      "metrics": values(d, d + 86400)})
        d += 86400
    body: dict[str, Any] = {"daily_metrics": daily, "summary_metrics": values(start, end + 86400)}
    body["lifetime_metrics"] = {"TOTAL_COMMENTS": st.comment_count(post.id),
                                "TOTAL_REACTIONS": metric(post.id, "likes", post.created_at, now)}
    return json_response({"all": body})


def pin_media_status(ctx: Ctx, up: Upload) -> str:
    if up.finished_at is None:
        return "registered"
    if broken(up.meta.get("filename", "https://ok")):
        return "failed"
    if _now(ctx) < up.finished_at + _store(ctx).setting("pinterest", "processing_seconds"):
        return "processing"
    return "succeeded"


@route("pinterest", "POST", r"/v5/media", "upload")
async def pin_media_register(ctx: Ctx) -> Response:
    grant, err = pin_auth(ctx, {"pins:write"})
    if err:
        return err
    assert grant
    if not isinstance(ctx.json, dict) or ctx.json.get("media_type") != "video":
        return pinterest_error(400, 1, "Invalid request body: media_type must be video.")
    st, now = _store(ctx), _now(ctx)
    mid = st.new_digits(19, "pin-media", grant.id)
    st.uploads[mid] = Upload(id=mid, network="pinterest", grant_id=grant.id, created_at=now)
    return json_response({"media_id": mid, "media_type": "video",
                          "upload_url": f"{_base(ctx)}/pinterest/media-upload/{mid}",
                          "upload_parameters": {"key": f"uploads/{mid}.mp4", "x-amz-date": iso_z(now),
                                                "x-amz-algorithm": "AWS4-HMAC-SHA256",
                                                "x-amz-signature": hashlib.sha256(mid.encode()).hexdigest(),
                                                "policy": base64.b64encode(b"{}").decode(),
                                                "Content-Type": "multipart/form-data"}}, 201)


@route("pinterest", "POST", r"/media-upload/(?P<id>\d+)", "upload")
async def pin_media_upload(ctx: Ctx) -> Response:
    """Stands in for Pinterest's S3 upload bucket (multipart form with a `file` field)."""
    up = _store(ctx).uploads.get(ctx.groups["id"])
    if up is None or up.network != "pinterest":
        return Response(content=b"<Error><Code>NoSuchUpload</Code></Error>", status_code=404,
                        media_type="application/xml")
    form = await ctx.request.form()
    file = form.get("file")
    if file is None:
        return Response(content=b"<Error><Code>InvalidArgument</Code></Error>", status_code=400,
                        media_type="application/xml")
    data = await file.read() if hasattr(file, "read") else str(file).encode()
    up.received = {0: len(data)}
    up.total = len(data)
    up.meta["filename"] = "https://ok/" + (getattr(file, "filename", "") or "video.mp4")
    up.finished_at = _now(ctx)
    return Response(content=b"", status_code=204)


@route("pinterest", "GET", r"/v5/media/(?P<id>\d+)", "status")
async def pin_media_get(ctx: Ctx) -> Response:
    grant, err = pin_auth(ctx, {"pins:read"})
    if err:
        return err
    up = _store(ctx).uploads.get(ctx.groups["id"])
    if up is None or up.network != "pinterest":
        return pinterest_error(404, 404, "Media upload not found.")
    return json_response({"media_id": up.id, "media_type": "video", "status": pin_media_status(ctx, up)})
