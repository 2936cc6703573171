"""The benchmark harness: its measuring logic on made-up runs, and `--quick` end to end.

The end-to-end test checks that every quick suite produced numbers, never how good they
are: speed thresholds have no place on a shared 2-core CI machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from bench import metrics, report, streams
from bench.harness import main
from bench.peer import whisperlive_events
from bench.streams import Event, Stream, StreamRun, Utterance
from streaming.eval.corpus import REPO


def utterance(item_id: str, start: float, end: float, text: str) -> Utterance:
    return Utterance(item_id, (text,), "en", start, end, start, end)


def made_up_run(events: list[Event]) -> StreamRun:
    stream = Stream(pcm=np.zeros(10 * streams.RATE, np.int16),
                    utterances=(utterance("a", 1.0, 3.0, "one two three"),
                                utterance("b", 5.0, 7.0, "four five")))
    # real-time sending: the chunk holding second s left at wall time 100 + s
    sent = [(int(k * 0.02 * streams.RATE), 100 + k * 0.02) for k in range(1, 501)]
    return StreamRun(stream=stream, sent=sent, events=events, closed_at=200.0)


def test_speech_bounds_trims_silence():
    clip = np.zeros(streams.RATE * 2, np.int16)
    clip[8000:24000] = (3000 * np.sin(np.arange(16000) / 5)).astype(np.int16)
    first, last = streams.speech_bounds(clip)
    assert abs(first - 8000) <= 160 and abs(last - 24000) <= 160


def test_latencies_are_measured_from_the_audio_not_the_server():
    run = made_up_run([
        Event(at=101.5, kind="partial", text="one two", start=1.0, end=1.5, stable_words=1),
        Event(at=102.5, kind="partial", text="one too three", start=1.0, end=2.5, stable_words=2),
        Event(at=103.4, kind="final", text="One, two three.", start=1.0, end=3.0),
        Event(at=106.0, kind="partial", text="four", start=5.0, end=6.0),
    ])
    timings = metrics.utterance_timings(run)
    assert abs(timings[0].final_latency_s - 0.4) < 0.03
    assert abs(timings[0].first_partial_s - 0.5) < 0.03
    assert timings[0].partial_intervals_s == [1.0]
    assert timings[1].lost and timings[1].partials == 1
    flicker = metrics.flicker(run)
    # "one two" promised stable, then "too" changed: 1 of 2 promised words
    assert (flicker.stable_promised, flicker.stable_changed) == (2, 1)
    assert (flicker.interims, flicker.interims_not_prefix) == (2, 1)
    summary = metrics.summarize([run])
    assert summary["finals_lost"] == 1 and summary["final_latency_s"]["n"] == 1


def test_a_final_spanning_two_utterances_finalizes_both():
    run = made_up_run([Event(at=108.0, kind="final", text="one two three four five",
                             start=1.0, end=7.0)])
    assert [t.lost for t in metrics.utterance_timings(run)] == [False, False]
    assert metrics.stream_error_rate([run]) == 0.0


def test_whisperlive_segments_become_events_once():
    seen, last = set(), []
    message = {"segments": [{"start": "1.000", "end": "3.000", "text": " one two three",
                             "completed": True},
                            {"start": "5.000", "end": "6.000", "text": " four", "completed": False}]}
    first = whisperlive_events(message, 1.0, seen, last)
    again = whisperlive_events(message, 2.0, seen, last)
    assert [e.kind for e in first] == ["final", "partial"] and again == []


def test_quick_run_produces_numbers(server, tmp_path):
    """`--quick` against the session's shared server (its model is already loaded)."""
    docs = tmp_path / "benchmarks.md"
    code = main(["--quick", "--url", server.http_url, "--server-pid", str(os.getpid()),
                 "--results-dir", str(tmp_path), "--docs", str(docs)])
    records = report.latest(tmp_path)
    assert set(records) == {"accuracy", "latency", "concurrency", "batch"}
    failed = {s: r["result"].get("error") for s, r in records.items() if r["status"] != "ok"}
    assert code == 0 and not failed, failed
    accuracy = records["accuracy"]["result"]
    assert all(g["batch"] is not None and g["streaming"] is not None for g in accuracy["overall"])
    latency = records["latency"]["result"]
    assert latency["final_latency_s"]["n"] > 0 and latency["first_partial_s"]["p50"] is not None
    concurrency = records["concurrency"]["result"]
    assert concurrency["levels"] and concurrency["levels"][0]["final_latency_s"]["p50"] is not None
    assert concurrency["levels"][0]["server"]["peak_rss_mb"] > 0
    batch = records["batch"]["result"]
    assert batch["api_rtf"] > 0 and batch["direct_rtf"] > 0
    text = docs.read_text()
    assert "## 2. Latency" in text and (tmp_path / "img" / "latency.png").is_file()


