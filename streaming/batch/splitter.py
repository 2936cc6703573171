"""Long audio for the batch API, sans I/O: cut into pieces at pauses, stitch transcripts back.

Whisper sees at most 30 s at a time, so a file is cut into pieces of `piece_min_s` to
`piece_max_s`, each ending in the longest pause found in that window (a word is never cut
unless the speaker never pauses). Pieces without speech are not transcribed at all, which keeps
a mostly silent four-hour recording cheap and avoids Whisper's hallucinations on silence.
`PauseSplitter` holds at most one piece plus a chunk of audio; `stitch` moves every piece's
times back to file time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import webrtcvad

from ..model.transcriber import SAMPLE_RATE, Segment, Transcript

FRAME_MS = 30
FRAME = SAMPLE_RATE * FRAME_MS // 1000
# Frames quieter than this (RMS, int16 units, about -60 dBFS) are silence without asking the
# VAD, which makes long digital silence nearly free.
SILENCE_RMS = 30.0
MEL_FRAMES_PER_SECOND = 100  # Whisper's `seek` unit


@dataclass(frozen=True)
class Piece:
    index: int           # 0, 1, 2... among the pieces that were emitted (silent ones skipped)
    start: float         # seconds from the start of the file
    audio: np.ndarray    # 16 kHz mono int16

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + self.duration


class PauseSplitter:
    """Feed 16 kHz mono int16 audio in any chunk sizes; take pieces cut at pauses.

    `feed()` and `finish()` return the pieces completed by that call. `skipped_s` counts the
    silence that needed no transcription.
    """

    def __init__(self, *, max_s: float = 30.0, min_s: float = 10.0, aggressiveness: int = 1,
                 min_speech_ms: int = 150) -> None:
        self._max_frames = int(max_s * 1000) // FRAME_MS
        self._min_frames = max(1, int(min_s * 1000) // FRAME_MS)
        self._min_speech_frames = max(1, min_speech_ms // FRAME_MS)
        self._vad = webrtcvad.Vad(aggressiveness)
        self._buffer = np.zeros(0, np.int16)
        self._voiced: list[bool] = []        # one per whole frame of the buffer
        self._energy: list[float] = []
        self._start_sample = 0               # file position of the buffer's first sample
        self._index = 0
        self.skipped_s = 0.0

    def _classify(self) -> None:
        done = len(self._voiced)
        whole = len(self._buffer) // FRAME
        if whole <= done:
            return
        frames = self._buffer[done * FRAME:whole * FRAME].reshape(-1, FRAME)
        rms = np.sqrt(np.mean(frames.astype(np.float32) ** 2, axis=1))
        for frame, level in zip(frames, rms):
            self._energy.append(float(level))
            self._voiced.append(bool(level >= SILENCE_RMS
                                     and self._vad.is_speech(frame.tobytes(), SAMPLE_RATE)))

    def _cut_frame(self) -> int:
        """Where to end the next piece: the middle of the longest pause in [min, max) frames."""
        window = self._voiced[self._min_frames:self._max_frames]
        best_len = best_mid = 0
        run_start = None
        for i, voiced in enumerate([*window, True]):
            if not voiced and run_start is None:
                run_start = i
            elif voiced and run_start is not None:
                # >= prefers the later of equal pauses: longer pieces, fewer calls.
                if i - run_start >= best_len:
                    best_len, best_mid = i - run_start, (run_start + i) // 2
                run_start = None
        if best_len:
            return self._min_frames + best_mid
        # Nobody paused: cut at the quietest frame rather than at an arbitrary one.
        energy = self._energy[self._min_frames:self._max_frames]
        return self._min_frames + int(np.argmin(energy))

    def _emit(self, frames: int | None) -> list[Piece]:
        samples = len(self._buffer) if frames is None else frames * FRAME
        voiced = sum(self._voiced[:frames] if frames is not None else self._voiced)
        audio = self._buffer[:samples]
        start = self._start_sample / SAMPLE_RATE
        self._buffer = self._buffer[samples:]
        self._voiced = self._voiced[frames:] if frames is not None else []
        self._energy = self._energy[frames:] if frames is not None else []
        self._start_sample += samples
        if len(audio) == 0:
            return []
        if voiced < self._min_speech_frames:
            self.skipped_s += len(audio) / SAMPLE_RATE
            return []
        piece = Piece(self._index, start, audio.copy())
        self._index += 1
        return [piece]

    def feed(self, samples: np.ndarray) -> list[Piece]:
        self._buffer = np.concatenate([self._buffer, samples.astype(np.int16, copy=False)])
        self._classify()
        pieces: list[Piece] = []
        while len(self._voiced) >= self._max_frames:
            pieces += self._emit(self._cut_frame())
        return pieces

    def finish(self) -> list[Piece]:
        """The rest of the audio, as a last piece if it holds speech."""
        self._classify()
        return self._emit(None)


def stitch(parts: Sequence[tuple[float, Transcript]], *, duration: float, language: str,
           task: str = "transcribe") -> Transcript:
    """One transcript in file time from (piece start in seconds, piece transcript) pairs."""
    segments: list[Segment] = []
    probability = 0.0
    for offset, transcript in parts:
        probability = max(probability, transcript.language_probability)
        seek = int(round(offset * MEL_FRAMES_PER_SECOND))
        for segment in transcript.shifted(offset).segments:
            segments.append(Segment(
                len(segments), seek + segment.seek, segment.start, segment.end, segment.text,
                segment.tokens, segment.temperature, segment.avg_logprob,
                segment.compression_ratio, segment.no_speech_prob, segment.words))
    text = " ".join(t.text.strip() for _, t in parts if t.text.strip())
    return Transcript(text=text, language=language, language_probability=probability,
                      duration=duration, segments=tuple(segments), task=task)
