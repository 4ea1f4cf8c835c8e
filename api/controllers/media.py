"""The media library: multipart uploads streamed to disk, the library's list, tags and
deletion, and signed public links served without a credential."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar._multipart import parse_content_header
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Operation, OpenAPIMediaType, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from multipart import MultipartError, MultipartSegment, ParserLimitReached, PushMultipartParser

from api.auth import ContextOpener, etag, if_match_version, provide_context_opener, requires
from api.controllers.agencies import ETAG_HEADER, IF_MATCH
from api.controllers.common import Cursor, Limit, page_out, page_request
from api.problems import CREATE, DELETE, LIST, READ, SECURED, WRITE, problems
from domain.agencies.rules import Action
from domain.core.clock import now
from domain.core.context import Context
from domain.core.errors import DomainError, ValidationFailedError
from domain.media import schemas as s
from domain.media.incoming import SUPPORTED, IncomingFile, MediaTooLargeError, MediaTypeUnsupportedError
from domain.media.service import MediaService, UploadFields, media_out, normalize_tags, open_link
from domain.media.storage import Storage, storage_for

MediaSort = Annotated[
    Literal["created_at", "-created_at", "filename", "-filename", "size_bytes", "-size_bytes"] | None,
    QueryParameter(description="Sort order; '-' for descending (default -created_at, newest first)"),
]
SERVED_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4", "video/quicktime")
# The text parts of an upload form are small; the file part is the only big one.
_MAX_TEXT_PART = 16 * 1024
_FORM_FIELDS = {"file", "tags", "alt_text"}
# Room for the text parts and each part's headers around the file.
_FORM_OVERHEAD = (len(_FORM_FIELDS) + s.MAX_TAGS) * (_MAX_TEXT_PART + 1024)
# The request's transaction stays open while a big upload streams in; a query now and then
# keeps PostgreSQL's idle-in-transaction timeout (60 s) from ending it mid-upload.


def media_storage(state: State) -> Storage:
    """One storage per app, made on first use from the app's settings."""
    storage = state.get("media_storage")
    if storage is None:
        storage = state["media_storage"] = storage_for(state.settings)
    return storage


def _service(ctx: Context, state: State) -> MediaService:
    return MediaService(ctx, media_storage(state), state.settings)


@dataclass
class _UploadOperation(Operation):
    """The upload reads its multipart body itself (streamed, cut at the limit); this states
    the form it reads in the document."""

    def __post_init__(self) -> None:
        binary = Schema(type=OpenAPIType.STRING, format="binary",  # type: ignore[arg-type]
                        description=f"The image or video ({SUPPORTED}); its type is read from its bytes")
        form = Schema(
            type=OpenAPIType.OBJECT,
            required=["file"],
            properties={
                "file": binary,
                "tags": Schema(type=OpenAPIType.ARRAY, max_items=s.MAX_TAGS,
                               items=Schema(type=OpenAPIType.STRING, min_length=1, max_length=50, pattern="^[^,]+$"),
                               description="Tags: repeat the field, or separate them with commas; stored lower-cased"),
                "alt_text": Schema(type=OpenAPIType.STRING, max_length=s.MAX_ALT_TEXT,
                                   description="Alternative text for people who cannot see the image"),
            },
        )
        self.request_body = RequestBody(content={"multipart/form-data": OpenAPIMediaType(schema=form)}, required=True)


@dataclass
class _FileOperation(Operation):
    """The public file route answers the stored file's own type."""

    def __post_init__(self) -> None:
        ok = self.responses and self.responses.get("200")
        if ok is not None and not isinstance(ok, dict):
            binary = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]
            ok.content = {t: OpenAPIMediaType(schema=binary) for t in SERVED_TYPES}  # type: ignore[union-attr]


@dataclass
class _Part:
    name: str
    data: bytearray


