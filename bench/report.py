"""Results files and the markdown report with its plots.

Each suite's result is one JSON file, `<results>/<date>-<suite>.json`. The report is
rebuilt from the newest file of each suite, so every section names the command and the
date of the run it comes from, and shows its settings and machine. A suite run with
`--baseline` holds the baseline's figures under `baseline` and the side-by-side rows
(compare.py) under `comparison`; its section shows them first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .concurrency import SATURATED

SUITE_ORDER = ("accuracy", "latency", "concurrency", "batch", "peer", "soak")


def write_result(results_dir: Path, date: str, suite: str, record: dict) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{date}-{suite}.json"
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return path


def latest(results_dir: Path) -> dict[str, dict]:
    """suite -> the newest record in `results_dir` (by its finish time)."""
    out: dict[str, dict] = {}
    for path in sorted(results_dir.glob("*-*.json")):
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        suite = record.get("suite")
        if suite and (suite not in out or record["finished_utc"] >= out[suite]["finished_utc"]):
            out[suite] = {**record, "_file": _shown(path)}
    return out


def _shown(path: Path) -> str:
    from streaming.eval.corpus import REPO
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- formatting helpers

def num(value, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}f}{unit}"


def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def ratio(a, b, digits: int = 2) -> str:
    return "–" if a is None or not b else f"{a / b:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance(record: dict) -> str:
    machine = record["machine"]
    load = ", ".join(f"{x:.2f}" for x in machine.get("load_average", []))
    load_end = ", ".join(f"{x:.2f}" for x in record.get("machine_load_end", []))
    text = (f"*Run {record['finished_utc']} ({record['seconds']} s), "
            f"`{record['command'].strip()}`, results `{record['_file']}`. Machine: "
            f"{machine['cores']} cores, {machine['cpu_model']}, {machine['memory_gb']} GB; "
            f"load average at start {load}, at the end of this suite {load_end}.*")
    base = record.get("baseline")
    if base:
        notes = base.get("dependency_notes") or []
        text += (f"\n\n*Baseline: `{base['revision']}`"
                 + (f" (`{base['sha'][:10]}`)" if base.get("sha") else "")
                 + f", its own server started the same way from `{base['path']}` with this "
                 "environment's packages; "
                 + ("dependencies declared by that revision and not met here: "
                    + "; ".join(notes) if notes else "its declared dependencies are all met")
                 + ". Ratio = candidate (this tree" + _candidate(record.get("candidate"))
                 + ") / baseline.*")
    return text


def _candidate(tree: dict | None) -> str:
    if not tree or not tree.get("sha"):
        return ""
    dirty = " with uncommitted changes" if tree.get("uncommitted_changes") else ""
    return f", at `{tree['sha'][:10]}`{dirty}"


def comparison_table(rows: list[dict]) -> str:
    """compare.py rows: measure, candidate, baseline, candidate / baseline."""
    return table(["measure", "candidate", "baseline", "candidate / baseline"],
                 [[r["measure"], num(r["candidate"], r["digits"], r["unit"]),
                   num(r["baseline"], r["digits"], r["unit"]), num(r["ratio"])] for r in rows])


# ---------------------------------------------------------------- plots

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(result: dict, path: Path) -> None:
    plt = _plt()
    rows = result["per_utterance"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["final_latency_s"] or 0 for r in rows], 0.4,
           label="end of speech → final")
    ax.bar([x + 0.2 for x in xs], [r["first_partial_s"] or 0 for r in rows], 0.4,
           label="start of speech → first transcript")
    ax.set_xticks(list(xs), [str(x + 1) for x in xs])
    ax.set_xlabel("utterance (in stream order)")
    ax.set_ylabel("seconds")
    ax.set_title("One real-time stream: latency per utterance")
    ax.legend(fontsize=8)
    _save(plt, fig, path)


def plot_concurrency(sweeps: dict[str, dict], path: Path) -> None:
    """sweeps: label -> concurrency sweep result (ours, and the other side's when present),
    each with its own p95 bound drawn in its colour."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    ticks = set()
    for (label, sweep), color in zip(sweeps.items(), ("tab:blue", "tab:red", "tab:green")):
        levels = sweep["levels"]
        n = [lv["streams"] for lv in levels]
        ticks.update(n)
        left.plot(n, [lv["final_latency_s"]["p50"] for lv in levels], "o-", color=color,
                  label=f"{label} p50")
        left.plot(n, [lv["final_latency_s"]["p95"] for lv in levels], "s--", color=color,
                  label=f"{label} p95")
        right.plot(n, [lv["server"]["cpu_percent"] for lv in levels], "o-", color=color,
                   label=label)
        right.plot(n, [lv["server"]["peak_rss_mb"] / 10 for lv in levels], "^:", color=color,
                   label=f"{label} peak RSS (MB / 10)")
        left.axhline(sweep["bound_s"], color=color, lw=0.8, ls=":",
                     label=f"{label} bound {sweep['bound_s']:.2f} s")
    left.set_ylabel("end of speech → final (s)")
    right.set_ylabel("CPU % of one core; ▲ RSS MB/10")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(ticks), [str(t) for t in sorted(ticks)])
        ax.minorticks_off()
        ax.set_xlabel("concurrent real-time streams")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
    _save(plt, fig, path)


