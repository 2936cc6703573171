"""OpenAI-style realtime transcription (`/v1/realtime`), the part OpenAI's and Together's
dialects share: session settings, client messages parsed into commands, and the codec that
turns the session's events into transcription items. Sans-I/O: no sockets here.

Both dialects send base64 audio in `input_audio_buffer.append` and end an utterance by
hand with `input_audio_buffer.commit`; the server answers with items
(`conversation.item.input_audio_transcription.delta` / `.completed`, one `item_id` per
utterance) and `error` events in OpenAI's shape. What differs — the session messages, and
whether a delta appends (OpenAI) or replaces (Together) — lives in `openai_realtime.py` and
`together.py`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..audio import Encoding
from ..config import VadConfig
from ..core.events import (
    Event,
    SpeechEnded,
    SpeechStarted,
    StreamWarning,
    Transcription,
)
from ..core.session import StreamOptions
from ..errors import InvalidParameter, ProtocolError
from ..languages import parse_language
from .json_text import parse_typed_message

Dialect = Literal["openai", "together"]
Message = dict[str, Any]

# OpenAI refuses a commit of less than this much audio (input_audio_buffer_commit_empty).
MIN_COMMIT_MS = 100


@dataclass(frozen=True)
class TurnDetection:
    """Server VAD settings as the client gave them; None keeps the server's configuration.

    `threshold` (0–1, a speech probability in OpenAI's and Together's models) selects the
    webrtcvad aggressiveness: below 0.25 → 0, below 0.5 → 1, below 0.75 → 2, else 3.
    """

    silence_ms: int | None = None          # silence_duration_ms / min_silence_duration_ms
    prefix_padding_ms: int | None = None   # prefix_padding_ms / speech_pad_ms
    min_speech_ms: int | None = None       # min_speech_duration_ms (Together)
    max_speech_s: float | None = None      # max_speech_duration_s (Together)
    threshold: float | None = None

    def vad(self, base: VadConfig) -> VadConfig:
        """The server's VAD configuration with this turn detection applied."""
        changes: dict[str, Any] = {}
        if self.silence_ms is not None:
            changes["endpointing_ms"] = self.silence_ms
            changes["speculative_ms"] = min(base.speculative_ms, self.silence_ms)
        if self.prefix_padding_ms is not None:
            changes["preroll_ms"] = self.prefix_padding_ms
        if self.min_speech_ms is not None:
            changes["min_speech_ms"] = self.min_speech_ms
        if self.max_speech_s is not None:
            changes["max_utterance_s"] = self.max_speech_s
        if self.threshold is not None:
            changes["aggressiveness"] = min(3, int(self.threshold * 4))
        return replace(base, **changes)


@dataclass(frozen=True)
class RealtimeSettings:
    """One realtime session's configuration. `turn_detection=None` is manual mode: an
    utterance ends only where the client commits the buffer."""

    encoding: Encoding = "linear16"
    sample_rate: int = 24_000
    model: str | None = None              # the public name the client asked for
    language: str | None = None           # None: detected per stream
    prompt: str | None = None
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)

    def stream_options(self) -> StreamOptions:
        return StreamOptions(
            encoding=self.encoding, sample_rate=self.sample_rate, channels=1,
            interim_results=True,
            # Manual mode: the session still cuts at long pauses (finals without
            # speech_final), and the codec joins them into the committed item.
            endpointing_ms=0 if self.turn_detection is None else None,
            vad_events=True, speech_ended_events=True, language=self.language,
            model=self.model, prompt=self.prompt)

    def vad(self, base: VadConfig) -> VadConfig:
        return base if self.turn_detection is None else self.turn_detection.vad(base)


# -- client messages -------------------------------------------------------------------------

@dataclass(frozen=True)
class Append:
    audio: bytes


@dataclass(frozen=True)
class Commit:
    pass


@dataclass(frozen=True)
class Clear:
    pass


@dataclass(frozen=True)
class UpdateSession:
    """A session update, already merged into the current settings. `reply` is the event
    type that confirms it (`session.updated` or `transcription_session.updated`)."""

    settings: RealtimeSettings
    reply: str


Command = Append | Commit | Clear | UpdateSession


MAX_TEXT_CHARS = 2 << 20     # an append event carries up to 1 MB of audio as base64


def decode(text: str | None) -> Mapping[str, Any]:
    """A client text frame as a JSON object with a string `type`; raises ProtocolError."""
    if text is None:
        raise ProtocolError("binary frames are not part of this protocol: send audio as "
                            "base64 in input_audio_buffer.append", code="invalid_message")
    return parse_typed_message(text, MAX_TEXT_CHARS, "the event")


