"""Suite 4, batch speed: real-time factor of the batch API vs faster-whisper called directly.

The measuring is `bench/batch_speed.py` (`run(base_url, model_dir, files)`: per file the
API request, then faster-whisper on the same path with the same model directory, compute
type, CPU threads, beam size and language). This suite adds what a fair comparison needs
on a shared machine: `batch_repeats` passes, each starting with an untimed short file
(WARM_UP) so that neither side, nor the direct side's freshly loaded model, pays for
first-call costs, and the median of each side's RTF per file. RTF = wall seconds /
audio seconds; ratio = API / direct (1.0 = the API adds nothing).
"""

from __future__ import annotations

import statistics

from streaming.eval import corpus
from streaming.model.weights import resolve_model

from . import batch_speed

WARM_UP = "en_jfk_inaugural"


def run(context) -> dict:
    settings = context.settings
    items = [corpus.item(i) for i in settings.batch_files]
    languages = {i.language for i in items}
    if len(languages) != 1:
        raise ValueError("batch files must share one language")
    files = [i.audio for i in items]
    model_dir = str(resolve_model(settings.model).path)
    options = dict(language=languages.pop(), compute_type=settings.compute_type,
                   cpu_threads=settings.threads_per_call, beam_size=settings.beam_size,
                   model=settings.model, server_pid=context.target.pid)
    context.log(f"batch: {len(items)} files, {sum(i.duration_s for i in items):.0f} s, "
                f"{settings.batch_repeats} passes")
    passes = []
    for _ in range(settings.batch_repeats):
        measured = batch_speed.run(context.target.http_url, model_dir,
                                   [corpus.item(WARM_UP).audio, *files], **options)
        passes.append({**measured, "files": measured["files"][1:]})
    rows = []
    for index, path in enumerate(files):
        measured = [p["files"][index] for p in passes]
        api_rtf = statistics.median(m["api_rtf"] for m in measured)
        direct_rtf = statistics.median(m["direct_rtf"] for m in measured)
        rows.append({"file": path.name, "duration_s": measured[0]["duration_s"],
                     "api_rtf": api_rtf, "direct_rtf": direct_rtf, "ratio": api_rtf / direct_rtf,
                     "passes": measured})
    api_rtf = statistics.median(r["api_rtf"] for r in rows)
    direct_rtf = statistics.median(r["direct_rtf"] for r in rows)
    return {"files": rows, "api_rtf": api_rtf, "direct_rtf": direct_rtf,
            "ratio": api_rtf / direct_rtf, "repeats": settings.batch_repeats,
            "method": passes[0]["method"] + f" Each pass starts with an untimed `{WARM_UP}`; "
                      f"per file the median of {settings.batch_repeats} passes."}
