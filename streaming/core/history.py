"""The last few seconds of one channel's audio, addressed by absolute sample index."""

from __future__ import annotations

import numpy as np


class AudioHistory:
    """A ring of the most recent `capacity` int16 samples of a stream.

    Sample `i` is the i-th sample ever appended; `between(a, b)` returns what is still kept
    of [a, b). No clock: positions are sample counts, as everywhere in the core.
    """

    def __init__(self, capacity: int) -> None:
        self._ring = np.zeros(max(capacity, 1), np.int16)
        self._end = 0                           # samples ever appended

    @property
    def start(self) -> int:
        """Index of the oldest sample still kept."""
        return max(0, self._end - len(self._ring))

    def append(self, samples: np.ndarray) -> None:
        """Keep `samples` (int16, any count) after those appended before; the oldest beyond
        `capacity` are forgotten."""
        kept = samples[-len(self._ring):]
        first = self._end + len(samples) - len(kept)
        self._ring[np.arange(first, first + len(kept)) % len(self._ring)] = kept
        self._end += len(samples)

    def between(self, start: int, end: int) -> np.ndarray:
        """The kept samples of [start, end): clipped to what the ring still holds."""
        start, end = max(start, self.start), min(end, self._end)
        if start >= end:
            return np.zeros(0, np.int16)
        return self._ring[np.arange(start, end) % len(self._ring)]
