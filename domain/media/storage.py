"""Where media bytes live: local disk by default, any S3-compatible service in production.

Keys are made by the service from ids only (`<agency>/<brand>/<uuid>.<ext>`, the extension
from the sniffed type), never from anything a client sent. All file and network I/O runs in
worker threads, off the event loop.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread

from domain.core.settings import Settings

log = logging.getLogger("chorus.media")
CHUNK = 256 * 1024
_KEY = re.compile(r"[0-9a-f-]{36}/[0-9a-f-]{36}/[0-9a-f]{32}\.[a-z0-9]{2,5}")


class StoredObjectMissingError(Exception):
    """The row points at bytes the storage does not have (lost, or deleted by hand)."""


class Storage(Protocol):
    async def put(self, key: str, source: Path, content_type: str) -> None:
        """Store the file at `source` under `key`. `source` may be moved away."""

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The bytes under `key` in chunks. Raises StoredObjectMissingError before the first
        chunk (so a route can still answer 404) when there is nothing there."""

    async def delete(self, key: str) -> None:
        """Forget `key`; nothing there is not an error."""


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a media storage key: {key!r}")
    return key


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, source: Path, content_type: str) -> None:
        await anyio.to_thread.run_sync(self._put, self.path(key), source)

    @staticmethod
    def _put(target: Path, source: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)  # same file system: atomic, no copy
        except OSError as err:
            if err.errno != errno.EXDEV:
                raise
            # Another file system: copy beside the target, then rename, so a reader never
            # sees half a file.
            partial = target.with_suffix(target.suffix + ".part")
            shutil.copyfile(source, partial)
            os.replace(partial, target)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self.path(key)
        try:
            f = await anyio.to_thread.run_sync(open, path, "rb")
        except FileNotFoundError:
            raise StoredObjectMissingError(key) from None

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await anyio.to_thread.run_sync(f.read, CHUNK):
                    yield chunk
            finally:
                await anyio.to_thread.run_sync(f.close)

        return chunks()

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(lambda: self.path(key).unlink(missing_ok=True))


class S3Storage:
    """Any S3-compatible service (AWS S3, MinIO, Ceph, R2, ...), through boto3.

    boto3 clients are thread-safe, so one client serves every worker thread. Every call has
    a connect and read timeout and at most two retries."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        import boto3
        from botocore.config import Config

        if not settings.media_s3_bucket:
            raise RuntimeError("CHORUS_MEDIA_STORAGE=s3 needs CHORUS_MEDIA_S3_BUCKET")
        config = Config(
            connect_timeout=min(settings.media_s3_timeout_seconds, 10),
            read_timeout=settings.media_s3_timeout_seconds,
            retries={"total_max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": settings.media_s3_addressing_style},
            signature_version="s3v4",
        )
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.media_s3_endpoint_url,
            region_name=settings.media_s3_region,
            aws_access_key_id=settings.media_s3_access_key_id,
            aws_secret_access_key=settings.media_s3_secret_access_key,
            config=config,
        )
        return cls(client, settings.media_s3_bucket)

    async def put(self, key: str, source: Path, content_type: str) -> None:
        # upload_file switches to a multipart upload for large files by itself.
        await anyio.to_thread.run_sync(lambda: self.client.upload_file(
            str(source), self.bucket, check_key(key), ExtraArgs={"ContentType": content_type}))

    async def open(self, key: str) -> AsyncIterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            response = await anyio.to_thread.run_sync(
                lambda: self.client.get_object(Bucket=self.bucket, Key=check_key(key)))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise StoredObjectMissingError(key) from None
            raise
        body = response["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await anyio.to_thread.run_sync(body.read, CHUNK):
                    yield chunk
            finally:
                await anyio.to_thread.run_sync(body.close)

        return chunks()

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(lambda: self.client.delete_object(Bucket=self.bucket, Key=check_key(key)))


def storage_for(settings: Settings) -> Storage:
    if settings.media_storage == "s3":
        return S3Storage.from_settings(settings)
    if settings.media_storage == "local":
        return LocalStorage(settings.media_root())
    raise RuntimeError(f"CHORUS_MEDIA_STORAGE must be local or s3, not {settings.media_storage!r}")
