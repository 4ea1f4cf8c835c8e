"""What a media file is, read from its own bytes: never from its name or the client's word.

`sniff` types a file from its first bytes; `probe` reads what the networks' rules need
(image dimensions, video duration and dimensions). Both are synchronous and do bounded
reads; the service runs them in a worker thread.

Videos are read by walking the ISO base media file format boxes (MP4, MOV) ourselves:
`moov/mvhd` holds the duration, `moov/trak/tkhd` each track's display size and matrix,
`moov/trak/mdia/hdlr` whether the track is video. No ffmpeg, no decoding: a file is walked
by seeking past box payloads, and only those few small boxes are read.
"""

from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

# Enough for every signature below (RIFF....WEBP and ....ftypXXXX need 12).
SNIFF_BYTES = 12

# ftyp major brands that are still images (HEIF/AVIF) or audio, not videos.
_NOT_VIDEO_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis",
                     b"M4A ", b"M4B ", b"M4P "}
# A file with more boxes than this is hostile or broken; a real one has a few dozen.
_MAX_BOXES = 10_000
# mvhd, tkhd, hdlr and mehd are around 100 bytes; read no more than this of any of them.
_SMALL_BOX = 4096
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class Sniffed:
    kind: str  # image, gif, video
    content_type: str
    extension: str  # for storage keys only, derived from the type, never from the upload's name


@dataclass(frozen=True)
class Probed:
    kind: str
    content_type: str
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


class MediaUnreadableError(Exception):
    """The bytes claim a type but what the networks need cannot be read from them."""


JPEG = Sniffed("image", "image/jpeg", "jpg")
PNG = Sniffed("image", "image/png", "png")
GIF = Sniffed("gif", "image/gif", "gif")
WEBP = Sniffed("image", "image/webp", "webp")
MP4 = Sniffed("video", "video/mp4", "mp4")
MOV = Sniffed("video", "video/quicktime", "mov")


def sniff(head: bytes) -> Sniffed | None:
    """The type of a file from its first bytes, or None for a type the library does not take."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp" and len(head) >= 12:
        brand = head[8:12]
        if brand in _NOT_VIDEO_BRANDS:
            return None
        return MOV if brand == b"qt  " else MP4
    return None


def probe(path: Path, sniffed: Sniffed) -> Probed:
    if sniffed.kind == "video":
        with open(path, "rb") as f:
            video = read_video(f)
        return Probed(sniffed.kind, sniffed.content_type, video.width, video.height, video.duration_ms)
    width, height = image_size(path, sniffed)
    return Probed(sniffed.kind, sniffed.content_type, width, height)


# --- images ---------------------------------------------------------------------------------

_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
# EXIF orientations 5-8 turn the picture a quarter: what people (and networks) see is the
# stored size with width and height swapped.
_QUARTER_TURNS = {5, 6, 7, 8}


def image_size(path: Path, sniffed: Sniffed) -> tuple[int, int]:
    """Width and height as displayed. Pillow reads only the header here; nothing is decoded."""
    from PIL import Image, UnidentifiedImageError

    orientation = None
    try:
        with warnings.catch_warnings():
            # Pillow warns past MAX_IMAGE_PIXELS and raises at twice it: both are refusals here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=[_PIL_FORMATS[sniffed.content_type]]) as image:
                width, height = image.size
                if sniffed is JPEG or sniffed is WEBP:
                    orientation = _orientation(image)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise MediaUnreadableError("The image has more pixels than any network takes") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error):
        raise MediaUnreadableError(
            f"The file starts like {sniffed.content_type} but its dimensions cannot be read") from None
    except Exception:  # noqa: BLE001 - Pillow's header parsers raise many kinds on hostile bytes
        raise MediaUnreadableError(
            f"The file starts like {sniffed.content_type} but its dimensions cannot be read") from None
    if width <= 0 or height <= 0:
        raise MediaUnreadableError("The image has no width or height")
    if orientation in _QUARTER_TURNS:
        width, height = height, width
    return width, height


def _orientation(image: object) -> int | None:
    """A broken EXIF block loses only the turn, not the image."""
    try:
        return image.getexif().get(0x0112)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - same reason as above
        return None


# --- videos (ISO base media file format) -----------------------------------------------------


@dataclass(frozen=True)
class VideoFacts:
    duration_ms: int | None
    width: int | None
    height: int | None


class _Budget:
    def __init__(self) -> None:
        self.left = _MAX_BOXES

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise MediaUnreadableError("The video has too many boxes to be a real MP4/MOV")


def _boxes(f: BinaryIO, start: int, end: int, budget: _Budget) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box between start and end. A box that
    claims to run past `end` (a cut-off upload) is clamped to it."""
    pos = start
    while pos + 8 <= end:
        budget.spend()
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        header_len = 8
        if size == 1:  # 64-bit size follows the type
            large = f.read(8)
            if len(large) < 8:
                return
            size = struct.unpack(">Q", large)[0]
            header_len = 16
        elif size == 0:  # the box runs to the end of its container
            size = end - pos
        if size < header_len:
            raise MediaUnreadableError("The video has a malformed box")
        box_end = min(pos + size, end)
        yield kind, pos + header_len, box_end
        pos = pos + size


