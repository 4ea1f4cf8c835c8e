"""Typing media from its bytes, reading image and video facts, signed links, and the
streaming upload's limits. No database."""

from __future__ import annotations

import io
import struct
import uuid
from pathlib import Path

import pytest

from domain.core.errors import ValidationFailedError
from domain.media import links
from domain.media.incoming import IncomingFile, MediaTooLargeError, MediaTypeUnsupportedError
from domain.media.probe import GIF, JPEG, MOV, MP4, PNG, WEBP, MediaUnreadableError, image_size, probe, read_video, sniff
from tests import media_files as mf


def _video_facts(data: bytes, tmp_path: Path):
    path = tmp_path / "v.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        return read_video(f)


# --- sniffing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "expected"), [
    (mf.image("JPEG", (10, 10)), JPEG),
    (mf.image("PNG", (10, 10)), PNG),
    (mf.image("GIF", (10, 10)), GIF),
    (mf.image("WEBP", (10, 10)), WEBP),
    (mf.video(), MP4),
    (mf.video(brand=b"mp42"), MP4),
    (mf.mov(), MOV),
])
def test_sniff_knows_each_type_from_its_bytes(data, expected):
    assert sniff(data[:12]) == expected


@pytest.mark.parametrize("data", [
    b"",
    b"hello world, plain text",
    b"%PDF-1.7\n...",
    b"PK\x03\x04zip archive",
    b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",  # a HEIF still image, not a video
    b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00",  # audio only
    b"RIFF\x00\x00\x00\x00WAVE",  # RIFF, but sound
])
def test_sniff_refuses_what_the_library_does_not_take(data):
    assert sniff(data[:12]) is None


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_image_dimensions(tmp_path, fmt):
    path = tmp_path / "i"
    path.write_bytes(mf.image(fmt, (640, 360)))
    facts = probe(path, sniff(path.read_bytes()[:12]))
    assert (facts.width, facts.height, facts.duration_ms) == (640, 360, None)


def test_jpeg_turned_by_exif_reports_the_size_people_see(tmp_path):
    path = tmp_path / "portrait.jpg"
    path.write_bytes(mf.image("JPEG", (1600, 1200), orientation=6))  # stored landscape, shown portrait
    assert image_size(path, JPEG) == (1200, 1600)
    path.write_bytes(mf.image("JPEG", (1600, 1200), orientation=3))  # upside down: same shape
    assert image_size(path, JPEG) == (1600, 1200)


def test_animated_gif_is_a_gif(tmp_path):
    path = tmp_path / "a.gif"
    path.write_bytes(mf.image("GIF", (320, 240), frames=3))
    facts = probe(path, sniff(path.read_bytes()[:12]))
    assert (facts.kind, facts.content_type, facts.width, facts.height) == ("gif", "image/gif", 320, 240)


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + b"garbage" * 10,  # the signature, then nothing an image has
    b"\xff\xd8\xff" + b"\x00" * 40,
    mf.image("PNG", (50, 50))[:20],  # cut off inside the header
])
def test_image_whose_dimensions_cannot_be_read_is_refused(tmp_path, data):
    path = tmp_path / "bad"
    path.write_bytes(data)
    with pytest.raises(MediaUnreadableError):
        probe(path, sniff(data[:12]))


# --- videos (hand-built ISO BMFF) -------------------------------------------------------------


def test_mp4_duration_and_size(tmp_path):
    facts = _video_facts(mf.video(width=1080, height=1920, duration_ms=15_000, timescale=600), tmp_path)
    assert (facts.duration_ms, facts.width, facts.height) == (15_000, 1080, 1920)


def test_moov_after_mdat_and_version_1_headers(tmp_path):
    tracks = mf.trak(1920, 1080, version=1)
    data = mf.video(moov_first=False, mvhd_version=1, timescale=90_000, duration_ms=61_500, tracks=tracks)
    facts = _video_facts(data, tmp_path)
    assert (facts.duration_ms, facts.width, facts.height) == (61_500, 1920, 1080)


