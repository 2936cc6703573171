"""Pure tests of the VAD segmenter on real corpus speech (no sockets, no model)."""

import numpy as np
import pytest

from streaming.config import VadConfig
from streaming.core.segmenter import (
    Discarded,
    Ended,
    Resumed,
    Segmenter,
    Speculate,
    Started,
)
from streaming.eval.corpus import item

RATE = 16_000


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


def run(stream: np.ndarray, config: VadConfig = VadConfig(), chunk: int = 1000):
    segmenter = Segmenter(config)
    events = []
    for i in range(0, len(stream), chunk):
        events += segmenter.feed(stream[i:i + chunk])
    return events + segmenter.flush("close")


@pytest.fixture(scope="module")
def clips():
    return [item("en_lj_LJ001-0002").mono16k(), item("en_lj_LJ001-0004").mono16k(),
            item("en_ls_1089-134686-0000").mono16k()]


@pytest.fixture(scope="module")
def conversation(clips):
    """Three utterances separated by 1.5 s pauses; returns the stream and speech spans."""
    parts, spans, position = [silence(1.0)], [], RATE
    for clip in clips:
        spans.append((position, position + len(clip)))
        parts += [clip, silence(1.5)]
        position += len(clip) + int(1.5 * RATE)
    return np.concatenate(parts), spans


def test_one_utterance_per_spoken_clip_in_order(conversation):
    stream, spans = conversation
    ended = [e for e in run(stream) if isinstance(e, Ended)]
    assert [e.reason for e in ended] == ["endpoint"] * 3
    assert [e.utterance.index for e in ended] == [0, 1, 2]
    for event, (start, end) in zip(ended, spans):
        u = event.utterance
        # Pre-roll: the utterance starts before the speech does; nothing of the clip is cut.
        assert u.start <= start + 0.05 * RATE
        assert u.end >= end - 0.35 * RATE  # clips end with some silence of their own
        assert start - 0.5 * RATE <= u.start


def test_started_reports_onset_near_true_start(conversation):
    stream, spans = conversation
    started = [e for e in run(stream) if isinstance(e, Started)]
    assert len(started) == 3
    for event, (start, _) in zip(started, spans):
        assert abs(event.onset - start) < 0.3 * RATE


def test_chunking_does_not_change_segmentation(conversation):
    stream, _ = conversation

    def summary(events):
        return [(type(e).__name__, getattr(getattr(e, "utterance", None), "start", None),
                 getattr(getattr(e, "utterance", None), "end", None)) for e in events]

    assert summary(run(stream, chunk=333)) == summary(run(stream, chunk=16000))


def test_speculation_carries_exactly_the_final_audio(conversation):
    stream, _ = conversation
    events = run(stream)
    speculated = {e.utterance.index: e.utterance for e in events if isinstance(e, Speculate)}
    resumed = {e.index for e in events if isinstance(e, Resumed)}
    for event in events:
        if isinstance(event, Ended) and event.utterance.index in speculated \
                and event.utterance.index not in resumed:
            assert np.array_equal(speculated[event.utterance.index].audio, event.utterance.audio)


def test_resume_within_the_window_keeps_one_utterance(clips):
    a, b = clips[0], clips[1]
    config = VadConfig(endpointing_ms=900, speculative_ms=150)
    stream = np.concatenate([silence(0.5), a, silence(0.5), b, silence(1.5)])
    events = run(stream, config)
    assert sum(isinstance(e, Ended) for e in events) == 1
    assert any(isinstance(e, Speculate) for e in events)
    assert any(isinstance(e, Resumed) for e in events)


def test_long_monologue_is_split_without_losing_audio(clips):
    speech = np.concatenate([clips[2], clips[0], clips[2], clips[1]])
    stream = np.concatenate([silence(0.5), speech, silence(1.0)])
    config = VadConfig(max_utterance_s=6.0, endpointing_ms=2000)
    ended = [e.utterance for e in run(stream, config) if isinstance(e, Ended)]
    assert len(ended) >= 2
    assert all(len(u.audio) <= 6.0 * RATE + 480 for u in ended)
    # Consecutive pieces of the monologue touch: no sample lost or repeated at a cut.
    for before, after in zip(ended, ended[1:]):
        if after.start - before.end < 480:
            assert after.start == before.end
    joined = np.concatenate([u.audio for u in ended if u.start < ended[0].start + len(speech)])
    first = ended[0].start
    assert np.array_equal(joined[: len(speech) - 16000], stream[first:first + len(speech) - 16000])


def test_silence_yields_nothing():
    assert run(silence(5.0)) == []


def test_click_is_discarded():
    rng = np.random.default_rng(0)
    burst = (rng.standard_normal(int(0.12 * RATE)) * 8000).astype(np.int16)
    events = run(np.concatenate([silence(1.0), burst, silence(2.0)]),
                 VadConfig(min_speech_ms=250))
    assert not any(isinstance(e, Ended) for e in events)


def test_flush_ends_the_utterance_in_progress(clips):
    segmenter = Segmenter(VadConfig())
    events = segmenter.feed(np.concatenate([silence(0.3), clips[1][: RATE * 2]]))
    assert any(isinstance(e, Started) for e in events)
    flushed = segmenter.flush()
    assert [type(e) for e in flushed] == [Ended]
    assert flushed[0].reason == "flush"
    assert flushed[0].utterance.end == segmenter.position
