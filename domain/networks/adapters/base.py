"""What every network adapter declares and raises. No database access here.

Each adapter module puts its facts at the top, in one place: `LIMITS` (text, media, counts,
quotas) and `OAUTH` (endpoints, scopes, PKCE, how tokens live). Numbers come from the
providers' documentation (see NETWORKS.md in the team's shared notes); where the provider
reports a limit at run time, the adapter reads it there instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Network(StrEnum):
    X = "x"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    TIKTOK = "tiktok"
    YOUTUBE = "youtube"
    LINKEDIN = "linkedin"
    THREADS = "threads"
    PINTEREST = "pinterest"


class TextCounting(StrEnum):
    CHARACTERS = "characters"  # Unicode code points
    X_WEIGHTED = "x_weighted"  # NFC; a URL counts 23, emoji and CJK count 2
    UTF16_UNITS = "utf16_units"
    UTF8_BYTES = "utf8_bytes"


class Pkce(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    NONE = "none"


class PostKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    CAROUSEL = "carousel"
    VIDEO = "video"
    REEL = "reel"
    STORY = "story"
    THREAD = "thread"
    PIN = "pin"


@dataclass(frozen=True)
class PublishQuota:
    """At most `posts` publishes per social account in any rolling `window_seconds`
    (the provider's documented cap). The engine counts its own attempts and holds a variant
    until a slot frees rather than sending it into a 429."""

    posts: int
    window_seconds: int
    source: str = ""


@dataclass(frozen=True)
class Limits:
    text_max: int
    text_counting: TextCounting = TextCounting.CHARACTERS
    title_max: int | None = None
    description_max: int | None = None
    description_counting: TextCounting = TextCounting.CHARACTERS
    hashtags_max: int | None = None
    mentions_max: int | None = None
    link_max: int | None = None
    alt_text_max: int | None = None
    media_required: bool = False
    images_max: int = 0
    carousel_min: int | None = None
    carousel_max: int | None = None
    videos_max: int = 0
    mixed_media: bool = False
    image_formats: tuple[str, ...] = ()
    image_max_bytes: int | None = None
    video_max_bytes: int | None = None
    video_min_seconds: float | None = None
    video_max_seconds: float | None = None
    aspect_ratio_min: float | None = None  # width / height
    aspect_ratio_max: float | None = None
    # What a frontend should know about quotas; enforced by the provider, read at run time where offered.
    quotas: tuple[str, ...] = ()
    # The per-account publishing caps the engine enforces itself (domain/publishing/gate.py).
    publish_quotas: tuple[PublishQuota, ...] = ()


@dataclass(frozen=True)
class OAuthEndpoints:
    authorize_url: str
    token_url: str
    revoke_url: str | None
    scopes: tuple[str, ...]
    pkce: Pkce
    scope_separator: str = " "
    client_id_param: str = "client_id"
    token_auth: str = "client_secret_post"  # or client_secret_basic
    extra_authorize_params: tuple[tuple[str, str], ...] = ()
    access_token_lifetime: str = ""
    refresh: str = ""
    refresh_rotates: bool = False


@dataclass(frozen=True)
class NetworkSpec:
    network: Network
    name: str
    limits: Limits
    oauth: OAuthEndpoints
    api_base_url: str
    post_kinds: tuple[PostKind, ...]
    # Kinds of things one login can act for, picked after the callback (pages, boards...).
    account_kinds: tuple[str, ...] = ("profile",)
    thread_parts: bool = False
    first_comment: bool = False
    native_scheduling: bool = False
    needs_public_media_url: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


# --- failures, as the rest of Chorus sees them ------------------------------------------


class NetworkError(Exception):
    """A provider said no, or could not be understood. Never retried blindly on publish."""

    def __init__(self, network: Network, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(f"{network.value}: {message}")
        self.network = network
        self.status = status
        self.code = code


class RateLimited(NetworkError):
    def __init__(self, network: Network, message: str, *, retry_after: float, **kwargs: object):
        super().__init__(network, message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class AuthExpired(NetworkError):
    """The token is expired or revoked (`invalid_grant` on refresh): the account needs reconnecting."""


class Rejected(NetworkError):
    """The provider refused this content or request; sending it again will not help."""


class Unknown(NetworkError):
    """Timeout, reset or 5xx after sending: the outcome must be looked up, not re-sent."""


class Unreachable(NetworkError):
    """The request never left (connection refused, DNS, connect timeout): safe to try again."""


# --- what publishing looks like to the rest of Chorus ----------------------------------


@dataclass(frozen=True)
class AccountRef:
    """Who publishes: the account's id on the network and a fresh access token."""

    external_id: str
    access_token: str = field(repr=False)
    kind: str = "profile"


@dataclass(frozen=True)
class MediaRef:
    """One media file of a post, in order: a public, expiring URL (networks that pull media by
    URL fetch it; the others read the bytes from it and upload them) and what Chorus knows of
    the file, so no adapter guesses the kind from the URL (signed links carry no extension)."""

    url: str
    kind: str  # "image" or "video" (a GIF is an image with mime image/gif)
    mime: str = ""
    size_bytes: int | None = None
    duration_ms: int | None = None
    width: int | None = None
    height: int | None = None
    alt_text: str = ""

    @property
    def is_video(self) -> bool:
        return self.kind == "video"

    @classmethod
    def from_url(cls, url: str) -> MediaRef:
        """For scripts and tests that name files conventionally: the kind from the extension."""
        from urllib.parse import urlsplit

        path = urlsplit(url).path.lower()
        if path.endswith((".mp4", ".mov")):
            return cls(url, "video", "video/quicktime" if path.endswith(".mov") else "video/mp4")
        mime = {".png": "image/png", ".gif": "image/gif", ".webp": "image/webp"}.get(path[path.rfind("."):],
                                                                                    "image/jpeg")
        return cls(url, "image", mime)


@dataclass(frozen=True)
class PublishRequest:
    text: str
    # Shorthand for `media` (the kind read from each URL's extension); the engine gives `media`.
    media_urls: tuple[str, ...] = ()
    # Per network: board_id (Pinterest), title (YouTube, Pinterest), privacy (TikTok)...
    options: dict[str, object] = field(default_factory=dict)
    reply_to: str | None = None
    # The post's media, in order; adapters read only this.
    media: tuple[MediaRef, ...] = ()

    def __post_init__(self) -> None:
        if self.media_urls and not self.media:
            object.__setattr__(self, "media", tuple(MediaRef.from_url(u) for u in self.media_urls))
        elif self.media and not self.media_urls:
            object.__setattr__(self, "media_urls", tuple(m.url for m in self.media))


@dataclass(frozen=True)
class PublishResult:
    state: str  # "published", or "processing" with `pending_ref` to poll
    external_id: str | None = None
    url: str | None = None
    pending_ref: str | None = None


@dataclass(frozen=True)
class RemotePost:
    external_id: str
    url: str | None = None
    text: str | None = None
    created_at: str | None = None
    metrics: dict[str, int] = field(default_factory=dict)


# Called by an adapter right before a status poll creates the post (X video, Instagram and
# Threads media_publish, LinkedIn video): the engine records the step first, so a run that
# dies after it looks the post up instead of creating it again.
BeforeCreate = Callable[[], Awaitable[None]]

# How far before the attempt's start a post found by lookup may be dated (clock skew).
LOOKUP_SKEW = timedelta(minutes=5)


def when_of(value: object) -> datetime | None:
    """A provider's timestamp: ISO 8601 (with Z, or Meta's +0000), or unix seconds or milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        if number > 10**11:  # milliseconds
            number /= 1000
        return datetime.fromtimestamp(number, UTC)
    text = str(value).replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():  # +0000 -> +00:00
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def matches(found_text: object, created: object, text: str, since: datetime) -> bool:
    """A post on the account is the one we sent: the same text, dated no earlier than the
    attempt (less a few minutes of skew; an undated post counts on the text alone)."""
    if not isinstance(found_text, str) or found_text.strip() != text.strip():
        return False
    when = when_of(created)
    return when is None or when >= since - LOOKUP_SKEW
