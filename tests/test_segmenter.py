"""Pure tests of the segmenter's state machine: synthesized audio whose speech spans are known
to the sample, and an injected energy voice detector (no recordings, no webrtcvad, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.config import VadConfig
from streaming.core.segmenter import (Discarded, Ended, Resumed, SegmentEvent, Segmenter,
                                      Speculate, Started)

from .synthetic import RATE, EnergyVad, silence, voiced

FRAME = RATE * VadConfig().frame_ms // 1000
PREROLL = RATE * VadConfig().preroll_ms // 1000
TAIL = RATE * VadConfig().speculative_ms // 1000


def run(stream: np.ndarray, config: VadConfig = VadConfig(), chunk: int = 1000) -> list[SegmentEvent]:
    segmenter = Segmenter(config, vad=EnergyVad())
    events = []
    for i in range(0, len(stream), chunk):
        events += segmenter.feed(stream[i:i + chunk])
    return events + segmenter.flush("close")


def frames(seconds: float) -> np.ndarray:
    """Silence of whole frames, so that every span below starts on a frame boundary."""
    return np.zeros(round(seconds * RATE / FRAME) * FRAME, np.int16)


@pytest.fixture(scope="module")
def conversation() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Three utterances (2.1, 3.0, 2.4 s) after 0.99 s and between 1.5 s pauses; the stream and
    the speech spans in samples."""
    parts, spans, position = [frames(0.99)], [], len(frames(0.99))
    for seconds in (2.1, 3.0, 2.4):
        speech = voiced(seconds)[: round(seconds * RATE / FRAME) * FRAME]
        spans.append((position, position + len(speech)))
        parts += [speech, frames(1.5)]
        position += len(speech) + len(frames(1.5))
    return np.concatenate(parts), spans


def test_one_utterance_per_speech_span_with_preroll_and_tail(conversation):
    stream, spans = conversation
    ended = [e for e in run(stream) if isinstance(e, Ended)]
    assert [e.reason for e in ended] == ["endpoint"] * 3
    assert [e.utterance.index for e in ended] == [0, 1, 2]
    for event, (start, end) in zip(ended, spans):
        # [onset - preroll, last voiced frame + tail]: no onset clipped, nothing invented.
        assert event.utterance.start == start - PREROLL
        assert event.utterance.end == end + TAIL
        assert np.array_equal(event.utterance.audio, stream[start - PREROLL:end + TAIL])


def test_started_reports_the_onset(conversation):
    stream, spans = conversation
    started = [e for e in run(stream) if isinstance(e, Started)]
    assert [e.onset for e in started] == [start for start, _ in spans]


def test_chunking_does_not_change_segmentation(conversation):
    stream, _ = conversation

    def summary(events: list[SegmentEvent]) -> list[tuple[str, int | None, int | None]]:
        return [(type(e).__name__, getattr(getattr(e, "utterance", None), "start", None),
                 getattr(getattr(e, "utterance", None), "end", None)) for e in events]

    assert summary(run(stream, chunk=333)) == summary(run(stream, chunk=16000))


def test_speculation_carries_exactly_the_final_audio(conversation):
    stream, _ = conversation
    events = run(stream)
    speculated = {e.utterance.index: e.utterance for e in events if isinstance(e, Speculate)}
    ended = [e.utterance for e in events if isinstance(e, Ended)]
    assert sorted(speculated) == [u.index for u in ended]
    for utterance in ended:
        assert np.array_equal(speculated[utterance.index].audio, utterance.audio)


def test_resume_within_the_window_keeps_one_utterance():
    config = VadConfig(endpointing_ms=900, speculative_ms=150)
    stream = np.concatenate([frames(0.51), voiced(1.5), frames(0.51), voiced(1.2), frames(1.5)])
    events = run(stream, config)
    assert [type(e) for e in events] == [Started, Speculate, Resumed, Speculate, Ended]


def test_long_monologue_is_split_without_losing_audio():
    speech = voiced(14.0)
    stream = np.concatenate([frames(0.51), speech, frames(1.02)])
    config = VadConfig(max_utterance_s=6.0, endpointing_ms=2000)
    ended = [e.utterance for e in run(stream, config) if isinstance(e, Ended)]
    assert len(ended) >= 3
    assert all(len(u.audio) <= 6.0 * RATE for u in ended)
    # Consecutive pieces touch: no sample lost or repeated at a cut.
    for before, after in zip(ended, ended[1:]):
        assert after.start == before.end
    joined = np.concatenate([u.audio for u in ended])
    assert np.array_equal(joined, stream[ended[0].start:ended[-1].end])


def test_silence_yields_nothing():
    assert run(silence(5.0)) == []


def test_burst_shorter_than_min_speech_is_discarded():
    events = run(np.concatenate([frames(0.99), voiced(0.12), frames(2.01)]),
                 VadConfig(min_speech_ms=250))
    assert [type(e) for e in events] == [Started, Discarded]


def test_flush_ends_the_utterance_in_progress():
    segmenter = Segmenter(VadConfig(), vad=EnergyVad())
    events = segmenter.feed(np.concatenate([frames(0.3), voiced(2.0)]))
    assert [type(e) for e in events] == [Started]
    flushed = segmenter.flush()
    assert [type(e) for e in flushed] == [Ended]
    assert flushed[0].reason == "flush"
    assert flushed[0].utterance.end == segmenter.position
