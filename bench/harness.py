"""Runs the suites: settings, the server under test, results files, the report.

`main(argv)` is `python -m bench` and `streamscribe bench`. Unless `--url` names a running
server, our server is started as a subprocess (`streamscribe serve` on 127.0.0.1, a free
port) so that its CPU time and memory can be read from /proc without counting the client.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from streaming.eval.corpus import REPO

from . import processes

SUITES = ("accuracy", "latency", "concurrency", "batch", "peer")
QUICK_SUITES = ("accuracy", "latency", "concurrency", "batch")


@dataclass(frozen=True)
class Settings:
    """Everything that decides what is measured; printed and stored with every result."""

    quick: bool = False
    suites: tuple[str, ...] = SUITES
    model: str = "base"
    compute_type: str = "int8"
    cpu_threads: int = 2
    workers: int = 1
    beam_size: int = 1
    endpointing_ms: int = 600
    concurrency_levels: tuple[int, ...] = (1, 2, 4, 8, 16)
    concurrency_utterances: int = 4       # per stream
    latency_utterances: int = 6
    pause_s: float = 1.5                  # silence between utterances in a stream
    latency_bound_s: float = 1.5          # p95 final latency that defines the concurrency limit
    accuracy_items: tuple[str, ...] = ()  # empty: every mono 16 kHz item of the corpus
    accuracy_speed: float = 0.0           # 0: stream as fast as the server takes it
    batch_files: tuple[str, ...] = ("long_en_two_cities_p1_p3",)
    batch_repeats: int = 3
    peer_levels: tuple[int, ...] = (1, 2, 4)
    peer_utterances: int = 4
    peer_drain_s: float = 30.0            # silence a client sends at most, waiting for last finals

    @classmethod
    def for_mode(cls, quick: bool, **overrides) -> "Settings":
        if quick:
            base = cls(quick=True, suites=QUICK_SUITES, concurrency_levels=(1, 2),
                       concurrency_utterances=2, latency_utterances=2,
                       accuracy_items=("en_jfk_inaugural", "es_pico_cheetah_test_es",
                                       "zh_aishell_BAC009S0724W0121"),
                       batch_files=("en_jfk_inaugural",), batch_repeats=1,
                       peer_levels=(1,), peer_utterances=2, peer_drain_s=10.0)
        else:
            base = cls()
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class Target:
    """A running server of ours: where to reach it and which process to watch."""

    http_url: str
    pid: int | None

    @property
    def ws_url(self) -> str:
        return "ws" + self.http_url[len("http"):]


@dataclass
class Context:
    settings: Settings
    target: Target
    work_dir: Path                      # logs, peer scratch files
    results: dict = field(default_factory=dict)   # suite -> result of this run

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def start_ours(settings: Settings, work_dir: Path) -> processes.ServerProcess:
    port = processes.free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "STREAMSCRIBE_MODEL_COMPUTE_TYPE": settings.compute_type,
           "STREAMSCRIBE_MODEL_BEAM_SIZE": str(settings.beam_size),
           "STREAMSCRIBE_VAD_ENDPOINTING_MS": str(settings.endpointing_ms)}
    command = [sys.executable, "-m", "streaming.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--model", settings.model,
               "--threads", str(settings.cpu_threads), "--workers", str(settings.workers)]
    server = processes.ServerProcess("streamscribe", command, env, work_dir / "server-ours.log",
                                     port=port)
    return server.start(lambda: processes.http_ok(f"http://127.0.0.1:{port}/healthz"))


def _suite_module(name: str):
    import importlib
    return importlib.import_module(f"bench.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamscribe bench",
        description="Accuracy, latency, concurrency, batch speed and a side-by-side peer "
                    "(WhisperLive) against a server started on 127.0.0.1. Writes "
                    "bench/results/<date>-<suite>.json and regenerates docs/benchmarks.md.")
    parser.add_argument("--quick", action="store_true",
                        help="small workloads (< 3 min); results go to bench/results/tmp/ "
                             "unless --results-dir is given, docs/ is left alone")
    parser.add_argument("--suites", help=f"comma-separated subset of {','.join(SUITES)}")
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument("--server-pid", type=int,
                        help="with --url: the process whose CPU and memory to report")
    parser.add_argument("--model", help="model both sides use (default base)")
    parser.add_argument("--levels", help="concurrency levels, e.g. 1,2,4,8")
    parser.add_argument("--peer-levels", help="peer concurrency levels, e.g. 1,2,4")
    parser.add_argument("--results-dir", type=Path, help="where <date>-<suite>.json go")
    parser.add_argument("--docs", type=Path,
                        help="the markdown report to regenerate (default docs/benchmarks.md; "
                             "with --quick, benchmarks.md in the results dir)")
    parser.add_argument("--no-report", action="store_true", help="write results only")
    parser.add_argument("--report-only", action="store_true",
                        help="regenerate the report from the latest results, run nothing")
    return parser


def _health(http_url: str) -> dict | None:
    """What the server says it runs (models loaded, ...), stored with the results."""
    import urllib.request
    try:
        with urllib.request.urlopen(f"{http_url}/healthz", timeout=10) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def _ints(text: str | None) -> tuple[int, ...] | None:
    return tuple(int(x) for x in text.split(",")) if text else None


def main(argv: list[str] | None = None) -> int:
    from . import report

    args = build_parser().parse_args(argv)
    suites = tuple(s.strip() for s in args.suites.split(",")) if args.suites else None
    unknown = set(suites or ()) - set(SUITES)
    if unknown:
        print(f"unknown suites: {', '.join(sorted(unknown))}; choose from {', '.join(SUITES)}",
              file=sys.stderr)
        return 2
    settings = Settings.for_mode(args.quick, suites=suites, model=args.model,
                                 concurrency_levels=_ints(args.levels),
                                 peer_levels=_ints(args.peer_levels))
    results_dir = args.results_dir or (REPO / "bench" / "results" / ("tmp" if args.quick else ""))
    docs = args.docs or (results_dir / "benchmarks.md" if args.quick else REPO / "docs" /
                         "benchmarks.md")
    command = " ".join(["streamscribe bench", *(argv if argv is not None else sys.argv[1:])])
    if args.report_only:
        report.render(results_dir, docs)
        print(f"wrote {docs}")
        return 0

    work_dir = results_dir / "work" if args.quick else REPO / "bench" / "results" / "tmp"
    work_dir.mkdir(parents=True, exist_ok=True)
    machine = processes.machine_info()
    print("settings:", json.dumps(asdict(settings)))
    print("machine:", json.dumps(machine))
    started = time.perf_counter()
    server = None
    if args.url:
        target = Target(args.url.rstrip("/"), args.server_pid)
    else:
        server = start_ours(settings, work_dir)
        target = Target(f"http://127.0.0.1:{server.port}", server.pid)
    server_info = _health(target.http_url)
    print("server:", json.dumps(server_info))
    context = Context(settings, target, work_dir)
    context.log(f"server under test: {target.http_url} (pid {target.pid})")
    failures = 0
    date = dt.date.today().isoformat()
    try:
        for suite in settings.suites:
            context.log(f"suite {suite} ...")
            t0 = time.perf_counter()
            try:
                data = _suite_module(suite).run(context)
                status = "ok"
            except Exception as exc:  # one suite's failure is reported, the others still run
                failures += 1
                data = {"error": f"{type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc()}
                status = "failed"
                context.log(f"suite {suite} failed: {exc}")
            record = {"suite": suite, "status": status, "date": date,
                      "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      "seconds": round(time.perf_counter() - t0, 1), "command": command,
                      "settings": asdict(settings), "machine": machine,
                      "server": {"url": target.http_url, "started_by_harness": server is not None,
                                 "healthz_at_start": server_info},
                      "machine_load_end": list(os.getloadavg()), "result": data}
            context.results[suite] = record
            path = report.write_result(results_dir, date, suite, record)
            context.log(f"suite {suite} {status} in {record['seconds']} s -> {path}")
    finally:
        if server:
            server.stop()
    if not args.no_report:
        report.render(results_dir, docs)
        context.log(f"report: {docs}")
    context.log(f"done in {time.perf_counter() - started:.0f} s")
    return 1 if failures else 0
