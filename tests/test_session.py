"""Pure tests of the per-connection session: jobs out, results in, events out (no sockets, no
model: a fake transcriber; synthesized voiced audio that the session's webrtcvad segments)."""

from dataclasses import replace

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
from streaming.core.session import (
    CancelJob,
    StartJob,
    StreamOptions,
    StreamSession,
    UtteranceEnded,
)
from streaming.model.backends.fake import FakeTranscriber
from streaming.model.transcriber import Segment, Transcript, Word

from .synthetic import RATE, silence, voiced


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    return [voiced(2.0), voiced(3.0, f0=180.0)]


def two_utterances(speech):
    return np.concatenate([silence(0.5), speech[0], silence(1.2), speech[1], silence(1.5)])


def feed(session, pcm: np.ndarray, chunk_bytes=3200):
    """Feed in chunks, reading the outputs after each one as the shell does."""
    data = pcm.astype("<i2").tobytes()
    outputs = []
    for i in range(0, len(data), chunk_bytes):
        session.feed(data[i:i + chunk_bytes])
        outputs += session.outputs()
    return outputs


def started(outputs):
    return [o.job for o in outputs if isinstance(o, StartJob)]


def live_finals(outputs):
    """Final jobs handed out and not cancelled since."""
    cancelled = {o.job_id for o in outputs if isinstance(o, CancelJob)}
    return [j for j in started(outputs) if j.kind == "final" and j.id not in cancelled]


def finals(outputs):
    return [e for e in outputs if isinstance(e, Transcription) and e.is_final]


def test_finals_are_emitted_in_order_even_when_results_arrive_reversed(speech):
    fake = FakeTranscriber(lambda audio, o: f"len {len(audio)}")
    session = StreamSession(StreamOptions(interim_results=False))
    outputs = feed(session, two_utterances(speech))
    session.close()
    live = live_finals(outputs + session.outputs())
    assert len(live) == 2
    for job in reversed(live):
        session.job_done(job.id, fake.transcribe(job.audio, job.options))
    out = finals(session.outputs())
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
        for job in started(session.outputs()):
            if job.kind == "partial":
                text = next(hypotheses, "in being comparatively modern")
                session.job_done(job.id, FakeTranscriber(text).transcribe(job.audio, job.options))
        events += session.outputs()
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
    outputs = feed(session, np.concatenate([silence(0.3), speech[0]]))
    partial = next(j for j in started(outputs) if j.kind == "partial")
    assert any(o == CancelJob(partial.id) for o in feed(session, silence(1.5)))
    session.job_done(partial.id, FakeTranscriber("late").transcribe(partial.audio, partial.options))
    assert not [e for e in session.outputs() if isinstance(e, Transcription) and not e.is_final]


def test_finalize_without_speech_answers_with_an_empty_final():
    session = StreamSession(StreamOptions())
    feed(session, silence(1.0))
    session.finalize()
    out = finals(session.outputs())
    assert len(out) == 1 and out[0].from_finalize and out[0].text == ""


def test_finalize_mid_utterance_flushes_it(speech):
    session = StreamSession(StreamOptions(interim_results=False))
    outputs = feed(session, np.concatenate([silence(0.3), speech[1][: RATE * 2]]))
    session.finalize()
    job = live_finals(outputs + session.outputs())[-1]
    session.job_done(job.id, FakeTranscriber("produced the").transcribe(job.audio, job.options))
    out = finals(session.outputs())
    assert len(out) == 1 and out[0].from_finalize and not out[0].speech_final
    assert out[0].text == "produced the"


def test_vad_events_and_utterance_end(speech):
    session = StreamSession(StreamOptions(interim_results=False, vad_events=True,
                                          utterance_end_ms=1000))
    outputs = feed(session, np.concatenate([silence(0.5), speech[0], silence(0.8)]))
    assert any(isinstance(e, SpeechStarted) for e in outputs)
    job = live_finals(outputs)[-1]
    session.job_done(job.id, FakeTranscriber("in being comparatively modern.")
                     .transcribe(job.audio, job.options))
    events = session.outputs() + feed(session, silence(1.5))
    ends = [e for e in events if isinstance(e, UtteranceEnd)]
    assert len(ends) == 1
    final = finals(events)[0]
    assert ends[0].last_word_end == final.words[-1].end


