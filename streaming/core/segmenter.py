"""Sans-I/O speech segmentation: 16 kHz int16 samples in, segmentation events out.

A webrtcvad decision per frame drives a hysteresis state machine:

    QUIET --(enough voiced frames in the start window)--> SPEAKING
    SPEAKING --(unvoiced frame)--> STOPPING
    STOPPING --(voiced frame)--> SPEAKING            (Resumed, if a Speculate was sent)
    STOPPING --(speculative_ms of silence)--> STOPPING + Speculate
    STOPPING --(endpointing_ms - hangover_ms of silence)--> QUIET  + Utterance("endpoint")

The audio of an utterance is [onset - preroll, last voiced frame + tail], where
tail = min(speculative_ms, endpointing_ms): the audio a Speculate carries is therefore
exactly the audio its Utterance will carry, so a transcript computed ahead can be kept.
A monologue longer than max_utterance_s is cut at its quietest recent frame, and the rest
carries on as the next utterance: no sample is lost across the cut.
All time comes from sample counts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np
import webrtcvad
from typing import Protocol

from ..config import VadConfig
from ..model.transcriber import SAMPLE_RATE


@dataclass(frozen=True)
class Utterance:
    index: int
    start: int           # absolute sample of audio[0]
    audio: np.ndarray    # int16, 16 kHz
    voiced_ms: int

    @property
    def end(self) -> int:
        """Absolute sample just past the utterance's audio."""
        return self.start + len(self.audio)


@dataclass(frozen=True)
class Started:
    index: int
    onset: int           # absolute sample of the first voiced frame


@dataclass(frozen=True)
class Speculate:
    utterance: Utterance


@dataclass(frozen=True)
class Resumed:
    index: int


@dataclass(frozen=True)
class Ended:
    utterance: Utterance
    reason: str          # "endpoint" | "max_length" | "flush" | "close"


@dataclass(frozen=True)
class Discarded:
    index: int           # too little speech to be an utterance (a click, a cough)


SegmentEvent = Started | Speculate | Resumed | Ended | Discarded


class _State(Enum):
    QUIET = 1
    SPEAKING = 2
    STOPPING = 3


class VoiceDetector(Protocol):
    """Says whether one frame (10, 20 or 30 ms of 16-bit mono PCM) is speech: webrtcvad's seam."""

    def is_speech(self, frame: bytes, sample_rate: int) -> bool:
        """Whether this frame (16-bit mono PCM at `sample_rate`) is speech."""
        ...


