from __future__ import annotations

import msgspec

from domain.networks.adapters.base import Network, Pkce, PostKind, TextCounting


class LimitsOut(msgspec.Struct, kw_only=True):
    text_max: int
    text_counting: TextCounting
    title_max: int | None
    description_max: int | None
    description_counting: TextCounting
    hashtags_max: int | None
    mentions_max: int | None
    link_max: int | None
    alt_text_max: int | None
    media_required: bool
    images_max: int
    carousel_min: int | None
    carousel_max: int | None
    videos_max: int
    mixed_media: bool
    image_formats: list[str]
    image_max_bytes: int | None
    video_max_bytes: int | None
    video_min_seconds: float | None
    video_max_seconds: float | None
    aspect_ratio_min: float | None
    aspect_ratio_max: float | None
    quotas: list[str]


class OAuthOut(msgspec.Struct, kw_only=True):
    pkce: Pkce
    scopes: list[str]
    access_token_lifetime: str
    refresh: str
    refresh_rotates: bool


class OptionOut(msgspec.Struct, kw_only=True):
    """A network option a variant may set (`options` on a post variant)."""

    name: str
    kind: str  # text, url, enum, bool, parts, id
    description: str
    choices: list[str]
    max_length: int | None
    required: bool


class SizeOut(msgspec.Struct, kw_only=True):
    kind: str
    width: int
    height: int


class NetworkOut(msgspec.Struct, kw_only=True):
    id: Network
    name: str
    post_kinds: list[PostKind]
    account_kinds: list[str]
    thread_parts: bool
    first_comment: bool
    native_scheduling: bool
    needs_public_media_url: bool
    limits: LimitsOut
    options: list[OptionOut]
    recommended_sizes: list[SizeOut]
    oauth: OAuthOut
    notes: list[str]


class NetworkList(msgspec.Struct, kw_only=True):
    items: list[NetworkOut]