def client_event_id(message: Mapping[str, Any] | None) -> str | None:
    event_id = (message or {}).get("event_id")
    return event_id if isinstance(event_id, str) else None


def parse_command(message: Mapping[str, Any], settings: RealtimeSettings) -> Command:
    """One client event as a command; raises ProtocolError naming the bad field."""
    kind = message["type"]
    if kind == "input_audio_buffer.append":
        audio = message.get("audio")
        if not isinstance(audio, str):
            raise ProtocolError("input_audio_buffer.append needs base64 audio in 'audio'",
                                code="missing_required_parameter", param="audio")
        try:
            return Append(base64.b64decode(audio, validate=True))
        except (binascii.Error, ValueError):
            raise ProtocolError("'audio' is not valid base64", code="invalid_value",
                                param="audio") from None
    if kind == "input_audio_buffer.commit":
        return Commit()
    if kind == "input_audio_buffer.clear":
        return Clear()
    if kind in _SESSION_PARSERS:
        session = message.get("session")
        if not isinstance(session, dict):
            raise ProtocolError(f"{kind} needs a 'session' object", code="invalid_value",
                                param="session")
        parse, reply = _SESSION_PARSERS[kind]
        return UpdateSession(parse(session, settings), reply)
    raise ProtocolError(
        f"Invalid value: {kind!r}. Supported values are: 'input_audio_buffer.append', "
        "'input_audio_buffer.commit', 'input_audio_buffer.clear', 'session.update', "
        "'transcription_session.update'.", code="invalid_value", param="type")


# -- session updates: three shapes of one configuration ---------------------------------------

def _object(container: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    value = container.get(key)
    if value is not None and not isinstance(value, dict):
        raise ProtocolError(f"{where}.{key} must be an object or null", code="invalid_type",
                            param=f"{where}.{key}")
    return value


def _number(container: Mapping[str, Any], key: str, where: str, low: float,
            high: float) -> float | None:
    value = container.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{where}.{key} must be a number", code="invalid_type",
                            param=f"{where}.{key}")
    if not low <= value <= high:
        raise ProtocolError(f"{where}.{key}={value}: must be between {low:g} and {high:g}",
                            code="invalid_value", param=f"{where}.{key}")
    return float(value)


def _ms(container: Mapping[str, Any], key: str, where: str, low: int,
        high: int) -> int | None:
    value = _number(container, key, where, low, high)
    return None if value is None else int(value)


def server_vad(settings: RealtimeSettings, vad: VadConfig, **fields: Any) -> dict[str, Any] | None:
    """The session's turn detection as a `server_vad` object with the dialect's own `fields`
    (None when turned off); the threshold is the client's, or our VAD's aggressiveness / 4."""
    turn = settings.turn_detection
    if turn is None:
        return None
    return {"type": "server_vad",
            "threshold": turn.threshold if turn.threshold is not None else vad.aggressiveness / 4,
            **fields}


def parse_turn_detection(raw: Mapping[str, Any] | None, current: TurnDetection | None,
                         where: str) -> TurnDetection | None:
    """OpenAI's (`silence_duration_ms`, `prefix_padding_ms`) or Together's
    (`min_silence_duration_ms`, `speech_pad_ms`, …) server VAD; None turns VAD off."""
    if raw is None:
        return None
    kind = raw.get("type", "server_vad")
    if kind not in ("server_vad", "semantic_vad"):
        raise ProtocolError(f"{where}.type={kind!r}: expected 'server_vad' (or null to turn "
                            "detection off)", code="invalid_value", param=f"{where}.type")
    base = current or TurnDetection()
    silence = _ms(raw, "silence_duration_ms", where, 10, 10_000)
    if silence is None:
        silence = _ms(raw, "min_silence_duration_ms", where, 10, 10_000)
    padding = _ms(raw, "prefix_padding_ms", where, 0, 2_000)
    if padding is None:
        padding = _ms(raw, "speech_pad_ms", where, 0, 2_000)
    given = TurnDetection(
        silence_ms=silence, prefix_padding_ms=padding,
        min_speech_ms=_ms(raw, "min_speech_duration_ms", where, 0, 10_000),
        max_speech_s=_number(raw, "max_speech_duration_s", where, 1, 60),
        threshold=_number(raw, "threshold", where, 0, 1))
    # Only the fields present are updated.
    return replace(base, **{k: v for k, v in vars(given).items() if v is not None})