def plot_accuracy(result: dict, path: Path) -> None:
    plt = _plt()
    groups = [g for g in result["by_category_language"] if g["batch"] is not None]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    xs = range(len(groups))
    ax.bar([x - 0.2 for x in xs], [g["batch"] for g in groups], 0.4, label="batch API")
    ax.bar([x + 0.2 for x in xs], [g["streaming"] or 0 for g in groups], 0.4,
           label="streaming /v1/listen")
    ax.set_xticks(list(xs), ["/".join(g["group"]) for g in groups], rotation=75, fontsize=6)
    ax.set_ylabel("WER (CER for zh/ja/ko)")
    ax.legend(fontsize=8)
    _save(plt, fig, path)


# ---------------------------------------------------------------- sections

def section_accuracy(record: dict, img: Path, rel: str) -> str:
    r = record["result"]
    parts = ["## 1. Accuracy: batch path vs streaming path", provenance(record), ""]
    parts.append(
        f"{r['items']} corpus items ({r['audio_seconds']:.0f} s of audio). Batch: the whole "
        "file to `/v1/audio/transcriptions`. Streaming: the same audio to `/v1/listen` "
        f"(fed {r['stream_speed']}, the server's own VAD segmentation, interim results off), "
        "finals joined. Both are told the item's language. Ratio = streaming / batch.")
    if r.get("batch_error"):
        parts.append(f"\n**Batch path unavailable:** {r['batch_error']}")
    parts.append("")
    if r.get("comparison"):
        parts += ["Candidate vs baseline (error rates in %, each server's own batch and "
                  "streaming paths):", "", comparison_table(r["comparison"]), "",
                  "The candidate in detail:", ""]
    parts.append(table(["set", "n", "metric", "batch", "streaming", "ratio"],
                       [[g["group"][0], g["n"], g["metric"], pct(g["batch"]), pct(g["streaming"]),
                         num(g["ratio"])] for g in r["overall"]]))
    parts += ["", "Per category and language:", ""]
    parts.append(table(["category", "language", "n", "metric", "batch", "streaming", "ratio"],
                       [[*g["group"], g["n"], g["metric"], pct(g["batch"]),
                         pct(g["streaming"]), num(g["ratio"])]
                        for g in r["by_category_language"]]))
    if r["skipped"]:
        parts += ["", "Skipped: " + "; ".join(f"`{s['id']}` ({s['why']})" for s in r["skipped"])
                  + " — the streaming path here sends one mono channel."]
    parts += ["", "**Normalization** (both sides, `streaming/eval/scoring.py`): Unicode NFKC, lower case, "
              "`&` → and, `%` → percent, thousands separators removed from digits, every other "
              "punctuation mark removed (apostrophes inside words kept), whitespace collapsed. "
              "Numbers are not spelled out: where the corpus gives `text_alt` (the other "
              "written form), the better-matching reference counts. zh/ja/ko are scored by "
              "characters (CER) with spaces removed. Rates are pooled: total errors / total "
              "reference words (or characters) of the group.", "",
              "Caveats: Whisper often writes Traditional Chinese where the zh references are "
              "Simplified; no conversion is applied, so zh CER counts script differences too "
              "(on both paths alike). The `long_form_unverified_origin` readings may be "
              "synthetic voices, and most `non_english` items are of undocumented origin "
              "(see the corpus README); the human English row is the set the corpus calls "
              "certainly human."]
    if any(g["batch"] is not None for g in r["by_category_language"]):
        plot_accuracy(r, img / "accuracy.png")
        parts += ["", f"![accuracy per category]({rel}/accuracy.png)"]
    return "\n".join(parts)


