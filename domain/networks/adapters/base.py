"""What every network adapter declares and raises. No database access here.

Each adapter module puts its facts at the top, in one place: `LIMITS` (text, media, counts,
quotas) and `OAUTH` (endpoints, scopes, PKCE, how tokens live). Numbers come from the
providers' documentation (see NETWORKS.md in the team's shared notes); where the provider
reports a limit at run time, the adapter reads it there instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
class PublishRequest:
    text: str
    # Public, expiring URLs of the media, for networks that pull media by URL.
    media_urls: tuple[str, ...] = ()
    # Per network: board_id (Pinterest), title (YouTube, Pinterest), privacy (TikTok)...
    options: dict[str, object] = field(default_factory=dict)
    reply_to: str | None = None


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
