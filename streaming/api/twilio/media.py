"""The media stream handler: one Twilio Media Streams WebSocket, its tracks transcribed.

Each track gets its own `LiveStream` (μ-law 8 kHz mono); its finals become the call's turns,
spoken by the track (`inbound`: the caller, `outbound`: what Twilio played to the caller).
Auth: Twilio sends no headers and its <Stream> URL takes no query string, so when no
credentials come with the upgrade the key is looked for in the `token` custom parameter of
`start`. Bad messages are reported (logged, in the call's `errors`, to subscribers) and
skipped; one that makes the stream unusable closes it with code 1008.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ...core.events import StreamWarning, Transcription
from ...core.session import StreamOptions
from ...errors import AuthError, StreamscribeError
from ...languages import parse_language
from ...protocols import twilio as proto
from ..auth import authorize, check_auth
from ..listen import reject, stream_model
from ..lifecycle import SHUTDOWN_CODE, SHUTDOWN_REASON
from ..live_stream import LiveStream
from ..metrics import Metrics
from ..state import AppState, state_of
from .calls import Call, CallStatus, registry_of
from .signature import signed_by_twilio

log = logging.getLogger("streamscribe.twilio")

FLUSH_TIMEOUT_S = 120.0           # wait for the last finals of a call after it stops


def _credentials_presented(websocket: WebSocket) -> bool:
    return bool(websocket.headers.get("authorization") or "token" in websocket.query_params
                or websocket.scope.get("subprotocols"))


# ---------------------------------------------------------------------------------------------
# The media stream


class _CallStreams:
    """The `LiveStream`s of one connection (one per track) and the tasks reading their finals."""

    def __init__(self, call: Call, metrics: Metrics) -> None:
        self.call = call
        self.metrics = metrics
        self.streams: dict[str, LiveStream] = {}
        self.readers: list[asyncio.Task[None]] = []

    def add(self, track: str, stream: LiveStream) -> None:
        self.streams[track] = stream
        self.readers.append(asyncio.create_task(self._read(track, stream)))

    async def _read(self, track: str, stream: LiveStream) -> None:
        call = self.call
        index = call.tracks.index(track)
        async for event in stream.events():
            self.metrics.sent("twilio", event)
            if isinstance(event, Transcription) and event.is_final:
                turn = call.conversation.add(track, replace(event, channel=index))
                if turn is not None:
                    call.publish({"type": "turn", "call_sid": call.call_sid, **turn.to_json()})
            elif isinstance(event, StreamWarning):
                call.error(event.code, f"{track}: {event.message}")

    async def close(self) -> None:
        for stream in self.streams.values():
            await stream.close()
        if self.readers:
            done, pending = await asyncio.wait(self.readers, timeout=FLUSH_TIMEOUT_S)
            for task in pending:
                task.cancel()
            for stream in self.streams.values():
                stream.abort()
        for stream in self.streams.values():
            self.metrics.stream_ended("twilio", stream)

    async def append(self, audio: proto.TrackAudio) -> None:
        """A timestamp gap's silence, made and fed 1 s at a time so that other connections
        run in between, then the payload."""
        stream = self.streams[audio.track]
        remaining = audio.gap_filled
        while remaining > 0:
            await stream.feed(_SILENCE[:remaining])
            remaining -= len(_SILENCE)
            await asyncio.sleep(0)
        self.metrics.audio("twilio", len(audio.payload) / proto.SAMPLE_RATE)
        await stream.feed(audio.payload)


_SILENCE = proto.MULAW_SILENCE * proto.SAMPLE_RATE          # 1 s


async def _open_streams(websocket: WebSocket, start: proto.Start, call: Call) -> _CallStreams:
    """A LiveStream per track, on the model and language the custom parameters (or the
    server's Twilio config) name."""
    state = state_of(websocket)
    params = start.custom_parameters
    language = parse_language(params.get("language", state.config.twilio.language))
    model = params.get("model") or state.config.twilio.model or None
    scheduler = await stream_model(state, model, language)
    options = StreamOptions(encoding="mulaw", sample_rate=proto.SAMPLE_RATE, channels=1,
                            interim_results=False, language=language, model=model)
    streams = _CallStreams(call, state.metrics)
    for track in start.tracks:
        streams.add(track, LiveStream(scheduler, options, state.config))
    return streams


async def media_stream(websocket: WebSocket) -> None:
    """One media stream from Twilio, until `stop`, a hang-up, a fatal message or idleness;
    what was heard is transcribed to the end even when the caller hung up abruptly."""
    state = state_of(websocket)
    twilio = state.config.twilio
    deferred_auth = False
    subprotocol = None
    signed = bool(twilio.auth_tokens) and signed_by_twilio(
        websocket, twilio.auth_token_list(), twilio.public_url)
    try:
        subprotocol = authorize(websocket)
        if twilio.auth_tokens and not state.config.api_keys and not signed:
            raise AuthError("missing or invalid X-Twilio-Signature")
    except AuthError as exc:
        if signed:
            pass                      # Twilio itself, by its signature
        elif twilio.auth_tokens or _credentials_presented(websocket) or not twilio.token_in_start:
            await reject(websocket, exc)
            return
        else:
            deferred_auth = True      # Twilio: the key comes in start.customParameters.token
    await websocket.accept(subprotocol=subprotocol)
    with state.lifecycle.stream("twilio"):
        await _receive_call(websocket, state, deferred_auth)


async def _receive_call(websocket: WebSocket, state: AppState, deferred_auth: bool) -> None:
    """Read one media stream until stop, hang-up, a fatal error, idleness or the drain."""
    keys = state.config.api_keys
    registry = registry_of(websocket)
    protocol = proto.MediaStream()
    call: Call | None = None
    streams: _CallStreams | None = None
    status: CallStatus = "completed"
    close: tuple[int, str] | None = (1000, "")
    idle_s, start_s = state.config.stream.idle_timeout_s, state.config.twilio.start_timeout_s
    start_by = asyncio.get_running_loop().time() + start_s
    gap_reported = False
    try:
        while True:
            # Until `start` (and its key) has come, the connection gets `start_s` in all.
            waiting = idle_s if protocol.start else start_by - asyncio.get_running_loop().time()
            try:
                message = await state.lifecycle.receive(websocket, max(waiting, 0.0))
            except asyncio.TimeoutError:
                status, close = ("timeout", (1000, f"no message for {idle_s:g} s")) \
                    if protocol.start else ("failed", (1008, f"no start within {start_s:g} s"))
                break
            if message is None:         # drain: what was heard is transcribed below
                status, close = "shutdown", (SHUTDOWN_CODE, SHUTDOWN_REASON)
                break
            if message["type"] == "websocket.disconnect":
                status, close = "disconnected", None
                break
            frame = message.get("text")
            if frame is None:
                frame = message.get("bytes") or b""
            try:
                actions = protocol.receive(frame)
            except proto.TwilioProtocolError as exc:
                state.metrics.error(exc.code)
                # A broken sender can repeat one mistake 50 times a second: report the first
                # ten, then one in a hundred (with the count).
                if exc.fatal or protocol.errors <= 10 or protocol.errors % 100 == 0:
                    report = exc.message if protocol.errors <= 10 else (
                        f"{exc.message} (error {protocol.errors} on this stream)")
                    log.warning("twilio stream %s: %s", protocol.start.stream_sid
                                if protocol.start else "?", report)
                    if call is not None:
                        call.error(exc.code, report)
                if exc.fatal:
                    status, close = "failed", (1008, exc.message[:120])
                    break
                continue
            stop = False
            for action in actions:
                if isinstance(action, proto.Start):
                    if deferred_auth:
                        token = action.custom_parameters.get("token")
                        try:
                            check_auth(keys, {}, {"token": token} if token else {})
                        except AuthError as exc:
                            status, close = "failed", (1008, exc.message[:120])
                            stop = True
                            break
                    call = registry.begin(action)
                    try:
                        streams = await _open_streams(websocket, action, call)
                    except StreamscribeError as exc:
                        call.error(exc.code, exc.message)
                        status, close = "failed", (1008, exc.message[:120])
                        stop = True
                        break
                    continue
                # The protocol yields nothing but Start before a start; a failed Start ends the loop.
                assert call is not None and streams is not None, "media before start"
                if isinstance(action, proto.TrackAudio):
                    await streams.append(action)
                    if action.gap_refused_ms and not gap_reported:
                        gap_reported = True
                        log.warning("twilio call %s: a timestamp jumps %d ms past the audio "
                                    "received; not filled", call.call_sid, action.gap_refused_ms)
                        call.error("timestamp_gap_refused", f"{action.track}: a timestamp "
                                   f"jumps {action.gap_refused_ms} ms past the audio received "
                                   "on any track; that much silence was not inserted")
                elif isinstance(action, proto.Dtmf):
                    call.publish({"type": "dtmf", "call_sid": call.call_sid, "track": action.track,
                                  "digit": action.digit})
                elif isinstance(action, proto.Stop):
                    stop = True
            if stop:
                break
    except WebSocketDisconnect:
        status, close = "disconnected", None
    finally:
        if call is not None:
            call.duration_s = max([call.duration_s, *(protocol.duration(t) for t in call.tracks)])
            if streams is not None:
                # Even when the caller hung up abruptly, what was heard is transcribed.
                await asyncio.shield(streams.close())
            registry.end(call, status)
        if close is not None and websocket.application_state == WebSocketState.CONNECTED:
            try:
                await websocket.close(code=close[0], reason=close[1])
            except (WebSocketDisconnect, RuntimeError, OSError):
                pass     # Twilio hung up right after `stop`: nothing is left to tell it
