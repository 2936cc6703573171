"""Suite 3, concurrency: N real-time streams at once, N = 1, 2, 4, 8, 16 ...

Each stream is corpus speech with pauses (streams.workload); stream k starts k*STAGGER_S
later so that utterance ends do not line up. Per level: final latency p50/p95, partials
per utterance, partials the server dropped (its /healthz counters), finals lost (must be
zero), server CPU (share of one core) and peak RSS. Levels go up until one is saturated
(p95 final latency over SATURATED x the bound, or a final lost); the limit is the largest
N that met the bound (p95 final latency under it, no final lost) with every smaller N.
"""

from __future__ import annotations

import asyncio
import functools
import json
import urllib.request
from typing import Awaitable, Callable

from . import metrics, streams
from .processes import ResourceMonitor

STAGGER_S = 0.37
SATURATED = 3.0

Driver = Callable[[streams.Stream], Awaitable[streams.StreamRun]]


async def run_streams(driver: Driver, stream_list: list[streams.Stream]) -> list[streams.StreamRun]:
    async def one(k: int, stream: streams.Stream) -> streams.StreamRun:
        await asyncio.sleep(k * STAGGER_S)
        return await driver(stream)

    return list(await asyncio.gather(*(one(k, s) for k, s in enumerate(stream_list))))


def measure_level(driver: Driver, n: int, *, utterances: int, pause_s: float,
                  pid: int | None) -> tuple[dict, list[streams.StreamRun]]:
    stream_list = streams.workload(n, utterances, pause_s=pause_s)
    monitor = ResourceMonitor(pid).start()
    runs = asyncio.run(run_streams(driver, stream_list))
    resources = monitor.stop()
    summary = metrics.summarize(runs)
    summary.pop("per_utterance")
    return {"streams": n, **summary, "server": resources}, runs


def passes(level: dict, bound_s: float) -> bool:
    p95 = level["final_latency_s"]["p95"]
    return (level["finals_lost"] == 0 and not level["errors"] and p95 is not None
            and p95 < bound_s)


def limit(levels: list[dict], bound_s: float) -> int:
    """Largest N such that it and every smaller level measured met the bound (0: none)."""
    best = 0
    for level in sorted(levels, key=lambda x: x["streams"]):
        if not passes(level, bound_s):
            break
        best = level["streams"]
    return best


def sweep(driver: Driver, levels: tuple[int, ...], *, utterances: int, pause_s: float,
          bound_s: float, pid: int | None, log, stats: Callable[[], dict | None] = lambda: None,
          stop_on_fail: bool = True) -> dict:
    out = []
    for n in levels:
        before = stats()
        level, _ = measure_level(driver, n, utterances=utterances, pause_s=pause_s, pid=pid)
        after = stats()
        level["partials_dropped"] = (after["partials_dropped"] - before["partials_dropped"]
                                     if before and after else None)
        out.append(level)
        log(f"  N={n}: final p50 {_fmt(level['final_latency_s']['p50'])} p95 "
            f"{_fmt(level['final_latency_s']['p95'])}, lost {level['finals_lost']}, "
            f"cpu {_fmt(level['server']['cpu_percent'], '%')}, "
            f"rss {_fmt(level['server']['peak_rss_mb'], ' MB')}")
        if stop_on_fail and not passes(level, SATURATED * bound_s):
            break
    return {"levels": out, "limit": limit(out, bound_s), "bound_s": bound_s,
            "utterances_per_stream": utterances, "pause_s": pause_s, "stagger_s": STAGGER_S}


def _fmt(value, unit: str = " s") -> str:
    return "n/a" if value is None else f"{value:.2f}{unit}"


def scheduler_stats(http_url: str) -> dict | None:
    """Sum of our server's scheduler counters (/healthz), or None when it has none."""
    try:
        with urllib.request.urlopen(f"{http_url}/healthz", timeout=5) as response:
            models = json.load(response).get("models", {})
    except (OSError, ValueError):
        return None
    return {"partials_dropped": sum(m.get("partials_dropped", 0) for m in models.values()),
            "calls": sum(m.get("calls", 0) for m in models.values())}


def run(context) -> dict:
    settings = context.settings
    target = context.target
    driver = functools.partial(streams.run_deepgram, target.ws_url, speed=1.0, chunk_ms=20,
                               params={"endpointing": settings.endpointing_ms})
    return sweep(driver, settings.concurrency_levels, utterances=settings.concurrency_utterances,
                 pause_s=settings.pause_s, bound_s=settings.latency_bound_s, pid=target.pid,
                 log=context.log, stats=lambda: scheduler_stats(target.http_url))
