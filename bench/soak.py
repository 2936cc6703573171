"""Suite soak: `soak_streams` real-time streams for `soak_minutes`, with random faults.

Each of the N clients loops until the deadline: it picks a short stream (1-2 corpus
utterances, `streams.utterance_pool`) and a way to end it (`FAULTS`, drawn with a seeded
random generator, so a run can be repeated), sends it at real time to `/v1/listen`, and
records what came back. Then it starts the next. Only the public wire protocol is used.

Ways to end a stream:
- `clean`: CloseStream, read until the server closes.
- `closestream_keepalive`: CloseStream, then a KeepAlive every 0.5 s while the server
  flushes (LiveKit's Deepgram plugin does this).
- `slow_reader`: a 4 KB receive buffer, a one-message client queue, and a pause after every
  message read; CloseStream at the end. (On loopback the server's send buffer absorbs a
  few hundred KB, so this tests late delivery more than server back-pressure.)
- `abrupt_close`: after a random share of the audio, the TCP connection is closed with no
  WebSocket close frame.
- `socket_kill`: the same, but reset (SO_LINGER 0: RST), as when a client process dies.
- `close_frame`: a WebSocket close frame mid-stream, without CloseStream.

The first three must deliver every utterance's final and the Metadata message: a missing
final is counted in `finals_lost`. For all, the server's `Error` messages, its close codes
and the client's failures are counted by code. The same load runs first for a quarter of the
time (at most `WARM_UP_MAX_S`) as a warm-up: its streams count, but server RSS is sampled
(every second, the plot in the report) only from after it, so that RSS growth is not the
allocator's start-up; `rss_summary` says what grew. After the deadline each client finishes the
stream it is in (every stream is bounded in time), and after `SETTLE_S` the server must
still answer /healthz and transcribe one clean stream. Where the server has a Prometheus
`/metrics` without a key, its own error counters by code are read before and after.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import struct
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from streaming.eval.corpus import Item

from . import metrics, streams
from .processes import ResourceMonitor, http_json, rss_bytes, usage_per_audio

if TYPE_CHECKING:
    from .harness import Context

FAULTS = {"clean": 3, "closestream_keepalive": 2, "slow_reader": 2, "abrupt_close": 1,
          "socket_kill": 1, "close_frame": 1}
COMPLETING = ("clean", "closestream_keepalive", "slow_reader")
KEEPALIVE_EVERY_S = 0.5
SLOW_READ_PAUSE_S = 0.25
SLOW_RCVBUF = 4096
STREAM_TIMEOUT_S = 90.0     # from the end of the audio to the server's close
SETTLE_S = 5.0
WARM_UP_MAX_S = 30.0        # the same load first, so RSS growth excludes the allocator's start
RSS_EVERY_S = 1.0
PAUSE_S = 1.0               # between utterances of a soak stream
METRIC_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][\w:]*)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
CODE_LABEL = re.compile(r'(?:^|,)\s*code="([^"]*)"')


@dataclass
class Outcome:
    """One soak stream: how it was ended and what the server did."""

    fault: str
    utterances: int
    audio_seconds: float
    finals_lost: int = 0
    metadata: bool = False
    codes: list[str] = field(default_factory=list)


def _server_codes(run: streams.StreamRun) -> list[str]:
    return [f"Error/{e.raw.get('code') or e.raw.get('variant')}" for e in run.events
            if e.kind == "other" and e.raw.get("type") == "Error"]


async def _receive(ws: ClientConnection, run: streams.StreamRun, pause_s: float) -> None:
    async for message in ws:
        if isinstance(message, str):
            run.events.append(streams.deepgram_event(json.loads(message), time.perf_counter()))
        if pause_s:
            await asyncio.sleep(pause_s)


async def _slow_socket(ws_url: str) -> socket.socket:
    """A connected socket with a small receive buffer (set before connecting, so the
    window the server sees is small from the start)."""
    parts = urllib.parse.urlsplit(ws_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
        sock.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(
            sock, (parts.hostname, parts.port)), 10)
    except BaseException:
        sock.close()
        raise
    return sock


async def soak_stream(ws_url: str, stream: streams.Stream, fault: str, cut: float,
                      endpointing_ms: int) -> Outcome:
    """Send `stream` (all of it, or the first `cut` share for the faults that break off),
    end it as `fault` says, and report what came back."""
    completing = fault in COMPLETING
    sent = stream if completing else replace(stream, pcm=stream.pcm[:int(len(stream.pcm) * cut)])
    run = streams.StreamRun(stream=sent)
    outcome = Outcome(fault, len(stream.utterances), len(sent.pcm) / streams.RATE)
    query = {**streams.DEEPGRAM_PARAMS, "language": stream.language, "endpointing": endpointing_ms}
    url = f"{ws_url}/v1/listen?{urllib.parse.urlencode(query)}"
    slow = fault == "slow_reader"
    broken = False   # set once the client breaks the connection on purpose
    try:
        sock = await _slow_socket(ws_url) if slow else None
        async with connect(url, max_size=None, open_timeout=30, ping_interval=None,
                           max_queue=1 if slow else 16, sock=sock) as ws:
            receiver = asyncio.create_task(_receive(ws, run, SLOW_READ_PAUSE_S if slow else 0))
            await streams.send_paced(run, lambda piece: ws.send(piece.astype("<i2").tobytes()))
            broken = not completing
            if fault == "abrupt_close":
                ws.transport.close()
            elif fault == "socket_kill":
                ws.transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                ws.transport.abort()
            elif fault == "close_frame":
                await ws.close()
            else:
                await ws.send(json.dumps({"type": "CloseStream"}))
                run.closed_at = time.perf_counter()
                if fault == "closestream_keepalive":
                    await _keep_alive_until(ws, receiver)
            try:
                await asyncio.wait_for(receiver, STREAM_TIMEOUT_S)
            except asyncio.TimeoutError:
                receiver.cancel()
                outcome.codes.append("client/no close within timeout")
            except Exception:  # the connection we broke on purpose, or the server's close
                pass
            if completing or fault == "close_frame":
                outcome.codes.append(f"close/{ws.close_code}")
    except InvalidStatus as exc:
        outcome.codes.append(f"http/{exc.response.status_code}")
    except Exception as exc:  # counted by class (unless we broke the connection); the soak goes on
        if not broken:
            outcome.codes.append(f"client/{type(exc).__name__}")
    outcome.codes += _server_codes(run)
    outcome.metadata = any(e.raw.get("type") == "Metadata" for e in run.events)
    if completing:
        outcome.finals_lost = sum(t.lost for t in metrics.utterance_timings(run))
    return outcome


async def _keep_alive_until(ws: ClientConnection, receiver: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    while not receiver.done() and time.monotonic() < deadline:
        try:
            await ws.send(json.dumps({"type": "KeepAlive"}))
        except Exception:  # closed meanwhile: the receiver has the outcome
            return
        await asyncio.wait({receiver}, timeout=KEEPALIVE_EVERY_S)


async def _client(ws_url: str, k: int, deadline: float, rng: random.Random, pool: list[Item],
                  endpointing_ms: int, outcomes: list[Outcome]) -> None:
    await asyncio.sleep(k * 0.37)   # spread the clients' starts, as the concurrency suite
    while time.monotonic() < deadline:
        clips = rng.sample(pool, rng.choice((1, 2)))
        stream = streams.build_stream(clips, pause_s=PAUSE_S, tail_s=1.5)
        fault = rng.choices(list(FAULTS), weights=list(FAULTS.values()))[0]
        # a server that stops reading could hold a send forever: every stream has a bound
        bound_s = stream.duration + 30 + 2 * STREAM_TIMEOUT_S
        try:
            outcome = await asyncio.wait_for(soak_stream(
                ws_url, stream, fault, rng.uniform(0.2, 0.8), endpointing_ms), bound_s)
        except TimeoutError:
            outcome = Outcome(fault, len(stream.utterances), stream.duration,
                              finals_lost=len(stream.utterances) if fault in COMPLETING else 0,
                              codes=["client/stream over its time bound"])
        outcomes.append(outcome)


async def _soak(ws_url: str, n: int, seconds: float, seed: int,
                endpointing_ms: int) -> list[Outcome]:
    pool = streams.utterance_pool()
    deadline = time.monotonic() + seconds
    outcomes: list[Outcome] = []
    await asyncio.gather(*(_client(ws_url, k, deadline, random.Random(seed * 1000 + k), pool,
                                   endpointing_ms, outcomes) for k in range(n)))
    return outcomes


def server_error_counts(http_url: str) -> dict[str, float] | None:
    """Errors by code as the server counts them: the samples of its Prometheus `/metrics`
    whose name contains "error" and that carry a `code` label, summed per code. None when
    it has no such endpoint (or it needs a key)."""
    try:
        with urllib.request.urlopen(f"{http_url}/metrics", timeout=10) as response:
            return error_counts(response.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None


def error_counts(text: str) -> dict[str, float]:
    """Prometheus text: the samples named like an error counter, summed per `code` label."""
    counts: dict[str, float] = {}
    for line in text.splitlines():
        match = METRIC_SAMPLE.match(line)
        if match and "error" in match["name"] and not match["name"].endswith("_created"):
            code = CODE_LABEL.search(match["labels"])
            if code:
                counts[code[1]] = counts.get(code[1], 0.0) + float(match["value"])
    return counts


def _difference(before: dict[str, float] | None,
                after: dict[str, float] | None) -> dict[str, float] | None:
    if before is None or after is None:
        return None
    return {code: n - before.get(code, 0.0) for code, n in sorted(after.items())
            if n != before.get(code, 0.0)}


def rss_summary(samples: list[tuple[float, float]], load_ended_s: float,
                idle_after_mb: float | None) -> dict[str, float | None]:
    """RSS before the load and after it settled (both idle), their difference, and the
    leak signal that ignores start-up growth and the model calls' transient buffers: the
    lowest RSS of the last quarter of the load minus that of the first quarter."""
    if not samples or idle_after_mb is None:
        return {"rss_start_mb": None, "rss_end_mb": None, "rss_growth_mb": None,
                "rss_floor_growth_mb": None}
    load = [(t, mb) for t, mb in samples if t <= load_ended_s] or samples
    quarter = load_ended_s / 4
    first = [mb for t, mb in load if t <= quarter] or [load[0][1]]
    last = [mb for t, mb in load if t >= load_ended_s - quarter] or [load[-1][1]]
    return {"rss_start_mb": samples[0][1], "rss_end_mb": idle_after_mb,
            "rss_growth_mb": idle_after_mb - samples[0][1],
            "rss_floor_growth_mb": min(last) - min(first)}


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    completing = [o for o in outcomes if o.fault in COMPLETING]
    return {
        "streams": len(outcomes),
        "audio_seconds": sum(o.audio_seconds for o in outcomes),
        "by_fault": dict(Counter(o.fault for o in outcomes)),
        "finals_expected": sum(o.utterances for o in completing),
        "finals_lost": sum(o.finals_lost for o in completing),
        "finals_lost_by_fault": {f: sum(o.finals_lost for o in completing if o.fault == f)
                                 for f in COMPLETING},
        "metadata_missing": sum(not o.metadata for o in completing),
        "codes": dict(sorted(Counter(c for o in outcomes for c in o.codes).items())),
    }


def run(context: Context) -> dict[str, Any]:
    settings = context.settings
    target = context.target
    seconds = settings.soak_minutes * 60
    warm_s = min(WARM_UP_MAX_S, seconds / 4)
    context.log(f"soak: {settings.soak_streams} streams for {warm_s:.0f} s (warm-up, RSS not "
                f"counted) + {seconds:.0f} s, seed {settings.soak_seed}")
    warm_up = asyncio.run(_soak(target.ws_url, settings.soak_streams, warm_s,
                                settings.soak_seed + 1, settings.endpointing_ms))
    time.sleep(SETTLE_S)
    counted_before = server_error_counts(target.http_url)
    monitor = ResourceMonitor(target.pid, interval_s=RSS_EVERY_S, keep_samples=True).start()
    started = time.monotonic()
    outcomes = asyncio.run(_soak(target.ws_url, settings.soak_streams, seconds,
                                 settings.soak_seed, settings.endpointing_ms))
    load_ended_s = time.monotonic() - started
    time.sleep(SETTLE_S)
    idle_after = rss_bytes(target.pid) / 2**20 if target.pid else None
    health = http_json(f"{target.http_url}/healthz")
    after = asyncio.run(streams.run_deepgram(
        target.ws_url, streams.workload(1, 1, tail_s=1.5)[0], speed=0,
        params={"endpointing": settings.endpointing_ms}))
    usage = monitor.stop()
    summary = summarize(warm_up + outcomes)
    samples = usage.pop("samples")
    usage = usage_per_audio([usage], sum(o.audio_seconds for o in outcomes)
                            + metrics.audio_seconds(after))
    rss = rss_summary(samples, load_ended_s, idle_after)
    context.log(f"soak: {summary['streams']} streams, finals lost {summary['finals_lost']} of "
                f"{summary['finals_expected']}, codes {summary['codes']}")
    return {**summary, "soak_streams": settings.soak_streams, "seconds": seconds,
            "warm_up_seconds": warm_s, "warm_up_streams": len(warm_up),
            "seed": settings.soak_seed, "load_ended_s": load_ended_s,
            "server": usage, "rss_samples": samples, **rss,
            "server_errors_by_code": _difference(counted_before,
                                                 server_error_counts(target.http_url)),
            "active_streams_after": (health or {}).get("active_streams"),
            "healthz_after": health is not None,
            "served_after": not after.error and bool(metrics.final_text(after))}