def test_peer_comparison_reads_the_lowest_level_of_each_side():
    from bench.peer import comparison

    def level(n: int, p50: float | None, lost: int) -> dict:
        latency = {"n": 4 - lost, "p50": p50, "p95": p50 and p50 * 2, "max": p50, "mean": p50}
        return {"streams": n, "utterances": 4, "finals_lost": lost, "final_latency_s": latency,
                "first_partial_s": latency, "wer": 0.1, "wer_with_last_partial": 0.1,
                "server": {"cpu_percent": 50.0, "peak_rss_mb": 400.0}}

    ours = {"levels": [level(2, 1.0, 0), level(4, 2.0, 0)], "limit": 2, "bound_s": 1.5,
            "bound_floor_s": 1.5}
    theirs = {"levels": [level(2, None, 4), level(4, None, 4)], "limit": 0, "bound_s": 1.5}
    rows = comparison(ours, theirs)
    assert rows[0][0] == "final latency p50, 2 streams" and rows[0][2] == "–"
    assert ["2", "0"] == rows[6][1:3]


# ---------------------------------------------------------------- --baseline, CPU, soak

def test_a_git_revision_is_exported_once_and_starts_by_its_own_entry_point(tmp_path):
    from bench import baseline

    checkout = baseline.prepare("HEAD", root=tmp_path)
    assert checkout.sha and checkout.path == tmp_path / checkout.sha
    assert (checkout.path / "pyproject.toml").is_file() and (checkout.path / "streaming").is_dir()
    marker = checkout.path / ".complete"
    stamp = marker.stat().st_mtime_ns
    assert baseline.prepare(checkout.sha, root=tmp_path).path == checkout.path
    assert marker.stat().st_mtime_ns == stamp
    assert baseline.dependency_notes(checkout.path) == []
    command = baseline.server_command(checkout.path)
    assert "from streaming.cli import main" in command[-1]
    in_place = baseline.prepare(str(REPO))
    assert in_place.path == REPO.resolve() and in_place.sha is None
    assert len(baseline.describe_tree(REPO)["sha"]) == 40
    assert baseline.describe_tree(tmp_path)["sha"] is None


def test_a_bad_baseline_is_refused(tmp_path):
    from bench import baseline

    with pytest.raises(ValueError):
        baseline.prepare("no-such-revision-here", root=tmp_path)
    with pytest.raises(ValueError):
        baseline.prepare(str(tmp_path))   # a directory, but no checkout


def test_dependency_notes_name_what_this_environment_lacks(tmp_path):
    from bench import baseline

    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "old"\ndependencies = ["numpy<1", "no-such-package-here>=1", '
        '"websockets"]\n')
    notes = baseline.dependency_notes(tmp_path)
    assert len(notes) == 2
    assert notes[0].startswith("numpy<1: ") and "not installed" in notes[1]


def test_the_concurrency_limit_holds_each_server_to_its_own_one_stream_median():
    from bench import concurrency

    def level(n: int, p50: float, p95: float, lost: int = 0) -> dict:
        return {"streams": n, "finals_lost": lost, "errors": [],
                "final_latency_s": {"p50": p50, "p95": p95}}

    slow = [level(1, 2.0, 2.5), level(2, 3.5, 3.9), level(4, 5.0, 4.1), level(8, 9.0, 9.0)]
    assert concurrency.bound(slow, 1.5) == 4.0
    assert concurrency.limit(slow, 4.0) == 2          # 4 streams: p95 4.1 > 4.0
    fast = [level(1, 0.5, 0.6), level(2, 0.6, 1.5), level(4, 0.7, 1.2, lost=1)]
    assert concurrency.bound(fast, 1.5) == 1.5        # the floor
    assert concurrency.limit(fast, 1.5) == 2          # 4 streams lost a final


