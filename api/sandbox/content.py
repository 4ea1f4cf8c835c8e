"""The publish half's state: posts, containers, uploads, comments, rate-limit windows and settings.

Everything here is driven by the sandbox clock (``SandboxState.clock``), so tests move time with
``POST /_sandbox/clock`` instead of sleeping:

- metrics grow with the time since a post was published (``metric``: a deterministic function of
  the post id, the metric name and the elapsed sandbox seconds; never decreasing);
- comments arrive at a fixed pace (one per ``comment_every_seconds`` per post, up to
  ``comment_max``) from the fixed ``COMMENTERS``; ``sync_comments`` materialises them;
- media processing (IG/Threads video containers, TikTok, YouTube, X video, Pinterest video,
  LinkedIn video, Facebook page video) finishes ``processing_seconds`` after it starts.

All mutations are synchronous, like the rest of the sandbox state.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

# Per network. Change with POST /_sandbox/config {"network", "publish": {...}}.
#   rate_limit / rate_window: the network's own publish limit (see README: each answers in its own shape)
#   processing_seconds: how long video/media processing takes (sandbox seconds)
#   comment_every_seconds / comment_max: how comments arrive on published posts
#   duplicate_window_seconds: LinkedIn DUPLICATE_POST / X duplicate content window
#   container_ttl_seconds: IG/Threads containers expire (EXPIRED) after this long unpublished
DEFAULT_SETTINGS: dict[str, dict[str, float]] = {
    "x": {"rate_limit": 100, "rate_window": 900, "processing_seconds": 10},
    "facebook": {"rate_limit": 200, "rate_window": 3600, "processing_seconds": 0},
    "instagram": {"rate_limit": 100, "rate_window": 86400, "processing_seconds": 60},
    "threads": {"rate_limit": 250, "rate_window": 86400, "reply_rate_limit": 1000, "processing_seconds": 30},
    "tiktok": {"rate_limit": 6, "rate_window": 60, "processing_seconds": 30},
    "youtube": {"rate_limit": 100, "rate_window": 86400, "processing_seconds": 60},
    "linkedin": {"rate_limit": 150, "rate_window": 86400, "processing_seconds": 30},
    "pinterest": {"rate_limit": 1000, "rate_window": 86400, "processing_seconds": 30},
}
#   latency_ms: every call to the network's API waits this long before it is handled (benchmarks)
COMMON_SETTINGS: dict[str, float] = {"comment_every_seconds": 600, "comment_max": 20, "duplicate_window_seconds": 86400,
                                     "container_ttl_seconds": 86400, "latency_ms": 0}
SETTING_KEYS = frozenset({"rate_limit", "rate_window", "reply_rate_limit", "processing_seconds", *COMMON_SETTINGS})

# The fixed test commenters: (name, username). Comment i on a post comes from COMMENTERS[i % 4].
COMMENTERS: tuple[tuple[str, str], ...] = (
    ("Ana Sandbox Fan", "sandbox_fan_ana"), ("Ben Sandbox Fan", "sandbox_fan_ben"),
    ("Chen Sandbox Fan", "sandbox_fan_chen"), ("Dara Sandbox Fan", "sandbox_fan_dara"),
)
COMMENT_TEXTS: tuple[str, ...] = (
    "Love this!", "Where can I learn more?", "Great post, thanks for sharing.", "This made my day",
    "Interesting take.", "Can you share more details?",
)

# metric -> units gained per sandbox minute (before a per-post factor between 0.6 and 1.4)
METRIC_RATES: dict[str, float] = {
    "impressions": 20.0, "reach": 12.0, "views": 15.0, "likes": 1.0, "shares": 0.2, "saves": 0.3, "clicks": 0.8,
    "outbound_clicks": 0.4, "quotes": 0.05, "reposts": 0.2, "bookmarks": 0.1, "engaged_users": 1.5,
    "favorites": 0.0, "watch_minutes": 4.0, "follows": 0.05, "profile_visits": 0.3,
}


def digest_int(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def metric(post_id: str, name: str, created_at: float, now: float) -> int:
    """A deterministic, never-decreasing count: 0 at publish time, growing with sandbox minutes."""
    minutes = max(0.0, now - created_at) / 60.0
    factor = 0.6 + (digest_int(post_id, name) % 81) / 100.0
    return int(math.floor(minutes * METRIC_RATES.get(name, 1.0) * factor))


@dataclass
class Post:
    id: str
    network: str
    grant_id: str
    identity: str
    owner: str  # the account it was published on: X user, page, IG user, channel, author urn, board...
    created_at: float
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    reply_to: str | None = None  # Threads / X: the post or comment this one answers


@dataclass
class Comment:
    id: str
    network: str
    post_id: str
    parent_id: str | None  # None: on the post itself; else the comment it answers
    author_name: str
    author_username: str
    author_id: str
    text: str
    created_at: float
    own: bool = False  # written through the API by the connected account


@dataclass
class Container:
    """IG / Threads media container (step 1 of the two-step publish)."""

    id: str
    network: str
    grant_id: str
    owner: str
    created_at: float
    media_type: str
    params: dict[str, str]
    children: list[str] = field(default_factory=list)
    published_id: str | None = None


@dataclass
class Upload:
    """X media upload, TikTok publish, YouTube resumable session, Pinterest media, LinkedIn image or
    video (keyed by its urn), Facebook photo or video."""

    id: str
    network: str
    grant_id: str
    created_at: float
    total: int = 0
    received: dict[int, int] = field(default_factory=dict)  # offset or segment -> size
    finished_at: float | None = None  # all bytes in (or the pull started): processing starts here
    meta: dict[str, Any] = field(default_factory=dict)
    post_id: str | None = None

    @property
    def received_bytes(self) -> int:
        return sum(self.received.values())


@dataclass
class ContentStore:
    posts: dict[str, Post] = field(default_factory=dict)
    comments: dict[str, Comment] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    events: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # rate-limit windows
    settings: dict[str, dict[str, float]] = field(default_factory=dict)
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.posts.clear()
        self.comments.clear()
        self.containers.clear()
        self.uploads.clear()
        self.events.clear()
        self.settings = {n: {**COMMON_SETTINGS, **v} for n, v in DEFAULT_SETTINGS.items()}
        self._seq = itertools.count(1)

    def setting(self, network: str, key: str) -> float:
        return float(self.settings[network][key])

    # --- ids ----------------------------------------------------------------------------
    def new_digits(self, n: int, *parts: str) -> str:
        value = digest_int(*parts, str(next(self._seq)), str(time.time_ns()))
        s = str(value).rjust(n - 1, "0")[: n - 1]
        return str(1 + value % 9) + s

    def snowflake(self, now: float) -> str:
        """X-style id: milliseconds since the Twitter epoch, shifted, plus a sequence (19 digits)."""
        ms = int(now * 1000) - 1288834974657
        return str((ms << 22) | (next(self._seq) % 4096))

    # --- rate limits --------------------------------------------------------------------
    def window(self, network: str, key: str, now: float, window: float) -> list[float]:
        events = [t for t in self.events.get((network, key), []) if t > now - window]
        self.events[(network, key)] = events
        return events

    def check_rate(self, network: str, key: str, now: float, *, limit_key: str = "rate_limit") -> tuple[bool, int, int, float]:
        """(allowed, limit, remaining, reset_at). Does not count the call: see ``hit``."""
        limit = int(self.setting(network, limit_key))
        win = self.setting(network, "rate_window")
        events = self.window(network, key, now, win)
        reset_at = (events[0] + win) if events else now + win
        return len(events) < limit, limit, max(0, limit - len(events)), reset_at

    def hit(self, network: str, key: str, now: float) -> None:
        self.events.setdefault((network, key), []).append(now)

    # --- comments -----------------------------------------------------------------------
    def sync_comments(self, network: str, now: float) -> None:
        """Materialise the comments that have arrived by ``now`` on every live post of ``network``."""
        every = self.setting(network, "comment_every_seconds")
        cap = int(self.setting(network, "comment_max"))
        if every <= 0 or cap <= 0:
            return
        for post in list(self.posts.values()):
            if post.network != network or post.deleted or post.reply_to or post.data.get("unpublished"):
                continue
            start = post.data.get("published_at", post.created_at)
            due = min(cap, int(max(0.0, now - start) // every))
            have = post.data.get("arrived", 0)
            for i in range(have, due):
                name, uname = COMMENTERS[i % len(COMMENTERS)]
                at = start + (i + 1) * every
                cid = comment_id(network, post.id, i, at)
                self.comments[cid] = Comment(
                    id=cid, network=network, post_id=post.id, parent_id=None, author_name=name, author_username=uname,
                    author_id=author_id(network, uname), text=f"{COMMENT_TEXTS[i % len(COMMENT_TEXTS)]} (#{i + 1})",
                    created_at=at)
            post.data["arrived"] = max(have, due)

    def comments_of(self, post_id: str, parent_id: str | None = None) -> list[Comment]:
        out = [c for c in self.comments.values() if c.post_id == post_id and c.parent_id == parent_id]
        return sorted(out, key=lambda c: (c.created_at, c.id))

    def comment_count(self, post_id: str) -> int:
        return sum(1 for c in self.comments.values() if c.post_id == post_id)


def comment_id(network: str, post_id: str, i: int, at: float) -> str:
    d = str(digest_int(network, "comment", post_id, str(i)))
    if network == "x":  # a snowflake of the time it arrived
        return str(((int(at * 1000) - 1288834974657) << 22) | (int(d) % 4096))
    if network == "facebook":
        return f"{post_id.split('_')[-1]}_{d[:16]}"
    if network == "youtube":
        return "Ugz" + hashlib.sha256(f"{post_id}/{i}".encode()).hexdigest()[:23]
    return d[:17]


def author_id(network: str, username: str) -> str:
    d = str(digest_int(network, "commenter", username))
    if network == "linkedin":
        return "urn:li:person:" + hashlib.sha256(username.encode()).hexdigest()[:10]
    if network == "youtube":
        return "UC" + hashlib.sha256(username.encode()).hexdigest()[:22]
    return d[:17]
