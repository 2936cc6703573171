"""Side-by-side rows, candidate (this tree) vs baseline (`--baseline REV`), with the ratio.

A row is `{"measure", "candidate", "baseline", "ratio", "unit", "digits"}` with numbers (or
None where a side has no value); `ratio` is candidate / baseline, None when either is
missing or the baseline's is 0. Below 1 is lower for the candidate, which for times, CPU,
memory and error rates means better. Rows marked `headline` go to the report's summary.
The suites store these rows in their results; report.py only formats them.
"""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]
Result = dict[str, Any]


def row(measure: str, candidate: float | None, baseline: float | None, unit: str = "",
        digits: int = 2, headline: bool = False) -> Row:
    return {"measure": measure, "candidate": candidate, "baseline": baseline,
            "ratio": candidate / baseline if candidate is not None and baseline else None,
            "unit": unit, "digits": digits, "headline": headline}


def fmt(value: float | None, unit: str = " s", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _server_rows(c: Result, b: Result, where: str, headline: bool = False) -> list[Row]:
    return [row(f"server CPU seconds per audio second, {where}", c.get("cpu_per_audio_s"),
                b.get("cpu_per_audio_s"), digits=3, headline=headline),
            row(f"server CPU, {where} (% of one core)", c.get("cpu_percent"),
                b.get("cpu_percent"), " %", 0),
            row(f"server peak RSS, {where}", c.get("peak_rss_mb"), b.get("peak_rss_mb"),
                " MB", 0)]


def latency(c: Result, b: Result) -> list[Row]:
    """One real-time stream: `c` and `b` are latency summaries (metrics.summarize + server)."""
    rows = []
    for key, label in (("p50", "median"), ("p95", "p95"), ("max", "max")):
        rows.append(row(f"end of speech → final, {label}", c["final_latency_s"][key],
                        b["final_latency_s"][key], " s", headline=key == "p50"))
    for name, label in (("first_partial_s", "start of speech → first transcript"),
                        ("partial_interval_s", "interval between partial updates")):
        for key, stat in (("p50", "median"), ("p95", "p95")):
            rows.append(row(f"{label}, {stat}", c[name][key], b[name][key], " s"))
    rows += [row("partials per utterance", c["partials_per_utterance"],
                 b["partials_per_utterance"], "", 1),
             row("finals lost", c["finals_lost"], b["finals_lost"], "", 0),
             row("WER of the finals", _pct(c["wer"]), _pct(b["wer"]), " %", 1)]
    return rows + _server_rows(c["server"], b["server"], "one stream", headline=True)


def concurrency(c: Result, b: Result) -> list[Row]:
    """Two concurrency sweeps: the limit, then per level measured on both sides."""
    rows = [row("concurrency limit (streams)", c["limit"], b["limit"], "", 0, headline=True),
            row("its p95 bound: max(floor, 2 × 1-stream median)", c["bound_s"], b["bound_s"],
                " s")]
    theirs = {lv["streams"]: lv for lv in b["levels"]}
    for mine in c["levels"]:
        n = mine["streams"]
        if n not in theirs:
            continue
        other = theirs[n]
        rows += [row(f"N={n}: final median", mine["final_latency_s"]["p50"],
                     other["final_latency_s"]["p50"], " s"),
                 row(f"N={n}: final p95", mine["final_latency_s"]["p95"],
                     other["final_latency_s"]["p95"], " s"),
                 row(f"N={n}: finals lost", mine["finals_lost"], other["finals_lost"], "", 0),
                 row(f"N={n}: server CPU seconds per audio second",
                     mine["server"].get("cpu_per_audio_s"),
                     other["server"].get("cpu_per_audio_s"), "", 3)]
    return rows


def accuracy(c: Result, b: Result) -> list[Row]:
    """Pooled error rates of the overall groups, both paths."""
    theirs = {tuple(g["group"]): g for g in b["overall"]}
    rows = []
    for group in c["overall"]:
        other = theirs.get(tuple(group["group"]))
        if other is None:
            continue
        name = group["group"][0]
        rows += [row(f"{name}, streaming", _pct(group["streaming"]), _pct(other["streaming"]),
                     " %", 1, headline=name.startswith("human English")),
                 row(f"{name}, batch", _pct(group["batch"]), _pct(other["batch"]), " %", 1),
                 row(f"{name}, streaming / batch", group["ratio"], other["ratio"])]
    return rows


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value