def _transcription(raw: Mapping[str, Any] | None, settings: RealtimeSettings,
                   where: str) -> RealtimeSettings:
    if raw is None:
        return settings
    changes: dict[str, Any] = {}
    for key in ("model", "language", "prompt"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ProtocolError(f"{where}.{key} must be a string", code="invalid_type",
                                param=f"{where}.{key}")
    if raw.get("model"):
        changes["model"] = raw["model"]
    if "language" in raw:
        try:
            changes["language"] = parse_language(raw["language"]) if raw["language"] else None
        except InvalidParameter as exc:
            raise ProtocolError(str(exc), code="invalid_value",
                                param=f"{where}.language") from None
    if "prompt" in raw:
        changes["prompt"] = raw["prompt"] or None
    return replace(settings, **changes)


_FORMATS: dict[str, tuple[Encoding, int | None]] = {
    "audio/pcm": ("linear16", 24_000), "audio/pcmu": ("mulaw", 8_000),
    "audio/pcma": ("alaw", 8_000),
    # The beta shape's names.
    "pcm16": ("linear16", 24_000), "g711_ulaw": ("mulaw", 8_000), "g711_alaw": ("alaw", 8_000),
}


def _format(name: Any, settings: RealtimeSettings, param: str) -> RealtimeSettings:
    if name not in _FORMATS:
        raise ProtocolError(f"{param}={name!r}: expected one of "
                            "audio/pcm, audio/pcmu, audio/pcma", code="invalid_value", param=param)
    encoding, rate = _FORMATS[name]
    return replace(settings, encoding=encoding, sample_rate=rate or settings.sample_rate)


def parse_ga_session(session: Mapping[str, Any], settings: RealtimeSettings) -> RealtimeSettings:
    """`session.update` with a GA transcription session:
    `{"type": "transcription", "audio": {"input": {"format", "transcription", "turn_detection"}}}`."""
    kind = session.get("type", "transcription")
    if kind != "transcription":
        raise ProtocolError(f"session.type={kind!r}: this server only runs transcription "
                            "sessions (connect with ?intent=transcription)",
                            code="invalid_value", param="session.type")
    audio = _object(session, "audio", "session") or {}
    source = _object(audio, "input", "session.audio") or {}
    where = "session.audio.input"
    fmt = _object(source, "format", where)
    if fmt is not None:
        settings = _format(fmt.get("type", "audio/pcm"), settings, f"{where}.format.type")
        rate = fmt.get("rate")
        if rate is not None and rate != 24_000:
            raise ProtocolError(f"{where}.format.rate={rate!r}: audio/pcm is 24000 Hz",
                                code="invalid_value", param=f"{where}.format.rate")
    settings = _transcription(_object(source, "transcription", where), settings,
                              f"{where}.transcription")
    if "turn_detection" in source:
        settings = replace(settings, turn_detection=parse_turn_detection(
            _object(source, "turn_detection", where), settings.turn_detection,
            f"{where}.turn_detection"))
    return settings


def parse_beta_session(session: Mapping[str, Any],
                       settings: RealtimeSettings) -> RealtimeSettings:
    """`transcription_session.update` (the beta API): `input_audio_format`,
    `input_audio_transcription`, `turn_detection` at the top of `session`."""
    if "input_audio_format" in session:
        settings = _format(session["input_audio_format"], settings, "session.input_audio_format")
    settings = _transcription(_object(session, "input_audio_transcription", "session"),
                              settings, "session.input_audio_transcription")
    if "turn_detection" in session:
        settings = replace(settings, turn_detection=parse_turn_detection(
            _object(session, "turn_detection", "session"), settings.turn_detection,
            "session.turn_detection"))
    return settings


_SESSION_PARSERS = {
    "session.update": (parse_ga_session, "session.updated"),
    "transcription_session.update": (parse_beta_session, "transcription_session.updated"),
    # Together's client message carries the past tense; its session holds turn_detection.
    "transcription_session.updated": (parse_beta_session, "transcription_session.updated"),
}


# -- server events -----------------------------------------------------------------------------

def error_event(event_id: str, code: str, message: str, param: str | None = None,
                client_event_id: str | None = None,
                kind: str = "invalid_request_error") -> Message:
    """OpenAI's `error` event (Together sends the same shape)."""
    return {"type": "error", "event_id": event_id,
            "error": {"type": kind, "code": code, "message": message, "param": param,
                      "event_id": client_event_id}}


def _bare(word: str) -> str:
    return word.strip(".,!?;:\"'()[]…—-").lower()


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass
class _Item:
    id: str
    texts: list[str] = field(default_factory=list)   # manual mode: finals of its pauses
    seconds: float = 0.0           # audio transcribed into it
    committed: bool = False
    sent: list[str] = field(default_factory=list)    # OpenAI: words sent as deltas so far
    failed: str | None = None


class TranscriptionItems:
    """Turns one stream's core events into the transcription items of one dialect.

    Server VAD: each utterance is an item: `speech_started` at its onset, `speech_stopped`
    and `committed` when the segmenter ends it, deltas while it is spoken, then `completed`.
    Manual mode (`turn_detection` null): the audio between two commits is one item, however
    many pauses it holds; `commit()` answers at once with `committed`, and the finals of
    that stretch are joined into its `completed`. Times are milliseconds of audio since the
    session began, from sample counts (a session whose settings changed mid-way runs on a
    new stream: `next_stream`). A delta appends to the item's text in OpenAI's
    dialect (only words the session has confirmed are sent) and replaces it in Together's.
    """

    def __init__(self, dialect: Dialect, manual: bool, sample_rate: int,
                 bytes_per_sample: int) -> None:
        self.dialect = dialect
        self.manual = manual
        self._rate = sample_rate
        self._width = bytes_per_sample
        self._items: dict[int, _Item] = {}          # server VAD: items by utterance
        self._cleared: set[int] = set()             # server VAD: utterances a clear dropped
        self._open: _Item | None = None              # manual: the buffer being filled
        self._queue: list[_Item | None] = []         # manual: commits (None: a clear) awaiting their flush final
        self._previous: str | None = None
        self._uncommitted_bytes = 0
        self._failed: str | None = None
        self._offset = 0.0                           # session audio before the current stream

    def next_stream(self, manual: bool, sample_rate: int, bytes_per_sample: int,
                    offset_s: float) -> None:
        """New settings, on a new stream whose time 0 is `offset_s` of session audio. Call
        once the previous stream has delivered all its events; a manual buffer carries over."""
        self.manual = manual
        self._rate = sample_rate
        self._width = bytes_per_sample
        self._offset = offset_s
        self._items.clear()
        self._cleared.clear()

    def _ms(self, seconds: float) -> int:
        return round((self._offset + seconds) * 1000)

    # -- what the client did ------------------------------------------------------------------

    def appended(self, size: int) -> None:
        self._uncommitted_bytes += size

    def commit(self) -> tuple[list[Message], bool]:
        """Messages that answer a commit now, and whether the stream must be finalized."""
        buffered_s = self._uncommitted_bytes / self._width / self._rate
        self._uncommitted_bytes = 0
        speaking = [u for u, item in self._items.items() if not item.committed]
        if speaking and not self.manual:
            return [], True    # speech_stopped and committed follow from the session
        if buffered_s * 1000 < MIN_COMMIT_MS:
            return [error_event(
                new_id("event"), "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {buffered_s * 1000:.2f}ms "
                "of audio.")], False
        if not self.manual and self.dialect == "together":
            return [], False     # Together: with VAD on, a commit only flushes speech
        item = self._open or _Item(new_id("item"))
        self._open = None
        if not self.manual:
            # OpenAI: server VAD heard no speech in the buffer, an item with nothing in it.
            item.seconds = buffered_s
            return [self._committed(item), *self._completed(item, "")], False
        self._queue.append(item)
        return [self._committed(item)], True

    def clear(self) -> tuple[list[Message], bool]:
        """Drop the uncommitted audio; True: finalize, so the utterance in progress is cut
        off (its final is then swallowed)."""
        self._uncommitted_bytes = 0
        cleared = {"type": "input_audio_buffer.cleared", "event_id": new_id("event")}
        if self.manual:
            self._open = None
            self._queue.append(None)
            return [cleared], True
        speaking = [u for u, item in self._items.items() if not item.committed]
        for utterance in speaking:
            del self._items[utterance]
        self._cleared.update(speaking)
        return [cleared], bool(speaking)

    # -- what the session said ----------------------------------------------------------------

    def encode(self, event: Event) -> list[Message]:
        if isinstance(event, StreamWarning):
            if event.code == "transcription_failed":
                self._failed = event.message   # the final it precedes becomes `.failed`
                return []
            return [error_event(new_id("event"), event.code, event.message)]
        if isinstance(event, SpeechStarted):
            if self.manual:
                return []
            item = self._items[event.utterance] = _Item(new_id("item"))
            return [{"type": "input_audio_buffer.speech_started", "event_id": new_id("event"),
                     "audio_start_ms": self._ms(event.timestamp), "item_id": item.id}]
        if isinstance(event, SpeechEnded):
            return self._speech_ended(event)
        if isinstance(event, Transcription):
            return self._final(event) if event.is_final else self._partial(event)
        raise TypeError(f"cannot encode {event!r}")

    def _speech_ended(self, event: SpeechEnded) -> list[Message]:
        item = None if self.manual else self._items.get(event.utterance)
        if item is None:
            return []
        stopped = {"type": "input_audio_buffer.speech_stopped", "event_id": new_id("event"),
                   "audio_end_ms": self._ms(event.timestamp), "item_id": item.id}
        if not event.kept:   # too little speech (a click, a cough): no item after all
            del self._items[event.utterance]
            return [stopped]
        self._uncommitted_bytes = 0
        return [stopped, self._committed(item)]

    def _committed(self, item: _Item) -> Message:
        item.committed = True
        message = {"type": "input_audio_buffer.committed", "event_id": new_id("event"),
                   "item_id": item.id, "previous_item_id": self._previous}
        self._previous = item.id
        return message

    def _partial(self, event: Transcription) -> list[Message]:
        if self.manual:
            self._open = self._open or _Item(new_id("item"))
            item = self._open
        elif event.utterance in self._cleared:
            return []
        else:
            item = self._items.setdefault(event.utterance, _Item(new_id("item")))
        if self.dialect == "together":
            text = " ".join([*item.texts, event.text]).strip()
            return [self._delta(item, text)] if text else []
        if self.manual:
            return []   # OpenAI transcribes a manual buffer once it is committed
        return self._openai_delta(item, [w.punctuated_word
                                         for w in event.words[:event.stable_words]])

    def _openai_delta(self, item: _Item, words: list[str]) -> list[Message]:
        """The words past those already sent, if the text still begins with them, give or
        take case and punctuation (OpenAI's deltas only append; a final that reworded a
        confirmed word sends no further delta, and its `completed` has the final text)."""
        if len(words) <= len(item.sent) or [_bare(w) for w in words[:len(item.sent)]] \
                != [_bare(w) for w in item.sent]:
            return []
        text = (" " if item.sent else "") + " ".join(words[len(item.sent):])
        item.sent = list(words)
        return [self._delta(item, text)]

    def _delta(self, item: _Item, text: str) -> Message:
        message: Message = {
            "type": "conversation.item.input_audio_transcription.delta",
            "event_id": new_id("event"), "item_id": item.id, "content_index": 0, "delta": text}
        if self.dialect == "together":
            message["transcript"] = text   # Together: each delta replaces the one before
        return message

    def _final(self, event: Transcription) -> list[Message]:
        failed, self._failed = self._failed, None
        if not self.manual:
            if event.utterance in self._cleared and event.from_finalize:
                self._cleared.discard(event.utterance)
                return []
            item = self._items.pop(event.utterance, None)
            if item is None or not item.committed:
                return []   # an empty answer to a commit or clear with no speech
            item.failed = failed
            item.seconds = event.duration
            return self._completed(item, event.text, event)
        # Finals come in order, and each commit or clear ends with one flush final: the
        # oldest pending commit owns every final up to its own.
        if not self._queue:
            item = self._open = self._open or _Item(new_id("item"))
        else:
            head = self._queue[0]
            if event.from_finalize:
                self._queue.pop(0)
            if head is None:
                return []   # cleared
            item = head
        item.failed = item.failed or failed
        item.seconds += event.duration
        if event.text:
            item.texts.append(event.text)
        if not event.from_finalize or item is self._open:
            return []
        return self._completed(item, " ".join(item.texts), event)

    def _completed(self, item: _Item, text: str,
                   event: Transcription | None = None) -> list[Message]:
        if item.failed:
            return [{"type": "conversation.item.input_audio_transcription.failed",
                     "event_id": new_id("event"), "item_id": item.id, "content_index": 0,
                     "error": {"type": "server_error", "code": "transcription_failed",
                               "message": item.failed, "param": None}}]
        out: list[Message] = []
        if self.dialect == "openai":
            out += self._openai_delta(item, text.split())
        completed: Message = {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": new_id("event"), "item_id": item.id, "content_index": 0,
            "transcript": text, "usage": {"type": "duration", "seconds": round(item.seconds, 3)}}
        if event is not None:
            # Ours, beside the dialect's fields: where the speech lies, and its language.
            completed.update(start_ms=self._ms(event.start),
                             end_ms=self._ms(event.start + event.duration),
                             language=event.language)
        return out + [completed]