async def read_upload(request: Request[Any, Any, Any], incoming: IncomingFile) -> UploadFields:
    """Stream a multipart/form-data body: the file part into `incoming`, the text parts into
    memory (small, bounded). Unknown parts are refused, as unknown JSON fields are."""
    content_type, options = parse_content_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary")
    if content_type != "multipart/form-data" or not boundary:
        raise MediaTypeUnsupportedError("Send the file as multipart/form-data with a `file` part")
    texts: dict[str, list[str]] = {}
    files = 0
    current: _Part | None = None
    try:
        with PushMultipartParser(boundary, max_segment_count=len(_FORM_FIELDS) + s.MAX_TAGS) as parser:
            async for chunk in request.stream():
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        name = event.name or ""
                        if name not in _FORM_FIELDS:
                            raise ValidationFailedError.field(name or "form", f"Unknown form field {name!r}")
                        if name == "file":
                            files += 1
                            if files > 1:
                                raise ValidationFailedError.field("file", "Send one file per upload")
                            incoming.filename = event.filename or ""
                        current = _Part(name, bytearray())
                    elif event:
                        assert current is not None
                        if current.name == "file":
                            await incoming.write(bytes(event))
                        else:
                            current.data.extend(event)
                            if len(current.data) > _MAX_TEXT_PART:
                                raise ValidationFailedError.field(current.name, "This form field is too long")
                    elif current is not None:  # end of a part
                        if current.name != "file":
                            texts.setdefault(current.name, []).append(_text(current))
                        current = None
    except ParserLimitReached as err:
        raise ValidationFailedError.field("form", f"The form has too many or too large parts: {err}") from None
    except MultipartError as err:
        raise DomainError(f"The multipart body is malformed: {err}") from None
    if not files:
        raise ValidationFailedError.field("file", "Add the image or video as a `file` part")
    tags = [t for value in texts.get("tags", []) for t in value.split(",") if t.strip()]
    alt_texts = texts.get("alt_text", [])
    if len(alt_texts) > 1:
        raise ValidationFailedError.field("alt_text", "Send alt_text once")
    alt_text = alt_texts[0] if alt_texts else ""
    if len(alt_text) > s.MAX_ALT_TEXT:
        raise ValidationFailedError.field("alt_text", f"At most {s.MAX_ALT_TEXT} characters")
    return UploadFields(tags=normalize_tags(tags), alt_text=alt_text)


def _check_announced_size(request: Request[Any, Any, Any], settings: Any) -> None:
    """A body announced bigger than any file may be is refused before a byte of it is read.
    (What is really sent is counted as it arrives: a smaller announcement is no way round.)"""
    announced = request.headers.get("content-length", "")
    largest = max(settings.media_max_image_bytes, settings.media_max_video_bytes)
    if announced.isdigit() and int(announced) > largest + _FORM_OVERHEAD:
        raise MediaTooLargeError(f"A file may be at most {largest} bytes", field="file")


def _text(part: _Part) -> str:
    try:
        value = part.data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailedError.field(part.name, "Form fields must be UTF-8 text") from None
    if "\x00" in value:
        raise ValidationFailedError.field(part.name, "Text fields may not contain NUL characters")
    return value


class BrandMediaController(Controller):
    path = "/v1/brands/{brand_id:uuid}/media"
    tags = ["Media"]
    security = SECURED

    @post("/", operation_id="uploadMedia", summary="Upload an image or video to the brand's library",
          **requires(Action.MEDIA_WRITE, (
              f"A multipart/form-data body with one `file` part ({SUPPORTED}), optional `tags` and `alt_text`. "
              "The type is read from the file's bytes, never from its name or declared type. Images over "
              "CHORUS_MEDIA_MAX_IMAGE_BYTES and videos over CHORUS_MEDIA_MAX_VIDEO_BYTES are refused with 413 "
              "as soon as they pass the limit. The answer includes image dimensions, video duration and size, "
              "and how the file fits each network."), long_body=True),
          dependencies={"open_context": Provide(provide_context_opener)},
          responses=problems(*CREATE, 404, 415), status_code=HTTP_201_CREATED, response_headers=ETAG_HEADER,
          request_max_body_size=None, operation_class=_UploadOperation)
    async def upload_media(self, open_context: NamedDependency[ContextOpener], state: State,
                           request: Request[Any, Any, Any], brand_id: FromPath[UUID]) -> Response[s.MediaOut]:
        # No database connection is held while the body arrives: one short transaction to
        # check the brand before reading anything, one to record the file once it is in.
        settings = state.settings
        async with open_context() as ctx:
            await _service(ctx, state).brand_for_upload(brand_id)
        _check_announced_size(request, settings)
        async with IncomingFile(settings.media_incoming_dir(), max_image_bytes=settings.media_max_image_bytes,
                                max_video_bytes=settings.media_max_video_bytes) as incoming:
            fields = await read_upload(request, incoming)
            async with open_context() as ctx:
                service = _service(ctx, state)
                asset = await service.create(await service.brand_for_upload(brand_id), incoming, fields)
                out, version = media_out(asset), asset.version
        return Response(out, status_code=HTTP_201_CREATED, headers={
            "ETag": etag(version), "Location": f"/v1/media/{asset.id}"})