def test_servers_take_turns_abba():
    from bench.latency import turns

    assert turns(["a", "b"], 3) == ["a", "b", "b", "a", "a", "b"]
    assert turns(["a"], 2) == ["a", "a"]


def test_cpu_seconds_include_children_that_have_exited():
    from bench.processes import cpu_seconds

    child = subprocess.Popen(["sh", "-c", f"{sys.executable} -c 'sum(range(3 * 10**7))'; "
                                          "sleep 30"])
    try:
        deadline = time.monotonic() + 60
        while cpu_seconds(child.pid) < 0.05 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cpu_seconds(child.pid) >= 0.05   # the python child's time, alive or waited for
    finally:
        child.kill()
        child.wait()


def test_quick_baseline_and_soak_produce_numbers(server, tmp_path):
    """`--quick --baseline <this tree>`: both servers measured side by side, then a short
    soak; every figure and ratio is there (no thresholds)."""
    docs = tmp_path / "benchmarks.md"
    code = main(["--quick", "--url", server.http_url, "--server-pid", str(os.getpid()),
                 "--baseline", str(REPO), "--suites", "latency,concurrency,soak",
                 "--soak-minutes", "0.1", "--soak-streams", "2",
                 "--results-dir", str(tmp_path), "--docs", str(docs)])
    records = report.latest(tmp_path)
    failed = {s: r["result"].get("error") for s, r in records.items() if r["status"] != "ok"}
    assert code == 0 and not failed, failed
    latency = records["latency"]
    assert latency["baseline"]["path"] == str(REPO.resolve())
    assert latency["candidate"]["path"] == str(REPO)
    for side in (latency["result"], latency["result"]["baseline"]):
        assert side["final_latency_s"]["n"] > 0
        assert side["server"]["cpu_per_audio_s"] > 0 and side["server"]["audio_seconds"] > 0
    rows = {r["measure"]: r for r in latency["result"]["comparison"]}
    assert rows["end of speech → final, median"]["ratio"] is not None
    assert rows["server CPU seconds per audio second, one stream"]["ratio"] is not None
    concurrency = records["concurrency"]["result"]
    for side in (concurrency, concurrency["baseline"]):
        assert side["levels"][0]["streams"] == 1 and side["bound_s"] >= 1.5
        assert isinstance(side["limit"], int)
        assert side["levels"][0]["server"]["cpu_per_audio_s"] > 0
    assert any(r["measure"] == "concurrency limit (streams)" for r in concurrency["comparison"])
    soak = records["soak"]["result"]
    assert soak["streams"] > 0 and isinstance(soak["finals_lost"], int)
    assert soak["rss_samples"] and soak["rss_growth_mb"] is not None
    assert soak["healthz_after"] and soak["served_after"]
    text = docs.read_text()
    assert "candidate / baseline" in text and "## 6. Soak" in text
    assert (tmp_path / "img" / "soak.png").is_file()


def test_soak_reads_errors_by_code_from_prometheus_text():
    from bench.soak import error_counts

    text = "\n".join([
        "# HELP streamscribe_errors_total Errors sent to clients, by code",
        "# TYPE streamscribe_errors_total counter",
        'streamscribe_errors_total{code="invalid_json",protocol="deepgram"} 2.0',
        'streamscribe_errors_total{protocol="twilio",code="invalid_json"} 1.0',
        'streamscribe_errors_total{code="idle_timeout"} 1.0',
        'streamscribe_errors_created{code="idle_timeout"} 1.7e9',
        'streamscribe_streams_open{protocol="deepgram"} 3.0',
        'streamscribe_finals_sent_total{code="x"} 9.0'])
    assert error_counts(text) == {"invalid_json": 3.0, "idle_timeout": 1.0}


def test_soak_rss_floor_ignores_transient_peaks_but_not_growth():
    from bench.soak import rss_summary

    flat = [(t, 400.0 + (80 if t % 3 == 1 else 0)) for t in range(40)]
    summary = rss_summary(flat, 36.0, 401.0)
    assert summary["rss_floor_growth_mb"] == 0 and summary["rss_growth_mb"] == 1.0
    leaking = [(t, 400.0 + t) for t in range(40)]
    assert rss_summary(leaking, 36.0, 440.0)["rss_floor_growth_mb"] >= 27
