"""Small media files made in the tests: images with Pillow, MP4/MOV built box by box (so the
tests know exactly what each header says)."""

from __future__ import annotations

import io
import struct

IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
ROTATE_90 = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)


def image(fmt: str = "JPEG", size: tuple[int, int] = (1080, 1080), *, orientation: int | None = None,
          frames: int = 1) -> bytes:
    from PIL import Image

    mode = "P" if fmt == "GIF" else "RGB"
    picture = Image.new(mode, size, 3 if mode == "P" else (200, 80, 40))
    out = io.BytesIO()
    kwargs: dict = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    if frames > 1:
        kwargs.update(save_all=True, append_images=[picture.copy() for _ in range(frames - 1)], duration=100)
    picture.save(out, fmt, **kwargs)
    return out.getvalue()


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def large_box(kind: bytes, payload: bytes = b"") -> bytes:
    """A box with the 64-bit size form (size field 1, then the real size)."""
    return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload


def mvhd(timescale: int, duration: int, version: int = 0) -> bytes:
    if version == 1:
        times = struct.pack(">QQIQ", 0, 0, timescale, duration)
    else:
        times = struct.pack(">IIII", 0, 0, timescale, duration)
    rest = struct.pack(">IH", 0x10000, 0x100) + bytes(10) + struct.pack(">9i", *IDENTITY) + bytes(24) + struct.pack(">I", 2)
    return box(b"mvhd", bytes([version, 0, 0, 0]) + times + rest)


def tkhd(width: int, height: int, *, version: int = 0, matrix: tuple[int, ...] = IDENTITY) -> bytes:
    if version == 1:
        ids = struct.pack(">QQIIQ", 0, 0, 1, 0, 0)
    else:
        ids = struct.pack(">IIIII", 0, 0, 1, 0, 0)
    body = ids + bytes(8) + struct.pack(">hhhh", 0, 0, 0, 0) + struct.pack(">9i", *matrix)
    body += struct.pack(">II", width << 16, height << 16)
    return box(b"tkhd", bytes([version, 0, 0, 3]) + body)


def hdlr(handler: bytes) -> bytes:
    return box(b"hdlr", bytes(4) + bytes(4) + handler + bytes(12) + b"handler\x00")


def trak(width: int, height: int, handler: bytes | None = b"vide", **tkhd_args) -> bytes:
    media = box(b"mdia", box(b"mdhd", bytes(24)) + hdlr(handler)) if handler else b""
    return box(b"trak", tkhd(width, height, **tkhd_args) + media)


def video(*, brand: bytes = b"isom", width: int = 1080, height: int = 1920, duration_ms: int = 15_000,
          timescale: int = 600, mvhd_version: int = 0, moov_first: bool = True, tracks: bytes | None = None,
          mdat_bytes: int = 2048) -> bytes:
    ftyp = box(b"ftyp", brand + bytes(4) + b"isomiso2mp41")
    moov = box(b"moov", mvhd(timescale, duration_ms * timescale // 1000, mvhd_version)
               + (tracks if tracks is not None else trak(0, 0, b"soun") + trak(width, height)))
    mdat = box(b"mdat", bytes(mdat_bytes))
    return ftyp + (moov + mdat if moov_first else mdat + moov)


def mov(**kwargs) -> bytes:
    return video(brand=b"qt  ", **kwargs)
