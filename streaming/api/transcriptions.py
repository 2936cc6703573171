"""The OpenAI/Together-compatible batch API: /v1/audio/transcriptions, /v1/audio/translations,
/v1/models.

This module only speaks HTTP: it reads the form (`uploads.py`), the URL (`url_fetch.py`),
hands the opened file to `transcribe_file.py` and renders the result (`formats.py`).
Decoding and file I/O run in threads; the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from dataclasses import dataclass
from typing import Any, AsyncIterator, BinaryIO

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..batch.decode import AudioFile
from ..batch.formats import RESPONSE_FORMATS, render
from ..batch.pipeline import transcribe_file, transcribe_pieces
from ..batch.url_fetch import download, is_url
from ..booleans import parse_bool
from ..errors import InvalidParameter, StreamscribeError, TranscriptionError
from ..languages import parse_language_set
from ..model.scheduler import TranscriptionScheduler
from ..model.transcriber import Task, TranscribeOptions
from ..protocols.query import canonical_float
from .auth import authorize
from .disconnect import until_disconnected
from .state import AppState, state_of
from .uploads import read_form

GRANULARITIES = ("segment", "word")


@dataclass(frozen=True)
class BatchParams:
    """The validated form fields of one request (everything but `file`)."""

    model: str | None
    options: TranscribeOptions
    response_format: str = "json"
    granularities: frozenset[str] = frozenset()
    stream: bool = False


def _one(form: FormData, name: str) -> str | None:
    values = form.getlist(name)
    if len(values) > 1:
        raise InvalidParameter(f"'{name}' given {len(values)} times; give it once", param=name)
    value = values[0] if values else None
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"'{name}' must be a text field, not a file", param=name)
    return value.strip()


def _flag(form: FormData, name: str) -> bool:
    """A boolean field; absent or empty is false."""
    raw = _one(form, name)
    if not raw:
        return False
    try:
        return parse_bool(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be true or false", param=name) from None


def parse_params(form: FormData, task: Task, beam_size: int = 1) -> BatchParams:
    """Validate the form; raises InvalidParameter naming the offending field."""
    response_format = (_one(form, "response_format") or "json").lower()
    if response_format not in RESPONSE_FORMATS:
        raise InvalidParameter(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}",
                               param="response_format")
    # Whisper's fallback schedule when the client leaves temperature out (as OpenAI does);
    # an explicit value is used as given, so temperature=0 is deterministic.
    temperature: float | tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    raw = _one(form, "temperature")
    if raw:
        temperature = canonical_float(raw, "temperature")
        if not 0.0 <= temperature <= 1.0:
            raise InvalidParameter("temperature must be a number from 0 to 1",
                                   param="temperature")
    granularities = set()
    for key in ("timestamp_granularities[]", "timestamp_granularities"):
        for value in form.getlist(key):
            for item in str(value).split(","):
                if item.strip() not in GRANULARITIES:
                    raise InvalidParameter("timestamp_granularities[] takes 'word' and/or "
                                           "'segment'", param="timestamp_granularities[]")
                granularities.add(item.strip())
    stream = _flag(form, "stream")
    if stream and response_format not in ("json", "text"):
        raise InvalidParameter("stream=true returns transcript.text events; use it with "
                               "response_format json or text", param="stream")
    if _flag(form, "diarize"):
        raise InvalidParameter("diarization is not supported", param="diarize")
    language, languages = parse_language_set(_one(form, "language"))
    words = "word" in granularities and response_format == "verbose_json"
    options = TranscribeOptions(
        language=language, languages=languages, task=task, prompt=_one(form, "prompt") or None,
        temperature=temperature, word_timestamps=words, beam_size=beam_size)
    return BatchParams(model=_one(form, "model") or None, options=options,
                       response_format=response_format, granularities=frozenset(granularities),
                       stream=stream)


async def _open_input(form: FormData, request: Request) -> tuple[AudioFile, BinaryIO]:
    """The `file` field (an upload or a URL) as an opened AudioFile and the file behind it."""
    state = state_of(request)
    config = state.config.batch
    value = form.get("file")
    if isinstance(value, UploadFile):
        handle: BinaryIO = value.file
        await asyncio.to_thread(handle.seek, 0)
    elif isinstance(value, str) and value.strip():
        if not is_url(value):
            raise InvalidParameter("'file' must be an uploaded file or an http(s) URL",
                                   param="file")
        handle = await asyncio.to_thread(tempfile.TemporaryFile)
        try:
            await download(value.strip(), handle, config)
            await asyncio.to_thread(handle.seek, 0)
        except BaseException:
            handle.close()
            raise
    else:
        raise InvalidParameter("'file' is required: an audio upload or an http(s) URL",
                               param="file")
    try:
        audio = await asyncio.to_thread(AudioFile, handle,
                                        max_duration_s=config.max_duration_s)
    except BaseException:
        handle.close()
        raise
    return audio, handle


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


async def _events(audio: AudioFile, handle: BinaryIO, scheduler: TranscriptionScheduler,
                  params: BatchParams,
                  request: Request) -> AsyncIterator[bytes]:
    """OpenAI's transcript.text.delta per piece, then transcript.text.done; errors as events."""
    config = state_of(request).config.batch
    text = ""
    try:
        async for result in transcribe_pieces(audio, scheduler, params.options, config):
            piece = result.transcript.text.strip()
            if piece:
                delta = f" {piece}" if text else piece
                text += delta
                yield _sse({"type": "transcript.text.delta", "delta": delta})
        yield _sse({"type": "transcript.text.done", "text": text})
    except StreamscribeError as exc:
        yield _sse({"type": "error", **exc.to_openai()})
    except Exception as exc:  # the status line is gone; the client still gets an error event
        yield _sse({"type": "error", **TranscriptionError(f"transcription failed: {exc}")
                    .to_openai()})
    finally:
        await asyncio.to_thread(_close, audio, handle)


