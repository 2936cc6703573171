"""Runs the suites: settings, the servers under test, results files, the report.

`main(argv)` is `python -m bench` and `streamscribe bench`. Unless `--url` names a running
server, our server is started as a subprocess (`streamscribe serve` on 127.0.0.1, a free
port) so that its CPU time and memory can be read from /proc without counting the client.

`--baseline REV` (a git revision or a checkout's path, see baseline.py) starts that
revision's server the same way, beside ours, on another free port. The latency,
concurrency and accuracy suites then run their workloads on both (`Context.targets`),
taking turns so that the machine's noise falls on both alike; the other suites run on
ours only. Both are spoken to only through the public wire protocol (`/v1/listen`,
`/v1/audio/transcriptions`, `/healthz`), so any revision with those endpoints can serve as
the baseline.
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

from streaming.config import ModelConfig
from streaming.eval.corpus import REPO

from . import baseline, processes

SUITES = ("accuracy", "latency", "concurrency", "batch", "peer", "soak")
QUICK_SUITES = ("accuracy", "latency", "concurrency", "batch")
COMPARED_SUITES = ("accuracy", "latency", "concurrency")   # run on the baseline too


@dataclass(frozen=True)
class Settings:
    """Everything that decides what is measured; printed and stored with every result."""

    quick: bool = False
    suites: tuple[str, ...] = SUITES
    model: str = "base"
    compute_type: str = "int8"
    # None: each server runs with its own default (a revision's default is part of what it
    # ships); set with --threads / --workers to pin both sides.
    cpu_threads: int | None = None
    workers: int | None = None
    beam_size: int = 1
    endpointing_ms: int = 600
    # Time on 2 cores: latency + concurrency with a baseline is about 15 min: per server 2
    # rounds of the 51 s latency stream, and levels of 24-43 s streams (stopping after the
    # first saturated one), each bounded by its streams + 120 s for the last finals.
    concurrency_levels: tuple[int, ...] = (1, 2, 4, 8, 16)
    concurrency_utterances: int = 4       # per stream
    latency_utterances: int = 6
    latency_rounds: int = 2               # the latency stream, per server (ABBA with a baseline)
    pause_s: float = 1.5                  # silence between utterances in a stream
    latency_bound_s: float = 1.5          # floor of the concurrency limit's p95 bound
    accuracy_items: tuple[str, ...] = ()  # empty: every mono 16 kHz item of the corpus
    accuracy_speed: float = 0.0           # 0: stream as fast as the server takes it
    batch_files: tuple[str, ...] = ("long_en_two_cities_p1_p3",)
    batch_repeats: int = 3
    peer_levels: tuple[int, ...] = (1, 2, 4)
    peer_utterances: int = 4
    peer_drain_s: float = 30.0            # silence a client sends at most, waiting for last finals
    soak_streams: int = 4
    soak_minutes: float = 3.0
    soak_seed: int = 1

    @property
    def threads_per_call(self) -> int:
        """CPU threads of one model call: as set, else this tree's default."""
        return self.cpu_threads or ModelConfig().cpu_threads

    @classmethod
    def for_mode(cls, quick: bool, **overrides) -> "Settings":
        if quick:
            base = cls(quick=True, suites=QUICK_SUITES, concurrency_levels=(1, 2),
                       concurrency_utterances=2, latency_utterances=2, latency_rounds=1,
                       accuracy_items=("en_jfk_inaugural", "es_pico_cheetah_test_es",
                                       "zh_aishell_BAC009S0724W0121"),
                       batch_files=("en_jfk_inaugural",), batch_repeats=1,
                       peer_levels=(1,), peer_utterances=2, peer_drain_s=10.0,
                       soak_streams=2, soak_minutes=0.5)
        else:
            base = cls()
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class Target:
    """A running server: where to reach it, which process to watch, what to call it."""

    http_url: str
    pid: int | None
    label: str = "candidate"

    @property
    def ws_url(self) -> str:
        return "ws" + self.http_url[len("http"):]


@dataclass
class Context:
    settings: Settings
    target: Target
    work_dir: Path                      # logs, peer scratch files
    results: dict = field(default_factory=dict)   # suite -> result of this run
    baseline: Target | None = None
    baseline_checkout: baseline.Checkout | None = None

    def targets(self) -> list[Target]:
        """Ours, then the baseline when there is one."""
        return [self.target, *([self.baseline] if self.baseline else [])]

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def start_server(tree: Path, settings: Settings, log_path: Path) -> processes.ServerProcess:
    """`streamscribe serve` of the code in `tree` (it alone on PYTHONPATH, run from it), on
    127.0.0.1 and a free port, with the settings' model, VAD, and threads and workers
    where they are set."""
    port = processes.free_port()
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1",
           "STREAMSCRIBE_MODEL_COMPUTE_TYPE": settings.compute_type,
           "STREAMSCRIBE_MODEL_BEAM_SIZE": str(settings.beam_size),
           "STREAMSCRIBE_VAD_ENDPOINTING_MS": str(settings.endpointing_ms)}
    command = [*baseline.server_command(tree), "serve", "--host", "127.0.0.1",
               "--port", str(port), "--model", settings.model]
    if settings.cpu_threads:
        command += ["--threads", str(settings.cpu_threads)]
    if settings.workers:
        command += ["--workers", str(settings.workers)]
    server = processes.ServerProcess(f"streamscribe ({tree})", command, env, log_path,
                                     port=port, cwd=tree)
    return server.start(lambda: processes.http_ok(f"http://127.0.0.1:{port}/healthz"))


