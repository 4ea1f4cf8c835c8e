"""How each network counts text. Pure functions."""

from __future__ import annotations

import re
import unicodedata

from domain.networks.adapters.base import TextCounting

# twitter-text v3: these ranges weigh 1, everything else 2; a URL weighs 23; an emoji
# (with its modifiers and ZWJ partners) weighs 2 in all.
_X_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
_X_URL_WEIGHT = 23
_URL_RE = re.compile(r"https?://[^\s]+|(?<![@\w])(?:[a-z0-9-]+\.)+(?:com|org|net|io|es|co|dev|app|info|me)(?:/[^\s]*)?", re.I)
_EMOJI_RANGES = ((0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0x1F1E6, 0x1F1FF))
_EMOJI_JOINERS = {0x200D, 0xFE0F, 0x20E3}


def _is_emoji(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _EMOJI_RANGES)


def _is_modifier(cp: int) -> bool:
    return cp in _EMOJI_JOINERS or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F


def x_weighted_length(text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    total = 0
    last = 0
    for match in _URL_RE.finditer(text):
        total += _x_plain(text[last : match.start()]) + _X_URL_WEIGHT
        last = match.end()
    return total + _x_plain(text[last:])


def _is_regional_indicator(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _x_plain(text: str) -> int:
    total = 0
    in_emoji = False
    joining = False
    half_flag = False  # a flag is two regional indicators: one emoji
    for char in text:
        cp = ord(char)
        if in_emoji and (_is_modifier(cp) or (joining and _is_emoji(cp))):
            joining = cp == 0x200D
            continue
        if half_flag and _is_regional_indicator(cp):
            half_flag = False
            continue
        if _is_emoji(cp):
            total += 2
            in_emoji, joining = True, False
            half_flag = _is_regional_indicator(cp)
            continue
        in_emoji = joining = half_flag = False
        total += 1 if any(lo <= cp <= hi for lo, hi in _X_LIGHT) else 2
    return total


def text_length(text: str, counting: TextCounting) -> int:
    if counting is TextCounting.X_WEIGHTED:
        return x_weighted_length(text)
    if counting is TextCounting.UTF16_UNITS:
        return len(text.encode("utf-16-le")) // 2
    if counting is TextCounting.UTF8_BYTES:
        return len(text.encode("utf-8"))
    return len(text)


_HASHTAG_RE = re.compile(r"(?<![\w#])#\w+")
_MENTION_RE = re.compile(r"(?<![\w@])@[\w.]+")


def hashtags(text: str) -> list[str]:
    return _HASHTAG_RE.findall(text)


def mentions(text: str) -> list[str]:
    return _MENTION_RE.findall(text)
