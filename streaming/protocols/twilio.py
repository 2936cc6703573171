"""Twilio Media Streams, sans-I/O: parse and check Twilio's JSON messages; time-align each track.

Twilio opens a WebSocket to us and sends text frames (https://www.twilio.com/docs/voice/media-streams/websocket-messages):

    connected  {"event":"connected","protocol":"Call","version":"1.0.0"}
    start      {"event":"start","sequenceNumber":"1","streamSid":"MZ..","start":{"streamSid","callSid",
                "accountSid","tracks":["inbound","outbound"],"customParameters":{..},
                "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}
    media      {"event":"media","sequenceNumber":"3","streamSid":"MZ..","media":{"track":"inbound",
                "chunk":"1","timestamp":"5","payload":"<base64 μ-law>"}}
    mark       {"event":"mark","streamSid":"MZ..","mark":{"name":"..."}}
    dtmf       {"event":"dtmf","streamSid":"MZ..","dtmf":{"track":"inbound_track","digit":"1"}}
    stop       {"event":"stop","streamSid":"MZ..","stop":{"accountSid","callSid"}}

`parse_message` turns one frame into a typed message or raises `TwilioProtocolError` naming
the field at fault. `MediaStream` holds one connection's state: it checks the order of
messages and the stream id, and turns each track's media into `TrackAudio` placed on the
stream's clock: when a track's `timestamp` runs ahead of the audio received on it (Twilio
skips silent stretches of a track), the gap is to be filled with μ-law silence, so that every
track's time, counted in samples, is the call's time. The silence is only counted here
(`TrackAudio.gap_filled`); the caller makes it, in small pieces. How much a client's
timestamps can make it add is bounded (`MediaStream`). Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProtocolError
from .json_text import parse_json_text

__all__ = [
    "Connected",
    "Dtmf",
    "MULAW_SILENCE",
    "Mark",
    "Media",
    "MediaStream",
    "SAMPLE_RATE",
    "Start",
    "Stop",
    "TRACKS",
    "TrackAudio",
    "TwilioMessage",
    "TwilioProtocolError",
    "parse_message",
]

SAMPLE_RATE = 8000
TRACKS = ("inbound", "outbound")
MULAW_SILENCE = b"\xff"          # μ-law code of a zero sample
MAX_MESSAGE_CHARS = 1 << 16      # Twilio sends 20 ms chunks (~300 characters)


class TwilioProtocolError(ProtocolError):
    """A Twilio message that cannot be used. `fatal`: the stream cannot go on (bad format)."""

    code = "twilio_protocol_error"

    def __init__(self, message: str, *, param: str | None = None, fatal: bool = False) -> None:
        super().__init__(message, param=param)
        self.fatal = fatal


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    channels: int
    custom_parameters: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Media:
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes            # μ-law bytes, 8 kHz mono


@dataclass(frozen=True)
class Mark:
    stream_sid: str
    name: str


@dataclass(frozen=True)
class Dtmf:
    stream_sid: str
    track: str
    digit: str


@dataclass(frozen=True)
class Stop:
    stream_sid: str
    call_sid: str
    account_sid: str


TwilioMessage = Connected | Start | Media | Mark | Dtmf | Stop


@dataclass(frozen=True)
class TrackAudio:
    """What to append to `track`: `gap_filled` samples of silence, then the μ-law `payload`.

    `gap_refused_ms`: the part of a timestamp jump that was not filled (see `MediaStream`)."""

    track: str
    payload: bytes
    gap_filled: int = 0
    gap_refused_ms: int = 0


# ---------------------------------------------------------------------------------------------
# Parsing


def _object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise TwilioProtocolError(f"{where}: '{key}' must be an object", param=key)
    return value


def _string(parent: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = parent.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise TwilioProtocolError(f"{where}: '{key}' must be a non-empty string", param=key)
    return value


def _integer(parent: dict[str, Any], key: str, where: str, *, default: int | None = None) -> int:
    value = parent.get(key, default)
    # Twilio sends numbers as strings ("chunk": "1") in media and as numbers in mediaFormat.
    try:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError
        number = int(value)
    except (TypeError, ValueError):
        raise TwilioProtocolError(f"{where}: '{key}' must be an integer, got {value!r}",
                                  param=key) from None
    if number < 0:
        raise TwilioProtocolError(f"{where}: '{key}' must not be negative", param=key)
    return number


def _track(value: str) -> str:
    # dtmf messages say "inbound_track"; start and media say "inbound".
    return value[:-len("_track")] if value.endswith("_track") else value


def parse_message(text: str | bytes) -> TwilioMessage:
    """One WebSocket frame from Twilio as a typed message; raises `TwilioProtocolError`."""
    if isinstance(text, (bytes, bytearray)):
        raise TwilioProtocolError("binary frame: Twilio Media Streams sends JSON text frames")
    try:
        data = parse_json_text(text, MAX_MESSAGE_CHARS)
    except ValueError as exc:
        raise TwilioProtocolError(f"message {exc}") from None
    if not isinstance(data, dict):
        raise TwilioProtocolError("message must be a JSON object")
    event = data.get("event")
    if not isinstance(event, str):
        raise TwilioProtocolError("message has no 'event' field", param="event")

    if event == "connected":
        return Connected(protocol=str(data.get("protocol", "")), version=str(data.get("version", "")))
    if event == "start":
        start = _object(data, "start", "start")
        fmt = _object(start, "mediaFormat", "start")
        tracks = start.get("tracks", ["inbound"])
        if (not isinstance(tracks, list) or not tracks
                or not all(isinstance(t, str) and _track(t) in TRACKS for t in tracks)):
            raise TwilioProtocolError(f"start: 'tracks' must list some of {list(TRACKS)}, "
                                      f"got {tracks!r}", param="tracks", fatal=True)
        custom = start.get("customParameters") or {}
        if not isinstance(custom, dict):
            raise TwilioProtocolError("start: 'customParameters' must be an object",
                                      param="customParameters")
        stream_sid = _string(start, "streamSid", "start", required=False) or _string(
            data, "streamSid", "start")
        return Start(stream_sid=stream_sid,
                     call_sid=_string(start, "callSid", "start"),
                     account_sid=_string(start, "accountSid", "start", required=False),
                     tracks=tuple(dict.fromkeys(_track(t) for t in tracks)),
                     encoding=_string(fmt, "encoding", "start.mediaFormat"),
                     sample_rate=_integer(fmt, "sampleRate", "start.mediaFormat"),
                     channels=_integer(fmt, "channels", "start.mediaFormat", default=1),
                     custom_parameters={str(k): str(v) for k, v in custom.items()})
    if event == "media":
        media = _object(data, "media", "media")
        track = _track(_string(media, "track", "media", required=False) or "inbound")
        if track not in TRACKS:
            raise TwilioProtocolError(f"media: unknown track {track!r}; expected one of "
                                      f"{list(TRACKS)}", param="track")
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise TwilioProtocolError("media: 'payload' must be a base64 string", param="payload")
        try:
            audio = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise TwilioProtocolError("media: 'payload' is not valid base64",
                                      param="payload") from None
        return Media(stream_sid=_string(data, "streamSid", "media"), track=track,
                     chunk=_integer(media, "chunk", "media", default=0),
                     timestamp_ms=_integer(media, "timestamp", "media"), payload=audio)
    if event == "mark":
        mark = _object(data, "mark", "mark")
        return Mark(stream_sid=_string(data, "streamSid", "mark"),
                    name=_string(mark, "name", "mark", required=False))
    if event == "dtmf":
        dtmf = _object(data, "dtmf", "dtmf")
        return Dtmf(stream_sid=_string(data, "streamSid", "dtmf"),
                    track=_track(_string(dtmf, "track", "dtmf", required=False) or "inbound"),
                    digit=_string(dtmf, "digit", "dtmf"))
    if event == "stop":
        stop: dict[str, Any] = data["stop"] if isinstance(data.get("stop"), dict) else {}
        return Stop(stream_sid=_string(data, "streamSid", "stop"),
                    call_sid=_string(stop, "callSid", "stop", required=False),
                    account_sid=_string(stop, "accountSid", "stop", required=False))
    raise TwilioProtocolError(f"unknown event {event!r}; expected connected, start, media, "
                              "mark, dtmf or stop", param="event")


# ---------------------------------------------------------------------------------------------
# One connection's state


class MediaStream:
    """The state of one Media Streams connection (sans-I/O).

    `receive(text)` takes one frame and returns what it means for the caller: the `Start`
    (once), `TrackAudio` to feed to the track's transcriber, `Mark`/`Dtmf` as they come,
    and the `Stop`. Errors raise `TwilioProtocolError`; unless `fatal`, the stream goes on
    as if the message had not been sent.

    Timestamps cannot make the server do unbounded work: the silence filled into a gap is
    capped so that no track runs more than `max_lead_ms` ahead of the most audio actually
    received on any track (Twilio leaves out a silent track while the other one carries
    the call, so real gaps stay within that bound); the rest of a jump is not filled and
    reported in `TrackAudio.gap_refused_ms`.

    max_lead_ms         how far a track's clock may run ahead of the audio received
    max_before_start    messages accepted before `start` (Twilio sends one, `connected`);
                        one more is a fatal error
    """

    def __init__(self, *, max_lead_ms: int = 2_000, max_before_start: int = 10) -> None:
        self.max_lead_ms = max_lead_ms
        self.max_before_start = max_before_start
        self.start: Start | None = None
        self.stopped = False
        self.samples: dict[str, int] = {}          # per track, on the stream's clock
        self.received: dict[str, int] = {}         # per track, samples that came as payload
        self.messages = 0
        self.errors = 0

    def receive(self, text: str | bytes) -> list[Start | TrackAudio | Mark | Dtmf | Stop]:
        self.messages += 1
        if self.start is None and self.messages > self.max_before_start:
            self.errors += 1
            raise TwilioProtocolError(f"{self.messages} messages without a start; Twilio "
                                      "sends start first", fatal=True)
        try:
            return self._receive(parse_message(text))
        except TwilioProtocolError:
            self.errors += 1
            raise

    def _receive(self, message: TwilioMessage) -> list[Start | TrackAudio | Mark | Dtmf | Stop]:
        if self.stopped:
            raise TwilioProtocolError(f"{type(message).__name__.lower()} after stop")
        if isinstance(message, Connected):
            if self.start is not None:
                raise TwilioProtocolError("connected after start")
            return []
        if isinstance(message, Start):
            if self.start is not None:
                raise TwilioProtocolError("a second start on one stream")
            if (message.encoding, message.sample_rate, message.channels) != (
                    "audio/x-mulaw", SAMPLE_RATE, 1):
                raise TwilioProtocolError(
                    f"start: unsupported mediaFormat {message.encoding} {message.sample_rate} Hz "
                    f"{message.channels} ch; Twilio Media Streams send audio/x-mulaw 8000 Hz 1 ch",
                    param="mediaFormat", fatal=True)
            self.start = message
            self.samples = {track: 0 for track in message.tracks}
            self.received = dict(self.samples)
            return [message]
        if self.start is None:
            raise TwilioProtocolError(f"{type(message).__name__.lower()} before start")
        if message.stream_sid != self.start.stream_sid:
            raise TwilioProtocolError(f"streamSid {message.stream_sid!r} does not match this "
                                      f"stream's {self.start.stream_sid!r}", param="streamSid")
        if isinstance(message, Media):
            return [self._media(message)]
        if isinstance(message, Stop):
            self.stopped = True
            return [message]
        return [message]      # Mark, Dtmf

    def _media(self, media: Media) -> TrackAudio:
        if media.track not in self.samples:
            raise TwilioProtocolError(f"media on track {media.track!r}, which start did not "
                                      f"announce ({list(self.samples)})", param="track")
        expected = self.samples[media.track]
        gap = media.timestamp_ms * SAMPLE_RATE // 1000 - expected
        # Chunks arrive 20 ms apart with millisecond timestamps: a few ms of jitter is not a gap.
        if gap * 1000 // SAMPLE_RATE <= 20:
            gap = 0
        self.received[media.track] += len(media.payload)
        limit = max(self.received.values()) + self.max_lead_ms * SAMPLE_RATE // 1000
        filled = max(0, min(gap, limit - expected - len(media.payload)))
        self.samples[media.track] = expected + filled + len(media.payload)
        return TrackAudio(media.track, media.payload, gap_filled=filled,
                          gap_refused_ms=(gap - filled) * 1000 // SAMPLE_RATE)

    def duration(self, track: str) -> float:
        """Seconds of audio on `track` so far, gaps included."""
        return self.samples.get(track, 0) / SAMPLE_RATE
