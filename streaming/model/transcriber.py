"""The narrow `Transcriber` interface every backend implements, and its value types.

A backend turns 16 kHz mono float32 audio into a `Transcript`. It is blocking and
thread-safe: callers run it in worker threads (see `scheduler.py`), never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import InvalidParameter

SAMPLE_RATE = 16_000

Task = Literal["transcribe", "translate"]


@dataclass(frozen=True)
class Word:
    word: str           # as spoken, with Whisper's leading space stripped
    start: float        # seconds from the start of the audio handed to the backend
    end: float
    probability: float


@dataclass(frozen=True)
class Segment:
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: tuple[int, ...]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...]
    task: str = "transcribe"

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    def shifted(self, offset: float) -> "Transcript":
        """The same transcript with every time moved by `offset` seconds."""
        def move_word(w: Word) -> Word:
            return Word(w.word, w.start + offset, w.end + offset, w.probability)

        segments = tuple(
            Segment(s.id, s.seek, s.start + offset, s.end + offset, s.text, s.tokens,
                    s.temperature, s.avg_logprob, s.compression_ratio, s.no_speech_prob,
                    tuple(move_word(w) for w in s.words))
            for s in self.segments)
        return Transcript(self.text, self.language, self.language_probability,
                          self.duration, segments, self.task)


@dataclass(frozen=True)
class TranscribeOptions:
    """What a caller may ask of one transcription call.

    `language=None` detects it; `languages` restricts detection to a set.
    `temperature` may be a tuple: a fallback schedule, as in Whisper.
    `draft` marks a partial, which a final will replace: a backend spends no second pass on
    a doubtful decode of it (an unfinished sentence is expected mid-utterance; a looping or
    runaway one gives no text rather than a slower redo).
    """

    language: str | None = None
    languages: tuple[str, ...] | None = None
    task: Task = "transcribe"
    prompt: str | None = None
    prefix: str | None = None
    temperature: float | tuple[float, ...] = 0.0
    word_timestamps: bool = True
    beam_size: int = 1
    vad_filter: bool = False
    draft: bool = False


@dataclass(frozen=True)
class ModelInfo:
    name: str
    multilingual: bool
    backend: str

    def check_language(self, language: str | None) -> None:
        """Raise InvalidParameter unless this model can transcribe `language` (None: detect)."""
        if language not in (None, "en") and not self.multilingual:
            raise InvalidParameter(f"model {self.name!r} is English-only; language={language!r} "
                                   "needs a multilingual model", param="language")


@runtime_checkable
class Transcriber(Protocol):
    """Blocking, thread-safe speech-to-text on 16 kHz mono float32 audio."""

    @property
    def info(self) -> ModelInfo: ...

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript: ...

    def detect_language(self, audio: np.ndarray) -> dict[str, float]:
        """Probability of each language code for this audio (multilingual models)."""
        ...


@runtime_checkable
class BatchTranscriber(Transcriber, Protocol):
    """A backend that can run several clips with the same options as one model call."""

    def transcribe_batch(self, audios: Sequence[np.ndarray],
                         options: TranscribeOptions) -> list[Transcript]:
        """One transcript per clip, in order, each as `transcribe` would give it."""
        ...