def _read(f: BinaryIO, start: int, end: int) -> bytes:
    f.seek(start)
    return f.read(min(end - start, _SMALL_BOX))


def _child(f: BinaryIO, start: int, end: int, kind: bytes, budget: _Budget) -> tuple[int, int] | None:
    for found, payload_start, payload_end in _boxes(f, start, end, budget):
        if found == kind:
            return payload_start, payload_end
    return None


def _mvhd(data: bytes) -> tuple[int, int] | None:
    """(timescale, duration) from a movie header, or None when it is too short."""
    if not data:
        return None
    if data[0] == 1:
        if len(data) < 32:
            return None
        timescale, duration = struct.unpack(">IQ", data[20:32])
        unknown = 0xFFFFFFFFFFFFFFFF
    else:
        if len(data) < 20:
            return None
        timescale, duration = struct.unpack(">II", data[12:20])
        unknown = 0xFFFFFFFF
    return (timescale, 0 if duration == unknown else duration)


def _mehd(data: bytes) -> int | None:
    """Fragmented files give the whole duration in moov/mvex/mehd (mvhd says 0)."""
    if data[:1] == b"\x01" and len(data) >= 12:
        return struct.unpack(">Q", data[4:12])[0]
    if len(data) >= 8:
        return struct.unpack(">I", data[4:8])[0]
    return None


def _tkhd(data: bytes) -> tuple[int, int] | None:
    """The track's display width and height, turned by its matrix when it rotates a quarter."""
    offset = 52 if data[:1] == b"\x01" else 40
    if len(data) < offset + 44:
        return None
    a, b, _u, c, d = struct.unpack(">iiiii", data[offset:offset + 20])
    width, height = struct.unpack(">II", data[offset + 36:offset + 44])
    width, height = width >> 16, height >> 16  # 16.16 fixed point
    if a == 0 and d == 0 and b != 0 and c != 0:  # a 90 or 270 degree rotation
        width, height = height, width
    return width, height


def read_video(f: BinaryIO) -> VideoFacts:
    size = os.fstat(f.fileno()).st_size
    budget = _Budget()
    moov = _child(f, 0, size, b"moov", budget)
    if moov is None:
        raise MediaUnreadableError(
            "The video has no movie header (moov box): the file is cut short or is not a finished MP4/MOV")
    duration_ms: int | None = None
    timescale = 0
    fragmented_duration: int | None = None
    width = height = None
    saw_video = False
    for kind, start, end in _boxes(f, *moov, budget):
        if kind == b"mvhd":
            header = _mvhd(_read(f, start, end))
            if header is not None:
                timescale, duration = header
                if timescale and duration:
                    duration_ms = duration * 1000 // timescale
        elif kind == b"mvex":
            mehd = _child(f, start, end, b"mehd", budget)
            if mehd is not None:
                fragmented_duration = _mehd(_read(f, *mehd))
        elif kind == b"trak" and width is None:
            tkhd = _child(f, start, end, b"tkhd", budget)
            handler = _handler(f, start, end, budget)
            dims = _tkhd(_read(f, *tkhd)) if tkhd is not None else None
            # Audio tracks have a 0x0 header; without a handler box, the size decides.
            is_video = handler == b"vide" if handler is not None else bool(dims and dims[0] and dims[1])
            saw_video = saw_video or is_video
            if is_video and dims and dims[0] and dims[1]:
                width, height = dims
    if duration_ms is None and fragmented_duration and timescale:
        duration_ms = fragmented_duration * 1000 // timescale
    if not saw_video:
        raise MediaUnreadableError("The file has no video track")
    if duration_ms is not None and duration_ms > _INT32_MAX:
        duration_ms = None  # nonsense (weeks long): unknown rather than wrong
    return VideoFacts(duration_ms, width, height)


def _handler(f: BinaryIO, start: int, end: int, budget: _Budget) -> bytes | None:
    mdia = _child(f, start, end, b"mdia", budget)
    if mdia is None:
        return None
    hdlr = _child(f, *mdia, b"hdlr", budget)
    if hdlr is None:
        return None
    data = _read(f, *hdlr)
    return data[8:12] if len(data) >= 12 else None
