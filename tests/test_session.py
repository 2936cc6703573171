"""Pure tests of the per-connection session: jobs out, results in, events out (no sockets, no
model: a fake transcriber; synthesized voiced audio that the session's webrtcvad segments)."""

import numpy as np
import pytest

from streaming.audio import mulaw_encode
from streaming.core.events import (
    SpeechEnded,
    SpeechStarted,
    StreamWarning,
    Transcription,
    UtteranceEnd,
)
from streaming.core.session import StreamOptions, StreamSession
from streaming.model.backends.fake import FakeTranscriber

from .synthetic import RATE, silence, voiced


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    return [voiced(2.0), voiced(3.0, f0=180.0)]


def two_utterances(speech):
    return np.concatenate([silence(0.5), speech[0], silence(1.2), speech[1], silence(1.5)])


def feed(session, pcm: np.ndarray, chunk_bytes=3200):
    data = pcm.astype("<i2").tobytes()
    jobs = []
    for i in range(0, len(data), chunk_bytes):
        session.feed(data[i:i + chunk_bytes])
        jobs += session.jobs()
    return jobs


def finals(events):
    return [e for e in events if isinstance(e, Transcription) and e.is_final]


def test_finals_are_emitted_in_order_even_when_results_arrive_reversed(speech):
    fake = FakeTranscriber(lambda audio, o: f"len {len(audio)}")
    session = StreamSession(StreamOptions(interim_results=False))
    jobs = feed(session, two_utterances(speech))
    session.close()
    jobs += session.jobs()
    cancelled = set(session.cancelled())
    live = [j for j in jobs if j.kind == "final" and j.id not in cancelled]
    assert len(live) == 2
    for job in reversed(live):
        session.job_done(job.id, fake.transcribe(job.audio, job.options))
    out = finals(session.events())
    assert [e.utterance for e in out] == [0, 1]
    assert all(e.speech_final for e in out)
    assert session.done


def test_partials_are_stable_and_stale_ones_are_dropped(speech):
    session = StreamSession(StreamOptions(interim_results=True))
    hypotheses = iter(["in", "in being", "in being compared", "in being comparatively"])
    events = []
    pcm = np.concatenate([silence(0.3), speech[0]])
    data = pcm.astype("<i2").tobytes()
    for i in range(0, len(data), 1600):
        session.feed(data[i:i + 1600])
        for job in session.jobs():
            if job.kind == "partial":
                text = next(hypotheses, "in being comparatively modern")
                session.job_done(job.id, FakeTranscriber(text).transcribe(job.audio, job.options))
        events += session.events()
    partials = [e for e in events if isinstance(e, Transcription) and not e.is_final]
    assert len(partials) >= 3
    stable = [e.stable_words for e in partials]
    assert stable == sorted(stable) and stable[-1] >= 2
    # A confirmed word is never changed by a later partial.
    for earlier, later in zip(partials, partials[1:]):
        confirmed = [w.punctuated_word for w in earlier.words[: earlier.stable_words]]
        assert [w.punctuated_word for w in later.words[: len(confirmed)]] == confirmed


def test_partial_for_a_finished_utterance_is_not_emitted(speech):
    session = StreamSession(StreamOptions(interim_results=True))
    jobs = feed(session, np.concatenate([silence(0.3), speech[0]]))
    partial = next(j for j in jobs if j.kind == "partial")
    feed(session, silence(1.5))
    session.job_done(partial.id, FakeTranscriber("late").transcribe(partial.audio, partial.options))
    assert not [e for e in session.events() if isinstance(e, Transcription) and not e.is_final]


def test_finalize_without_speech_answers_with_an_empty_final():
    session = StreamSession(StreamOptions())
    feed(session, silence(1.0))
    session.finalize()
    out = finals(session.events())
    assert len(out) == 1 and out[0].from_finalize and out[0].text == ""


def test_finalize_mid_utterance_flushes_it(speech):
    session = StreamSession(StreamOptions(interim_results=False))
    feed(session, np.concatenate([silence(0.3), speech[1][: RATE * 2]]))
    session.finalize()
    job = [j for j in session.jobs() if j.kind == "final"][-1]
    session.job_done(job.id, FakeTranscriber("produced the").transcribe(job.audio, job.options))
    out = finals(session.events())
    assert len(out) == 1 and out[0].from_finalize and not out[0].speech_final
    assert out[0].text == "produced the"


