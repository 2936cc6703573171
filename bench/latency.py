"""Suite 2, latency: one real-time stream of human English utterances with pauses.

End of speech -> final (p50/p95/max), start of speech -> first transcript, interval
between partial updates, and flicker (stable words that later change; interim words that
the final changes). See metrics.py for how each is measured.
"""

from __future__ import annotations

import asyncio

from . import metrics, streams
from .processes import ResourceMonitor


async def warm_up(ws_url: str) -> None:
    """One short stream first, so that no measured stream pays for first-call costs."""
    stream = streams.workload(1, 1, tail_s=1.0)[0]
    await streams.run_deepgram(ws_url, stream, speed=0)


def run(context) -> dict:
    settings = context.settings
    stream = streams.workload(1, settings.latency_utterances, pause_s=settings.pause_s)[0]
    context.log(f"latency: one real-time stream, {len(stream.utterances)} utterances, "
                f"{stream.duration:.0f} s")
    asyncio.run(warm_up(context.target.ws_url))
    monitor = ResourceMonitor(context.target.pid).start()
    run_ = asyncio.run(streams.run_deepgram(
        context.target.ws_url, stream, speed=1.0, chunk_ms=20,
        params={"endpointing": settings.endpointing_ms}))
    summary = metrics.summarize([run_])
    summary["server"] = monitor.stop()
    summary["stream_seconds"] = stream.duration
    summary["speech_seconds"] = stream.speech_seconds
    summary["chunk_ms"] = 20
    summary["final_text"] = metrics.final_text(run_)
    return summary
