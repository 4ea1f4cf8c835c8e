"""What a variant must be to go out on its network, and how statuses follow. Pure functions.

Every check reads the network's facts from its adapter (`LIMITS`, `NetworkSpec`), so the
rules a frontend sees in `GET /v1/networks` are the rules enforced here. An issue names the
rule, the field and the counts: "x: 297 of 280 weighted characters".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from domain.networks.adapters.base import Limits, Network, NetworkSpec, TextCounting
from domain.networks.catalog import CATALOG
from domain.networks.rules import hashtags, mentions, text_length

THREAD_POSTS_MAX = 25  # the post itself and its further parts
FIRST_COMMENT_MAX = 2_200

_UNITS = {
    TextCounting.CHARACTERS: "characters",
    TextCounting.X_WEIGHTED: "weighted characters",
    TextCounting.UTF16_UNITS: "UTF-16 code units",
    TextCounting.UTF8_BYTES: "bytes",
}


class VariantStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"


# Before publication, a post is only as far along as its least advanced variant.
_PROGRESS = [VariantStatus.DRAFT, VariantStatus.IN_REVIEW, VariantStatus.APPROVED, VariantStatus.SCHEDULED]
# The team may edit these; the rest belong to the publishing workers.
EDITABLE = frozenset(_PROGRESS) | {VariantStatus.FAILED}
LOCKED = frozenset({VariantStatus.PUBLISHING, VariantStatus.PUBLISHED})


def post_status(statuses: Iterable[str]) -> str:
    """The post's status, derived from its variants' statuses."""
    values = [VariantStatus(s) for s in statuses]
    if not values:
        return VariantStatus.DRAFT.value
    if VariantStatus.PUBLISHING in values:
        return VariantStatus.PUBLISHING.value
    if VariantStatus.FAILED in values:
        return VariantStatus.FAILED.value
    if all(v is VariantStatus.PUBLISHED for v in values):
        return VariantStatus.PUBLISHED.value
    pending = [v for v in values if v is not VariantStatus.PUBLISHED]
    return min(pending, key=_PROGRESS.index).value


class Severity(StrEnum):
    ERROR = "error"  # blocks scheduling
    WARNING = "warning"  # shown, never blocks


@dataclass(frozen=True)
class Issue:
    rule: str
    field: str
    message: str
    severity: Severity = Severity.ERROR
    count: int | None = None
    limit: int | None = None

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "field": self.field, "message": self.message,
                               "severity": self.severity.value}
        if self.count is not None:
            out["count"] = self.count
        if self.limit is not None:
            out["limit"] = self.limit
        return out


@dataclass(frozen=True)
class MediaFacts:
    """What was read from an uploaded file (the media library fills this)."""

    kind: str  # image, gif, video
    content_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    alt_text: str = ""


@dataclass(frozen=True)
class VariantDraft:
    network: Network
    text: str
    options: dict[str, Any] = field(default_factory=dict)
    media: Sequence[MediaFacts] = ()


# --- network options ----------------------------------------------------------------------

_TIKTOK_PRIVACY = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY")
_YOUTUBE_PRIVACY = ("public", "unlisted", "private")
_INSTAGRAM_PLACEMENTS = ("feed", "reel", "story")
_FACEBOOK_PLACEMENTS = ("feed", "reel", "story")


@dataclass(frozen=True)
class Option:
    kind: str  # text, url, enum, bool, parts, id
    description: str
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    required: bool = False


_FIRST_COMMENT = Option("text", "Posted as the first comment right after the post", max_length=FIRST_COMMENT_MAX)
_THREAD = Option("parts", f"Further posts of the thread, in order (up to {THREAD_POSTS_MAX - 1})")

OPTIONS: dict[Network, dict[str, Option]] = {
    Network.X: {"thread": _THREAD},
    Network.THREADS: {"thread": _THREAD},
    Network.FACEBOOK: {
        "first_comment": _FIRST_COMMENT,
        "link": Option("url", "A link shown as a preview card (text posts)", max_length=2_048),
        "placement": Option("enum", "Where it appears", _FACEBOOK_PLACEMENTS),
    },
    Network.INSTAGRAM: {
        "first_comment": _FIRST_COMMENT,
        "placement": Option("enum", "Feed post, reel or story", _INSTAGRAM_PLACEMENTS),
        "share_reel_to_feed": Option("bool", "Show the reel in the feed grid too"),
    },
    Network.YOUTUBE: {
        "title": Option("text", "The video's title", max_length=100, required=True),
        "privacy": Option("enum", "Who can watch it", _YOUTUBE_PRIVACY, required=True),
        "made_for_kids": Option("bool", "Made for kids (COPPA)"),
        "tags": Option("parts", "Video tags"),
    },
    Network.PINTEREST: {
        "board_id": Option("id", "The board to pin to", max_length=100, required=True),
        "title": Option("text", "The pin's title", max_length=100),
        "link": Option("url", "Where the pin leads", max_length=2_048),
    },
    Network.TIKTOK: {
        "privacy": Option("enum", "Who can watch it (TikTok requires the creator to choose)", _TIKTOK_PRIVACY,
                          required=True),
        "title": Option("text", "Photo post title", max_length=90),
        "disable_comment": Option("bool", "Turn comments off"),
        "disable_duet": Option("bool", "Turn duets off"),
        "disable_stitch": Option("bool", "Turn stitches off"),
    },
    Network.LINKEDIN: {
        "title": Option("text", "The video or document title", max_length=200),
    },
}


# What a designer should make for each network (width x height, px): the common, safe sizes
# inside each network's aspect-ratio limits. Briefs and GET /v1/networks show them.
RECOMMENDED_SIZES: dict[Network, dict[str, tuple[int, int]]] = {
    Network.X: {"image": (1600, 900), "video": (1280, 720)},
    Network.FACEBOOK: {"image": (1080, 1350), "video": (1080, 1350), "story": (1080, 1920), "reel": (1080, 1920)},
    Network.INSTAGRAM: {"image": (1080, 1350), "carousel": (1080, 1350), "story": (1080, 1920), "reel": (1080, 1920)},
    Network.TIKTOK: {"video": (1080, 1920), "carousel": (1080, 1920)},
    Network.YOUTUBE: {"video": (1920, 1080), "thumbnail": (1280, 720)},
    Network.LINKEDIN: {"image": (1200, 1200), "carousel": (1200, 1200), "video": (1920, 1080)},
    Network.THREADS: {"image": (1080, 1350), "video": (1080, 1920)},
    Network.PINTEREST: {"image": (1000, 1500), "video": (1080, 1920)},
}


def _text_issue(network: Network, limits: Limits, text: str, where: str, counting: TextCounting,
                maximum: int) -> Issue | None:
    length = text_length(text, counting)
    if length <= maximum:
        return None
    return Issue("text_too_long", where, f"{network.value}: {length} of {maximum} {_UNITS[counting]}",
                 count=length, limit=maximum)


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def _check_options(network: Network, options: dict[str, Any], text_counting: TextCounting,
                   text_max: int) -> list[Issue]:
    issues: list[Issue] = []
    declared = OPTIONS.get(network, {})
    for key in options:
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            issues.append(Issue("unknown_option", f"options.{key}",
                                f"{network.value} has no option {key!r} (options: {known})"))
    for key, option in declared.items():
        value = options.get(key)
        where = f"options.{key}"
        if value is None or value == "" or value == []:
            if option.required:
                issues.append(Issue("option_required", where,
                                    f"{network.value}: {key} is required ({option.description})"))
            continue
        if option.kind == "bool":
            if not isinstance(value, bool):
                issues.append(Issue("option_invalid", where, f"{network.value}: {key} must be true or false"))
        elif option.kind == "enum":
            if value not in option.choices:
                issues.append(Issue("option_invalid", where,
                                    f"{network.value}: {key} must be one of {', '.join(option.choices)}"))
        elif option.kind == "parts":
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                issues.append(Issue("option_invalid", where, f"{network.value}: {key} must be a list of texts"))
                continue
            if key == "thread":
                if len(value) + 1 > THREAD_POSTS_MAX:
                    issues.append(Issue("thread_too_long", where, f"{network.value}: {len(value) + 1} of "
                                        f"{THREAD_POSTS_MAX} posts in the thread", count=len(value) + 1,
                                        limit=THREAD_POSTS_MAX))
                for i, part in enumerate(value):
                    if not part.strip():
                        issues.append(Issue("thread_part_empty", f"{where}[{i}]", f"{network.value}: part {i + 2} "
                                            "of the thread is empty"))
                    elif issue := _text_issue(network, CATALOG[network].limits, part, f"{where}[{i}]",
                                              text_counting, text_max):
                        issues.append(issue)
        else:
            if not isinstance(value, str):
                issues.append(Issue("option_invalid", where, f"{network.value}: {key} must be text"))
                continue
            if option.max_length and len(value) > option.max_length:
                issues.append(Issue("option_too_long", where,
                                    f"{network.value}: {key} is {len(value)} of {option.max_length} characters",
                                    count=len(value), limit=option.max_length))
            if option.kind == "url" and not _is_url(value):
                issues.append(Issue("option_invalid", where, f"{network.value}: {key} must be an http(s) address"))
            if network is Network.YOUTUBE and key == "title" and ("<" in value or ">" in value):
                issues.append(Issue("option_invalid", where, "youtube: the title cannot contain < or >"))
    return issues


# --- media ---------------------------------------------------------------------------------


def media_issues(network: Network, media: Sequence[MediaFacts], *, placement: str | None = None,
                 field_prefix: str = "media") -> list[Issue]:
    """The media rules of one network: count, mix, format, size, duration, aspect ratio."""
    spec = CATALOG[network]
    limits = spec.limits
    name = network.value
    issues: list[Issue] = []
    images = [m for m in media if m.kind in ("image", "gif")]
    videos = [m for m in media if m.kind == "video"]
    if limits.media_required and not media:
        issues.append(Issue("media_required", field_prefix, f"{name}: a post needs at least one image or video"))
    if images and not limits.images_max:
        issues.append(Issue("images_not_supported", field_prefix, f"{name}: takes no images", count=len(images),
                            limit=0))
    elif len(images) > limits.images_max:
        issues.append(Issue("too_many_images", field_prefix, f"{name}: {len(images)} of {limits.images_max} images",
                            count=len(images), limit=limits.images_max))
    if videos and not limits.videos_max:
        issues.append(Issue("videos_not_supported", field_prefix, f"{name}: takes no videos", count=len(videos),
                            limit=0))
    elif len(videos) > limits.videos_max and (limits.mixed_media or not images):
        issues.append(Issue("too_many_videos", field_prefix, f"{name}: {len(videos)} of {limits.videos_max} videos",
                            count=len(videos), limit=limits.videos_max))
    if images and videos and not limits.mixed_media:
        issues.append(Issue("mixed_media", field_prefix, f"{name}: images and a video cannot go in one post"))
    if limits.mixed_media and limits.carousel_max and len(media) > limits.carousel_max:
        issues.append(Issue("too_many_media", field_prefix, f"{name}: {len(media)} of {limits.carousel_max} items",
                            count=len(media), limit=limits.carousel_max))
    if placement == "reel" and (len(videos) != 1 or images):
        issues.append(Issue("reel_needs_one_video", field_prefix, f"{name}: a reel is exactly one video"))
    if placement == "story" and len(media) != 1:
        issues.append(Issue("story_needs_one_item", field_prefix, f"{name}: a story is one image or one video",
                            count=len(media), limit=1))
    for i, m in enumerate(media):
        where = f"{field_prefix}[{i}]"
        if m.kind in ("image", "gif"):
            if limits.image_formats and m.content_type not in limits.image_formats:
                kinds = ", ".join(f.split("/")[1].upper() for f in limits.image_formats)
                issues.append(Issue("image_format", where, f"{name}: {m.content_type} is not accepted ({kinds})"))
            if limits.image_max_bytes and m.size_bytes > limits.image_max_bytes:
                issues.append(Issue("image_too_large", where, f"{name}: image is {_mb(m.size_bytes)} of "
                                    f"{_mb(limits.image_max_bytes)}", count=m.size_bytes, limit=limits.image_max_bytes))
        if m.kind == "video":
            if limits.video_max_bytes and m.size_bytes > limits.video_max_bytes:
                issues.append(Issue("video_too_large", where, f"{name}: video is {_mb(m.size_bytes)} of "
                                    f"{_mb(limits.video_max_bytes)}", count=m.size_bytes, limit=limits.video_max_bytes))
            if m.duration_ms is not None:
                seconds = m.duration_ms / 1000
                if limits.video_min_seconds and seconds < limits.video_min_seconds:
                    issues.append(Issue("video_too_short", where, f"{name}: video is {seconds:g} s, at least "
                                        f"{limits.video_min_seconds:g} s", count=m.duration_ms,
                                        limit=int(limits.video_min_seconds * 1000)))
                if limits.video_max_seconds and seconds > limits.video_max_seconds:
                    issues.append(Issue("video_too_long", where, f"{name}: video is {seconds:g} s of "
                                        f"{limits.video_max_seconds:g} s", count=m.duration_ms,
                                        limit=int(limits.video_max_seconds * 1000)))
        if m.width and m.height and placement not in ("reel", "story"):
            ratio = m.width / m.height
            low, high = limits.aspect_ratio_min, limits.aspect_ratio_max
            if (low and ratio < low - 0.005) or (high and ratio > high + 0.005):
                issues.append(Issue("aspect_ratio", where, f"{name}: {m.width}x{m.height} is {ratio:.2f}:1, "
                                    f"allowed {low or 0:.2f}:1 to {high or 0:.2f}:1"))
        if limits.alt_text_max and len(m.alt_text) > limits.alt_text_max:
            issues.append(Issue("alt_text_too_long", f"{where}.alt_text", f"{name}: alt text is {len(m.alt_text)} of "
                                f"{limits.alt_text_max} characters", count=len(m.alt_text), limit=limits.alt_text_max))
    return issues


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


# --- a whole variant, a whole post ---------------------------------------------------------


def _text_rules(spec: NetworkSpec, draft: VariantDraft) -> tuple[TextCounting, int]:
    """Which text limit applies: TikTok photo posts use the description limit."""
    limits = spec.limits
    if draft.network is Network.TIKTOK and draft.media and all(m.kind != "video" for m in draft.media):
        return limits.description_counting, limits.description_max or limits.text_max
    return limits.text_counting, limits.text_max


def variant_issues(draft: VariantDraft) -> list[Issue]:
    spec = CATALOG[draft.network]
    limits = spec.limits
    name = draft.network.value
    issues: list[Issue] = []
    counting, maximum = _text_rules(spec, draft)
    if "\x00" in draft.text:
        issues.append(Issue("text_invalid", "text", f"{name}: the text contains a NUL character"))
    if issue := _text_issue(draft.network, limits, draft.text, "text", counting, maximum):
        issues.append(issue)
    if not draft.text.strip() and not draft.media:
        issues.append(Issue("empty", "text", f"{name}: write something or attach media"))
    if limits.hashtags_max is not None and (n := len(hashtags(draft.text))) > limits.hashtags_max:
        issues.append(Issue("too_many_hashtags", "text", f"{name}: {n} of {limits.hashtags_max} hashtags",
                            count=n, limit=limits.hashtags_max))
    if limits.mentions_max is not None and (n := len(mentions(draft.text))) > limits.mentions_max:
        issues.append(Issue("too_many_mentions", "text", f"{name}: {n} of {limits.mentions_max} mentions",
                            count=n, limit=limits.mentions_max))
    issues += _check_options(draft.network, draft.options, counting, maximum)
    placement = draft.options.get("placement") if isinstance(draft.options.get("placement"), str) else None
    issues += media_issues(draft.network, draft.media, placement=placement)
    return issues


def same_copy_warnings(texts: Sequence[tuple[str, str]]) -> dict[str, Issue]:
    """Variants (key, text) whose text is the same as another's, ignoring case and spacing:
    allowed, but each network deserves its own copy."""
    seen: dict[str, list[str]] = {}
    for key, text in texts:
        norm = " ".join(text.lower().split())
        if norm:
            seen.setdefault(norm, []).append(key)
    out: dict[str, Issue] = {}
    for keys in seen.values():
        if len(keys) > 1:
            for key in keys:
                out[key] = Issue("same_copy", "text", f"the same text goes to {len(keys)} networks; "
                                 "each network reads best with its own copy", Severity.WARNING, count=len(keys))
    return out


def blocking(issues: Iterable[dict[str, Any] | Issue]) -> list[dict[str, Any]]:
    out = []
    for issue in issues:
        data = issue.public() if isinstance(issue, Issue) else issue
        if data.get("severity") == Severity.ERROR.value:
            out.append(data)
    return out


def content_hash(data: Any) -> str:
    """A stable hash of content: canonical JSON, keys sorted, no spaces."""
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """What changed between two snapshots, as a list of {path, before, after}."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after), key=str):
            changes += diff(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return changes
    if isinstance(before, list) and isinstance(after, list) and _keyed(before) and _keyed(after):
        b = {item["key"]: item for item in before}
        a = {item["key"]: item for item in after}
        changes = []
        for key in list(b) + [k for k in a if k not in b]:
            changes += diff(b.get(key), a.get(key), f"{path}[{key}]")
        return changes
    if before != after:
        return [{"path": path, "before": before, "after": after}]
    return []


def _keyed(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and "key" in i for i in items)
