"""An upload as it streams in: written to a temporary file, counted, hashed and typed on the
way, and cut off the moment it passes the limit for its type, so a huge or unwanted upload
is never read into memory nor read to its end."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import anyio.to_thread

from domain.core.errors import DomainError, ValidationFailedError
from domain.media.probe import SNIFF_BYTES, Sniffed, sniff

# Written to disk in pieces of about this size: one thread hop per MiB, not per network chunk.
_FLUSH_BYTES = 1024 * 1024


class MediaTooLargeError(DomainError):
    status = 413
    slug = "media-too-large"
    title = "The file is larger than the limit for its type"


class MediaTypeUnsupportedError(DomainError):
    status = 415
    slug = "media-type-unsupported"
    title = "The library does not take this type of file"


SUPPORTED = "JPEG, PNG, GIF and WebP images; MP4 and MOV videos"


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB ({n} bytes)"


class IncomingFile:
    def __init__(self, folder: Path, *, max_image_bytes: int, max_video_bytes: int) -> None:
        self.folder = folder
        self.max_image_bytes = max_image_bytes
        self.max_video_bytes = max_video_bytes
        self.size = 0
        self.sniffed: Sniffed | None = None
        self.filename = ""
        self._head = bytearray()
        self._buffer = bytearray()
        self._sha256 = hashlib.sha256()
        self._file: IO[bytes] | None = None
        self.path: Path | None = None

    async def __aenter__(self) -> IncomingFile:
        def create() -> IO[bytes]:
            self.folder.mkdir(parents=True, exist_ok=True)
            return tempfile.NamedTemporaryFile(dir=self.folder, prefix="upload-", delete=False)  # noqa: SIM115

        self._file = await anyio.to_thread.run_sync(create)
        self.path = Path(self._file.name)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        # Whatever happened, nothing stays behind: a stored upload was moved away already.
        file, path = self._file, self.path
        self._file = None

        def clean() -> None:
            if file is not None and not file.closed:
                file.close()
            if path is not None:
                path.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(clean)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def limit(self) -> int:
        if self.sniffed is None:
            return max(self.max_image_bytes, self.max_video_bytes)
        return self.max_video_bytes if self.sniffed.kind == "video" else self.max_image_bytes

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.sniffed is None:
            self._head.extend(chunk[: SNIFF_BYTES - len(self._head)])
            if len(self._head) >= SNIFF_BYTES:
                self._sniff()
        if self.size > self.limit:
            kind = "A video" if self.sniffed and self.sniffed.kind == "video" else "An image"
            raise MediaTooLargeError(f"{kind} may be at most {_megabytes(self.limit)}", field="file")
        self._sha256.update(chunk)
        self._buffer.extend(chunk)
        if len(self._buffer) >= _FLUSH_BYTES:
            await self._flush()

    async def finish(self) -> Sniffed:
        """Everything arrived: the type, or the problem with the file."""
        if self.size == 0:
            raise ValidationFailedError.field("file", "The file is empty")
        if self.sniffed is None:
            self._sniff()
        await self._flush()
        assert self._file is not None

        def close(f: IO[bytes]) -> None:
            f.flush()
            os.fsync(f.fileno())
            f.close()

        await anyio.to_thread.run_sync(close, self._file)
        assert self.sniffed is not None
        return self.sniffed

    def _sniff(self) -> None:
        found = sniff(bytes(self._head))
        if found is None:
            # Refused on its first bytes: the rest of the upload is never read.
            raise MediaTypeUnsupportedError(f"The file's content is not one of: {SUPPORTED}", field="file")
        self.sniffed = found

    async def _flush(self) -> None:
        if self._buffer and self._file is not None:
            data, self._buffer = bytes(self._buffer), bytearray()
            await anyio.to_thread.run_sync(self._file.write, data)
