"""Twilio Media Streams at `/v1/twilio`, and the per-speaker call transcripts it produces.

    WS   /v1/twilio                          Twilio connects here (<Connect><Stream url=...>
                                             or <Start><Stream track="both_tracks" url=...>)
    GET  /v1/twilio/calls                    recent calls (summaries)
    GET  /v1/twilio/calls/{callSid}          one call: speakers (= tracks) and time-ordered turns
    WS   /v1/twilio/calls/{callSid}/events   live: call_started, turn, error, call_ended

Each track of a call gets its own `LiveStream` (μ-law 8 kHz mono); its finals become turns of
the speaker named after the track (`inbound`: the caller, `outbound`: what Twilio played to the
caller). When the last stream of a call ends, the call is finished: `call_ended` goes to
subscribers and, if `twilio.webhook_url` is configured, the transcript is POSTed there.
Finished calls are kept, the most recent `twilio.keep_calls` of them.

Auth (when API keys are configured): Twilio cannot send headers, and its <Stream> URL takes no
query string, so besides the usual header/`?token=` the key may come as the `token` custom
parameter (<Parameter name="token" value="KEY"/>), checked when `start` arrives.
Bad messages are reported (logged, in the call's `errors`, to event subscribers) and skipped;
a message that makes the stream unusable (wrong media format) closes it with code 1008.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections import OrderedDict, deque
from dataclasses import replace

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..config import ServerConfig, TwilioConfig
from ..core.conversation import Conversation
from ..core.events import StreamWarning, Transcription
from ..core.session import StreamOptions
from ..errors import AuthError, InvalidParameter, StreamscribeError
from ..languages import parse_language
from ..protocols import twilio as proto
from .auth import check_auth
from .listen import reject
from .live_stream import LiveStream
from .state import state_of

log = logging.getLogger("streamscribe.twilio")

SUBSCRIBER_QUEUE = 1024           # messages buffered per event subscriber before it is dropped
FLUSH_TIMEOUT_S = 120.0           # wait for the last finals of a call after it stops


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Subscriber(asyncio.Queue):
    """One event listener's messages; `None` ends them. `overflowed`: it fell behind, was dropped."""

    overflowed = False


class Call:
    """One call's transcript and listeners. A call may arrive over several streams."""

    def __init__(self, start: proto.Start) -> None:
        self.call_sid = start.call_sid
        self.account_sid = start.account_sid
        self.stream_sids: list[str] = []
        self.tracks: list[str] = []
        self.custom_parameters = {k: v for k, v in start.custom_parameters.items() if k != "token"}
        self.status = "live"
        self.started_at = _now()
        self.ended_at: str | None = None
        self.duration_s = 0.0
        self.conversation = Conversation()
        self.errors: deque[dict] = deque(maxlen=50)
        self.webhook: dict | None = None
        self.open_streams = 0
        self.subscribers: set[Subscriber] = set()

    def summary(self) -> dict:
        return {"call_sid": self.call_sid, "account_sid": self.account_sid,
                "stream_sids": list(self.stream_sids), "tracks": list(self.tracks),
                "status": self.status, "started_at": self.started_at, "ended_at": self.ended_at,
                "duration_s": round(self.duration_s, 3), "turn_count": len(self.conversation.turns),
                "custom_parameters": dict(self.custom_parameters)}

    def to_json(self) -> dict:
        return {**self.summary(), **self.conversation.to_json(), "errors": list(self.errors),
                "webhook": self.webhook}

    def publish(self, message: dict) -> None:
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:   # a subscriber that does not read is dropped, never waited for
                self.subscribers.discard(queue)
                queue.overflowed = True

    def error(self, code: str, message: str) -> None:
        entry = {"code": code, "message": message, "at": _now()}
        self.errors.append(entry)
        self.publish({"type": "error", "call_sid": self.call_sid, **entry})


