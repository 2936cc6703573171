"""Suite 2, latency: one real-time stream of human English utterances with pauses.

End of speech -> final (p50/p95/max), start of speech -> first transcript, interval
between partial updates, flicker (stable words that later change; interim words that
the final changes), and the server's CPU seconds per second of audio streamed. See
metrics.py for how each is measured.

The same stream is sent `latency_rounds` times to each server; with a baseline the order
alternates (ours, baseline, baseline, ours, ...) so that drifts in the machine's load fall
on both alike, and each server is idle while the other is measured. Utterances of all
rounds are pooled per server.
"""

from __future__ import annotations

import asyncio

from . import compare, metrics, streams
from .compare import fmt
from .processes import ResourceMonitor, usage_per_audio

CHUNK_MS = 20


async def warm_up(ws_url: str) -> None:
    """One short stream first, so that no measured stream pays for first-call costs."""
    stream = streams.workload(1, 1, tail_s=1.0)[0]
    await streams.run_deepgram(ws_url, stream, speed=0)


def turns(targets: list, rounds: int) -> list:
    """The order of the measured streams: each round once through `targets`, every other
    round backwards (A B, B A, A B, ...)."""
    return [t for r in range(rounds) for t in (targets if r % 2 == 0 else targets[::-1])]


def summarize(runs: list[streams.StreamRun], usages: list[dict]) -> dict:
    summary = metrics.summarize(runs)
    summary["server"] = usage_per_audio(usages, sum(metrics.audio_seconds(r) for r in runs))
    return summary


def run(context) -> dict:
    settings = context.settings
    stream = streams.workload(1, settings.latency_utterances, pause_s=settings.pause_s)[0]
    targets = context.targets()
    context.log(f"latency: one real-time stream, {len(stream.utterances)} utterances, "
                f"{stream.duration:.0f} s, {settings.latency_rounds} round(s) on "
                + " and ".join(t.label for t in targets))
    for target in targets:
        asyncio.run(warm_up(target.ws_url))
    runs: dict[str, list[streams.StreamRun]] = {t.label: [] for t in targets}
    usages: dict[str, list[dict]] = {t.label: [] for t in targets}
    for target in turns(targets, settings.latency_rounds):
        monitor = ResourceMonitor(target.pid).start()
        runs[target.label].append(asyncio.run(streams.run_deepgram(
            target.ws_url, stream, speed=1.0, chunk_ms=CHUNK_MS,
            params={"endpointing": settings.endpointing_ms})))
        usages[target.label].append(monitor.stop())
        latest = metrics.summarize(runs[target.label][-1:])["final_latency_s"]
        context.log(f"  {target.label}: final p50 {fmt(latest['p50'])}, server CPU "
                    f"{fmt(usages[target.label][-1]['cpu_seconds'])}")
    sides = {t.label: summarize(runs[t.label], usages[t.label]) for t in targets}
    out = {**sides[context.target.label], "stream_seconds": stream.duration,
           "speech_seconds": stream.speech_seconds, "chunk_ms": CHUNK_MS,
           "rounds": settings.latency_rounds}
    if context.baseline:
        base = sides[context.baseline.label]
        out["baseline"] = base
        out["comparison"] = compare.latency(out, base)
    return out