def _latency_rows(summary: dict) -> list[list[str]]:
    f, p, i = summary["final_latency_s"], summary["first_partial_s"], summary["partial_interval_s"]
    fl = summary["flicker"]
    own = summary.get("server_reported_final_latency_s") or {}
    return [
        ["end of speech → final, p50 / p95 / max",
         f"{num(f['p50'])} / {num(f['p95'])} / {num(f['max'])} s (n={f['n']})"],
        ["start of speech → first transcript, p50 / p95",
         f"{num(p['p50'])} / {num(p['p95'])} s"],
        ["interval between partial updates, p50 / p95", f"{num(i['p50'])} / {num(i['p95'])} s"],
        ["partials per utterance", num(summary["partials_per_utterance"], 1)],
        ["stable words that later changed", f"{fl['stable_changed']} of {fl['stable_promised']}"
         f" ({pct(fl['stable_change_rate'])})"],
        ["interims not a prefix of their final", f"{fl['interims_not_prefix']} of "
         f"{fl['interims']} ({pct(fl['interim_not_prefix_rate'])})"],
        ["interim words changed by the final", f"{fl['interim_words_changed']} of "
         f"{fl['interim_words']} ({pct(fl['interim_word_change_rate'])})"],
        ["the server's own `latency_ms` on finals, p50 / p95 (for comparison)",
         f"{num(own.get('p50'))} / {num(own.get('p95'))} s"],
        ["finals lost / only at close", f"{summary['finals_lost']} / "
         f"{summary['finalized_by_close']} of {summary['utterances']}"],
        ["WER of the finals", pct(summary["wer"])],
    ]


def section_latency(record: dict, img: Path, rel: str) -> str:
    r = record["result"]
    server = r["server"]
    parts = ["## 2. Latency: one real-time stream", provenance(record), "",
             f"{len(r['per_utterance']) // r.get('rounds', 1)} human English utterances from "
             "the corpus, "
             f"{record['settings']['pause_s']} s of silence between them, "
             f"{r['stream_seconds']:.0f} s stream sent in {r['chunk_ms']} ms chunks at real "
             "time. End and start of speech come from the corpus audio (each clip's trailing "
             "and leading silence trimmed by an energy threshold), never from the server. "
             "Latency = arrival of the message − the moment the chunk holding that audio "
             "sample was sent. Flicker compares normalized words.", ""]
    if r.get("comparison"):
        parts += [f"The stream was sent {r['rounds']} time(s) to each server, taking turns "
                  "(candidate, baseline, baseline, candidate, ...); utterances of all rounds "
                  "are pooled per server.", "", comparison_table(r["comparison"]), "",
                  "The candidate in detail:", ""]
    parts.append(table(["measure", "value"], _latency_rows(r)))
    parts += ["", f"Server during the stream: CPU {num(server['cpu_percent'], 0)} % of one "
              f"core, {num(server.get('cpu_per_audio_s'), 3)} CPU seconds per second of audio "
              f"streamed, peak RSS {num(server['peak_rss_mb'], 0)} MB."]
    if r["errors"]:
        parts += ["", "Stream errors: " + "; ".join(r["errors"])]
    plot_latency(r, img / "latency.png")
    parts += ["", f"![latency per utterance]({rel}/latency.png)"]
    return "\n".join(parts)


