"""Synthesized audio and a deterministic voice detector for the pure core tests.

The segmenter and session are logic over sample counts; their tests need audio whose speech
spans are known to the sample, not recordings. `voiced(seconds)` is a vowel-like harmonic
signal that webrtcvad classifies as speech in every frame (so the session, which builds its
own webrtcvad segmenter, sees exactly the spans the test laid out); `EnergyVad` is a voice
detector that calls any frame louder than a threshold speech, for segmenter tests that
should not depend on webrtcvad at all.
"""

from __future__ import annotations

import numpy as np

RATE = 16_000


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


def voiced(seconds: float, f0: float = 130.0) -> np.ndarray:
    """A sustained vowel: harmonics of a gently wavering pitch, shaped by two formants and
    modulated at syllable rate (4 Hz)."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / RATE
    harmonics = range(1, 30)
    weights = [np.exp(-((k * f0 - 700) / 400) ** 2) + 0.5 * np.exp(-((k * f0 - 1200) / 300) ** 2)
               for k in harmonics]
    signal = sum(w * np.sin(k * phase) for k, w in zip(harmonics, weights))
    signal *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return (signal / np.abs(signal).max() * 8000).astype(np.int16)


class EnergyVad:
    """A voice detector with webrtcvad's `is_speech(frame_bytes, rate)` seam: a frame is
    speech when its mean absolute amplitude exceeds `threshold`."""

    def __init__(self, threshold: float = 100.0) -> None:
        self.threshold = threshold

    def is_speech(self, frame: bytes, sample_rate: int) -> bool:
        return float(np.abs(np.frombuffer(frame, "<i2").astype(np.float32)).mean()) > self.threshold
