"""`/v1/listen`: Deepgram-compatible live streaming over WebSocket.

Checks (auth, query, model) happen before the upgrade, so a bad request gets an HTTP
status and a JSON body. After the upgrade, one task reads client frames into the
`LiveStream` and another sends its events; a bad frame gets an `Error` message and the
stream goes on. Reading goes on until the client leaves, also while the last finals are
made after CloseStream.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from starlette.types import Message

from ..core.events import StreamWarning
from ..core.session import StreamOptions
from ..errors import ProtocolError, StreamscribeError
from ..model.scheduler import TranscriptionScheduler
from ..protocols import deepgram
from .auth import authorize
from .lifecycle import SHUTDOWN_CODE, SHUTDOWN_REASON
from .metrics import Metrics
from .live_stream import LiveStream
from .prerecorded import resolve_model
from .state import AppState, state_of

log = logging.getLogger("streamscribe.listen")


async def reject(websocket: WebSocket, error: StreamscribeError, status: int | None = None) -> None:
    """Refuse the upgrade with an HTTP status and a JSON body naming the problem."""
    body = {"err_code": error.code, "err_msg": error.message, **error.to_openai()}
    if error.param:
        body["param"] = error.param
    state_of(websocket).metrics.error(error.code)
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


async def open_stream(websocket: WebSocket, options: StreamOptions,
                      ) -> tuple[LiveStream, str] | None:
    """Resolve the model for a validated stream; reject the upgrade if it cannot be served."""

    state = state_of(websocket)
    try:
        # Deepgram names the server does not serve itself (nova-3-general...) stand for the
        # default model; Metadata's model_info says which.
        scheduler = await stream_model(state, resolve_model(state.engine, options.model),
                                       options.language)
    except StreamscribeError as exc:
        await reject(websocket, exc, status=400)
        return None
    return LiveStream(scheduler, options, state.config), scheduler.transcriber.info.name


async def listen(websocket: WebSocket) -> None:
    state = state_of(websocket)
    try:
        subprotocol = authorize(websocket)
        options = deepgram.parse_query(websocket.query_params.multi_items())
    except StreamscribeError as exc:
        await reject(websocket, exc)
        return
    opened = await open_stream(websocket, options)
    if opened is None:
        return
    stream, model_name = opened
    await websocket.accept(subprotocol=subprotocol)
    encoder = deepgram.DeepgramEncoder(model_name, stream.session.channel_count,
                                       requested_model=options.model)
    with state.lifecycle.stream("deepgram"):
        await _converse(websocket, stream, encoder, state)


async def _converse(websocket: WebSocket, stream: LiveStream, encoder: deepgram.DeepgramEncoder,
                    state: AppState) -> None:
    """Read and send until the last final is out, then Metadata and the close frame.

    Ends early when the client disconnects. When the server drains, the stream is closed
    as if the client had sent CloseStream, and the close code is 1001."""
    reader = _Reader(websocket, stream, state)
    receiving = asyncio.create_task(reader.run())
    sending = asyncio.create_task(_send(websocket, stream, encoder, state.metrics))
    stopping = asyncio.create_task(state.lifecycle.stopping.wait())
    code, reason = 1000, ""
    try:
        pending: set[asyncio.Task[Any]] = {receiving, sending, stopping}
        while sending in pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if receiving in done:
                receiving.result()
                return                      # the client went away; nothing is left to tell it
            if stopping in done:
                code, reason = SHUTDOWN_CODE, SHUTDOWN_REASON
                await reader.close()
        if not sending.result():
            return
        metadata = encoder.metadata(stream.session.duration, reader.digest.hexdigest(), {
            "partials_shed": stream.partials_shed,
            "partials_overflowed": stream.partials_overflowed})
        await websocket.send_text(json.dumps(metadata))
        await websocket.close(code=code, reason=reason)
    except WebSocketDisconnect:
        pass
    finally:
        stream.abort()
        state.metrics.stream_ended("deepgram", stream)
        for task in (receiving, sending, stopping):
            task.cancel()
        await asyncio.gather(receiving, sending, stopping, return_exceptions=True)


class _Reader:
    """Reads client frames into the stream until the client disconnects.

    After CloseStream (or the idle timeout, or the server's drain) it goes on reading while
    the last finals are made, so the connection stays healthy: KeepAlive is taken, WebSocket
    pings are answered, and audio gets an Error instead of being silently dropped."""

    def __init__(self, websocket: WebSocket, stream: LiveStream, state: AppState) -> None:
        self.websocket = websocket
        self.stream = stream
        self.config = state.config.stream
        self.metrics = state.metrics
        self.digest = hashlib.sha256()
        self.closing = False
        self._late_frames = 0
        # held while a message is handled, so a drain's close never lands inside a feed
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        if not self.closing:
            self.closing = True
            await self.stream.close()

    async def run(self) -> None:
        idle = self.config.idle_timeout_s
        while True:
            try:
                message = await (self.websocket.receive() if self.closing
                                 else asyncio.wait_for(self.websocket.receive(), idle))
            except asyncio.TimeoutError:
                self.stream.warn(StreamWarning(
                    "idle_timeout", f"no audio or KeepAlive for {idle:g} s; closing"))
                await self.close()
                continue
            if message["type"] == "websocket.disconnect":
                return
            async with self._lock:
                await self._handle(message)

    async def _handle(self, message: Message) -> None:
        data = message.get("bytes")
        if data is not None:
            if self.closing:
                self._late_frames += 1
                if self._late_frames == 1:       # once: a client streaming on would flood
                    self.stream.warn(StreamWarning(
                        "audio_after_close", "audio sent after CloseStream is not transcribed; "
                        "the stream is closing"))
            elif len(data) == 0:             # Deepgram's legacy close: an empty binary frame
                await self._close()
            elif len(data) > self.config.max_frame_bytes:
                self.stream.warn(StreamWarning(
                    "frame_too_large", f"binary frame of {len(data)} bytes exceeds "
                    f"{self.config.max_frame_bytes}; it was not accepted (split audio into "
                    "smaller frames)"))
            else:
                self.digest.update(data)
                self.metrics.audio("deepgram", len(data) / self.stream.bytes_per_second)
                await self.stream.feed(data)
            return
        try:
            command = deepgram.parse_client_text(message.get("text") or "")
        except ProtocolError as exc:
            self.stream.warn(StreamWarning(exc.code, exc.message))
            return
        if isinstance(command, deepgram.Finalize) and not self.closing:
            await self.stream.finalize()
        elif isinstance(command, deepgram.CloseStream):
            await self._close()


async def _send(websocket: WebSocket, stream: LiveStream, encoder: deepgram.DeepgramEncoder,
                metrics: Metrics) -> bool:
    """Send every event; True when the stream ended normally (so Metadata may follow)."""
    try:
        async for event in stream.events():
            await websocket.send_text(json.dumps(encoder.encode(event)))
            metrics.sent("deepgram", event)
    except (WebSocketDisconnect, RuntimeError, OSError):
        stream.abort()
        return False
    return not stream.aborted


def routes() -> list[BaseRoute]:
    return [WebSocketRoute("/v1/listen", listen)]