def concurrency_table(sweep: dict) -> str:
    return table(
        ["streams", "final p50", "final p95", "final max", "finals lost", "partials/utt",
         "partials dropped", "server CPU", "CPU s / audio s", "peak RSS", "WER"],
        [[lv["streams"], num(lv["final_latency_s"]["p50"], 2, " s"),
          num(lv["final_latency_s"]["p95"], 2, " s"), num(lv["final_latency_s"]["max"], 2, " s"),
          f"{lv['finals_lost']} of {lv['utterances']}", num(lv["partials_per_utterance"], 1),
          "–" if lv.get("partials_dropped") is None else lv["partials_dropped"],
          num(lv["server"]["cpu_percent"], 0, " %"), num(lv["server"].get("cpu_per_audio_s"), 3),
          num(lv["server"]["peak_rss_mb"], 0, " MB"), pct(lv["wer"])] for lv in sweep["levels"]])


def _limit(sweep: dict) -> str:
    if "bound_floor_s" not in sweep:   # results from before the bound followed the server
        return f"{sweep['limit']}, with p95 < {num(sweep['bound_s'])} s"
    top = " (the highest level measured)" if sweep.get("limit_is_top_level") else ""
    return (f"{sweep['limit']}{top}, with p95 ≤ {num(sweep['bound_s'])} s "
            f"(max({num(sweep['bound_floor_s'], 1)} s, 2 × its 1-stream median))")


def section_concurrency(record: dict, img: Path, rel: str) -> str:
    r = record["result"]
    parts = ["## 3. Concurrency", provenance(record), "",
             f"N real-time streams at once, each {r['utterances_per_stream']} corpus utterances "
             f"with {r['pause_s']} s pauses, stream k starting k×{r['stagger_s']} s later. "
             "A server's levels stop after the first one that is saturated (p95 over "
             f"{SATURATED:g}× its bound, or a final lost). Server CPU is "
             "a share of one core (200 % = both cores); CPU s / audio s is the server's "
             "CPU seconds (all its threads and child processes, from /proc) per second of "
             "audio streamed to it at that level.", "",
             "The limit is the largest N with no final lost and p95 final latency within "
             "max(floor, 2 × the same server's median at N = 1), every smaller level too.", ""]
    sweeps = {"candidate": r}
    if r.get("baseline"):
        sweeps["baseline"] = r["baseline"]
        parts += ["At each level the two servers take turns (who goes first alternates), the "
                  "other one idle.", "",
                  f"**Limit: candidate {_limit(r)}; baseline {_limit(r['baseline'])}.**", "",
                  comparison_table(r["comparison"]), "", "Candidate per level:", "",
                  concurrency_table(r), "", "Baseline per level:", "",
                  concurrency_table(r["baseline"])]
    else:
        parts += [f"**Limit: {_limit(r)}.**", "", concurrency_table(r)]
    plot_concurrency(sweeps, img / "concurrency.png")
    parts += ["", f"![latency and CPU vs streams]({rel}/concurrency.png)"]
    return "\n".join(parts)


def section_batch(record: dict, img: Path, rel: str) -> str:
    r = record["result"]
    parts = ["## 4. Batch speed: API vs faster-whisper directly", provenance(record), "",
             r.get("method", ""), ""]
    rows = [[f["file"], num(f["duration_s"], 1, " s"), num(f["api_rtf"], 3),
             num(f["direct_rtf"], 3), num(f["ratio"])] for f in r["files"]]
    parts.append(table(["file", "audio", "RTF via API", "RTF direct", "API / direct"], rows))
    parts += ["", f"Median over files: API RTF {num(r['api_rtf'], 3)}, direct RTF "
              f"{num(r['direct_rtf'], 3)}, ratio **{num(r['ratio'])}** (1.0 = no overhead; "
              "RTF = processing seconds / audio seconds, lower is faster)."]
    return "\n".join(parts)


def section_peer(record: dict, img: Path, rel: str) -> str:
    r = record["result"]
    parts = ["## 5. Side by side: WhisperLive", provenance(record), ""]
    if record["status"] != "ok" or r.get("unavailable"):
        parts.append(f"**The peer could not be run:** {r.get('unavailable') or r.get('error')}")
        return "\n".join(parts)
    parts += [r["setup"], "", table(["measure", "streamscribe", "WhisperLive", "ours / theirs"],
                                    r["comparison"]), "",
              "Per level (streamscribe):", "", concurrency_table(r["ours"]), "",
              "Per level (WhisperLive):", "", concurrency_table(r["theirs"])]
    plot_concurrency({"streamscribe": r["ours"], "WhisperLive": r["theirs"]}, img / "peer.png")
    parts += ["", f"![ours vs WhisperLive]({rel}/peer.png)"]
    return "\n".join(parts)


