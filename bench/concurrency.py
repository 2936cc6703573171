"""Suite 3, concurrency: N real-time streams at once, N = 1, 2, 4, 8, 16 ...

Each stream is corpus speech with pauses (streams.workload); stream k starts k*STAGGER_S
later so that utterance ends do not line up. Per level: final latency p50/p95, partials
per utterance, partials the server dropped (its /healthz counters), finals lost (must be
zero), server CPU (share of one core, and CPU seconds per audio second streamed) and peak
RSS.

The limit of a server is the largest N that, with every smaller level measured, lost no
final and kept p95 final latency within its bound: max(`latency_bound_s`, 2 × the same
server's median at N = 1), so a server is held to its own one-stream speed (N = 1 is
always measured first). A server's levels go up until one is saturated (p95 over
SATURATED × its bound, or a final lost).

With a baseline, both servers climb the levels together, taking turns at each level (who
goes first alternates), the other one idle; one that saturates stops, the other goes on.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from . import compare, metrics, streams
from .compare import fmt
from .processes import ResourceMonitor, http_json, usage_per_audio

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
    resources = usage_per_audio([monitor.stop()], sum(metrics.audio_seconds(r) for r in runs))
    summary = metrics.summarize(runs)
    summary.pop("per_utterance")
    return {"streams": n, **summary, "server": resources}, runs


def bound(levels: list[dict], floor_s: float) -> float:
    """max(floor, 2 × the median final latency at N = 1); the floor alone until N = 1 has
    a median."""
    one = next((lv for lv in levels if lv["streams"] == 1), None)
    median = one["final_latency_s"]["p50"] if one else None
    return max(floor_s, 2 * median) if median is not None else floor_s


def passes(level: dict, bound_s: float) -> bool:
    p95 = level["final_latency_s"]["p95"]
    return (level["finals_lost"] == 0 and not level["errors"] and p95 is not None
            and p95 <= bound_s)


def limit(levels: list[dict], bound_s: float) -> int:
    """Largest N such that it and every smaller level measured met the bound (0: none)."""
    best = 0
    for level in sorted(levels, key=lambda x: x["streams"]):
        if not passes(level, bound_s):
            break
        best = level["streams"]
    return best


@dataclass
class Side:
    """One server climbing the levels: how to reach it, and what it measured so far."""

    driver: Driver
    pid: int | None
    stats: Callable[[], dict | None] = lambda: None
    levels: list[dict] = field(default_factory=list)
    stopped: bool = False

    def measure(self, n: int, *, utterances: int, pause_s: float) -> dict:
        before = self.stats()
        level, _ = measure_level(self.driver, n, utterances=utterances, pause_s=pause_s,
                                 pid=self.pid)
        after = self.stats()
        level["partials_dropped"] = (after["partials_dropped"] - before["partials_dropped"]
                                     if before and after else None)
        self.levels.append(level)
        return level


def sweep(sides: dict[str, Side], levels: tuple[int, ...], *, utterances: int, pause_s: float,
          floor_s: float, log, stop_on_fail: bool = True) -> dict[str, dict]:
    """Every side through `levels` (1 first, added when missing), taking turns per level."""
    levels = tuple(sorted({1, *levels}))
    for index, n in enumerate(levels):
        order = list(sides) if index % 2 == 0 else list(sides)[::-1]
        for name in order:
            side = sides[name]
            if side.stopped:
                continue
            level = side.measure(n, utterances=utterances, pause_s=pause_s)
            bound_s = bound(side.levels, floor_s)
            log(f"  {name} N={n}: final p50 {fmt(level['final_latency_s']['p50'])} p95 "
                f"{fmt(level['final_latency_s']['p95'])} (bound {fmt(bound_s)}), lost "
                f"{level['finals_lost']}, CPU {fmt(level['server']['cpu_per_audio_s'], '', 3)} "
                f"s per audio s, rss {fmt(level['server']['peak_rss_mb'], ' MB', 0)}")
            if stop_on_fail and not passes(level, SATURATED * bound_s):
                side.stopped = True
    out = {}
    for name, side in sides.items():
        bound_s = bound(side.levels, floor_s)
        best = limit(side.levels, bound_s)
        out[name] = {"levels": side.levels, "limit": best, "bound_s": bound_s,
                     "bound_floor_s": floor_s,
                     "limit_is_top_level": best == max(lv["streams"] for lv in side.levels),
                     "utterances_per_stream": utterances, "pause_s": pause_s,
                     "stagger_s": STAGGER_S}
    return out


def scheduler_stats(http_url: str) -> dict | None:
    """Sum of a server's scheduler counters (/healthz), or None when it has none."""
    health = http_json(f"{http_url}/healthz")
    models = (health or {}).get("models")
    if not isinstance(models, dict):
        return None
    return {"partials_dropped": sum(m.get("partials_shed", 0) for m in models.values()),
            "calls": sum(m.get("calls", 0) for m in models.values())}


def run(context) -> dict:
    from .latency import warm_up

    settings = context.settings
    sides = {}
    for target in context.targets():
        asyncio.run(warm_up(target.ws_url))
        driver = functools.partial(streams.run_deepgram, target.ws_url, speed=1.0, chunk_ms=20,
                                   params={"endpointing": settings.endpointing_ms})
        sides[target.label] = Side(driver, target.pid,
                                   functools.partial(scheduler_stats, target.http_url))
    results = sweep(sides, settings.concurrency_levels,
                    utterances=settings.concurrency_utterances, pause_s=settings.pause_s,
                    floor_s=settings.latency_bound_s, log=context.log)
    out = results[context.target.label]
    if context.baseline:
        out["baseline"] = results[context.baseline.label]
        out["comparison"] = compare.concurrency(out, out["baseline"])
    return out