def test_speech_ended_events_bracket_each_utterance_and_carry_the_prompt(speech):
    session = StreamSession(StreamOptions(interim_results=False, vad_events=True,
                                          speech_ended_events=True, prompt="Mr. Quilter"))
    pcm = np.concatenate([silence(0.5), speech[0], silence(1.2), np.full(RATE // 20, 3000, np.int16),
                          silence(1.0)])
    outputs = feed(session, pcm)
    began = [e for e in outputs if isinstance(e, SpeechStarted)]
    ended = [e for e in outputs if isinstance(e, SpeechEnded)]
    assert [e.utterance for e in began] == [e.utterance for e in ended]
    assert ended[0].kept and ended[0].timestamp > began[0].timestamp
    assert all(j.options.prompt == "Mr. Quilter" for j in started(outputs))
    # Without the option (Deepgram), no SpeechEnded is emitted.
    plain = StreamSession(StreamOptions(interim_results=False, vad_events=True))
    assert not any(isinstance(e, SpeechEnded) for e in feed(plain, pcm))


def test_odd_sized_frames_decode_like_whole_ones(speech):
    pcm = two_utterances(speech)
    whole = StreamSession(StreamOptions(interim_results=False))
    odd = StreamSession(StreamOptions(interim_results=False))
    a = started(feed(whole, pcm, chunk_bytes=3200))
    b = started(feed(odd, pcm, chunk_bytes=1001))
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
    outputs = []
    for i in range(0, len(data), 999):
        session.feed(data[i:i + 999])
        outputs += session.outputs()
    session.close()
    for job in live_finals(outputs + session.outputs()):
        session.job_done(job.id, FakeTranscriber(f"channel {job.channel}")
                         .transcribe(job.audio, job.options))
    out = finals(session.outputs())
    assert sorted({e.channel for e in out}) == [0, 1]
    assert all(e.text == f"channel {e.channel}" for e in out)


def test_a_failed_final_is_reported_not_lost(speech):
    session = StreamSession(StreamOptions(interim_results=False))
    job = live_finals(feed(session, np.concatenate([silence(0.3), speech[0], silence(1.0)])))[-1]
    session.job_done(job.id, None, RuntimeError("backend down"))
    events = session.outputs()
    warnings = [e for e in events if isinstance(e, StreamWarning)]
    assert warnings and warnings[0].code == "transcription_failed"
    assert len(finals(events)) == 1


def test_likely_hallucination_is_suppressed_and_flagged(speech):
    session = StreamSession(StreamOptions(interim_results=False))
    job = live_finals(feed(session, np.concatenate([silence(0.3), speech[0], silence(1.0)])))[-1]
    fake = FakeTranscriber("Thank you.", no_speech_prob=0.9)
    transcript = fake.transcribe(job.audio, job.options)
    transcript = transcript.__class__(transcript.text, "en", 0.9, transcript.duration, tuple(
        s.__class__(**{**s.__dict__, "avg_logprob": -1.0}) for s in transcript.segments))
    session.job_done(job.id, transcript)
    final = finals(session.outputs())[0]
    assert final.text == "" and final.hallucination["likely"]
    assert final.hallucination["suppressed_text"] == "Thank you."


@pytest.mark.parametrize("burst,pause,frame", [(0.4, 0.25, 0.1), (0.5, 0.3, 0.2), (0.35, 0.3, 0.2)])
def test_a_speculative_final_withdrawn_within_one_input_is_never_handed_out(burst, pause, frame):
    """Speech, a pause just long enough to speculate, speech again inside one frame: the
    speculative final is created and withdrawn in the same `feed`, so no job may run."""
    session = StreamSession(StreamOptions(interim_results=True))
    pcm = np.concatenate([silence(0.5), voiced(burst), silence(pause), voiced(1.0), silence(1.0)])
    data = pcm.astype("<i2").tobytes()
    step = int(frame * RATE) * 2
    handed: set[int] = set()
    outputs = []
    for i in range(0, len(data), step):
        session.feed(data[i:i + step])
        batch = session.outputs()
        for output in batch:
            if isinstance(output, CancelJob):
                assert output.job_id in handed, "cancelled a job it never handed out"
            elif isinstance(output, StartJob):
                handed.add(output.job.id)
        outputs += batch
    # A job id was used and withdrawn: the case above really happened ...
    assert set(range(max(handed) + 1)) - handed
    # ... and every final job handed out produced the utterance's final.
    live = live_finals(outputs)
    assert len(live) == len([o for o in outputs if isinstance(o, UtteranceEnded)]) == 1
    session.job_done(live[0].id, FakeTranscriber("one two").transcribe(live[0].audio,
                                                                     live[0].options))
    assert [e.text for e in finals(session.outputs())] == ["one two"]


def test_a_speculative_final_that_finishes_before_the_endpoint_is_output_at_the_endpoint(speech):
    """A fast model answers the speculative final while the silence is still too short to
    end the utterance; the final must follow as soon as the endpoint confirms it, not wait
    for some later result."""
    fake = FakeTranscriber("one two")
    session = StreamSession(StreamOptions(interim_results=False))
    pcm = np.concatenate([silence(0.5), speech[0], silence(1.5), speech[1]])
    data = pcm.astype("<i2").tobytes()
    finals_out = []
    for i in range(0, len(data), 3200):
        session.feed(data[i:i + 3200])
        for output in session.outputs():
            if isinstance(output, StartJob):  # answered at once, before any more audio
                session.job_done(output.job.id, fake.transcribe(output.job.audio,
                                                                output.job.options))
            elif isinstance(output, Transcription) and output.is_final:
                finals_out.append((output, i // 2 / RATE))
    assert [e.text for e, _ in finals_out] == ["one two"]
    final, at = finals_out[0]
    # Output within a chunk of the endpoint (0.5 + 2.0 s of speech + 600 ms of silence).
    assert at < 0.5 + 2.0 + 0.6 + 0.3


def test_outputs_come_in_the_order_things_happened(speech):
    session = StreamSession(StreamOptions(interim_results=False, vad_events=True,
                                          speech_ended_events=True))
    outputs = feed(session, two_utterances(speech))
    kinds = [type(o).__name__ for o in outputs]
    # Each utterance: speech starts, its final job starts, the utterance ends.
    assert kinds == ["SpeechStarted", "StartJob", "UtteranceEnded", "SpeechEnded"] * 2
    assert session.outputs() == []


def answered(job, text: str, language: str, probability: float) -> Transcript:
    """What a detecting model says about `job`: `text` in `language`, this sure of it."""
    transcript = FakeTranscriber(text).transcribe(job.audio, job.options)
    return replace(transcript, language=language, language_probability=probability)


def test_detected_language_is_pinned_once_enough_speech_was_heard_and_sure():
    session = StreamSession(StreamOptions(interim_results=True, language=None))
    data = np.concatenate([silence(0.3), voiced(4.0)]).astype("<i2").tobytes()
    asked: list[tuple[int, str | None]] = []
    unsure_answers = 1      # the first answer on enough speech is unsure; then sure ones
    for i in range(0, len(data), 1600):
        session.feed(data[i:i + 1600])
        for job in started(session.outputs()):
            asked.append((job.voiced_ms, job.options.language))
            unsure = job.voiced_ms >= 1000 and unsure_answers > 0
            unsure_answers -= unsure
            session.job_done(job.id, answered(job, "hola que tal", "es", 0.5 if unsure else 0.97))
    detecting = [voiced for voiced, language in asked if language is None]
    pinned = [voiced for voiced, language in asked if language == "es"]
    assert detecting and pinned and len(detecting) + len(pinned) == len(asked)
    # It took a sure answer on at least PIN_MIN_VOICED_MS of speech; after that, no detection.
    assert sum(1 for v in detecting if v >= 1000) >= 2
    assert max(detecting) < min(pinned)
    assert session.language == "es"


def test_a_pinned_english_stream_asks_for_english_partials():
    session = StreamSession(StreamOptions(interim_results=True, language=None))
    data = np.concatenate([silence(0.3), voiced(3.0)]).astype("<i2").tobytes()
    languages = []
    for i in range(0, len(data), 1600):
        session.feed(data[i:i + 1600])
        for job in started(session.outputs()):
            languages.append(job.options.language)
            session.job_done(job.id, answered(job, "in being", "en", 0.99))
    assert languages[0] is None and languages[-1] == "en"


def test_a_short_final_gets_the_speech_before_it_and_keeps_only_its_own_words():
    """Tiny endpointing: the second burst's final job carries the first burst as context; the
    model hears both, its word times a little off at the cut, and only the words after what
    the first final said are emitted: none lost, none doubled."""
    session = StreamSession(StreamOptions(interim_results=False, endpointing_ms=60))
    outputs = feed(session, np.concatenate([silence(0.3), voiced(1.0), silence(0.2),
                                            voiced(1.0, f0=180.0), silence(0.5)]))
    first, second = live_finals(outputs)
    assert first.context == 0.0 and 0.9 < second.context < 1.5
    assert second.offset == first.offset       # the context starts where the first one did
    session.job_done(first.id, FakeTranscriber("it was not").transcribe(first.audio,
                                                                       first.options))
    cut = second.context
    # "so" is timed just before the cut: by time alone it would be lost.
    spans = [("it", 0.1, 0.3), ("was", 0.3, 0.5), ("not", 0.5, cut - 0.3), ("so", cut - 0.3,
             cut - 0.02), ("much", cut + 0.1, cut + 0.4), ("sorrow.", cut + 0.4, cut + 0.8)]
    words = tuple(Word(w, start, end, 0.9) for w, start, end in spans)
    heard = Transcript("it was not so much sorrow.", "en", 0.99, len(second.audio) / RATE,
                       (Segment(0, 0, 0.0, cut + 0.8, " it was not so much sorrow.", (1,), 0.0,
                                -0.2, 1.2, 0.01, words),))
    session.job_done(second.id, heard)
    out = finals(session.outputs())
    assert [e.text for e in out] == ["it was not", "so much sorrow."]
    assert out[1].words[0].start >= second.offset + cut
