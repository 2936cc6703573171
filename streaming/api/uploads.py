"""Reading a multipart upload with limits enforced while the body streams in.

The size limit is checked against Content-Length before a byte is read, and counted again as
bytes arrive (chunked uploads, lying headers). A stalled upload (no bytes for
`upload_idle_timeout_s`) is cut off with 408 rather than holding a connection forever.
File parts spill to a temporary file after 1 MB (Starlette's spooling), so a large upload
costs disk, not memory.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncGenerator, BinaryIO
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from ..config import BatchConfig
from ..errors import FileTooLarge, InvalidRequest, UploadTimeout

MAX_FIELDS = 64


def _too_large(limit: int) -> FileTooLarge:
    return FileTooLarge(f"the upload is larger than the limit of {limit} bytes", param="file")


def _check_declared(request: Request, config: BatchConfig) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > config.max_upload_bytes:
        raise _too_large(config.max_upload_bytes)


async def _limited(request: Request, config: BatchConfig) -> AsyncGenerator[bytes, None]:
    received = 0
    chunks = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), config.upload_idle_timeout_s)
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise UploadTimeout(f"no upload data for {config.upload_idle_timeout_s:g} s",
                                param="file") from exc
        received += len(chunk)
        if received > config.max_upload_bytes:
            raise _too_large(config.max_upload_bytes)
        yield chunk


class _ClosingDelimiter:
    """Notices the multipart closing delimiter (`--BOUNDARY--`) as the body streams past:
    without it the body was cut short, and the parser alone would just return fewer fields."""

    def __init__(self, content_type: str) -> None:
        _, _, boundary = content_type.partition("boundary=")
        self.marker = b"--" + boundary.split(";")[0].strip().strip('"').encode("latin-1") + b"--"
        self.seen = False
        self._tail = b""

    async def watch(self, chunks: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        async for chunk in chunks:
            if not self.seen:
                window = self._tail + chunk       # the marker may straddle two chunks
                self.seen = self.marker in window
                self._tail = window[-(len(self.marker) - 1):]
            yield chunk


async def read_form(request: Request, config: BatchConfig) -> FormData:
    """The request's form fields and (spooled) files; raises FileTooLarge, UploadTimeout."""
    _check_declared(request, config)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        end = _ClosingDelimiter(content_type)
        parser = MultiPartParser(request.headers, end.watch(_limited(request, config)),
                                 max_files=1, max_fields=MAX_FIELDS)
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise InvalidRequest(f"malformed multipart body: {exc.message}", param="file") from exc
        if not end.seen:
            await form.close()
            raise InvalidRequest("the multipart body ends before its closing boundary: the "
                                 "upload was cut short", code="truncated_body", param="file")
        return form
    if content_type.startswith("application/x-www-form-urlencoded"):
        # A URL-only request needs no multipart; the body is small by nature but still capped.
        body = b"".join([chunk async for chunk in _limited(request, config)])
        fields: list[tuple[str, str | UploadFile]] = list(
            parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return FormData(fields)
    raise InvalidRequest("send the request as multipart/form-data with a 'file' field",
                         param="file")


async def spool_body(request: Request, config: BatchConfig, dest: BinaryIO,
                     digest: Any | None = None) -> int:
    """Write a raw request body (a bare audio file) into `dest`, off the event loop, under the
    same size and stall limits as an upload; feed `digest` (a hashlib object) as it goes.
    Returns the body's size."""
    _check_declared(request, config)
    size = 0
    async for chunk in _limited(request, config):
        size += len(chunk)
        if digest is not None:
            digest.update(chunk)
        await asyncio.to_thread(dest.write, chunk)
    return size