def test_64_bit_box_sizes(tmp_path):
    ftyp = mf.box(b"ftyp", b"isom" + bytes(4) + b"isom")
    mdat = mf.large_box(b"mdat", bytes(4096))
    moov = mf.large_box(b"moov", mf.mvhd(1000, 7_250) + mf.trak(640, 480))
    facts = _video_facts(ftyp + mdat + moov, tmp_path)
    assert (facts.duration_ms, facts.width, facts.height) == (7_250, 640, 480)


def test_rotated_track_reports_the_displayed_shape(tmp_path):
    data = mf.video(tracks=mf.trak(1920, 1080, matrix=mf.ROTATE_90))  # a phone video shot upright
    facts = _video_facts(data, tmp_path)
    assert (facts.width, facts.height) == (1080, 1920)


def test_audio_track_first_then_video(tmp_path):
    data = mf.video(tracks=mf.trak(0, 0, b"soun") + mf.trak(1280, 720))
    assert (_video_facts(data, tmp_path).width, _video_facts(data, tmp_path).height) == (1280, 720)


def test_track_without_handler_box_is_judged_by_its_size(tmp_path):
    data = mf.video(tracks=mf.trak(800, 600, handler=None))
    assert _video_facts(data, tmp_path).width == 800


def test_fragmented_mp4_takes_its_duration_from_mehd(tmp_path):
    mehd = mf.box(b"mehd", bytes(4) + struct.pack(">I", 12 * 600))
    moov = mf.box(b"moov", mf.mvhd(600, 0) + mf.trak(720, 1280) + mf.box(b"mvex", mehd))
    data = mf.box(b"ftyp", b"iso6" + bytes(4)) + moov + mf.box(b"moof", bytes(16)) + mf.box(b"mdat", bytes(64))
    assert _video_facts(data, tmp_path).duration_ms == 12_000


def test_unknown_duration_is_none_not_a_guess(tmp_path):
    moov = mf.box(b"moov", mf.mvhd(600, 0xFFFFFFFF) + mf.trak(720, 1280))
    facts = _video_facts(mf.box(b"ftyp", b"isom" + bytes(4)) + moov, tmp_path)
    assert facts.duration_ms is None and facts.width == 720


def test_last_box_with_size_zero_runs_to_the_end(tmp_path):
    ftyp = mf.box(b"ftyp", b"isom" + bytes(4))
    moov_payload = mf.mvhd(1000, 3_000) + mf.trak(100, 100)
    moov = struct.pack(">I4s", 0, b"moov") + moov_payload
    assert _video_facts(ftyp + moov, tmp_path).duration_ms == 3_000


def test_video_cut_short_before_moov_is_refused(tmp_path):
    data = mf.video(moov_first=False)
    cut = data[: len(data) - 300]  # the upload stopped inside the trailing moov
    cut_facts = None
    try:
        cut_facts = _video_facts(cut, tmp_path)
    except MediaUnreadableError:
        pass
    assert cut_facts is None or cut_facts.duration_ms == 15_000  # clamped read, or refused: never a crash
    with pytest.raises(MediaUnreadableError, match="moov"):
        _video_facts(mf.box(b"ftyp", b"isom" + bytes(4)) + mf.box(b"mdat", bytes(100)), tmp_path)


def test_audio_only_file_is_not_a_video(tmp_path):
    with pytest.raises(MediaUnreadableError, match="no video track"):
        _video_facts(mf.video(tracks=mf.trak(0, 0, b"soun")), tmp_path)


def test_malformed_box_size_is_refused(tmp_path):
    bad = mf.box(b"ftyp", b"isom" + bytes(4)) + struct.pack(">I4s", 4, b"moov")  # smaller than its header
    with pytest.raises(MediaUnreadableError, match="malformed"):
        _video_facts(bad, tmp_path)


