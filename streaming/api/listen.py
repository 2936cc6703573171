"""`/v1/listen`: Deepgram-compatible live streaming over WebSocket.

Checks (auth, query, model) happen before the upgrade, so a bad request gets an HTTP
status and a JSON body. After the upgrade, one task reads client frames into the
`LiveStream` and another sends its events; a bad frame gets an `Error` message and the
stream goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging

from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..core.events import StreamWarning
from ..errors import ProtocolError, StreamscribeError
from ..model.scheduler import TranscriptionScheduler
from ..protocols import deepgram
from .auth import authorize
from .live_stream import LiveStream
from .state import AppState, state_of

log = logging.getLogger("streamscribe.listen")


def active_streams(app) -> int:
    return getattr(app.state, "active_streams", 0)


async def reject(websocket: WebSocket, error: StreamscribeError, status: int | None = None) -> None:
    """Refuse the upgrade with an HTTP status and a JSON body naming the problem."""
    body = {"err_code": error.code, "err_msg": error.message, **error.to_openai()}
    if error.param:
        body["param"] = error.param
    response = JSONResponse(body, status_code=status or error.status)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008, reason=error.message[:120])


async def stream_model(state: AppState, model: str | None,
                       language: str | None) -> TranscriptionScheduler:
    """The scheduler of the model a stream asked for; raises ModelNotFound, or
    InvalidParameter when an English-only model is asked for another language."""
    scheduler = await state.engine.get(model)
    scheduler.transcriber.info.check_language(language)
    return scheduler


async def open_stream(websocket: WebSocket, options) -> tuple[LiveStream, str] | None:
    """Resolve the model for a validated stream; reject the upgrade if it cannot be served."""

    state = state_of(websocket)
    try:
        scheduler = await stream_model(state, options.model, options.language)
    except StreamscribeError as exc:
        await reject(websocket, exc, status=400)
        return None
    return LiveStream(scheduler, options, state.config), scheduler.transcriber.info.name


async def listen(websocket: WebSocket) -> None:

    state = state_of(websocket)
    try:
        subprotocol = authorize(websocket)
        options = deepgram.parse_query(websocket.query_params)
    except StreamscribeError as exc:
        await reject(websocket, exc)
        return
    opened = await open_stream(websocket, options)
    if opened is None:
        return
    stream, model_name = opened
    await websocket.accept(subprotocol=subprotocol)
    encoder = deepgram.DeepgramEncoder(model_name, stream.session.channel_count)
    app = websocket.app
    app.state.active_streams = active_streams(app) + 1
    digest = hashlib.sha256()
    sender = asyncio.create_task(_send(websocket, stream, encoder))
    try:
        await _receive(websocket, stream, state.config.stream, digest)
        await sender
        if not sender.result():
            return
        metadata = encoder.metadata(stream.session.duration, digest.hexdigest(), {
            "partials_dropped": stream.partials_dropped + stream.partials_skipped})
        await websocket.send_text(json.dumps(metadata))
        await websocket.close(code=1000)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away; nothing is left to tell it
    finally:
        stream.abort()
        sender.cancel()
        app.state.active_streams = active_streams(app) - 1


async def _receive(websocket: WebSocket, stream: LiveStream, config, digest) -> None:
    """Read client frames until CloseStream, disconnect, or idle timeout."""
    while True:
        try:
            message = await asyncio.wait_for(websocket.receive(), config.idle_timeout_s)
        except asyncio.TimeoutError:
            stream.warn(StreamWarning(
                "idle_timeout", f"no audio or KeepAlive for {config.idle_timeout_s:g} s; closing"))
            await stream.close()
            return
        if message["type"] == "websocket.disconnect":
            stream.abort()
            return
        data = message.get("bytes")
        if data is not None:
            if len(data) == 0:  # Deepgram's legacy close: an empty binary frame
                await stream.close()
                return
            if len(data) > config.max_frame_bytes:
                stream.warn(StreamWarning(
                    "frame_too_large", f"binary frame of {len(data)} bytes exceeds "
                    f"{config.max_frame_bytes}; it was not accepted (split audio into smaller frames)"))
                continue
            digest.update(data)
            await stream.feed(data)
            continue
        try:
            command = deepgram.parse_client_text(message.get("text") or "")
        except ProtocolError as exc:
            stream.warn(StreamWarning(exc.code, exc.message))
            continue
        if isinstance(command, deepgram.Finalize):
            await stream.finalize()
        elif isinstance(command, deepgram.CloseStream):
            await stream.close()
            return


async def _send(websocket: WebSocket, stream: LiveStream, encoder) -> bool:
    """Send every event; True when the stream ended normally (so Metadata may follow)."""
    try:
        async for event in stream.events():
            await websocket.send_text(json.dumps(encoder.encode(event)))
    except (WebSocketDisconnect, RuntimeError, OSError):
        stream.abort()
        return False
    return not stream.aborted


def routes() -> list:
    return [WebSocketRoute("/v1/listen", listen)]
