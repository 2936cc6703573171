"""Local CTranslate2 Whisper through faster-whisper, on weights resolved by `models.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ...errors import InvalidParameter, TranscriptionError
from ..transcriber import ModelInfo, Segment, TranscribeOptions, Transcript, Word
from ..weights import ResolvedModel, set_offline


@dataclass(frozen=True)
class FasterWhisperConfig:
    compute_type: str = "int8"
    cpu_threads: int = 2
    workers: int = 1       # concurrent calls the model allows (CTranslate2 inter_threads)
    device: str = "cpu"


def checked_language(info: ModelInfo, options: TranscribeOptions) -> str | None:
    """The language to decode in, or None to detect it; raises InvalidParameter for what
    an English-only model cannot do."""
    info.check_language(options.language)
    if info.multilingual:
        return options.language
    if options.task == "translate":
        raise InvalidParameter(
            f"model {info.name!r} is English-only and cannot translate", param="model")
    return "en"


class FasterWhisperTranscriber:
    def __init__(self, model: ResolvedModel, config: FasterWhisperConfig = FasterWhisperConfig()):
        set_offline()
        from faster_whisper import WhisperModel

        # numpy's BLAS (the feature extractor's mel product) would use every core for a
        # millisecond's work, and its idle threads spin between calls: measured here, that
        # doubled a model call's CPU time without making it faster. Process-wide.
        threadpool_limits(limits=1, user_api="blas")

        self._model = WhisperModel(
            str(model.path), device=config.device, compute_type=config.compute_type,
            cpu_threads=config.cpu_threads, num_workers=config.workers, local_files_only=True)
        self._info = ModelInfo(
            name=model.name, multilingual=self._model.model.is_multilingual,
            backend="faster-whisper")

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def whisper(self) -> Any:
        """The loaded faster-whisper model (its CTranslate2 model, tokenizer, features)."""
        return self._model

    def detect_language(self, audio: np.ndarray) -> dict[str, float]:
        if not self._info.multilingual:
            return {"en": 1.0}
        _, _, all_probs = self._model.detect_language(audio)
        return dict(all_probs)

    def _language(self, audio: np.ndarray, options: TranscribeOptions) -> str | None:
        language = checked_language(self._info, options)
        if language is None and options.languages:
            probs = self.detect_language(audio)
            return max(options.languages, key=lambda code: probs.get(code, 0.0))
        return language

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        language = self._language(audio, options)
        try:
            segments_iter, info = self._model.transcribe(
                audio, language=language, task=options.task, beam_size=options.beam_size,
                temperature=options.temperature, initial_prompt=options.prompt,
                prefix=options.prefix, word_timestamps=options.word_timestamps,
                vad_filter=options.vad_filter, condition_on_previous_text=False)
            # faster-whisper is lazy: decoding happens while iterating, so do it here,
            # inside the worker thread.
            raw = list(segments_iter)
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"transcription failed: {exc}") from exc
        segments = tuple(
            Segment(
                id=i, seek=int(s.seek), start=float(s.start), end=float(s.end),
                text=s.text, tokens=tuple(s.tokens), temperature=float(s.temperature or 0.0),
                avg_logprob=float(s.avg_logprob), compression_ratio=float(s.compression_ratio),
                no_speech_prob=float(s.no_speech_prob),
                words=tuple(Word(w.word.strip(), float(w.start), float(w.end),
                                 float(w.probability)) for w in (s.words or ())))
            for i, s in enumerate(raw))
        text = "".join(s.text for s in segments).strip()
        return Transcript(text=text, language=info.language,
                          language_probability=float(info.language_probability),
                          duration=float(info.duration), segments=segments, task=options.task)