def test_vad_events_and_utterance_end(speech):
    session = StreamSession(StreamOptions(interim_results=False, vad_events=True,
                                          utterance_end_ms=1000))
    jobs = feed(session, np.concatenate([silence(0.5), speech[0], silence(0.8)]))
    events = session.events()
    assert any(isinstance(e, SpeechStarted) for e in events)
    job = [j for j in jobs if j.kind == "final" and j.id not in session.cancelled()][-1]
    session.job_done(job.id, FakeTranscriber("in being comparatively modern.")
                     .transcribe(job.audio, job.options))
    feed(session, silence(1.5))
    events = session.events()
    ends = [e for e in events if isinstance(e, UtteranceEnd)]
    assert len(ends) == 1
    final = finals(events)[0]
    assert ends[0].last_word_end == final.words[-1].end


def test_speech_ended_events_bracket_each_utterance_and_carry_the_prompt(speech):
    session = StreamSession(StreamOptions(interim_results=False, vad_events=True,
                                          speech_ended_events=True, prompt="Mr. Quilter"))
    pcm = np.concatenate([silence(0.5), speech[0], silence(1.2), np.full(RATE // 20, 3000, np.int16),
                          silence(1.0)])
    jobs = feed(session, pcm)
    events = session.events()
    started = [e for e in events if isinstance(e, SpeechStarted)]
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert [e.utterance for e in started] == [e.utterance for e in ended]
    assert ended[0].kept and ended[0].timestamp > started[0].timestamp
    assert all(j.options.prompt == "Mr. Quilter" for j in jobs)
    # Without the option (Deepgram), no SpeechEnded is emitted.
    plain = StreamSession(StreamOptions(interim_results=False, vad_events=True))
    feed(plain, pcm)
    assert not any(isinstance(e, SpeechEnded) for e in plain.events())


def test_odd_sized_frames_decode_like_whole_ones(speech):
    pcm = two_utterances(speech)
    whole = StreamSession(StreamOptions(interim_results=False))
    odd = StreamSession(StreamOptions(interim_results=False))
    a = feed(whole, pcm, chunk_bytes=3200)
    b = feed(odd, pcm, chunk_bytes=1001)
    assert [(j.kind, len(j.audio)) for j in a] == [(j.kind, len(j.audio)) for j in b]
    assert all(np.array_equal(x.audio, y.audio) for x, y in zip(a, b))


def test_multichannel_mulaw_8k_transcribes_each_channel(speech):
    left = np.concatenate([silence(0.5), speech[0], silence(3.0)])
    right = np.concatenate([silence(3.0), speech[1], silence(1.0)])
    right = np.pad(right, (0, max(0, len(left) - len(right))))
    left = np.pad(left, (0, len(right) - len(left)))
    stereo = np.stack([left[::2], right[::2]], axis=1).reshape(-1)  # crude 8 kHz
    session = StreamSession(StreamOptions(encoding="mulaw", sample_rate=8000, channels=2,
                                          multichannel=True, interim_results=False))
    data = mulaw_encode(stereo)
    for i in range(0, len(data), 999):
        session.feed(data[i:i + 999])
    session.close()
    jobs = [j for j in session.jobs() if j.kind == "final"]
    live = [j for j in jobs if j.id not in set(session.cancelled())]
    for job in live:
        session.job_done(job.id, FakeTranscriber(f"channel {job.channel}")
                         .transcribe(job.audio, job.options))
    out = finals(session.events())
    assert sorted({e.channel for e in out}) == [0, 1]
    assert all(e.text == f"channel {e.channel}" for e in out)


def test_a_failed_final_is_reported_not_lost(speech):
    session = StreamSession(StreamOptions(interim_results=False))
    jobs = feed(session, np.concatenate([silence(0.3), speech[0], silence(1.0)]))
    job = [j for j in jobs if j.kind == "final" and j.id not in session.cancelled()][-1]
    session.job_done(job.id, None, RuntimeError("backend down"))
    events = session.events()
    warnings = [e for e in events if isinstance(e, StreamWarning)]
    assert warnings and warnings[0].code == "transcription_failed"
    assert len(finals(events)) == 1


def test_likely_hallucination_is_suppressed_and_flagged(speech):
    session = StreamSession(StreamOptions(interim_results=False))
    jobs = feed(session, np.concatenate([silence(0.3), speech[0], silence(1.0)]))
    job = [j for j in jobs if j.kind == "final" and j.id not in session.cancelled()][-1]
    fake = FakeTranscriber("Thank you.", no_speech_prob=0.9)
    transcript = fake.transcribe(job.audio, job.options)
    transcript = transcript.__class__(transcript.text, "en", 0.9, transcript.duration, tuple(
        s.__class__(**{**s.__dict__, "avg_logprob": -1.0}) for s in transcript.segments))
    session.job_done(job.id, transcript)
    final = finals(session.events())[0]
    assert final.text == "" and final.hallucination["likely"]
    assert final.hallucination["suppressed_text"] == "Thank you."
