"""`POST /v1/listen`: Deepgram's pre-recorded transcription on the batch pipeline.

The body is the audio itself (any format the batch decoder reads, or headerless audio named by
`encoding` + `sample_rate`) or JSON `{"url": ...}`, fetched under the batch API's SSRF guard
and limits. The body is spooled to a temporary file (hashed on the way for `metadata.sha256`),
decoded and transcribed in threads, one pass per channel with `multichannel=true`. Every error
answers Deepgram's shape `{"err_code", "err_msg", "request_id"}`, and every response carries
the `dg-request-id` header, as Deepgram's do.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tempfile
import uuid
from dataclasses import replace
from typing import Any, BinaryIO

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..batch.decode import AudioFile
from ..batch.pipeline import transcribe_file
from ..batch.url_fetch import download, is_url
from ..config import BatchConfig
from ..errors import (
    InvalidParameter,
    InvalidRequest,
    ModelNotFound,
    StreamscribeError,
    TranscriptionError,
)
from ..model.engine import Engine
from ..model.scheduler import TranscriptionScheduler
from ..model.transcriber import TranscribeOptions, Transcript
from ..protocols import deepgram, deepgram_rest
from ..protocols.json_text import parse_json_text
from .auth import authorize
from .disconnect import until_disconnected
from .state import state_of
from .uploads import spool_body

MAX_JSON_BYTES = 64 * 1024
MAX_CHANNELS = 8
# Whisper's temperature fallback, as the batch API uses when the client sets none.
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def resolve_model(engine: Engine, name: str | None) -> str | None:
    """The public name to ask `engine` for: Deepgram names it does not serve itself
    (`nova-3-general`, `enhanced`...) stand for the default model."""
    def known(candidate: str) -> bool:
        try:
            engine.local_name(candidate)
        except ModelNotFound:
            return False
        return True

    return deepgram.served_model(name, known)


async def _url_from_json(request: Request, config: BatchConfig) -> str:
    body = io.BytesIO()
    await spool_body(request, replace(config, max_upload_bytes=MAX_JSON_BYTES), body)
    try:
        payload = parse_json_text(body.getvalue().decode("utf-8", "replace"), MAX_JSON_BYTES)
    except ValueError as exc:
        raise InvalidRequest(f"Content-Type was application/json, but the body {exc}",
                             code="invalid_json") from None
    url = payload.get("url") if isinstance(payload, dict) else None
    if not isinstance(url, str) or not is_url(url):
        raise InvalidParameter('a JSON body must be {"url": "http(s)://..."}', param="url")
    return url.strip()


async def _receive_audio(request: Request, config: BatchConfig, dest: BinaryIO) -> str:
    """The audio (body or URL) written into `dest`; returns its sha256."""
    digest = hashlib.sha256()
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        await download(await _url_from_json(request, config), dest, config)
        await asyncio.to_thread(_hash_file, dest, digest)
    else:
        await spool_body(request, config, dest, digest)
    return digest.hexdigest()


def _hash_file(handle: BinaryIO, digest: Any) -> None:
    handle.seek(0)
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)


def _open(handle: BinaryIO, config: BatchConfig, options: deepgram_rest.PrerecordedOptions,
          channel: int | None) -> AudioFile:
    handle.seek(0)
    return AudioFile(handle, max_duration_s=config.max_duration_s, raw=options.raw,
                     channel=channel)


async def _transcribe_audio(handle: BinaryIO, scheduler: TranscriptionScheduler,
                            options: deepgram_rest.PrerecordedOptions, beam_size: int,
                            config: BatchConfig) -> list[Transcript]:
    """One transcript for the mono mix, or one per channel (in turn: each is a full pass)."""
    transcribe = TranscribeOptions(language=options.language, languages=options.languages,
                                   prompt=options.prompt, temperature=TEMPERATURES,
                                   word_timestamps=True, beam_size=beam_size)
    audio = await asyncio.to_thread(_open, handle, config, options, None)
    channels: list[int | None] = [None]
    if options.multichannel:
        if audio.info.channels > MAX_CHANNELS:
            await asyncio.to_thread(audio.close)
            raise InvalidParameter(f"multichannel audio has {audio.info.channels} channels; "
                                   f"at most {MAX_CHANNELS}", param="multichannel")
        channels = list(range(audio.info.channels))
    transcripts = []
    for channel in channels:
        if channel is not None:
            await asyncio.to_thread(audio.close)
            audio = await asyncio.to_thread(_open, handle, config, options, channel)
        try:
            transcripts.append(await transcribe_file(audio, scheduler, transcribe, config))
        finally:
            await asyncio.to_thread(audio.close)
    return transcripts


async def _handle(request: Request, request_id: str) -> Response:
    state = state_of(request)
    authorize(request)
    options = deepgram_rest.parse_query(request.query_params.multi_items())
    public = resolve_model(state.engine, options.model)
    state.engine.local_name(public)     # refuse an unknown model before reading the body
    config = state.config.batch
    handle = await asyncio.to_thread(tempfile.TemporaryFile)
    try:
        sha256 = await _receive_audio(request, config, handle)
        scheduler = await state.engine.get(public)
        scheduler.transcriber.info.check_language(options.language)
        try:
            transcripts = await until_disconnected(request, _transcribe_audio(
                handle, scheduler, options, state.config.model.beam_size, config))
        except StreamscribeError:
            raise
        except Exception as exc:
            raise TranscriptionError(f"transcription failed: {exc}") from exc
    finally:
        await asyncio.to_thread(handle.close)
    if transcripts is None:
        return Response(status_code=499)   # the client hung up; nobody reads this
    encoder = deepgram.DeepgramEncoder(scheduler.transcriber.info.name, len(transcripts),
                                       request_id, requested_model=options.model)
    body = deepgram_rest.response(transcripts, options, encoder=encoder,
                                  duration=transcripts[0].duration, sha256=sha256)
    return JSONResponse(body, headers={"dg-request-id": request_id})


def error_response(error: StreamscribeError, request_id: str | None = None) -> JSONResponse:
    """`error` in Deepgram's REST shape. An unknown model is a 400 there, as on the live path."""
    request_id = request_id or str(uuid.uuid4())
    status = 400 if isinstance(error, ModelNotFound) else error.status
    return JSONResponse(deepgram_rest.error_body(error, request_id), status_code=status,
                        headers={"dg-request-id": request_id})


async def transcribe(request: Request) -> Response:
    request_id = str(uuid.uuid4())
    try:
        return await _handle(request, request_id)
    except StreamscribeError as exc:
        state_of(request).metrics.error(exc.code)
        return error_response(exc, request_id)


def routes() -> list[Route]:
    return [Route("/v1/listen", transcribe, methods=["POST"])]