def plot_soak(result: dict, path: Path) -> None:
    plt = _plt()
    samples = result["rss_samples"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot([t / 60 for t, _ in samples], [mb for _, mb in samples], color="tab:blue")
    ax.axvline(result["load_ended_s"] / 60, color="grey", lw=0.8, ls=":",
               label="load ends; settle, then one clean stream")
    ax.set_xlabel("minutes")
    ax.set_ylabel("server RSS (MB)")
    ax.set_title(f"Soak: {result['soak_streams']} streams with random faults")
    ax.legend(fontsize=8)
    _save(plt, fig, path)


def section_soak(record: dict, img: Path, rel: str) -> str:
    r = record["result"]
    by_fault = ", ".join(f"{k} {v}" for k, v in sorted(r["by_fault"].items()))
    lost = ", ".join(f"{k} {v}" for k, v in r["finals_lost_by_fault"].items())
    parts = ["## 6. Soak: streams with random faults", provenance(record), "",
             f"{r['soak_streams']} clients for {r['seconds'] / 60:g} min (seed {r['seed']}), "
             f"after a warm-up of {num(r.get('warm_up_seconds'), 0, ' s')} of the same load "
             "(its streams are counted below, the RSS plot and growth start after it), "
             "each sending one short real-time stream after another (1–2 corpus utterances) "
             "and ending each in a randomly chosen way: CloseStream (`clean`), CloseStream "
             "then KeepAlive every 0.5 s while the server flushes, a slow reader (4 KB "
             "receive buffer, a pause after each message), or, after a random share of "
             "its audio, a TCP close without a close frame, a TCP reset, or a WebSocket close "
             "frame. The first three must get every final and the Metadata. See "
             "`bench/soak.py`.", "",
             table(["measure", "value"], [
                 ["streams (by ending)", f"{r['streams']} ({by_fault})"],
                 ["audio streamed", num(r["audio_seconds"], 0, " s")],
                 ["finals lost", f"**{r['finals_lost']}** of {r['finals_expected']} "
                                 f"({lost})"],
                 ["completed streams without Metadata", str(r["metadata_missing"])],
                 ["server RSS idle before / idle after (settled) / peak",
                  f"{num(r['rss_start_mb'], 0)} / {num(r['rss_end_mb'], 0)} / "
                  f"{num(r['server']['peak_rss_mb'], 0)} MB"],
                 ["server RSS growth over the run (idle after − idle before)",
                  num(r["rss_growth_mb"], 1, " MB")],
                 ["growth of the RSS floor, first to last quarter of the load (leak signal; "
                  "ignores start-up growth and the model calls' transient buffers)",
                  num(r.get("rss_floor_growth_mb"), 1, " MB")],
                 ["server CPU seconds per audio second",
                  num(r["server"].get("cpu_per_audio_s"), 3)],
                 ["open streams after (its /healthz)", str(r["active_streams_after"])],
                 ["served a clean stream afterwards", "yes" if r["served_after"] else "**no**"],
             ]), "", "Codes seen (server `Error` messages, close codes of the streams that "
             "were not broken off on purpose, client-side failures):", "",
             table(["code", "count"], [[f"`{c}`", n] for c, n in r["codes"].items()])]
    counted = r.get("server_errors_by_code")
    parts += ["", "Errors by code as the server counted them (its `/metrics`): " + (
        "none" if counted == {} else "not available (no `/metrics`, or it needs a key)"
        if counted is None else ", ".join(f"`{c}` {n:g}" for c, n in counted.items())) + "."]
    plot_soak(r, img / "soak.png")
    parts += ["", f"![server RSS during the soak]({rel}/soak.png)"]
    return "\n".join(parts)


SECTIONS = {"accuracy": section_accuracy, "latency": section_latency,
            "concurrency": section_concurrency, "batch": section_batch, "peer": section_peer,
            "soak": section_soak}


def _met(value, ok: bool) -> str:
    return "–" if value is None else ("yes" if ok else "**no**")


def targets(records: dict[str, dict]) -> list[list[str]]:
    """Issue 8's and 9's "done when" figures that these results can show: target,
    measured, met. Only rows whose suites ran (with a baseline where the target is a ratio)."""
    rows = []
    lat = records.get("latency", {}).get("result", {})
    if lat.get("baseline"):
        cpu = next(r for r in lat["comparison"] if r["measure"].startswith("server CPU seconds"))
        times = 1 / cpu["ratio"] if cpu["ratio"] else None
        rows.append(["server CPU per audio second, one stream: ≥ 3× lower than the baseline",
                     f"{num(times, 2)}× lower ({num(cpu['candidate'], 3)} vs "
                     f"{num(cpu['baseline'], 3)})", _met(times, (times or 0) >= 3)])
    conc = records.get("concurrency", {}).get("result", {})
    if conc.get("baseline"):
        mine, theirs = conc["limit"], conc["baseline"]["limit"]
        factor = mine / theirs if theirs else None
        rows.append(["concurrency limit: ≥ 4× the baseline's",
                     f"{mine} vs {theirs}" + (f" ({factor:.1f}×)" if factor else ""),
                     _met(mine, bool(factor and factor >= 4) or (theirs == 0 and mine > 0))])
    eight = next((lv for lv in conc.get("levels", []) if lv["streams"] == 8), None)
    if eight:
        rows.append(["8 streams: no final lost",
                     f"{eight['finals_lost']} of {eight['utterances']} lost",
                     _met(0, eight["finals_lost"] == 0)])
    elif conc:
        rows.append(["8 streams: no final lost", "not measured (a lower level saturated, or "
                     "8 is not among the levels)", "**no**"])
    if "final_latency_s" in lat:
        endpointing = records["latency"]["settings"]["endpointing_ms"] / 1000
        p50 = lat["final_latency_s"]["p50"]
        rows.append([f"one stream: end of speech → final median ≤ endpointing + 0.15 s "
                     f"({endpointing + 0.15:.2f} s)", num(p50, 2, " s"),
                     _met(p50, p50 is not None and p50 <= endpointing + 0.15)])
        rss = lat["server"]["peak_rss_mb"]
        rows.append(["server RSS ≤ 400 MB (peak during the one-stream run)",
                     num(rss, 0, " MB"), _met(rss, rss is not None and rss <= 400)])
    acc = {g["group"][0]: g for g in records.get("accuracy", {}).get("result", {})
           .get("overall", [])}
    for name, limit_ in (("human English en_* (WER)", 1.03), ("all word-scored (WER)", 1.05)):
        if name in acc:
            ratio_ = acc[name]["ratio"]
            rows.append([f"{name}: streaming / batch ≤ {limit_}", num(ratio_),
                         _met(ratio_, ratio_ is not None and ratio_ <= limit_)])
    soak = records.get("soak", {}).get("result", {})
    if "finals_lost" in soak:
        rows.append(["soak: zero finals lost", f"{soak['finals_lost']} of "
                     f"{soak['finals_expected']}", _met(0, soak["finals_lost"] == 0)])
        growth = soak["rss_growth_mb"]
        rows.append(["soak: RSS growth under 20 MB over the run", num(growth, 1, " MB"),
                     _met(growth, growth is not None and growth < 20)])
    return rows


def headline(records: dict[str, dict]) -> list[list[str]]:
    rows = []
    peer = records.get("peer", {}).get("result", {})
    if peer.get("headline"):
        rows += peer["headline"]
    lat = records.get("latency", {}).get("result", {})
    if "final_latency_s" in lat:
        f = lat["final_latency_s"]
        rows.append(["end of speech → final, one stream (p50 / p95)",
                     f"{num(f['p50'])} / {num(f['p95'])} s"])
    conc = records.get("concurrency", {}).get("result", {})
    if "limit" in conc:
        rows.append(["concurrency limit (streams, no final lost, p95 final within its bound)",
                     _limit(conc)])
    soak = records.get("soak", {}).get("result", {})
    if "finals_lost" in soak:
        rows.append(["soak: finals lost / RSS growth",
                     f"{soak['finals_lost']} of {soak['finals_expected']} / "
                     f"{num(soak['rss_growth_mb'], 1, ' MB')}"])
    for suite in ("latency", "concurrency", "accuracy"):
        record = records.get(suite, {})
        for r in (record.get("result") or {}).get("comparison", []):
            if r["headline"]:
                rows.append([f"vs baseline `{record['baseline']['revision']}`: {r['measure']}",
                             f"{num(r['candidate'], r['digits'], r['unit'])} vs "
                             f"{num(r['baseline'], r['digits'], r['unit'])} "
                             f"(ratio {num(r['ratio'])})"])
    acc = records.get("accuracy", {}).get("result", {})
    for g in acc.get("overall", []):
        rows.append([f"{g['group'][0]}: streaming / batch", f"{pct(g['streaming'])} / "
                     f"{pct(g['batch'])} (ratio {num(g['ratio'])})"])
    bat = records.get("batch", {}).get("result", {})
    if "ratio" in bat:
        rows.append(["batch RTF: API / faster-whisper direct",
                     f"{num(bat['api_rtf'], 3)} / {num(bat['direct_rtf'], 3)} "
                     f"(ratio {num(bat['ratio'])})"])
    return rows


def _server_models(record: dict) -> str:
    health = (record.get("server") or {}).get("healthz_at_start") or {}
    models = ", ".join(f"`{m}`" for m in health.get("models", {}))
    return f"Models loaded by our server at start (its /healthz): {models}." if models else ""


def render(results_dir: Path, docs_path: Path) -> Path:
    records = latest(results_dir)
    img = docs_path.parent / "img"
    img.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(img, docs_path.parent)
    out = ["# Benchmarks", "",
           "Generated by `streamscribe bench` (`python -m bench`) from the newest result of "
           "each suite in `bench/results/`; regenerate with `streamscribe bench` or "
           "`streamscribe bench --report-only`. Every number below comes from the run named "
           "in its section, measured on the machine named there, against servers the harness "
           "started on 127.0.0.1. With `--baseline REV`, the accuracy, latency and "
           "concurrency sections show that revision's server beside this tree's (taking "
           "turns on the same workloads) and the ratio candidate / baseline; latency + "
           "concurrency with a baseline take about 15 minutes on 2 cores (latency: 2 rounds "
           "of a 51 s stream per server; concurrency: N = 1, 2, 4, 8, 16 streams of 24–43 s, "
           "each server stopping after its first saturated level, each level bounded by its "
           "streams plus 120 s for the last finals).", ""]
    if not records:
        out.append("No results yet.")
    else:
        any_record = next(iter(records.values()))
        settings = any_record["settings"]
        out += ["## Summary", "", table(["", "value"], headline(records)), ""]
        goals = targets(records)
        if goals:
            out += ["Targets of issues 8 and 9 (their \"done when\") that these results show:",
                    "", table(["target", "measured", "met"], goals), ""]
        out += ["Settings (the same for every suite and for both sides of a comparison): "
                f"model `{settings['model']}` ({settings['compute_type']}, "
                f"{settings['cpu_threads'] or 'each server’s default'} CPU threads per call, "
                f"{settings['workers'] or 'each server’s default'} worker(s)), beam "
                f"{settings['beam_size']} on our side, endpointing "
                f"{settings['endpointing_ms']} ms, {settings['pause_s']} s pauses between "
                f"utterances. {_server_models(any_record)}", "",
                "<details><summary>All settings</summary>", "", "```json",
                json.dumps(settings, indent=1), "```", "</details>", ""]
        for suite in SUITE_ORDER:
            if suite in records:
                record = records[suite]
                if record["status"] != "ok" and suite != "peer":
                    out += [f"## {suite}", provenance(record), "",
                            f"**Failed:** {record['result'].get('error')}", ""]
                    continue
                out += [SECTIONS[suite](record, img, rel), ""]
    docs_path.parent.mkdir(parents=True, exist_ok=True)
    docs_path.write_text("\n".join(out))
    return docs_path