class MediaController(Controller):
    path = "/v1/media"
    tags = ["Media"]
    security = SECURED

    @get("/", operation_id="listMedia", summary="The media library, filtered by brand, kind or tags",
         **requires(Action.MEDIA_READ), responses=problems(*LIST))
    async def list_media(
        self, ctx: NamedDependency[Context], state: State, limit: Limit = 50, cursor: Cursor = None,
        sort: MediaSort = None, brand_id: FromQuery[UUID | None] = None, kind: FromQuery[s.MediaKind | None] = None,
        tag: Annotated[list[str] | None, QueryParameter(description="Only media with every one of these tags")] = None,
    ) -> s.MediaPage:
        page = await _service(ctx, state).list(page_request(limit, cursor, sort), brand_id, kind, tag)
        return page_out(s.MediaPage, page)

    @get("/{media_id:uuid}", operation_id="getMedia", summary="One media file's facts and how it fits each network",
         **requires(Action.MEDIA_READ), responses=problems(*READ), response_headers=ETAG_HEADER)
    async def get_media(self, ctx: NamedDependency[Context], state: State,
                        media_id: FromPath[UUID]) -> Response[s.MediaOut]:
        asset = await _service(ctx, state).get(media_id)
        return Response(media_out(asset), headers={"ETag": etag(asset.version)})

    @patch("/{media_id:uuid}", operation_id="updateMedia", summary="Change a media file's tags, alt text or name",
           **requires(Action.MEDIA_WRITE), responses=problems(*WRITE), response_headers=ETAG_HEADER)
    async def update_media(
        self, ctx: NamedDependency[Context], state: State, media_id: FromPath[UUID], data: JSONBody[s.MediaUpdate],
        request: Request[Any, Any, Any], if_match: Annotated[str | None, IF_MATCH] = None,
    ) -> Response[s.MediaOut]:
        asset = await _service(ctx, state).update(media_id, data, if_match_version(request))
        return Response(media_out(asset), headers={"ETag": etag(asset.version)})

    @delete("/{media_id:uuid}", operation_id="deleteMedia", summary="Delete a media file from the library",
            **requires(Action.MEDIA_WRITE, (
                "Refused with 409 `media-in-use` while the file is on any post: remove it from posts not "
                "published yet first; a file that went out with a published post stays as that post's record.")),
            responses=problems(*DELETE), status_code=HTTP_204_NO_CONTENT)
    async def delete_media(self, ctx: NamedDependency[Context], state: State, media_id: FromPath[UUID]) -> None:
        await _service(ctx, state).delete(media_id)

    @post("/{media_id:uuid}/public-url", operation_id="createMediaPublicUrl",
          summary="A signed, expiring link to the file, for networks that fetch media by URL",
          **requires(Action.MEDIA_READ, (
              "Anyone holding the link can fetch the file until `expires_at` (at most CHORUS_MEDIA_URL_TTL "
              "seconds; `expires_in` asks for less). Deleting the file ends every link to it.")),
          responses=problems(*READ, 413, 422), status_code=HTTP_201_CREATED)
    async def create_public_url(self, ctx: NamedDependency[Context], state: State, media_id: FromPath[UUID],
                                data: JSONBody[s.MediaLinkCreate | None] = None) -> s.MediaLinkOut:
        return await _service(ctx, state).create_link(media_id, data or s.MediaLinkCreate())


@get("/media/{token:str}", operation_id="getMediaFile", summary="The file behind a signed media link",
     description="No credential: the signed token is the permission. 404 for a token Chorus did not sign, "
                 "410 once it has expired.",
     tags=["Media"], opt={"public": True}, responses=problems(400, 404, 410), operation_class=_FileOperation)
async def get_media_file(state: State, token: Annotated[str, Parameter(max_length=200)]) -> Stream:
    linked = await open_link(state.session_factory, media_storage(state), state.settings, token)
    max_age = max(0, linked.expires_at - int(now().timestamp()))
    return Stream(linked.chunks, media_type=linked.content_type, headers={
        "Content-Length": str(linked.size_bytes),
        # Never cached past the link's own expiry, and never by shared caches.
        "Cache-Control": f"private, max-age={max_age}",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(linked.filename, safe='')}",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex",
    })


MEDIA_HANDLERS = [BrandMediaController, MediaController, get_media_file]
