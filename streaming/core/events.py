"""Typed events that the streaming core emits; every wire protocol encodes these.

Times are seconds from the start of the stream, computed from sample counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WordTiming:
    word: str               # without punctuation ("hello")
    punctuated_word: str    # as transcribed ("Hello,")
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class SpeechStarted:
    channel: int
    timestamp: float
    utterance: int = 0      # index of the utterance on its channel (as in Transcription)


@dataclass(frozen=True)
class SpeechEnded:
    """The segmenter ended an utterance (`kept`: it goes to the model, and its final
    follows) or dropped it as noise (`kept=False`: too little speech; no final)."""

    channel: int
    timestamp: float        # end of the utterance's audio
    utterance: int
    kept: bool = True


@dataclass(frozen=True)
class Transcription:
    """A partial (`is_final=False`) or final transcript of one utterance on one channel.

    `stable_words` counts the leading words of a partial that later partials of the same
    utterance will not change (LocalAgreement). `speech_final` marks the end of an
    utterance by endpointing; `from_finalize` a final forced by the client (Finalize/CloseStream).
    """

    channel: int
    start: float
    duration: float
    text: str
    words: tuple[WordTiming, ...]
    is_final: bool
    speech_final: bool = False
    from_finalize: bool = False
    confidence: float = 0.0
    language: str | None = None
    stable_words: int = 0
    latency_ms: float | None = None     # end of speech (sample time) to result, finals only
    utterance: int = 0                  # index of the utterance on its channel
    hallucination: dict[str, Any] = field(default_factory=dict)   # score, flags, suppressed text


@dataclass(frozen=True)
class UtteranceEnd:
    channel: int
    last_word_end: float


@dataclass(frozen=True)
class StreamWarning:
    """Something the client must hear about that does not end the stream (bad frame, dropped audio)."""

    code: str
    message: str


Event = SpeechStarted | SpeechEnded | Transcription | UtteranceEnd | StreamWarning