def test_a_file_of_endless_tiny_boxes_stops_early(tmp_path):
    data = mf.box(b"ftyp", b"isom" + bytes(4)) + mf.box(b"free") * 20_000
    with pytest.raises(MediaUnreadableError, match="too many boxes"):
        _video_facts(data, tmp_path)


def test_probe_of_a_mov_file(tmp_path):
    path = tmp_path / "clip.mov"
    path.write_bytes(mf.mov(width=1920, height=1080, duration_ms=4_000))
    facts = probe(path, sniff(path.read_bytes()[:12]))
    assert (facts.kind, facts.content_type, facts.width, facts.height, facts.duration_ms) == (
        "video", "video/quicktime", 1920, 1080, 4_000)


# --- signed links -------------------------------------------------------------------------------


def test_signed_link_round_trip_and_refusals():
    key = links.link_key("secret")
    agency, media = uuid.uuid4(), uuid.uuid4()
    token = links.sign(key, agency, media, 2_000)
    assert links.verify(key, token, 1_999) == (agency, media, 2_000)
    with pytest.raises(links.LinkExpiredError):
        links.verify(key, token, 2_000)
    with pytest.raises(links.LinkInvalidError):
        links.verify(links.link_key("another secret"), token, 1_000)
    # Every single-character change is refused, including one that would push the expiry out.
    for i in range(len(token)):
        swapped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
        with pytest.raises(links.LinkInvalidError):
            links.verify(key, swapped, 1_000)
    for bad in ["", "x", token + "A", token[:-1], token[:10] + "!" + token[10:], token + "\n"]:
        with pytest.raises(links.LinkInvalidError):
            links.verify(key, bad, 1_000)


def test_link_key_is_not_the_secret_itself():
    assert links.link_key("secret") != b"secret" and len(links.link_key("secret")) == 32


# --- the streaming upload -------------------------------------------------------------------------


async def test_upload_over_the_limit_is_cut_off_without_reading_the_rest(tmp_path):
    chunk = b"\xff\xd8\xff" + bytes(64 * 1024 - 3)
    sent = 0
    with pytest.raises(MediaTooLargeError, match="at most"):
        async with IncomingFile(tmp_path, max_image_bytes=200_000, max_video_bytes=10**9) as incoming:
            for _ in range(10_000):  # 640 MB if it were all read
                await incoming.write(chunk if sent == 0 else bytes(64 * 1024))
                sent += 1
    assert sent * 64 * 1024 <= 200_000 + 64 * 1024  # stopped at the first chunk past the limit
    assert list(tmp_path.iterdir()) == []  # and nothing is left on disk


async def test_unknown_type_is_refused_on_its_first_bytes(tmp_path):
    with pytest.raises(MediaTypeUnsupportedError):
        async with IncomingFile(tmp_path, max_image_bytes=10, max_video_bytes=10) as incoming:
            await incoming.write(b"MZ\x90\x00 an executable, say")
    assert list(tmp_path.iterdir()) == []


async def test_empty_upload_is_a_validation_error(tmp_path):
    with pytest.raises(ValidationFailedError):
        async with IncomingFile(tmp_path, max_image_bytes=10, max_video_bytes=10) as incoming:
            await incoming.finish()
    assert list(tmp_path.iterdir()) == []


async def test_video_limit_applies_to_videos(tmp_path):
    data = mf.video(mdat_bytes=50_000)
    async with IncomingFile(tmp_path, max_image_bytes=1_000, max_video_bytes=100_000) as incoming:
        for i in range(0, len(data), 4096):
            await incoming.write(data[i:i + 4096])
        assert (await incoming.finish()) == MP4
        assert incoming.path.read_bytes() == data and incoming.size == len(data)
        import hashlib

        assert incoming.sha256 == hashlib.sha256(data).hexdigest()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MediaTooLargeError, match="A video"):
        async with IncomingFile(tmp_path, max_image_bytes=10**9, max_video_bytes=10_000) as incoming:
            await incoming.write(io.BytesIO(data).read())
