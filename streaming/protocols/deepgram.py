"""Deepgram's live-streaming protocol (`/v1/listen`): query parsing, client messages, and the
JSON encoding of our events. Sans-I/O: no sockets here.

Shapes follow Deepgram's public API reference. Our additions ride along as extra fields
(`language`, `stable_words`, `latency_ms`, `hallucination`) and never change theirs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, TypeVar

from ..core.events import (
    Event,
    SpeechStarted,
    StreamWarning,
    Transcription,
    UtteranceEnd,
)
from ..audio import ENCODINGS
from ..booleans import parse_bool
from ..core.session import StreamOptions
from ..errors import InvalidParameter, ProtocolError

D = TypeVar("D", int, None)
from ..languages import parse_language
from .json_text import parse_typed_message
from .query import canonical_int, grouped

# Deepgram parameters that Whisper makes moot (it always punctuates and formats) or that we
# do not implement; accepted so existing clients run unchanged, and listed in Metadata.
ACCEPTED_BOOLEAN = {"punctuate", "smart_format", "diarize", "numerals", "profanity_filter",
                    "filler_words", "dictation", "measurements", "no_delay", "detect_entities",
                    "mip_opt_out"}
ACCEPTED_FREE = {"version", "tier", "tag", "keywords", "keyterm", "search", "replace", "redact",
                 "extra", "callback", "callback_method", "token"}
REPEATABLE = {"tag", "keywords", "keyterm", "search", "replace", "redact", "extra"}
KNOWN = {"encoding", "sample_rate", "channels", "multichannel", "interim_results", "endpointing",
         "utterance_end_ms", "vad_events", "language", "model"} | ACCEPTED_BOOLEAN | ACCEPTED_FREE


def _boolean(params: Mapping[str, str], name: str, default: bool) -> bool:
    if name not in params:
        return default
    try:
        return parse_bool(params[name])
    except ValueError:
        raise InvalidParameter(f"{name}={params[name]!r}: expected true or false",
                               param=name) from None


def _integer(params: Mapping[str, str], name: str, default: D, low: int, high: int) -> int | D:
    if name not in params:
        return default
    value = canonical_int(params[name], name)
    if not low <= value <= high:
        raise InvalidParameter(f"{name}={value}: must be between {low} and {high}", param=name)
    return value


# Keyterms and keywords become Whisper's initial prompt, which the model reads as preceding
# text: it nudges spelling and vocabulary. Whisper keeps at most ~224 prompt tokens, so the
# list is bounded well below that (about four characters a token in English).
MAX_BIAS_TERMS = 100
# LiveKit's Deepgram plugin sends `keywords=NOT_GIVEN` (its unset sentinel) on recognize().
IGNORED_TERMS = frozenset({"NOT_GIVEN"})
MAX_BIAS_CHARS = 600


def bias_prompt(keyterms: list[str], keywords: list[str]) -> str | None:
    """Deepgram's `keyterm` and `keywords` values as a Whisper initial prompt ("A, B, C."),
    or None; raises InvalidParameter past the bounds."""
    # keywords are "word:intensifier" (Deepgram); the intensifier has no Whisper equivalent.
    terms = [t.strip() for t in keyterms]
    terms += [k.rsplit(":", 1)[0].strip() if ":" in k else k.strip() for k in keywords]
    terms = list(dict.fromkeys(t for t in terms if t and t not in IGNORED_TERMS))
    if not terms:
        return None
    if len(terms) > MAX_BIAS_TERMS:
        raise InvalidParameter(f"{len(terms)} keyterms/keywords; at most {MAX_BIAS_TERMS}",
                               param="keyterm")
    prompt = ", ".join(terms) + "."
    if len(prompt) > MAX_BIAS_CHARS:
        raise InvalidParameter(f"keyterms/keywords total {len(prompt)} characters; at most "
                               f"{MAX_BIAS_CHARS}", param="keyterm")
    return prompt


def parse_query(query: Iterable[tuple[str, str]] | Mapping[str, str]) -> StreamOptions:
    """Validate the query string (name, value pairs as sent, so that a parameter given twice
    is seen); raise InvalidParameter naming the first bad parameter."""
    values = grouped(query, KNOWN, REPEATABLE)
    params = {name: given[0] for name, given in values.items()}
    for name in ACCEPTED_BOOLEAN:
        _boolean(params, name, False)
    encoding = params.get("encoding", "linear16").lower()
    if encoding not in ENCODINGS:
        raise InvalidParameter(
            f"encoding={encoding!r}: raw streams must be linear16, mulaw or alaw",
            param="encoding")
    endpointing: int | None
    raw = params.get("endpointing")
    if raw is not None and raw.strip().lower() == "false":
        endpointing = 0
    elif raw is not None and raw.strip().lower() == "true":
        endpointing = None
    else:
        endpointing = _integer(params, "endpointing", None, 10, 10_000)
    utterance_end = _integer(params, "utterance_end_ms", None, 100, 60_000)
    return StreamOptions(
        encoding=encoding,
        sample_rate=_integer(params, "sample_rate", 16_000, 8_000, 48_000),
        channels=_integer(params, "channels", 1, 1, 8),
        multichannel=_boolean(params, "multichannel", False),
        interim_results=_boolean(params, "interim_results", False),
        endpointing_ms=endpointing,
        utterance_end_ms=utterance_end,
        vad_events=_boolean(params, "vad_events", False),
        language=parse_language(params.get("language", "en")),
        model=params.get("model"),
        prompt=bias_prompt(values.get("keyterm", []), values.get("keywords", [])),
    )


@dataclass(frozen=True)
class KeepAlive:
    pass


@dataclass(frozen=True)
class Finalize:
    pass


@dataclass(frozen=True)
class CloseStream:
    pass


ClientMessage = KeepAlive | Finalize | CloseStream
MAX_TEXT_CHARS = 1 << 16        # control messages are a few dozen characters
_MESSAGES: dict[str, type[ClientMessage]] = {"KeepAlive": KeepAlive, "Finalize": Finalize,
                                             "CloseStream": CloseStream}


def parse_client_text(text: str) -> ClientMessage:
    message = parse_typed_message(text, MAX_TEXT_CHARS, "text frame")
    kind = _MESSAGES.get(message["type"])
    if kind is None:
        raise ProtocolError(f"unknown message type {message['type']!r}; expected KeepAlive, "
                            "Finalize or CloseStream", code="unknown_message_type")
    return kind()


class DeepgramEncoder:
    """Encodes events of one connection; holds what every message repeats."""

    def __init__(self, model_name: str, channels: int, request_id: str | None = None,
                 requested_model: str | None = None) -> None:
        self.request_id = request_id or str(uuid.uuid4())
        self.channels = channels
        self.model_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"streamscribe:{model_name}"))
        self.model_info = {"name": model_name, "version": "streamscribe-0.1", "arch": "whisper"}
        if requested_model and requested_model != model_name:
            # A Deepgram (or other public) name served by this model: say which.
            self.model_info["requested"] = requested_model
        self.created = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")

    def encode(self, event: Event) -> dict[str, Any]:
        if isinstance(event, Transcription):
            return self._results(event)
        if isinstance(event, SpeechStarted):
            return {"type": "SpeechStarted", "channel": [event.channel, self.channels],
                    "timestamp": round(event.timestamp, 3)}
        if isinstance(event, UtteranceEnd):
            return {"type": "UtteranceEnd", "channel": [event.channel, self.channels],
                    "last_word_end": round(event.last_word_end, 3)}
        if isinstance(event, StreamWarning):
            return self.error(event.code, event.message)
        raise TypeError(f"cannot encode {event!r}")

    def _results(self, event: Transcription) -> dict[str, Any]:
        words = [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.confidence,
                  "punctuated_word": w.punctuated_word} for w in event.words]
        alternative = {"transcript": event.text, "confidence": event.confidence, "words": words}
        if event.language:
            alternative["languages"] = [event.language]
        message = {
            "type": "Results",
            "channel_index": [event.channel, self.channels],
            "duration": round(event.duration, 3),
            "start": round(event.start, 3),
            "is_final": event.is_final,
            "speech_final": event.speech_final,
            "from_finalize": event.from_finalize,
            "channel": {"alternatives": [alternative]},
            "metadata": {"request_id": self.request_id, "model_info": self.model_info,
                         "model_uuid": self.model_uuid},
            "language": event.language,
        }
        if event.is_final:
            message["latency_ms"] = event.latency_ms
            message["hallucination"] = event.hallucination
        else:
            message["stable_words"] = event.stable_words
        return message

    @staticmethod
    def error(code: str, message: str) -> dict[str, Any]:
        # Deepgram's Error message has variant/description; code/message are ours and theirs.
        return {"type": "Error", "variant": code, "description": message, "code": code,
                "message": message}

    def metadata(self, duration: float, sha256: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"type": "Metadata", "transaction_key": "deprecated",
                "request_id": self.request_id, "sha256": sha256, "created": self.created,
                "duration": round(duration, 3), "channels": self.channels,
                "models": [self.model_uuid], "model_info": {self.model_uuid: self.model_info},
                **(extra or {})}


# Deepgram's model families and use-case suffixes; any of them means "the default model".
FAMILIES = ("nova-3", "nova-2", "nova", "enhanced", "base", "whisper")
USE_CASES = frozenset({"general", "meeting", "phonecall", "finance", "conversationalai",
                       "voicemail", "video", "medical", "drivethru", "automotive", "atc"})


def is_deepgram_model(name: str) -> bool:
    """True for Deepgram model names: a family (`nova-3`, `enhanced`, `whisper`...), optionally
    with a use case or size (`nova-2-phonecall`, `whisper-large`), or a bare use case."""
    name = name.strip().lower()
    if name in USE_CASES:
        return True
    return any(name == family or name.startswith(family + "-") for family in FAMILIES)


def served_model(name: str | None, known: Callable[[str], bool]) -> str | None:
    """The model to ask the engine for: the client's name when the server `known`s it, None
    (the default model) for any other Deepgram model name, else the name unchanged, so that
    the engine's ModelNotFound names it."""
    if name is None or known(name) or not is_deepgram_model(name):
        return name
    return None
