"""The window-adaptive CTranslate2 backend on real corpus speech, and its guard logic.

The full-window path it falls back to (`full_window`, the same loaded weights, every call
padded to 30 s) is the reference for accuracy.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from streaming.audio import to_float32
from streaming.errors import InvalidParameter
from streaming.eval.corpus import human_english, item, items
from streaming.eval.scoring import error_counts
from streaming.model.backends.ctranslate2 import (CTranslate2Transcriber, WindowConfig,
                                                  guard_verdict, repeats, split_segments,
                                                  uncovered_speech_s)
from streaming.model.transcriber import SAMPLE_RATE, BatchTranscriber, TranscribeOptions

ENGLISH = TranscribeOptions(language="en", temperature=0.0)
SHORT = ["en_lj_LJ001-0002", "en_lj_LJ001-0008", "en_lj_LJ002-0020", "en_ls_1089-134691-0000"]


def clip(item_id: str) -> np.ndarray:
    return to_float32(item(item_id).mono16k())


@pytest.fixture(scope="module")
def backend(base_model) -> CTranslate2Transcriber:
    assert isinstance(base_model, CTranslate2Transcriber)
    return base_model


# -- guard logic on crafted token sequences -------------------------------------------------

def test_repeats_finds_a_phrase_said_twice_and_a_word_said_four_times():
    phrase = [262, 1042, 19647, 4363, 11]           # "in being comparatively modern,"
    assert repeats([50, 51] + phrase + phrase, min_span=4, min_count=4)
    assert repeats([7, 8, 9, 9, 9, 9], min_span=4, min_count=4)
    assert repeats([1, 2, 1, 2, 1, 2, 1, 2], min_span=4, min_count=4)


def test_repeats_lets_ordinary_text_and_short_stutters_through():
    assert not repeats([1, 2, 3, 4, 5, 6, 7, 8, 9], min_span=4, min_count=4)
    assert not repeats([5, 9, 9, 9, 6], min_span=4, min_count=4)        # "no no no"
    assert not repeats([1, 2, 3, 1, 2, 3], min_span=4, min_count=4)     # short phrase twice
    assert not repeats([1, 2, 3, 4, 0, 1, 2, 3, 4], min_span=4, min_count=4)  # not adjacent


def test_guard_verdicts():
    config = WindowConfig()
    fine = dict(text_tokens=[1, 2, 3], text="a fine sentence", avg_logprob=-0.2,
                no_speech_prob=0.01, hit_cap=False, closed=True, config=config)
    assert guard_verdict(**fine) is None
    assert guard_verdict(**{**fine, "hit_cap": True}) == "length"
    assert guard_verdict(**{**fine, "closed": False}) == "unterminated"
    assert guard_verdict(**{**fine, "text_tokens": [1, 2, 3, 4] * 2}) == "repetition"
    assert guard_verdict(**{**fine, "text": "the broth of the broth " * 6}) == "compression"
    assert guard_verdict(**{**fine, "avg_logprob": -1.5}) == "logprob"
    assert guard_verdict(**{**fine, "uncovered_s": 0.5}) == "uncovered"
    assert guard_verdict(**{**fine, "uncovered_s": 0.2}) is None
    # improbable but most likely silence: Whisper's own rule skips it, nothing to redo
    assert guard_verdict(**{**fine, "avg_logprob": -1.5, "no_speech_prob": 0.9}) is None
    assert guard_verdict(**{**fine, "hit_cap": True, "config": WindowConfig(guards=False)}) is None


def test_uncovered_speech_counts_loud_audio_after_the_last_timestamp():
    rate = SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(2 * rate) / rate).astype(np.float32)
    hiss = np.random.default_rng(0).normal(0, 0.005, rate).astype(np.float32)   # -40 dB
    # speech, then a quiet (even noisy) end: nothing left out
    assert uncovered_speech_s(np.concatenate([tone, hiss]), 2.0, db=15) == 0.0
    # the decode stopped at 1.0 s of 2 s of speech: ~0.75 s past its margin is loud
    assert 0.6 < uncovered_speech_s(np.concatenate([tone, hiss]), 1.0, db=15) < 0.8
    # a quieter word (-10 dB) after the last timestamp still counts; -20 dB does not
    for gain, left_out in ((0.3, True), (0.1, False)):
        audio = np.concatenate([tone, gain * tone[:rate]])
        assert (uncovered_speech_s(audio, 2.0, db=15) >= 0.3) is left_out
    assert uncovered_speech_s(np.zeros(rate, np.float32), 0.5, db=15) == 0.0


def test_split_segments_drops_what_starts_past_the_end():
    begin = 50364                                   # <|0.00|> of the multilingual vocabulary
    ts = lambda seconds: begin + round(seconds / 0.02)  # noqa: E731
    tokens = [ts(0.0), 11, 12, ts(1.0), ts(1.0), 13, ts(1.8), ts(2.2), 14, 15, ts(3.0)]
    segments = split_segments(tokens, begin, duration=2.0)
    assert [(s["start"], s["end"], s["tokens"]) for s in segments] == [
        (0.0, 1.0, [11, 12]), (1.0, 1.8, [13])]
    # text with no closing timestamp ends at the end of the audio
    assert [(s["start"], s["end"]) for s in split_segments([ts(0.5), 11], begin, 1.5)] == [
        (0.5, 1.5)]


# -- the real model on corpus speech ---------------------------------------------------------

def test_accuracy_close_to_the_full_window(backend):
    chosen = [i for i in human_english() if i.duration_s < 12][:8]
    adaptive = full = words = 0
    for entry in chosen:
        audio = clip(entry.id)
        adaptive += error_counts(entry.references(), backend.transcribe(audio, ENGLISH).text)[0]
        errors, length = error_counts(entry.references(),
                                      backend.full_window.transcribe(audio, ENGLISH).text)
        full += errors
        words += length
    assert words > 100
    assert adaptive <= full * 1.03 + 1, (adaptive, full, words)


@pytest.mark.parametrize("item_id", SHORT)
def test_short_clips_get_no_tail(backend, item_id):
    audio = clip(item_id)
    duration = len(audio) / SAMPLE_RATE
    transcript = backend.transcribe(audio, ENGLISH)
    reference = item(item_id).text.split()
    assert transcript.text
    assert len(transcript.words) <= len(reference) + 2
    assert all(0.0 <= w.start <= w.end <= duration for w in transcript.words)
    starts = [w.start for w in transcript.words]
    assert starts == sorted(starts)
    assert all(0.0 <= w.probability <= 1.0 for w in transcript.words)
    assert all(s.end <= duration for s in transcript.segments)


def test_silence_transcribes_to_nothing(backend):
    assert backend.transcribe(np.zeros(3 * SAMPLE_RATE, np.float32), ENGLISH).text == ""


def test_a_failed_guard_falls_back_to_the_full_window(backend):
    audio = clip("en_lj_LJ001-0002")
    capped = WindowConfig(max_tokens_per_s=0.5, min_tokens=2)  # every decode runs to its cap
    strict = backend.with_window(capped)
    transcript = strict.transcribe(audio, ENGLISH)
    assert strict.stats.fallbacks == 1 and strict.stats.reasons == {"length": 1}
    assert transcript.text == backend.full_window.transcribe(audio, ENGLISH).text


def test_a_draft_is_never_redone_on_the_full_window(backend):
    """A partial that runs away gives no text; one cut mid-sentence (no closing timestamp,
    as a partial is) or unsure of its words keeps them; none costs a second, 30 s pass."""
    audio = clip("en_lj_LJ001-0002")
    draft = replace(ENGLISH, word_timestamps=False, draft=True)
    capped = backend.with_window(WindowConfig(max_tokens_per_s=0.5, min_tokens=2))
    assert capped.transcribe(audio, draft).text == ""
    assert capped.stats.fallbacks == 0 and capped.stats.drafts_dropped == 1
    mid_sentence = audio[:int(1.2 * SAMPLE_RATE)]
    plain = backend.with_window(backend.window)
    words = plain.transcribe(mid_sentence, draft).text
    assert plain.stats.fallbacks == 0
    assert words and words.split()[0].lower().strip(",.") in \
        item("en_lj_LJ001-0002").text.lower()
    # Every decode is below a log-probability floor of 0: a final is redone, a draft kept.
    doubtful = backend.with_window(replace(backend.window, avg_logprob_min=0.0))
    assert doubtful.transcribe(audio, draft).text == plain.transcribe(audio, draft).text
    assert doubtful.stats.fallbacks == 0 and doubtful.stats.drafts_kept >= 1
    doubtful.transcribe(audio, replace(ENGLISH, word_timestamps=False))
    assert doubtful.stats.fallbacks == 1


def test_language_detection_on_non_english_speech(backend):
    # items base transcribes fairly on the full window too (some others it cannot)
    for entry in map(item, ["de_pico_cheetah_test_de", "fr_pico_leopard_test_fr",
                            "pt_pico_cheetah_test_pt", "ru_deepspeech_ru"]):
        audio = clip(entry.id)
        assert max(backend.detect_language(audio).items(), key=lambda p: p[1])[0] == entry.language
        transcript = backend.transcribe(audio, TranscribeOptions(temperature=0.0))
        assert transcript.language == entry.language
        errors, length = error_counts(entry.references(), transcript.text, entry.language)
        assert errors / length < 0.5


def test_languages_restrict_detection(backend):
    audio = clip("de_pico_leopard_test_de")
    options = TranscribeOptions(languages=("en", "fr"), temperature=0.0)
    assert backend.transcribe(audio, options).language in ("en", "fr")


def test_translation_prompt_and_prefix(backend):
    german = clip("de_pico_leopard_test_de")
    english = backend.transcribe(german, TranscribeOptions(task="translate", temperature=0.0))
    assert english.task == "translate"
    assert sum(c.isascii() for c in english.text) > 0.95 * len(english.text) > 0
    audio = clip("en_lj_LJ001-0002")
    prompted = backend.transcribe(audio, replace(ENGLISH, prompt="Printing history."))
    assert "comparatively" in prompted.text.lower()
    prefixed = backend.transcribe(audio, replace(ENGLISH, prefix="In being"))
    assert prefixed.text.lower().startswith("in being")


def test_batched_calls_give_the_same_text_as_single_calls(backend):
    assert isinstance(backend, BatchTranscriber)
    ids = ["en_lj_LJ001-0002", "en_timit_LDC93S1", "en_lj_LJ001-0013"]
    audios = [clip(i) for i in ids]
    for options in (ENGLISH, TranscribeOptions(temperature=0.0)):
        batched = backend.transcribe_batch(audios, options)
        single = [backend.transcribe(a, options) for a in audios]
        assert [t.text for t in batched] == [t.text for t in single]
        assert [t.language for t in batched] == [t.language for t in single]
        assert [[w.word for w in t.words] for t in batched] == \
            [[w.word for w in t.words] for t in single]


def test_audio_over_30_seconds_takes_the_full_path(backend):
    entry = item("long_en_dagon_p1")                           # 34 s
    audio = clip(entry.id)
    before = backend.stats.long_calls
    transcript = backend.transcribe(audio, ENGLISH)
    assert backend.stats.long_calls == before + 1
    errors, length = error_counts(entry.references(), transcript.text)
    assert errors / length < 0.3
    assert transcript.words[-1].end <= len(audio) / SAMPLE_RATE


def test_english_only_model_refuses_other_languages(model_cache):
    from streaming.config import ModelConfig

    tiny = model_cache.load("tiny.en", ModelConfig())
    assert isinstance(tiny, CTranslate2Transcriber)
    with pytest.raises(InvalidParameter):
        tiny.transcribe(clip("en_lj_LJ001-0002"), TranscribeOptions(language="de"))
    with pytest.raises(InvalidParameter):
        tiny.transcribe(clip("en_lj_LJ001-0002"), TranscribeOptions(task="translate"))
    assert "comparatively" in tiny.transcribe(clip("en_lj_LJ001-0002"), ENGLISH).text.lower()


def test_batches_are_split_to_keep_encoder_memory_within_one_full_window(backend):
    second = SAMPLE_RATE
    audios = [np.zeros(n * second, np.float32) for n in (25, 2, 3, 13, 4, 20)]
    groups = backend._groups(list(range(len(audios))), audios)
    assert sorted(i for g in groups for i in g) == list(range(len(audios)))
    # up to 9 windows of 10 s or 4 of 15 s share a call; a 22 s or 27 s window goes alone
    assert groups == [[1, 2, 4, 3], [5], [0]]
