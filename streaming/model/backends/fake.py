"""A scriptable Transcriber for unit tests of logic and for injecting faults."""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from ...errors import TranscriptionError
from ..transcriber import (
    SAMPLE_RATE,
    ModelInfo,
    Segment,
    TranscribeOptions,
    Transcript,
    Word,
)


class FakeTranscriber:
    """Answers each call with `script(audio, options) -> text` (default: a fixed text),
    words spread evenly over the audio. `delay` seconds per call; `fail_on(n)` -> raise on call n."""

    def __init__(self, script: Callable[[np.ndarray, TranscribeOptions], str] | str = "hello world",
                 delay: float = 0.0, fail_on: Callable[[int], bool] = lambda n: False,
                 no_speech_prob: float = 0.01, multilingual: bool = True) -> None:
        self._script = script if callable(script) else (lambda audio, options: script)
        self.delay = delay
        self.fail_on = fail_on
        self.no_speech_prob = no_speech_prob
        self.calls: list[tuple[int, TranscribeOptions]] = []
        self._lock = threading.Lock()
        self._info = ModelInfo("fake", multilingual, "fake")

    @property
    def info(self) -> ModelInfo:
        return self._info

    def detect_language(self, audio: np.ndarray) -> dict[str, float]:
        return {"en": 1.0}

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        with self._lock:
            number = len(self.calls)
            self.calls.append((len(audio), options))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on(number):
            raise TranscriptionError(f"injected failure on call {number}")
        text = self._script(audio, options)
        duration = len(audio) / SAMPLE_RATE
        tokens = text.split()
        step = duration / max(len(tokens), 1)
        words = tuple(Word(t, i * step, (i + 1) * step, 0.9) for i, t in enumerate(tokens))
        segment = Segment(0, 0, 0.0, duration, " " + text, (1, 2, 3), 0.0, -0.2, 1.2,
                          self.no_speech_prob, words)
        return Transcript(text, options.language or "en", 0.99, duration,
                          (segment,) if text else (), options.task)