def _close(audio: AudioFile, handle: BinaryIO) -> None:
    with contextlib.suppress(Exception):
        audio.close()
    with contextlib.suppress(Exception):
        handle.close()


async def _handle(request: Request, task: Task) -> Response:
    state = state_of(request)
    authorize(request)
    form = await read_form(request, state.config.batch)
    try:
        params = parse_params(form, task, beam_size=state.config.model.beam_size)
        state.engine.local_name(params.model)     # 404 before any decoding or download
        audio, handle = await _open_input(form, request)
    except BaseException:
        await form.close()
        raise
    try:
        scheduler = await state.engine.get(params.model)
    except BaseException:
        await asyncio.to_thread(_close, audio, handle)
        await form.close()
        raise
    if params.stream:
        return StreamingResponse(_events(audio, handle, scheduler, params, request),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    try:
        transcript = await until_disconnected(
            request, transcribe_file(audio, scheduler, params.options, state.config.batch))
    except StreamscribeError:
        raise
    except Exception as exc:
        raise TranscriptionError(f"transcription failed: {exc}") from exc
    finally:
        await asyncio.to_thread(_close, audio, handle)
        await form.close()
    if transcript is None:
        return Response(status_code=499)   # the client hung up; nobody reads this
    body, media_type = render(transcript, params.response_format, params.granularities)
    if isinstance(body, dict):
        return JSONResponse(body)
    return Response(body, media_type=media_type)


async def transcriptions(request: Request) -> Response:
    return await _handle(request, "transcribe")


async def translations(request: Request) -> Response:
    return await _handle(request, "translate")


def _model_entries(state: AppState) -> list[dict[str, Any]]:
    engine = state.engine
    loaded = engine.loaded()
    entries = [{"id": name, "object": "model", "created": 0, "owned_by": "streamscribe",
                "root": name, "parent": None, "loaded": name in loaded}
               for name in engine.config.allowed_models()]
    entries += [{"id": alias, "object": "model", "created": 0, "owned_by": "streamscribe",
                 "root": local, "parent": local, "loaded": local in loaded}
                for alias, local in engine.config.alias_map().items()]
    return entries


async def list_models(request: Request) -> JSONResponse:
    state = state_of(request)
    authorize(request)
    return JSONResponse({"object": "list", "data": _model_entries(state)})


async def get_model(request: Request) -> JSONResponse:
    state = state_of(request)
    authorize(request)
    wanted = request.path_params["model"]
    state.engine.local_name(wanted)  # raises ModelNotFound
    return JSONResponse(next(e for e in _model_entries(state) if e["id"] == wanted))


def routes() -> list[Route]:
    return [Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
            Route("/v1/audio/translations", translations, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"])]
