"""The call registry: live and recently finished Twilio calls, their transcripts and listeners.

A call may arrive over several media streams (one per track, or both tracks on one); it is
live while any of them is open. When the last one ends the call is finished: the transcript is
POSTed to the webhook if one is configured, then `call_ended` goes to every subscriber and the
call joins the most recent `twilio.keep_calls` finished calls.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections import OrderedDict, deque
from typing import Any, Callable, Literal

import httpx
from starlette.requests import HTTPConnection

from ...config import TwilioConfig
from ...core.conversation import Conversation
from ...errors import InvalidParameter
from ...protocols import twilio as proto
from ..state import state_of
from .webhook import post_transcript

log = logging.getLogger("streamscribe.twilio")

CallStatus = Literal["live", "completed", "timeout", "disconnected", "failed", "shutdown"]
Message = dict[str, Any]

SUBSCRIBER_QUEUE = 1024           # messages buffered per event subscriber before it is dropped
MAX_WAITING_CALLS = 10_000        # distinct unknown calls that may have subscribers waiting


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Subscriber(asyncio.Queue[Message | None]):
    """One event listener's messages; `None` ends them. `overflowed`: it fell behind, was dropped."""

    overflowed = False


class Call:
    """One call's transcript and listeners."""

    def __init__(self, start: proto.Start) -> None:
        self.call_sid = start.call_sid
        self.account_sid = start.account_sid
        self.stream_sids: list[str] = []
        self.tracks: list[str] = []
        self.custom_parameters = {k: v for k, v in start.custom_parameters.items() if k != "token"}
        self.status: CallStatus = "live"
        self.started_at = now()
        self.ended_at: str | None = None
        self.duration_s = 0.0
        self.conversation = Conversation()
        self.errors: deque[Message] = deque(maxlen=50)
        self.webhook: Message | None = None
        self.open_streams = 0
        self.subscribers: set[Subscriber] = set()

    def summary(self) -> Message:
        return {"call_sid": self.call_sid, "account_sid": self.account_sid,
                "stream_sids": list(self.stream_sids), "tracks": list(self.tracks),
                "status": self.status, "started_at": self.started_at, "ended_at": self.ended_at,
                "duration_s": round(self.duration_s, 3), "turn_count": len(self.conversation.turns),
                "custom_parameters": dict(self.custom_parameters)}

    def to_json(self) -> Message:
        return {**self.summary(), **self.conversation.to_json(), "errors": list(self.errors),
                "webhook": self.webhook}

    def publish(self, message: Message) -> None:
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:   # a subscriber that does not read is dropped, never waited for
                self.subscribers.discard(queue)
                queue.overflowed = True

    def error(self, code: str, message: str) -> None:
        entry = {"code": code, "message": message, "at": now()}
        self.errors.append(entry)
        self.publish({"type": "error", "call_sid": self.call_sid, **entry})


class CallRegistry:
    """Live and recently finished calls of one server (bounded)."""

    def __init__(self, config: TwilioConfig,
                 transport: httpx.AsyncBaseTransport | None = None,
                 hold: Callable[[asyncio.Task[None]], None] | None = None) -> None:
        self.config = config
        self.transport = transport            # for the webhook; tests inject one
        self.hold = hold                      # the server's drain waits for what it holds
        self.live: dict[str, Call] = {}
        self.finished: OrderedDict[str, Call] = OrderedDict()
        self._waiting: dict[str, set[Subscriber]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, call_sid: str) -> Call | None:
        return self.live.get(call_sid) or self.finished.get(call_sid)

    def calls(self) -> list[Call]:
        """Live calls, then finished ones, most recent first."""
        return [*self.live.values(), *reversed(self.finished.values())]

    def begin(self, start: proto.Start) -> Call:
        """A media stream of this call started: the call is (again) live."""
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

    def end(self, call: Call, status: CallStatus) -> None:
        """A media stream of this call ended; the last one finishes the call with `status`."""
        call.open_streams -= 1
        if call.open_streams > 0:
            return
        call.status = status
        call.ended_at = now()
        self.live.pop(call.call_sid, None)
        self.finished[call.call_sid] = call
        while len(self.finished) > max(self.config.keep_calls, 0):
            self.finished.popitem(last=False)
        if self.config.webhook_url:
            task = asyncio.get_running_loop().create_task(self._report(call, self.config.webhook_url))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if self.hold is not None:
                self.hold(task)
        else:
            self._ended(call)

    async def _report(self, call: Call, url: str) -> None:
        try:
            status, error = await post_transcript(
                url, {"event": "call.completed", "call": call.to_json()},
                timeout_s=self.config.webhook_timeout_s, transport=self.transport)
            call.webhook = {"url": url, "status": status, "at": now()}
            if status is None:
                call.webhook["error"] = error
            if error is not None:
                message = f"webhook {url} {'failed: ' if status is None else ''}{error}"
                call.error("webhook_failed", message)
                log.warning("call %s: %s", call.call_sid, message)
        finally:
            self._ended(call)

    def _ended(self, call: Call) -> None:
        call.publish({"type": "call_ended", "call": call.to_json()})
        for queue in call.subscribers:
            try:
                queue.put_nowait(None)
            except asyncio.QueueFull:
                queue.overflowed = True
        call.subscribers.clear()

    def subscribe(self, call_sid: str) -> tuple[Subscriber, Call | None]:
        """A queue of this call's messages (None ends it); the call if it is known already."""
        queue = Subscriber(SUBSCRIBER_QUEUE)
        call = self.get(call_sid)
        if call is None:
            waiting = self._waiting.setdefault(call_sid, set())
            if len(waiting) >= self.config.max_subscribers or len(self._waiting) > MAX_WAITING_CALLS:
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


def registry_of(connection: HTTPConnection) -> CallRegistry:
    """The call registry of the app serving this connection, made on first use."""
    app_state = connection.app.state
    registry: CallRegistry | None = getattr(app_state, "twilio_calls", None)
    if registry is None:
        state = state_of(connection)
        registry = app_state.twilio_calls = CallRegistry(state.config.twilio,
                                                         hold=state.lifecycle.hold)
    return registry