class CallRegistry:
    """Live and recently finished calls of one server (bounded), and the webhook poster."""

    def __init__(self, config: TwilioConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.transport = transport
        self.live: dict[str, Call] = {}
        self.finished: OrderedDict[str, Call] = OrderedDict()
        self._waiting: dict[str, set[Subscriber]] = {}
        self._tasks: set[asyncio.Task] = set()

    def get(self, call_sid: str) -> Call | None:
        return self.live.get(call_sid) or self.finished.get(call_sid)

    def begin(self, start: proto.Start) -> Call:
        call = self.live.get(start.call_sid) or self.finished.pop(start.call_sid, None) or Call(start)
        self.live[call.call_sid] = call
        call.status = "live"
        call.open_streams += 1
        call.stream_sids.append(start.stream_sid)
        call.tracks.extend(t for t in start.tracks if t not in call.tracks)
        for track in start.tracks:
            if track not in call.conversation.speakers:
                call.conversation.speakers.append(track)
        call.subscribers |= self._waiting.pop(call.call_sid, set())
        call.publish({"type": "call_started", "call": call.summary()})
        return call

    def end(self, call: Call, status: str) -> None:
        call.open_streams -= 1
        if call.open_streams > 0:
            return
        call.status = status
        call.ended_at = _now()
        self.live.pop(call.call_sid, None)
        self.finished[call.call_sid] = call
        while len(self.finished) > max(self.config.keep_calls, 0):
            self.finished.popitem(last=False)
        if self.config.webhook_url:
            task = asyncio.get_running_loop().create_task(self._post_webhook(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._ended(call)

    def _ended(self, call: Call) -> None:
        call.publish({"type": "call_ended", "call": call.to_json()})
        for queue in call.subscribers:
            try:
                queue.put_nowait(None)
            except asyncio.QueueFull:
                queue.overflowed = True
        call.subscribers.clear()

    async def _post_webhook(self, call: Call) -> None:
        url = self.config.webhook_url
        try:
            async with httpx.AsyncClient(transport=self.transport,
                                         timeout=self.config.webhook_timeout_s) as client:
                response = await client.post(url, json={"event": "call.completed",
                                                        "call": call.to_json()})
            call.webhook = {"url": url, "status": response.status_code, "at": _now()}
            if response.status_code >= 400:
                call.error("webhook_failed", f"webhook {url} answered {response.status_code}")
        except httpx.HTTPError as exc:
            call.webhook = {"url": url, "status": None, "error": str(exc) or type(exc).__name__,
                            "at": _now()}
            call.error("webhook_failed", f"webhook {url} failed: {call.webhook['error']}")
            log.warning("call %s: webhook %s failed: %s", call.call_sid, url, exc)
        finally:
            self._ended(call)

    def subscribe(self, call_sid: str) -> tuple[Subscriber, Call | None]:
        """A queue of this call's messages (None ends it); the call if it is known already."""
        queue = Subscriber(SUBSCRIBER_QUEUE)
        call = self.get(call_sid)
        if call is None:
            waiting = self._waiting.setdefault(call_sid, set())
            if len(waiting) >= self.config.max_subscribers or len(self._waiting) > 10_000:
                raise InvalidParameter("too many subscribers waiting for this call", param="callSid")
            waiting.add(queue)
        elif call.status == "live":
            if len(call.subscribers) >= self.config.max_subscribers:
                raise InvalidParameter("too many subscribers for this call", param="callSid")
            call.subscribers.add(queue)
        return queue, call

    def unsubscribe(self, call_sid: str, queue: Subscriber) -> None:
        call = self.get(call_sid)
        if call is not None:
            call.subscribers.discard(queue)
        waiting = self._waiting.get(call_sid)
        if waiting is not None:
            waiting.discard(queue)
            if not waiting:
                self._waiting.pop(call_sid, None)


def registry_of(app) -> CallRegistry:
    registry = getattr(app.state, "twilio_calls", None)
    if registry is None:
        config: ServerConfig = app.state.streamscribe.config
        registry = app.state.twilio_calls = CallRegistry(config.twilio)
    return registry


def _credentials_presented(websocket: WebSocket) -> bool:
    return bool(websocket.headers.get("authorization") or "token" in websocket.query_params
                or websocket.scope.get("subprotocols"))


# ---------------------------------------------------------------------------------------------
# The media stream


class _CallStreams:
    """The `LiveStream`s of one connection (one per track) and the tasks reading their finals."""

    def __init__(self, call: Call, registry: CallRegistry) -> None:
        self.call = call
        self.registry = registry
        self.streams: dict[str, LiveStream] = {}
        self.readers: list[asyncio.Task] = []

    def add(self, track: str, stream: LiveStream) -> None:
        self.streams[track] = stream
        self.readers.append(asyncio.create_task(self._read(track, stream)))

    async def _read(self, track: str, stream: LiveStream) -> None:
        call = self.call
        index = call.tracks.index(track)
        async for event in stream.events():
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


async def _open_streams(websocket: WebSocket, start: proto.Start, call: Call) -> _CallStreams:

    state = state_of(websocket)
    params = start.custom_parameters
    language = parse_language(params.get("language", state.config.twilio.language))
    model = params.get("model") or state.config.twilio.model or None
    scheduler = await state.engine.get(model)
    if language not in (None, "en") and not scheduler.transcriber.info.multilingual:
        raise InvalidParameter(f"model {scheduler.transcriber.info.name!r} is English-only; "
                               f"language={language!r} needs a multilingual model", param="language")
    options = StreamOptions(encoding="mulaw", sample_rate=proto.SAMPLE_RATE, channels=1,
                            interim_results=False, language=language, model=model)
    streams = _CallStreams(call, registry_of(websocket.app))
    for track in start.tracks:
        streams.add(track, LiveStream(scheduler, options, state.config))
    return streams


async def media_stream(websocket: WebSocket) -> None:

    state = state_of(websocket)
    keys = state.config.api_keys
    deferred_auth = False
    subprotocol = None
    try:
        subprotocol = check_auth(keys, websocket.headers, websocket.query_params,
                                 websocket.scope.get("subprotocols", []))
    except AuthError as exc:
        if _credentials_presented(websocket):
            await reject(websocket, exc)
            return
        deferred_auth = True          # Twilio: the key comes in start.customParameters.token
    await websocket.accept(subprotocol=subprotocol)

    registry = registry_of(websocket.app)
    protocol = proto.MediaStream()
    call: Call | None = None
    streams: _CallStreams | None = None
    status = "completed"
    close = (1000, "")
    try:
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), state.config.stream.idle_timeout_s)
            except asyncio.TimeoutError:
                status, close = "timeout", (1000, "no message for "
                                            f"{state.config.stream.idle_timeout_s:g} s")
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
                # A broken sender can repeat one mistake 50 times a second: report the first
                # ten, then one in a hundred (with the count).
                if exc.fatal or protocol.errors <= 10 or protocol.errors % 100 == 0:
                    message = exc.message if protocol.errors <= 10 else (
                        f"{exc.message} (error {protocol.errors} on this stream)")
                    log.warning("twilio stream %s: %s", protocol.start.stream_sid
                                if protocol.start else "?", message)
                    if call is not None:
                        call.error(exc.code, message)
                if exc.fatal:
                    status, close = "failed", (1008, exc.message[:120])
                    break
                continue
            stop = False
            for action in actions:
                if isinstance(action, proto.TrackAudio):
                    await streams.streams[action.track].feed(action.mulaw)
                elif isinstance(action, proto.Start):
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
            except (RuntimeError, OSError):
                pass


# ---------------------------------------------------------------------------------------------
# Reading transcripts


def _check(request_or_ws) -> str | None:
    state = request_or_ws.app.state.streamscribe
    return check_auth(state.config.api_keys, request_or_ws.headers, request_or_ws.query_params,
                      request_or_ws.scope.get("subprotocols", []))


async def list_calls(request: Request) -> JSONResponse:
    _check(request)
    registry = registry_of(request.app)
    calls = [*registry.live.values(), *reversed(registry.finished.values())]
    return JSONResponse({"calls": [c.summary() for c in calls]})


async def get_call(request: Request) -> JSONResponse:
    _check(request)
    call_sid = request.path_params["call_sid"]
    call = registry_of(request.app).get(call_sid)
    if call is None:
        return JSONResponse({"error": {"message": f"no call {call_sid!r} (unknown, or no longer "
                                                  "kept)", "type": "invalid_request_error",
                                       "param": "callSid", "code": "call_not_found"}},
                            status_code=404)
    return JSONResponse(call.to_json())


async def call_events(websocket: WebSocket) -> None:

    try:
        subprotocol = _check(websocket)
        queue, call = registry_of(websocket.app).subscribe(websocket.path_params["call_sid"])
        # taken in the same step as subscribing: every later turn comes through the queue
        snapshot = ({"type": "call_started", "call": call.summary()},
                    *({"type": "turn", "call_sid": call.call_sid, **t.to_json()}
                      for t in call.conversation.turns)) if call is not None else ()
        ended = call.to_json() if call is not None and call.status != "live" else None
    except StreamscribeError as exc:
        await reject(websocket, exc)
        return
    call_sid = websocket.path_params["call_sid"]
    registry = registry_of(websocket.app)
    await websocket.accept(subprotocol=subprotocol)
    try:
        for message in snapshot:        # catch up: what was said before this subscriber came
            await websocket.send_json(message)
        if ended is not None:
            await websocket.send_json({"type": "call_ended", "call": ended})
            await websocket.close(code=1000)
            return
        receiver = asyncio.create_task(websocket.receive())   # notices the subscriber leaving
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                return
            message = getter.result()
            if message is None:
                receiver.cancel()
                await websocket.close(code=1000)
                return
            await websocket.send_json(message)
            if queue.overflowed and queue.empty():
                receiver.cancel()
                await websocket.close(code=1013, reason="subscriber too slow; messages dropped")
                return
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        registry.unsubscribe(call_sid, queue)


def routes() -> list:
    return [
        WebSocketRoute("/v1/twilio", media_stream),
        Route("/v1/twilio/calls", list_calls),
        Route("/v1/twilio/calls/{call_sid}", get_call),
        WebSocketRoute("/v1/twilio/calls/{call_sid}/events", call_events),
    ]
