"""`/v1/realtime`: OpenAI realtime transcription sessions and Together's real-time
transcription over WebSocket, on the same `LiveStream` as `/v1/listen`.

The query picks the dialect: Together's clients name `input_audio_format` (or VAD
parameters), OpenAI's send `intent=transcription`. Auth, query and model are checked before
the upgrade (HTTP 400/401 with a JSON body). After it the server sends `session.created`;
the first audio starts a stream with the settings then in force. An update that changes
them later closes that stream (its last transcripts are delivered first) and the next
audio starts a new one, its times continuing the session's. A bad event gets an `error`
event and the session goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..audio import ENCODINGS
from ..config import VadConfig
from ..errors import (
    AuthError,
    InvalidParameter,
    ModelNotFound,
    ProtocolError,
    StreamscribeError,
)
from ..model.scheduler import TranscriptionScheduler
from ..protocols import openai_realtime, together
from ..protocols.query import single_valued
from ..protocols.realtime import (
    Append,
    Clear,
    Commit,
    Dialect,
    Message,
    RealtimeSettings,
    TranscriptionItems,
    UpdateSession,
    client_event_id,
    decode,
    error_event,
    new_id,
    parse_command,
)
from .auth import check_auth
from .lifecycle import SHUTDOWN_CODE, SHUTDOWN_REASON
from .listen import reject, stream_model
from .live_stream import LiveStream
from .state import AppState, state_of

log = logging.getLogger("streamscribe.realtime")


async def _scheduler(state: AppState, settings: RealtimeSettings,
                     dialect: Dialect) -> TranscriptionScheduler:
    model = openai_realtime.local_model(settings.model) if dialect == "openai" \
        else settings.model
    try:
        return await stream_model(state, model, settings.language)
    except ModelNotFound as exc:
        if dialect == "together":   # Together's name for it
            raise InvalidParameter(exc.message, code="model_not_available",
                                   param="model") from None
        raise


class RealtimeSession:
    """One connection: session messages, then a `LiveStream` once audio arrives."""

    def __init__(self, websocket: WebSocket, state: AppState, dialect: Dialect,
                 settings: RealtimeSettings, scheduler: TranscriptionScheduler) -> None:
        self.websocket = websocket
        self.state = state
        self.dialect = dialect
        self.settings = settings
        self.scheduler = scheduler
        self.id = new_id("sess")
        self.stream: LiveStream | None = None
        self.items: TranscriptionItems | None = None
        self._sender: asyncio.Task[None] | None = None
        self._offset = 0.0          # seconds of audio on the streams before this one
        self._lock = asyncio.Lock()

    @property
    def vad(self) -> VadConfig:
        return self.settings.vad(self.state.config.vad)

    @property
    def model_name(self) -> str:
        return self.scheduler.transcriber.info.name

    async def send(self, messages: list[Message]) -> None:
        async with self._lock:
            for message in messages:
                await self.websocket.send_text(json.dumps(message))

    def session_message(self, reply: str) -> Message:
        if self.dialect == "together":
            if reply == "session.created":
                return together.session_created(self.id, self.settings, self.vad, self.model_name)
            return together.session_updated(self.settings, self.vad)
        if reply == "transcription_session.updated":
            return openai_realtime.beta_session_event(self.id, self.settings, self.vad,
                                                      self.model_name)
        return openai_realtime.session_event(reply, self.id, self.settings, self.vad,
                                             self.model_name)

    async def run(self) -> None:
        await self.send([self.session_message("session.created")])
        try:
            drained = await self._receive()
            if self.stream is not None and self._sender is not None:
                await self.stream.close()
                await self._sender
            code, reason = (SHUTDOWN_CODE, SHUTDOWN_REASON) if drained else (1000, "")
            await self.websocket.close(code=code, reason=reason)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away; nothing is left to tell it
        finally:
            if self.stream is not None:
                self.stream.abort()
                self.state.metrics.stream_ended("realtime", self.stream)
            if self._sender is not None:
                self._sender.cancel()

    async def _receive(self) -> bool:
        """Read client events until the client leaves or falls idle, or the server drains
        (then True)."""
        idle = self.state.config.stream.idle_timeout_s
        while True:
            try:
                frame = await self.state.lifecycle.receive(self.websocket, idle)
            except TimeoutError:
                if self.stream is not None and self.stream.session.pending_finals:
                    continue    # the client is waiting for transcripts, not idle
                await self.send([error_event(new_id("event"), "idle_timeout",
                                             f"no event for {idle:g} s; closing")])
                return False
            if frame is None:
                return True
            if frame["type"] == "websocket.disconnect":
                if self.stream is not None:
                    self.stream.abort()
                return False
            message = None
            try:
                message = decode(frame.get("text"))
                await self._handle(parse_command(message, self.settings))
            except (ProtocolError, InvalidParameter, ModelNotFound) as exc:
                self.state.metrics.error(exc.code)
                await self.send([error_event(new_id("event"), exc.code, exc.message, exc.param,
                                             client_event_id(message))])

    async def _handle(self, command: Append | Commit | Clear | UpdateSession) -> None:
        if isinstance(command, UpdateSession):
            await self._update(command)
            return
        stream, items = self._started()
        if isinstance(command, Append):
            limit = self.state.config.stream.max_frame_bytes
            if len(command.audio) > limit:
                raise ProtocolError(f"{len(command.audio)} bytes of audio in one event exceed "
                                    f"{limit}; send smaller chunks", code="frame_too_large",
                                    param="audio")
            items.appended(len(command.audio))
            self.state.metrics.audio("realtime", len(command.audio) / stream.bytes_per_second)
            await stream.feed(command.audio)
            return
        replies, finalize = items.commit() if isinstance(command, Commit) else items.clear()
        # Replies go out before the finalize, so `committed` precedes its transcript.
        await self.send(replies)
        if finalize:
            await stream.finalize()

    async def _update(self, command: UpdateSession) -> None:
        settings = command.settings
        self.scheduler = await _scheduler(self.state, settings, self.dialect)
        stream, sender = self.stream, self._sender
        if stream is not None and sender is not None and (
                settings.stream_options() != self.settings.stream_options()
                or settings.vad(self.state.config.vad) != self.vad):
            await stream.close()
            await sender        # the old stream's last transcripts go out first
            self._offset += stream.session.duration
            self.stream = self._sender = None
        self.settings = settings
        await self.send([self.session_message(command.reply)])

    def _started(self) -> tuple[LiveStream, TranscriptionItems]:
        """The stream, started with the settings in force at the first audio event."""
        if self.stream is None or self.items is None:
            options = self.settings.stream_options()
            config = replace(self.state.config, vad=self.vad)
            self.stream = LiveStream(self.scheduler, options, config)
            width = ENCODINGS[options.encoding]
            manual = self.settings.turn_detection is None
            if self.items is None:
                self.items = TranscriptionItems(self.dialect, manual, options.sample_rate, width)
            else:
                self.items.next_stream(manual, options.sample_rate, width, self._offset)
            self._sender = asyncio.create_task(self._send_events(self.stream, self.items))
        return self.stream, self.items

    async def _send_events(self, stream: LiveStream, items: TranscriptionItems) -> None:
        try:
            async for event in stream.events():
                await self.send(items.encode(event))
                self.state.metrics.sent("realtime", event)
        except (WebSocketDisconnect, RuntimeError, OSError):
            stream.abort()


async def realtime(websocket: WebSocket) -> None:
    state = state_of(websocket)
    params = websocket.query_params
    dialect: Dialect = "together" if together.is_together(params) else "openai"
    try:
        try:
            subprotocol = check_auth(state.config.api_keys, websocket.headers, params,
                                     websocket.scope.get("subprotocols", []))
        except AuthError as exc:
            if dialect == "together" and "authorization" not in websocket.headers:
                raise AuthError(exc.message, code="missing_api_key") from None  # Together's name
            raise
        query = single_valued(params.multi_items())
        settings = together.parse_query(query) if dialect == "together" \
            else openai_realtime.parse_query(query)
        scheduler = await _scheduler(state, settings, dialect)
    except StreamscribeError as exc:
        await reject(websocket, exc, status=400 if isinstance(exc, ModelNotFound) else None)
        return
    await websocket.accept(subprotocol=subprotocol)
    with state.lifecycle.stream("realtime"):
        await RealtimeSession(websocket, state, dialect, settings, scheduler).run()


def routes() -> list[WebSocketRoute]:
    return [WebSocketRoute("/v1/realtime", realtime)]
