"""Suite 4, batch speed: real-time factor of the batch API vs faster-whisper called directly.

Same files, same model directory, compute type, CPU threads, beam size and language, in
one run; the two are interleaved per repeat (API, direct, API, direct ...) so that load
changes hit both, and medians are reported. RTF = wall seconds / audio seconds.
The direct side loads its own `WhisperModel` in this process while the server idles.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx

from . import corpus
from streaming.models import resolve_model

METHOD = ("API: `POST /v1/audio/transcriptions` (response_format=json, temperature=0, "
          "language given), wall time of the request with upload. Direct: faster-whisper "
          "`WhisperModel(<same CTranslate2 dir>, compute_type, cpu_threads).transcribe(path, "
          "language, beam_size, temperature=0)` with the segments consumed, in the harness "
          "process. One untimed call each first, then interleaved; median of the repeats.")


def measure(base_url: str, model_dir: Path, files: list[Path], *, languages: list[str],
            compute_type: str, cpu_threads: int, beam_size: int, repeats: int,
            model_name: str) -> dict:
    from faster_whisper import WhisperModel
    from streaming.audio import read_wav

    direct_model = WhisperModel(str(model_dir), device="cpu", compute_type=compute_type,
                                cpu_threads=cpu_threads, local_files_only=True)
    rows = []
    with httpx.Client(timeout=600) as client:
        def api_call(path: Path, language: str) -> None:
            response = client.post(f"{base_url}/v1/audio/transcriptions",
                                   files={"file": (path.name, path.read_bytes(), "audio/wav")},
                                   data={"model": model_name, "language": language,
                                         "response_format": "json", "temperature": "0"})
            response.raise_for_status()

        def direct_call(path: Path, language: str) -> None:
            segments, _ = direct_model.transcribe(str(path), language=language,
                                                  beam_size=beam_size, temperature=0.0)
            list(segments)

        # one untimed call each first: no side pays for first-call costs
        api_call(files[0], languages[0])
        direct_call(files[0], languages[0])
        for path, language in zip(files, languages):
            samples, rate = read_wav(path)
            duration = len(samples) / rate
            api, direct = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                api_call(path, language)
                api.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                direct_call(path, language)
                direct.append(time.perf_counter() - t0)
            api_rtf = statistics.median(api) / duration
            direct_rtf = statistics.median(direct) / duration
            rows.append({"file": path.name, "duration_s": duration, "api_s": api,
                         "direct_s": direct, "api_rtf": api_rtf, "direct_rtf": direct_rtf,
                         "ratio": api_rtf / direct_rtf})
    api_rtf = statistics.median(r["api_rtf"] for r in rows)
    direct_rtf = statistics.median(r["direct_rtf"] for r in rows)
    return {"files": rows, "api_rtf": api_rtf, "direct_rtf": direct_rtf,
            "ratio": api_rtf / direct_rtf, "repeats": repeats, "method": METHOD}


def run(context) -> dict:
    settings = context.settings
    items = [corpus.item(i) for i in settings.batch_files]
    model_dir = resolve_model(settings.model).path
    context.log(f"batch: {len(items)} files, {sum(i.duration_s for i in items):.0f} s, "
                f"{settings.batch_repeats} repeats")
    return measure(context.target.http_url, model_dir, [i.audio for i in items],
                   languages=[i.language for i in items], compute_type=settings.compute_type,
                   cpu_threads=settings.cpu_threads, beam_size=settings.beam_size,
                   repeats=settings.batch_repeats, model_name=settings.model)
