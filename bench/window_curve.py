"""Accuracy and cost of the adaptive window against its minimum (docs/streaming.md).

    python -m bench.window_curve OUT.jsonl [PLOT.png]

Runs the 35 human English corpus utterances (language pinned, word timestamps on, as a
final) and the 21 non-English items (language detected) through the `ctranslate2` backend
(base int8, 2 threads) at each minimum window, with the guards on and off; 30 s is the
full-window path. Writes one JSON line per call, prints the table, and draws the plot.
CPU is the process's CPU time, so other load on the machine disturbs it less than wall time.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from typing import Any

from streaming.audio import to_float32
from streaming.eval import corpus, scoring
from streaming.model.backends.ctranslate2 import CTranslate2Transcriber, WindowConfig
from streaming.model.transcriber import SAMPLE_RATE, TranscribeOptions
from streaming.model.weights import resolve_model

CONFIGS = [(m, True) for m in (30.0, 3.0, 5.0, 7.5, 10.0, 15.0)] + \
    [(m, False) for m in (3.0, 5.0, 10.0)]


def measure(path: str) -> list[dict[str, Any]]:
    base = CTranslate2Transcriber(resolve_model("base"))
    english = corpus.human_english()
    others = [i for i in corpus.items() if i.category in ("non_english", "non_english_numbers")]
    clips = [(i, to_float32(i.mono16k())) for i in english + others]
    rows = []
    with open(path, "w") as out:
        for minimum, guards in CONFIGS:
            backend = base.with_window(WindowConfig(min_window_s=minimum, guards=guards))
            for entry, audio in clips:
                options = TranscribeOptions(language="en" if entry.language == "en" else None,
                                            temperature=0.0)
                wall, cpu = time.perf_counter(), time.process_time()
                transcript = backend.transcribe(audio, options)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                errors, words = scoring.error_counts(entry.references(), transcript.text,
                                                     entry.language)
                row = dict(min=minimum, guards=guards, id=entry.id, language=entry.language,
                           detected=transcript.language, human_en=entry in english,
                           errors=errors, words=words, wall=wall, cpu=cpu,
                           duration=len(audio) / SAMPLE_RATE, text=transcript.text,
                           last_word_end=max((w.end for w in transcript.words), default=0.0),
                           fallbacks=backend.stats.fallbacks)
                out.write(json.dumps(row) + "\n")
                rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> tuple[str, dict[bool, list[tuple[float, float, float]]]]:
    groups: dict[tuple[float, bool], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["min"], row["guards"])].append(row)
    full = {r["id"]: r for r in groups[(30.0, True)]}

    def rate(chosen: list[dict[str, Any]]) -> float:
        return sum(r["errors"] for r in chosen) / sum(r["words"] for r in chosen)

    lines = ["| min window | guards | human English WER | / 30 s | non-English WER·CER | / 30 s "
             "| language right | CPU-s per audio-s (English) | fallbacks |",
             "|---|---|---|---|---|---|---|---|---|"]
    points: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    for (minimum, guards), chosen in sorted(groups.items(), key=lambda g: (not g[0][1], g[0][0])):
        en = [r for r in chosen if r["human_en"]]
        other = [r for r in chosen if not r["human_en"]]
        en_ratio = rate(en) / rate([full[r["id"]] for r in en])
        other_ratio = rate(other) / rate([full[r["id"]] for r in other])
        cpu = sum(r["cpu"] for r in en) / sum(r["duration"] for r in en)
        right = sum(r["detected"] == r["language"] for r in other)
        lines.append(f"| {minimum:g} s | {'on' if guards else 'off'} | {rate(en) * 100:.2f} % "
                     f"| {en_ratio:.3f} | {rate(other) * 100:.1f} % | {other_ratio:.3f} "
                     f"| {right}/{len(other)} | {cpu:.3f} "
                     f"| {max(r['fallbacks'] for r in chosen)}/{len(chosen)} |")
        points[guards].append((minimum, en_ratio, cpu))
    return "\n".join(lines), points


def plot(points: dict[bool, list[tuple[float, float, float]]], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    for guards, style in ((True, "o-"), (False, "s--")):
        xs = sorted(points[guards])
        ax.plot([p[0] for p in xs], [p[1] for p in xs], style,
                label=f"WER ratio, guards {'on' if guards else 'off'}")
    ax.axhline(1.03, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("minimum window (s)")
    ax.set_ylabel("WER / full-window WER")
    cost = ax.twinx()
    xs = sorted(points[True])
    cost.plot([p[0] for p in xs], [p[2] for p in xs], "^-", color="tab:red",
              label="CPU-s per audio-s (guards on)")
    cost.set_ylabel("CPU-s per audio-s", color="tab:red")
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = cost.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, fontsize=7, loc="upper right")
    ax.set_title("base int8, 2 threads, 35 human English clips", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    text, points = table(measure(sys.argv[1]))
    print(text)
    if len(sys.argv) > 2:
        plot(points, sys.argv[2])