class Segmenter:
    def __init__(self, config: VadConfig, vad: VoiceDetector | None = None) -> None:
        self.config = config
        self._vad = vad or webrtcvad.Vad(config.aggressiveness)
        self._frame = SAMPLE_RATE * config.frame_ms // 1000
        self._ms = config.frame_ms
        self._start_frames = max(1, config.start_window_ms // self._ms)
        self._preroll_frames = config.preroll_ms // self._ms
        self._tail = SAMPLE_RATE * min(config.speculative_ms, config.endpointing_ms) // 1000
        # Silence as the detector reports it, after its hangover, that makes the endpoint.
        self._endpoint_ms = max(self._ms, config.endpointing_ms - config.hangover_ms)
        self._max_samples = int(config.max_utterance_s * SAMPLE_RATE)
        self._pending = np.zeros(0, np.int16)
        self._position = 0                    # absolute samples consumed into frames
        self._recent: deque[tuple[np.ndarray, bool]] = deque(
            maxlen=max(self._start_frames, self._preroll_frames + self._start_frames))
        self._state = _State.QUIET
        self._index = -1
        self._frames: list[np.ndarray] = []   # current utterance
        self._voiced: list[bool] = []
        self._start = 0
        self._speech_end = 0
        self._silence_ms = 0
        self._speculated = False
        self._floor = 0                       # no utterance may reach back before this
        self._events: list[SegmentEvent] = []

    # -- inputs ---------------------------------------------------------------------------

    def feed(self, samples: np.ndarray) -> list[SegmentEvent]:
        """16 kHz int16 samples, any count (a partial frame waits for the next call); returns
        the events they caused, in order. Positions in events count every sample fed."""
        data = np.concatenate([self._pending, samples.astype(np.int16, copy=False)])
        usable = len(data) - len(data) % self._frame
        for offset in range(0, usable, self._frame):
            self._on_frame(data[offset:offset + self._frame])
        self._pending = data[usable:]
        return self.drain()

    def flush(self, reason: str = "flush") -> list[SegmentEvent]:
        """End the current utterance now (client Finalize: "flush", end of stream: "close"),
        pending samples included."""
        if self._state is not _State.QUIET:
            if len(self._pending):
                self._frames.append(self._pending)
                self._voiced.append(False)
                self._position += len(self._pending)
                self._pending = np.zeros(0, np.int16)
            self._end(reason, trim=False)
        return self.drain()

    def drain(self) -> list[SegmentEvent]:
        """Events not yet returned: `feed` and `flush` return theirs, so none after them."""
        events, self._events = self._events, []
        return events

    # -- queries --------------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Absolute samples received, including any not yet framed."""
        return self._position + len(self._pending)

    @property
    def speaking(self) -> bool:
        """An utterance is in progress (started, not yet ended or discarded)."""
        return self._state is not _State.QUIET

    @property
    def trailing_silence_ms(self) -> int:
        """Silence since the last voiced frame of the utterance in progress."""
        return self._silence_ms if self._state is _State.STOPPING else 0

    def current(self) -> Utterance | None:
        """The utterance in progress (for partial transcripts)."""
        if self._state is _State.QUIET:
            return None
        audio = np.concatenate(self._frames)
        return Utterance(self._index, self._start, audio, self._voiced_ms())

    # -- the state machine ----------------------------------------------------------------

    def _voiced_ms(self) -> int:
        return sum(self._voiced) * self._ms

    def _on_frame(self, frame: np.ndarray) -> None:
        voiced = self._vad.is_speech(frame.tobytes(), SAMPLE_RATE)
        frame_start = self._position
        self._position += len(frame)
        if self._state is _State.QUIET:
            self._recent.append((frame, voiced))
            window = list(self._recent)[-self._start_frames:]
            if sum(v for _, v in window) * self._ms >= self.config.start_voiced_ms:
                self._begin()
            return
        self._frames.append(frame)
        self._voiced.append(voiced)
        if voiced:
            self._speech_end = frame_start + len(frame)
            if self._state is _State.STOPPING:
                self._state = _State.SPEAKING
                if self._speculated:
                    self._events.append(Resumed(self._index))
                self._speculated = False
            self._silence_ms = 0
            if self._position - self._start >= self._max_samples:
                self._split()
            return
        self._state = _State.STOPPING
        self._silence_ms += self._ms
        if not self._speculated and self._silence_ms >= self.config.speculative_ms \
                and self._silence_ms < self._endpoint_ms \
                and self._voiced_ms() >= self.config.min_speech_ms:
            self._speculated = True
            self._events.append(Speculate(self._trimmed()))
        if self._silence_ms >= self._endpoint_ms:
            self._end("endpoint", trim=True)
        elif self._position - self._start >= self._max_samples:
            self._split()

    def _begin(self) -> None:
        window = list(self._recent)
        first_voiced = next(i for i, (_, v) in enumerate(window[-self._start_frames:]) if v)
        onset_index = len(window) - self._start_frames + first_voiced
        frames = window[max(0, onset_index - self._preroll_frames):]
        start = self._position - len(frames) * self._frame
        # The pre-roll never reaches back into the previous utterance (a frame of overlap
        # at most), so no audio is transcribed twice.
        while len(frames) > 1 and start + self._frame <= self._floor:
            frames.pop(0)
            start += self._frame
        self._index += 1
        self._state = _State.SPEAKING
        self._frames = [f for f, _ in frames]
        self._voiced = [v for _, v in frames]
        self._start = start
        self._speech_end = self._position
        self._silence_ms = 0
        self._speculated = False
        self._recent.clear()
        onset = self._position - (len(window) - onset_index) * self._frame
        self._events.append(Started(self._index, max(onset, start)))

    def _trimmed(self) -> Utterance:
        audio = np.concatenate(self._frames)
        keep = min(len(audio), self._speech_end - self._start + self._tail)
        return Utterance(self._index, self._start, audio[:keep], self._voiced_ms())

    def _end(self, reason: str, trim: bool) -> None:
        if trim:
            utterance = self._trimmed()
        else:
            utterance = Utterance(self._index, self._start, np.concatenate(self._frames),
                                  self._voiced_ms())
        if utterance.voiced_ms < self.config.min_speech_ms and reason == "endpoint":
            self._events.append(Discarded(self._index))
        elif utterance.voiced_ms == 0:
            self._events.append(Discarded(self._index))
        else:
            self._events.append(Ended(utterance, reason))
        self._floor = utterance.end
        self._state = _State.QUIET
        self._frames, self._voiced = [], []
        self._speculated = False
        self._silence_ms = 0

    def _split(self) -> None:
        """Cut a too-long utterance at the quietest frame of its last quarter."""
        search_from = max(1, len(self._frames) * 3 // 4)
        energies = [float(np.mean(np.abs(f.astype(np.int32)))) for f in self._frames[search_from:]]
        cut = search_from + int(np.argmin(energies)) if energies else len(self._frames)
        head_frames, head_voiced = self._frames[:cut], self._voiced[:cut]
        head = np.concatenate(head_frames)
        head_end = self._start + len(head)
        self._events.append(Ended(Utterance(
            self._index, self._start, head, sum(head_voiced) * self._ms), "max_length"))
        self._index += 1
        self._start = head_end
        self._floor = head_end
        self._frames, self._voiced = self._frames[cut:], self._voiced[cut:]
        self._speculated = False
        self._events.append(Started(self._index, head_end))
