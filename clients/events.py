"""Typed events a client receives, parsed from the `/v1/listen` JSON messages (sans-I/O).

Server messages (Deepgram live-streaming shapes, plus streamscribe's extra fields):

    Transcript      "Results"        a partial (`is_final=False`) or final transcript
    SpeechStarted   "SpeechStarted"  voice activity began (with `vad_events=true`)
    UtteranceEnd    "UtteranceEnd"   no word for `utterance_end_ms` after the last one
    Metadata        "Metadata"       sent once, when the stream closes
    ServerError     "Error"          a non-fatal warning (bad frame, ...); the stream goes on
    UnknownMessage  anything else    kept so that newer servers do not break older clients

Client-side events (from `ResilientStream` and the audio sources, never on the wire):

    Reconnecting    the connection was lost; the next attempt comes after `delay` s
    Reconnected     a new connection is up; its times are shifted by `offset` s
    AudioLost       audio that could not be sent (and will never be): `start`, `duration`

Every server event keeps the decoded JSON in `raw` (not compared, not in repr), so a caller
can print or forward exactly what the server sent. Times are seconds from the start of the
stream (for `ResilientStream`, of the caller's audio: all connections together).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

__all__ = [
    "AudioLost",
    "Event",
    "Metadata",
    "Reconnected",
    "Reconnecting",
    "ServerError",
    "SpeechStarted",
    "Transcript",
    "UnknownMessage",
    "UtteranceEnd",
    "Word",
    "final_text",
    "parse_event",
]


def _channel(value: Any) -> tuple[int, int]:
    """Deepgram's `[index, count]` (also tolerates a bare index)."""
    if isinstance(value, (list, tuple)) and value:
        index = int(value[0])
        return index, int(value[1]) if len(value) > 1 else index + 1
    if isinstance(value, (int, float)):
        return int(value), int(value) + 1
    return 0, 1


@dataclass(frozen=True)
class Word:
    word: str                 # normalized ("hello")
    start: float
    end: float
    confidence: float = 0.0
    punctuated_word: str = ""  # as transcribed ("Hello,"); falls back to `word`

    @property
    def text(self) -> str:
        return self.punctuated_word or self.word

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Word":
        word = str(data.get("word", ""))
        return cls(word=word, start=float(data.get("start", 0.0)), end=float(data.get("end", 0.0)),
                   confidence=float(data.get("confidence", 0.0)),
                   punctuated_word=str(data.get("punctuated_word") or word))

    def shifted(self, offset: float) -> "Word":
        return replace(self, start=self.start + offset, end=self.end + offset)


@dataclass(frozen=True)
class Transcript:
    """A `Results` message: the first alternative of one channel.

    `is_final` marks text that will not change; `speech_final` the end of an utterance by
    endpointing; `from_finalize` a final forced by Finalize/CloseStream. `language`,
    `stable_words` (leading words of a partial that will not change), `latency_ms` and
    `hallucination` are streamscribe extras (None/0/empty from other servers).
    """

    text: str
    is_final: bool
    start: float
    duration: float
    words: tuple[Word, ...] = ()
    confidence: float = 0.0
    speech_final: bool = False
    from_finalize: bool = False
    channel: int = 0
    channels: int = 1
    language: str | None = None
    stable_words: int = 0
    latency_ms: float | None = None
    hallucination: Mapping[str, Any] = field(default_factory=dict, compare=False)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def likely_hallucination(self) -> bool:
        """True when the server flagged this text as probably not speech ("Thank you." on noise)."""
        h = self.hallucination or {}
        return bool(h.get("likely") or h.get("suppressed_text"))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Transcript":
        alternatives = (data.get("channel") or {}).get("alternatives") or [{}]
        best = alternatives[0] or {}
        channel, channels = _channel(data.get("channel_index"))
        latency = data.get("latency_ms")
        return cls(text=str(best.get("transcript", "")), is_final=bool(data.get("is_final")),
                   start=float(data.get("start", 0.0)), duration=float(data.get("duration", 0.0)),
                   words=tuple(Word.from_json(w) for w in best.get("words") or ()),
                   confidence=float(best.get("confidence", 0.0)),
                   speech_final=bool(data.get("speech_final")),
                   from_finalize=bool(data.get("from_finalize")),
                   channel=channel, channels=channels, language=data.get("language"),
                   stable_words=int(data.get("stable_words") or 0),
                   latency_ms=None if latency is None else float(latency),
                   hallucination=data.get("hallucination") or {}, raw=data)

    def shifted(self, offset: float) -> "Transcript":
        return replace(self, start=self.start + offset,
                       words=tuple(w.shifted(offset) for w in self.words))


