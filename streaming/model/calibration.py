"""Start-up calibration: the real-time headroom of this machine with the configured models.

One spoken sentence (`calibration.wav`, 6.3 s, made here with `espeak-ng -v en-us -s 150` and
`sox -r 16000 -b 16`: the server never reads the evaluation corpus) is transcribed the way a live stream's is: once as a final (main model, word timestamps) and
once as a partial (the partial model when there is one), each timed after a warm-up call that
pays one-time set-up. A stream of continuous speech then costs, per second of audio, the
final's share plus one partial per `partial_interval_ms`. Blocking: run it in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, Callable

import numpy as np

from ..audio import read_wav, to_float32
from ..config import StreamConfig
from ..errors import StreamscribeError
from .engine import Engine
from .transcriber import SAMPLE_RATE, TranscribeOptions, Transcriber

log = logging.getLogger("streamscribe.calibration")

# A final later than this after the endpoint is no longer live (the bound docs/benchmarks.md
# holds one stream to).
FINAL_BUDGET_S = 1.5
SMALLEST_MODELS = ("tiny", "tiny.en")


@dataclass(frozen=True)
class Headroom:
    """What one timed model call says about this machine (times in seconds)."""

    audio_s: float                 # the utterance timed
    final_s: float                 # one final on it
    partial_s: float               # one partial on it
    compute_per_audio_s: float     # one live stream with partials, per second of speech
    realtime_factor: float         # seconds of speech transcribed per second of compute
    streams: int                   # live streams of continuous speech it can carry (0 when
                                   # even one final takes longer than FINAL_BUDGET_S)
    live: bool                     # one stream keeps up, and its finals come within budget
    advice: str | None             # the faster configuration, when not live

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def utterance() -> np.ndarray:
    """The calibration utterance, float32 at 16 kHz."""
    with resources.as_file(resources.files(__package__) / "calibration.wav") as path:
        samples, rate = read_wav(path)
    assert rate == SAMPLE_RATE, "calibration.wav is 16 kHz"
    return to_float32(samples[:, 0])


def measure(model: str, final: Transcriber, partial: Transcriber, partial_interval_ms: int,
            audio: np.ndarray | None = None,
            clock: Callable[[], float] = time.perf_counter) -> Headroom:
    """Time a final on `final` and a partial on `partial` over `audio` (the calibration
    utterance by default), and judge whether `model` keeps one stream live; logs the result,
    and a warning naming a faster configuration when it does not."""
    audio = utterance() if audio is None else audio
    final_s = _timed(final, audio, TranscribeOptions(language="en", word_timestamps=True), clock)
    partial_s = _timed(partial, audio, TranscribeOptions(language="en", word_timestamps=False),
                       clock)
    audio_s = len(audio) / SAMPLE_RATE
    compute = final_s / audio_s + partial_s * 1000 / partial_interval_ms
    factor = round(1 / compute, 6) if compute > 0 else 1e6    # rounded: 1 / 0.2 is 4.999...
    live = factor >= 1 and final_s <= FINAL_BUDGET_S
    advice = None if live else _advice(model, final_s, audio_s, partial_s, partial_interval_ms)
    streams = math.floor(factor) if final_s <= FINAL_BUDGET_S else 0
    headroom = Headroom(audio_s, final_s, partial_s, compute, factor, streams, live, advice)
    log.info("calibration: a final on %.1f s of speech took %.2f s, a partial %.2f s: one "
             "stream with partials every %d ms needs %.2f s of compute per second of audio "
             "(%.1fx real time, about %d live streams)", audio_s, final_s, partial_s,
             partial_interval_ms, compute, headroom.realtime_factor, headroom.streams)
    if advice:
        log.warning("model %s cannot keep one stream live on this machine: %s", model, advice)
    return headroom


def _timed(transcriber: Transcriber, audio: np.ndarray, options: TranscribeOptions,
           clock: Callable[[], float]) -> float:
    transcriber.transcribe(audio, options)          # warm-up: the first call pays set-up
    started = clock()
    transcriber.transcribe(audio, options)
    return clock() - started


def _advice(model: str, final_s: float, audio_s: float, partial_s: float,
            partial_interval_ms: int) -> str:
    if final_s > FINAL_BUDGET_S or final_s >= audio_s:
        if model in SMALLEST_MODELS:
            return ("it is already the smallest model; give it more CPU, or transcribe on "
                    "other machines (STREAMSCRIBE_MODEL_UPSTREAMS)")
        return "use a smaller model (STREAMSCRIBE_MODEL_NAME=tiny.en for English)"
    # The final fits: the partials are what does not; space them so the total fits.
    spare = 1 - final_s / audio_s
    interval = math.ceil(partial_s / spare * 10) * 100
    return (f"fewer partials (STREAMSCRIBE_STREAM_PARTIAL_INTERVAL_MS={interval}), or clients "
            f"without interim results")


async def calibrate(engine: Engine, stream: StreamConfig) -> Headroom | None:
    """Measure the default model once the engine has loaded it, off the event loop. None when
    calibration is off, the model is remote (its speed is not this machine's), or the
    measuring call failed (logged: the server still starts, and its requests report errors)."""
    if not engine.config.calibrate:
        return None
    scheduler = await engine.get()
    if scheduler.transcriber.info.backend == "remote":
        return None
    try:
        return await asyncio.to_thread(
            measure, engine.default, scheduler.transcriber,
            scheduler.partial_transcriber or scheduler.transcriber, stream.partial_interval_ms)
    except StreamscribeError as exc:
        log.warning("calibration skipped: the model call failed (%s)", exc.message)
        return None
