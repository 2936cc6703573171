"""Window-adaptive Whisper on CTranslate2: pay for the audio there is, not a 30 s window.

faster-whisper pads every call to a 30 s window, so a 2 s partial costs as much encoder
time as 30 s of speech. This backend drives the CTranslate2 model itself: it encodes the
audio plus padding up to `WindowConfig.min_window_s` (never less than the audio and
`tail_pad_s` of silence), then runs language detection, generation and word alignment on
that one encoder output. A short window makes Whisper more prone to inventing a tail or
looping, so every decode is checked (`guard_verdict`): one that runs to its length cap
(tokens per second of audio), repeats itself, compresses too well or is improbable is
thrown away and the audio transcribed again on the full-window path
(`FasterWhisperTranscriber`, which shares the loaded weights). Words timestamped at or
past the end of the audio are dropped.

A draft (a partial, `TranscribeOptions.draft`) is never redone: mid-utterance an unfinished
sentence is what it should be, and the first half second of a word is often improbable, so
both are kept (the final replaces them); a looping or runaway draft just gives no text.
Audio longer than 30 s and VAD-filtered calls go to the full-window path unchanged.
`transcribe_batch` runs several calls with the same options as one encoder and one
generate call, padded to the longest window in the batch (split where the encoder's memory
would exceed a single 30 s call's).
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from ...errors import TranscriptionError
from ..transcriber import (SAMPLE_RATE, ModelInfo, Segment, TranscribeOptions, Transcript,
                           Word)
from ..weights import ResolvedModel
from .faster_whisper import FasterWhisperConfig, FasterWhisperTranscriber, checked_language

# Verdicts a draft survives: cut mid-sentence, or unsure of a word heard only in part.
DOUBTFUL_DRAFT = frozenset({"unterminated", "logprob"})
FULL_WINDOW_FRAMES = 3000      # Whisper's 30 s window, in 10 ms mel frames
FRAMES_PER_SECOND = 100
TIME_PRECISION = 0.02          # seconds per timestamp token
MAX_INITIAL_TIMESTAMP_INDEX = 50   # first timestamp at most 1 s in, as Whisper does
# faster-whisper's defaults for attaching punctuation to the neighbouring word
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


@dataclass(frozen=True)
class WindowConfig:
    """How the adaptive window is sized and when its decode is not trusted."""

    min_window_s: float = 10.0        # the encoder never sees less than this (30 = off)
    # Silence after the audio, so its last word can end: with 1 s, Whisper often opened a new
    # segment at the very end and babbled ("... sauce. Bzzzz"), 3 of 91 corpus calls at the
    # 10 s minimum (8 at 5 s); with 2 s one did (docs/streaming.md).
    tail_pad_s: float = 2.0
    max_tokens_per_s: float = 12.0    # decode-length cap, per second of audio ...
    min_tokens: int = 24              # ... and never below this many tokens
    guards: bool = True               # False only to measure what the guards buy
    compression_ratio_max: float = 2.4
    avg_logprob_min: float = -1.0
    no_speech_min: float = 0.6        # with a low avg_logprob: silence, not a bad decode
    repeat_min_span: int = 4          # a span this many tokens long said twice in a row ...
    repeat_min_count: int = 4         # ... or any span said this many times in a row
    # Speech the decode left out: loud audio (within `uncovered_db` of the transcribed part's
    # loud frames) this long after its last timestamp. On an 8 kHz mu-law copy of an LJ Speech
    # clip the 10 s window ended the decode at "... fine" and dropped "typography" (a full
    # window kept it); a quiet end of utterance, even noisy, stays under the threshold.
    uncovered_max_s: float = 0.3
    uncovered_db: float = 15.0


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def repeats(tokens: Sequence[int], min_span: int, min_count: int) -> bool:
    """Whether some span of tokens is immediately repeated: a span of `min_span` or more
    tokens twice in a row, or any span `min_count` times in a row."""
    n = len(tokens)
    for span in range(1, n // 2 + 1):
        needed = 2 if span >= min_span else min_count
        if span * needed > n:
            continue
        run = 0  # positions i where tokens[i] == tokens[i - span], consecutively
        for i in range(span, n):
            run = run + 1 if tokens[i] == tokens[i - span] else 0
            if run >= span * (needed - 1):
                return True
    return False


def uncovered_speech_s(audio: np.ndarray, covered_until: float, db: float,
                       margin_s: float = 0.25, frame_s: float = 0.03) -> float:
    """Seconds of loud audio after `covered_until` (plus `margin_s` for a last word's decay):
    frames within `db` of the 90th-percentile loudness of the audio before it."""
    frame = int(frame_s * SAMPLE_RATE)
    count = len(audio) // frame
    if count == 0:
        return 0.0
    rms = np.sqrt(np.mean(audio[:count * frame].reshape(count, frame) ** 2, axis=1))
    covered = min(count, int(covered_until / frame_s))
    after = min(count, int((covered_until + margin_s) / frame_s))
    if covered == 0 or after >= count:
        return 0.0
    floor = float(np.percentile(rms[:covered], 90)) * 10 ** (-db / 20)
    return float(np.sum(rms[after:] > max(floor, 1e-4))) * frame_s


def guard_verdict(text_tokens: Sequence[int], text: str, avg_logprob: float,
                  no_speech_prob: float, hit_cap: bool, closed: bool,
                  config: WindowConfig, uncovered_s: float = 0.0) -> str | None:
    """Why a short-window decode must be redone on the full window, or None if it stands.

    `text_tokens` are the decoded tokens without timestamps; `hit_cap` says the decode
    stopped at its length cap instead of ending by itself; `closed` that its text ends
    with a timestamp, as Whisper's does when it has heard the speech out (a short window
    sometimes makes it stop mid-sentence instead); `uncovered_s`, how much loud audio
    follows its last timestamp (`uncovered_speech_s`).
    """
    if not config.guards:
        return None
    if no_speech_prob > config.no_speech_min and avg_logprob < config.avg_logprob_min:
        return None  # silence: Whisper's own rule skips it, so there is nothing to redo
    if hit_cap:
        return "length"
    if text_tokens and not closed:
        return "unterminated"
    if text_tokens and uncovered_s >= config.uncovered_max_s:
        return "uncovered"
    if repeats(text_tokens, config.repeat_min_span, config.repeat_min_count):
        return "repetition"
    if compression_ratio(text) > config.compression_ratio_max:
        return "compression"
    if avg_logprob < config.avg_logprob_min:
        return "logprob"
    return None


def split_segments(tokens: Sequence[int], timestamp_begin: int,
                   duration: float) -> list[dict[str, Any]]:
    """Cut a timestamped decode into segments at its timestamp tokens.

    Text after the last timestamp ends at `duration`; segments starting at or past the
    end of the audio are dropped and segment ends are clamped to it.
    """
    segments: list[dict[str, Any]] = []
    start: float | None = None
    text: list[int] = []
    for token in tokens:
        if token >= timestamp_begin:
            time = (token - timestamp_begin) * TIME_PRECISION
            if text:
                segments.append({"start": start or 0.0, "end": time, "tokens": text})
                text = []
                start = None
            else:
                start = time
        else:
            if start is None and not text:
                start = segments[-1]["end"] if segments else 0.0
            text.append(token)
    if text:
        segments.append({"start": start or 0.0, "end": duration, "tokens": text})
    kept = []
    for segment in segments:
        if segment["start"] >= duration:
            continue
        segment["end"] = min(max(segment["end"], segment["start"]), duration)
        segment["seek"] = 0
        kept.append(segment)
    return kept


@dataclass
class BackendStats:
    windows: int = 0           # calls decoded on an adaptive window
    fallbacks: int = 0         # of those, redone on the full window
    long_calls: int = 0        # calls over 30 s (or VAD-filtered) sent to the full path
    drafts_kept: int = 0       # drafts (partials) kept although unterminated or improbable
    drafts_dropped: int = 0    # drafts that looped or ran away: no text, no redo
    reasons: dict[str, int] | None = None

    def count(self, reason: str) -> None:
        self.fallbacks += 1
        self.reasons = self.reasons or {}
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


class CTranslate2Transcriber:
    """Whisper on an adaptive window, with the full-window path as its fallback."""

    def __init__(self, model: ResolvedModel, config: FasterWhisperConfig = FasterWhisperConfig(),
                 window: WindowConfig = WindowConfig()) -> None:
        self._full = FasterWhisperTranscriber(model, config)
        self._whisper = self._full.whisper
        self._model = self._whisper.model
        self.window = window
        self.stats = BackendStats()
        full = self._full.info
        self._info = ModelInfo(name=full.name, multilingual=full.multilingual,
                               backend="ctranslate2")

    @property
    def info(self) -> ModelInfo:
        return self._info

    def with_window(self, window: WindowConfig) -> "CTranslate2Transcriber":
        """Another window policy on the same loaded model, with its own stats."""
        other = copy.copy(self)
        other.window = window
        other.stats = BackendStats()
        return other

    @property
    def full_window(self) -> FasterWhisperTranscriber:
        """The fallback: the same loaded model, every call padded to 30 s."""
        return self._full

    # -- the window -----------------------------------------------------------------------

    def _features(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel features of the audio, one frame per 10 ms (as faster-whisper computes them)."""
        features: np.ndarray = self._whisper.feature_extractor(audio)
        return features[:, :-1]  # the last frame covers only the 160 padding samples

    def _window_frames(self, content_frames: int) -> int:
        wanted = max(self.window.min_window_s * FRAMES_PER_SECOND,
                     content_frames + self.window.tail_pad_s * FRAMES_PER_SECOND)
        frames = int(np.ceil(wanted / 2) * 2)  # the encoder's convolution has stride 2
        return min(frames, FULL_WINDOW_FRAMES)

    def _encode(self, features: list[np.ndarray]) -> Any:
        import ctranslate2

        frames = max(self._window_frames(f.shape[-1]) for f in features)
        batch = np.zeros((len(features), features[0].shape[0], frames), dtype=np.float32)
        for i, f in enumerate(features):
            batch[i, :, :f.shape[-1]] = f
        return self._model.encode(ctranslate2.StorageView.from_array(batch))

    def detect_language(self, audio: np.ndarray) -> dict[str, float]:
        if not self._info.multilingual:
            return {"en": 1.0}
        if len(audio) > FULL_WINDOW_FRAMES * SAMPLE_RATE // FRAMES_PER_SECOND:
            return self._full.detect_language(audio)
        encoded = self._encode([self._features(audio)])
        return {token[2:-2]: prob for token, prob in self._model.detect_language(encoded)[0]}

    # -- transcription --------------------------------------------------------------------

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        return self.transcribe_batch([audio], options)[0]

    def transcribe_batch(self, audios: Sequence[np.ndarray],
                         options: TranscribeOptions) -> list[Transcript]:
        """Transcribe several clips with the same options, in as few encoder/generate
        calls as memory allows (`_groups`).

        Each clip's result is what `transcribe` would give it, except that the window is
        the longest any clip of its call needs.
        """
        pinned = checked_language(self._info, options)
        results: list[Transcript | None] = [None] * len(audios)
        short: list[int] = []
        for i, audio in enumerate(audios):
            if options.vad_filter or self.window.min_window_s * FRAMES_PER_SECOND >= \
                    FULL_WINDOW_FRAMES or len(audio) > 30 * SAMPLE_RATE:
                self.stats.long_calls += 1
                results[i] = self._full.transcribe(audio, options)
            else:
                short.append(i)
        for group in self._groups(short, audios):
            try:
                done = self._transcribe_windows([audios[i] for i in group], options, pinned)
            except (RuntimeError, ValueError) as exc:
                raise TranscriptionError(f"transcription failed: {exc}") from exc
            for i, transcript in zip(group, done):
                results[i] = transcript
        return [r for r in results if r is not None]

    def _groups(self, indices: list[int], audios: Sequence[np.ndarray]) -> list[list[int]]:
        """Split a batch into model calls whose encoder memory stays within one full window's.

        Attention memory grows with the batch size times the square of the window, so
        clips are grouped by length and a group's size times its window squared never
        exceeds one 30 s window: eight 10 s windows share a call, 30 s pieces go one by one.
        """
        groups: list[list[int]] = []
        for i in sorted(indices, key=lambda i: len(audios[i])):
            window = self._window_frames(len(audios[i]) * FRAMES_PER_SECOND // SAMPLE_RATE)
            if groups and (len(groups[-1]) + 1) * window ** 2 <= FULL_WINDOW_FRAMES ** 2:
                groups[-1].append(i)
            else:
                groups.append([i])
        return groups

    def _transcribe_windows(self, audios: Sequence[np.ndarray], options: TranscribeOptions,
                            pinned: str | None) -> list[Transcript]:
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        features = [self._features(a) for a in audios]
        encoded = self._encode(features)
        languages: list[tuple[str, float]]
        if pinned is not None:
            languages = [(pinned, 1.0)] * len(audios)
        else:
            detected = self._model.detect_language(encoded)
            languages = [self._pick_language(d, options) for d in detected]

        tokenizers = [Tokenizer(self._whisper.hf_tokenizer, self._info.multilingual,
                                task=options.task, language=lang) for lang, _ in languages]
        prompts = [self._whisper.get_prompt(t, self._prompt_tokens(t, options),
                                            prefix=options.prefix) for t in tokenizers]
        durations = [len(a) / SAMPLE_RATE for a in audios]
        caps = [max(self.window.min_tokens, int(np.ceil(d * self.window.max_tokens_per_s)))
                for d in durations]
        max_length = min(self._whisper.max_length, max(len(p) + c for p, c in zip(prompts, caps)))
        temperature = options.temperature if isinstance(options.temperature, float | int) \
            else options.temperature[0]
        sampling: dict[str, Any] = (
            {"beam_size": 1, "sampling_topk": 0, "sampling_temperature": float(temperature)}
            if temperature > 0 else {"beam_size": options.beam_size})
        generated = self._model.generate(
            encoded, prompts, max_length=max_length, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizers[0], [-1]),
            max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX, **sampling)

        encoded_items = np.asarray(encoded) if options.word_timestamps and len(audios) > 1 else None
        out = []
        for i, result in enumerate(generated):
            tokenizer, (language, language_prob) = tokenizers[i], languages[i]
            tokens = result.sequences_ids[0]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            text_tokens = [t for t in tokens if t < tokenizer.eot]
            text = tokenizer.decode(text_tokens).strip()
            closed = bool(tokens) and tokens[-1] >= tokenizer.timestamp_begin
            uncovered = uncovered_speech_s(
                audios[i], (tokens[-1] - tokenizer.timestamp_begin) * TIME_PRECISION,
                self.window.uncovered_db) if closed and not options.draft else 0.0
            verdict = guard_verdict(text_tokens, text, avg_logprob, result.no_speech_prob,
                                    hit_cap=len(tokens) >= min(caps[i], max_length - len(prompts[i])),
                                    closed=closed, config=self.window, uncovered_s=uncovered)
            self.stats.windows += 1
            if verdict is not None and options.draft:
                if verdict in DOUBTFUL_DRAFT:
                    self.stats.drafts_kept += 1
                else:
                    self.stats.drafts_dropped += 1
                    out.append(self._transcript([], tokenizer, language, language_prob,
                                                durations[i], options, temperature,
                                                avg_logprob, result.no_speech_prob))
                    continue
            elif verdict is not None:
                self.stats.count(verdict)
                out.append(self._full.transcribe(audios[i], replace(options, language=language)))
                continue
            silent = result.no_speech_prob > self.window.no_speech_min \
                and avg_logprob < self.window.avg_logprob_min
            segments = [] if silent else split_segments(
                tokens, tokenizer.timestamp_begin, durations[i])
            if segments and options.word_timestamps:
                item = encoded if encoded_items is None else \
                    ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded_items[i:i + 1]))
                segments = self._with_words(segments, tokenizer, item, features[i].shape[-1],
                                            durations[i])
            out.append(self._transcript(segments, tokenizer, language, language_prob,
                                        durations[i], options, temperature, avg_logprob,
                                        result.no_speech_prob))
        return out

    def _pick_language(self, detected: list[tuple[str, float]],
                       options: TranscribeOptions) -> tuple[str, float]:
        probs = [(token[2:-2], prob) for token, prob in detected]
        if options.languages:
            allowed = [p for p in probs if p[0] in options.languages]
            return max(allowed, key=lambda p: p[1]) if allowed else (options.languages[0], 0.0)
        return probs[0]

    def _prompt_tokens(self, tokenizer: Any, options: TranscribeOptions) -> list[int]:
        if not options.prompt:
            return []
        tokens: list[int] = tokenizer.encode(" " + options.prompt.strip())
        return tokens[-(self._whisper.max_length // 2 - 1):]

    def _with_words(self, segments: list[dict[str, Any]], tokenizer: Any, encoded: Any,
                    frames: int, duration: float) -> list[dict[str, Any]]:
        """Segments with aligned words; words starting at or past the end are dropped."""
        self._whisper.add_word_timestamps([segments], tokenizer, encoded, frames,
                                          PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS,
                                          last_speech_timestamp=0.0)
        kept = []
        for segment in segments:
            words = [dict(w, end=min(w["end"], duration)) for w in segment["words"]
                     if w["start"] < duration]
            if not words:
                continue
            if len(words) < len(segment["words"]):
                segment["text"] = "".join(w["word"] for w in words)
                segment["end"] = words[-1]["end"]
            segment["words"] = words
            kept.append(segment)
        return kept

    def _transcript(self, segments: list[dict[str, Any]], tokenizer: Any, language: str,
                    language_prob: float, duration: float, options: TranscribeOptions,
                    temperature: float, avg_logprob: float, no_speech_prob: float) -> Transcript:
        built: list[Segment] = []
        for segment in segments:
            text = segment.get("text") or tokenizer.decode(segment["tokens"])
            if not text.strip():
                continue
            built.append(Segment(
                id=len(built), seek=0, start=round(float(segment["start"]), 2),
                end=round(float(segment["end"]), 2), text=text, tokens=tuple(segment["tokens"]),
                temperature=float(temperature), avg_logprob=float(avg_logprob),
                compression_ratio=compression_ratio(text.strip()),
                no_speech_prob=float(no_speech_prob),
                words=tuple(Word(w["word"].strip(), float(w["start"]), float(w["end"]),
                                 float(w["probability"])) for w in segment.get("words", ()))))
        return Transcript(text="".join(s.text for s in built).strip(), language=language,
                          language_probability=float(language_prob), duration=duration,
                          segments=tuple(built), task=options.task)