def _suite_module(name: str):
    import importlib
    return importlib.import_module(f"bench.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamscribe bench",
        description="Accuracy, latency, concurrency, batch speed, a side-by-side peer "
                    "(WhisperLive) and a soak with random faults, against a server started on "
                    "127.0.0.1; with --baseline, another revision's server beside it. Writes "
                    "bench/results/<date>-<suite>.json and regenerates docs/benchmarks.md. "
                    "Latency + concurrency with a baseline take about 15 min on 2 cores.")
    parser.add_argument("--quick", action="store_true",
                        help="small workloads (< 3 min); results go to bench/results/tmp/ "
                             "unless --results-dir is given, docs/ is left alone")
    parser.add_argument("--suites", help=f"comma-separated subset of {','.join(SUITES)}")
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument("--server-pid", type=int,
                        help="with --url: the process whose CPU and memory to report")
    parser.add_argument("--baseline", metavar="REV",
                        help="also run that revision's server (a git revision of this "
                             "repository, or a checkout's path) on the latency, concurrency "
                             "and accuracy workloads, taking turns with ours; the report shows "
                             "both and the ratio candidate / baseline")
    parser.add_argument("--model", help="model both sides use (default base)")
    parser.add_argument("--threads", type=int,
                        help="CPU threads per model call on every server (default: each "
                             "server's own)")
    parser.add_argument("--workers", type=int,
                        help="concurrent model calls on every server (default: each server's own)")
    parser.add_argument("--levels", help="concurrency levels, e.g. 1,2,4,8 (1 is always "
                                         "measured: the limit's bound comes from it)")
    parser.add_argument("--peer-levels", help="peer concurrency levels, e.g. 1,2,4")
    parser.add_argument("--soak-streams", type=int, help="soak: streams at once (default 4)")
    parser.add_argument("--soak-minutes", type=float, help="soak: duration (default 3)")
    parser.add_argument("--seed", type=int, help="soak: random seed of the faults (default 1)")
    parser.add_argument("--results-dir", type=Path, help="where <date>-<suite>.json go")
    parser.add_argument("--docs", type=Path,
                        help="the markdown report to regenerate (default docs/benchmarks.md; "
                             "with --quick, benchmarks.md in the results dir)")
    parser.add_argument("--no-report", action="store_true", help="write results only")
    parser.add_argument("--report-only", action="store_true",
                        help="regenerate the report from the latest results, run nothing")
    return parser


def _ints(text: str | None) -> tuple[int, ...] | None:
    return tuple(int(x) for x in text.split(",")) if text else None


def _start_targets(args: argparse.Namespace, settings: Settings, work_dir: Path,
                   servers: list[processes.ServerProcess]) -> Context:
    """Ours (or the running one `--url` names), then the baseline's server if asked for;
    every server started is appended to `servers` at once, so the caller can stop it."""
    checkout = baseline.prepare(args.baseline) if args.baseline else None
    if args.url:
        target = Target(args.url.rstrip("/"), args.server_pid)
    else:
        servers.append(start_server(REPO, settings, work_dir / "server-ours.log"))
        target = Target(f"http://127.0.0.1:{servers[-1].port}", servers[-1].pid)
    context = Context(settings, target, work_dir)
    context.log(f"server under test: {target.http_url} (pid {target.pid})")
    if checkout:
        notes = baseline.dependency_notes(checkout.path)
        if notes:
            context.log("WARNING: the baseline declares dependencies this environment does not "
                        "satisfy; it runs with what is installed here: " + "; ".join(notes))
        try:
            server = start_server(checkout.path, settings, work_dir / "server-baseline.log")
        except (RuntimeError, TimeoutError) as exc:
            hint = f" (its pyproject.toml asks for: {'; '.join(notes)})" if notes else ""
            raise RuntimeError(f"the baseline {checkout.label} did not start{hint}: "
                               f"{exc}") from exc
        servers.append(server)
        context.baseline = Target(f"http://127.0.0.1:{server.port}", server.pid,
                                  label=f"baseline {checkout.label}")
        context.baseline_checkout = checkout
        context.log(f"baseline: {checkout.label} from {checkout.path}: {context.baseline.http_url} "
                    f"(pid {server.pid})")
    return context


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
                                 cpu_threads=args.threads, workers=args.workers,
                                 concurrency_levels=_ints(args.levels),
                                 peer_levels=_ints(args.peer_levels),
                                 soak_streams=args.soak_streams, soak_minutes=args.soak_minutes,
                                 soak_seed=args.seed)
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
    servers: list[processes.ServerProcess] = []
    try:
        context = _start_targets(args, settings, work_dir, servers)
    except (ValueError, RuntimeError, TimeoutError, OSError) as exc:
        for server in servers:
            server.stop()
        print(f"cannot start the servers: {exc}", file=sys.stderr)
        return 2
    server_info = processes.http_json(f"{context.target.http_url}/healthz")
    print("server:", json.dumps(server_info))
    baseline_record = None
    candidate = baseline.describe_tree(REPO)
    if context.baseline:
        baseline_record = {**context.baseline_checkout.describe(),
                           "url": context.baseline.http_url,
                           "healthz_at_start": processes.http_json(
                               f"{context.baseline.http_url}/healthz")}
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
                      "server": {"url": context.target.http_url,
                                 "started_by_harness": not args.url,
                                 "healthz_at_start": server_info},
                      "candidate": candidate if context.baseline else None,
                      "baseline": baseline_record if suite in COMPARED_SUITES else None,
                      "machine_load_end": list(os.getloadavg()), "result": data}
            context.results[suite] = record
            path = report.write_result(results_dir, date, suite, record)
            context.log(f"suite {suite} {status} in {record['seconds']} s -> {path}")
    finally:
        for server in servers:
            server.stop()
    if not args.no_report:
        report.render(results_dir, docs)
        context.log(f"report: {docs}")
    context.log(f"done in {time.perf_counter() - started:.0f} s")
    return 1 if failures else 0