@dataclass(frozen=True)
class SpeechStarted:
    timestamp: float
    channel: int = 0
    channels: int = 1
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SpeechStarted":
        channel, channels = _channel(data.get("channel"))
        return cls(timestamp=float(data.get("timestamp", 0.0)), channel=channel,
                   channels=channels, raw=data)

    def shifted(self, offset: float) -> "SpeechStarted":
        return replace(self, timestamp=self.timestamp + offset)


@dataclass(frozen=True)
class UtteranceEnd:
    last_word_end: float
    channel: int = 0
    channels: int = 1
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "UtteranceEnd":
        channel, channels = _channel(data.get("channel"))
        return cls(last_word_end=float(data.get("last_word_end", 0.0)), channel=channel,
                   channels=channels, raw=data)

    def shifted(self, offset: float) -> "UtteranceEnd":
        return replace(self, last_word_end=self.last_word_end + offset)


@dataclass(frozen=True)
class Metadata:
    """Sent once at close: the request id and the audio duration the server received."""

    request_id: str = ""
    duration: float = 0.0
    channels: int = 1
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Metadata":
        return cls(request_id=str(data.get("request_id", "")),
                   duration=float(data.get("duration", 0.0)),
                   channels=int(data.get("channels", 1) or 1), raw=data)

    def shifted(self, offset: float) -> "Metadata":
        return self


@dataclass(frozen=True)
class ServerError:
    """An `Error` message: the server rejected something (a bad frame) but the stream goes on."""

    code: str
    message: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ServerError":
        # Deepgram's own servers say `variant`/`description`; streamscribe says `code`/`message`.
        return cls(code=str(data.get("code") or data.get("variant") or "error"),
                   message=str(data.get("message") or data.get("description") or ""), raw=data)

    def shifted(self, offset: float) -> "ServerError":
        return self


@dataclass(frozen=True)
class UnknownMessage:
    """A message this client does not know; kept, never dropped silently."""

    type: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def shifted(self, offset: float) -> "UnknownMessage":
        return self


@dataclass(frozen=True)
class Reconnecting:
    """`ResilientStream` lost its connection and retries after `delay` seconds.

    `unconfirmed` is how much audio (s) had been sent on the lost connection after the end
    of its last final: it reached the server but may never be transcribed. It is not re-sent
    (nothing is ever sent twice).
    """

    attempt: int
    delay: float
    reason: str
    unconfirmed: float = 0.0


@dataclass(frozen=True)
class Reconnected:
    """A new connection is up (attempt `attempt`); its times are shifted by `offset` s."""

    attempt: int
    offset: float


@dataclass(frozen=True)
class AudioLost:
    """Audio that could not be sent and never will be: `start`..`start+duration` s of the
    caller's audio. `reason`: "buffer_full" (disconnected longer than the buffer holds),
    "closed" (the stream ended while disconnected), "gave_up" (reconnection abandoned),
    "overflow" (a capture queue overran: the consumer did not keep up).
    """

    start: float
    duration: float
    reason: str


# What a server sends (each can be moved onto the caller's clock with `shifted`), and every
# event a stream yields: those plus the client's own reports about the connection.
ServerEvent = Transcript | SpeechStarted | UtteranceEnd | Metadata | ServerError | UnknownMessage
Event = ServerEvent | Reconnecting | Reconnected | AudioLost

_PARSERS: dict[str, Callable[[Mapping[str, Any]], ServerEvent]] = {"Results": Transcript.from_json, "SpeechStarted": SpeechStarted.from_json,
            "UtteranceEnd": UtteranceEnd.from_json, "Metadata": Metadata.from_json,
            "Error": ServerError.from_json}


def parse_event(message: str | bytes | Mapping[str, Any]) -> ServerEvent:
    """One server text message (JSON text or already decoded) to its typed event.

    Never raises on a well-formed JSON object: unknown types become `UnknownMessage`.
    Raises ValueError when the message is not a JSON object.
    """
    data = json.loads(message) if isinstance(message, (str, bytes)) else message
    if not isinstance(data, Mapping):
        raise ValueError(f"server message is not a JSON object: {message!r:.200}")
    kind = str(data.get("type", ""))
    parser = _PARSERS.get(kind)
    if parser is None:
        return UnknownMessage(type=kind, raw=data)
    return parser(data)


def final_text(events: Iterable[Event], channel: int | None = None) -> str:
    """The text of every final transcript (of one channel, or all), joined by spaces."""
    return " ".join(e.text.strip() for e in events
                    if isinstance(e, Transcript) and e.is_final and e.text.strip()
                    and (channel is None or e.channel == channel))
