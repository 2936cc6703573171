"""Build streams from corpus clips with known speech times, and drive them over a WebSocket.

A `Stream` is one long 16 kHz mono PCM signal made by concatenating corpus clips with
silences of known length; each clip's speech start and end (trailing and leading silence
trimmed with an energy threshold) is therefore known in samples. A driver sends the
stream in paced chunks, records when each chunk left (wall clock, `time.perf_counter`),
and records every server message with its arrival time, as `Event`s of one shape for
every server (ours speaks Deepgram's live API, the peer its own protocol, see peer.py).
Metrics (metrics.py) only ever look at a `StreamRun`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable
from urllib.parse import urlencode

import numpy as np

from streaming.eval.corpus import Item, human_english

RATE = 16_000


# ---------------------------------------------------------------- building streams

def speech_bounds(samples: np.ndarray, *, frame_ms: int = 10, below_peak_db: float = 35.0,
                  floor_dbfs: float = -55.0) -> tuple[int, int]:
    """(first, last) sample of speech: frames within `below_peak_db` of the loudest frame
    and above `floor_dbfs`. The whole clip when nothing passes."""
    frame = RATE * frame_ms // 1000
    n = len(samples) // frame
    if n == 0:
        return 0, len(samples)
    x = samples[: n * frame].astype(np.float64).reshape(n, frame) / 32768.0
    rms_db = 10 * np.log10(np.mean(x * x, axis=1) + 1e-12)
    threshold = max(rms_db.max() - below_peak_db, floor_dbfs)
    voiced = np.flatnonzero(rms_db > threshold)
    if len(voiced) == 0:
        return 0, len(samples)
    return int(voiced[0] * frame), int(min((voiced[-1] + 1) * frame, len(samples)))


@dataclass(frozen=True)
class Utterance:
    """One corpus clip placed in a stream; times in seconds from the stream's first sample."""

    item_id: str
    references: tuple[str, ...]
    language: str
    clip_start: float      # where the clip (with its own silences) begins
    clip_end: float
    speech_start: float    # trimmed by energy: where speech really starts / ends
    speech_end: float


@dataclass(frozen=True)
class Stream:
    pcm: np.ndarray                     # int16 mono, 16 kHz
    utterances: tuple[Utterance, ...]
    language: str = "en"

    @property
    def duration(self) -> float:
        return len(self.pcm) / RATE

    @property
    def speech_seconds(self) -> float:
        return sum(u.speech_end - u.speech_start for u in self.utterances)


def build_stream(items: Iterable[Item], *, pause_s: float = 1.5, lead_s: float = 0.5,
                 tail_s: float = 3.0) -> Stream:
    """Clips in order, `lead_s` of silence before the first, `pause_s` between, `tail_s` after."""
    items = list(items)
    parts = [np.zeros(int(lead_s * RATE), np.int16)]
    utterances = []
    cursor = len(parts[0])
    for index, item in enumerate(items):
        clip = item.mono16k()
        first, last = speech_bounds(clip)
        utterances.append(Utterance(
            item_id=item.id, references=tuple(item.references()), language=item.language,
            clip_start=cursor / RATE, clip_end=(cursor + len(clip)) / RATE,
            speech_start=(cursor + first) / RATE, speech_end=(cursor + last) / RATE))
        parts.append(clip)
        cursor += len(clip)
        gap = np.zeros(int((pause_s if index < len(items) - 1 else tail_s) * RATE), np.int16)
        parts.append(gap)
        cursor += len(gap)
    languages = {i.language for i in items} or {"en"}
    return Stream(pcm=np.concatenate(parts), utterances=tuple(utterances),
                  language=languages.pop() if len(languages) == 1 else "multi")


def utterance_pool() -> list[Item]:
    """Human English utterances of 2.5-12 s with one reference, in a fixed shuffled order
    (by a hash of the id), for the latency, concurrency and peer streams. Clips whose
    energy does not fall before their last 50 ms (noise to the end, as the JFK excerpt's
    crowd) are left out: their end of speech cannot be told from the audio."""
    pool = [i for i in human_english() if 2.5 <= i.duration_s <= 12 and not i.text_alt
            and speech_bounds(i.mono16k())[1] < i.duration_s * RATE - RATE // 20]
    return sorted(pool, key=lambda i: hashlib.sha1(i.id.encode()).hexdigest())


def workload(streams: int, utterances: int, *, pause_s: float = 1.5,
             tail_s: float = 3.0) -> list[Stream]:
    """`streams` streams of `utterances` pool clips each; stream k starts k*7 clips further
    into the pool (wrapping), so concurrent streams mostly say different things."""
    pool = utterance_pool()
    out = []
    for k in range(streams):
        chosen = [pool[(k * 7 + j) % len(pool)] for j in range(utterances)]
        out.append(build_stream(chosen, pause_s=pause_s, tail_s=tail_s))
    return out


# ---------------------------------------------------------------- what a run records

@dataclass(frozen=True)
class Event:
    """A server message, reduced to what metrics need. `start`/`end` in stream seconds."""

    at: float                   # arrival, perf_counter seconds
    kind: str                   # "partial" | "final" | "speech_started" | "utterance_end" | "other"
    text: str = ""
    start: float = 0.0
    end: float = 0.0
    stable_words: int | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass
class StreamRun:
    stream: Stream
    sent: list[tuple[int, float]] = field(default_factory=list)  # (samples sent so far, at)
    events: list[Event] = field(default_factory=list)
    audio_done_at: float | None = None   # last audio chunk sent
    closed_at: float | None = None       # close message (CloseStream / END_OF_AUDIO) sent
    finished_at: float | None = None     # server closed, or we gave up
    error: str | None = None

    def sent_time(self, seconds: float) -> float | None:
        """Wall time at which the audio at `seconds` had been sent (end of its chunk)."""
        target = int(round(seconds * RATE))
        for count, at in self.sent:
            if count >= target:
                return at
        return None


# ---------------------------------------------------------------- sending

async def send_paced(run: StreamRun, send: Callable[[np.ndarray], Awaitable[None]], *,
                     speed: float = 1.0, chunk_ms: int = 20, extra_silence_s: float = 0.0,
                     stop: Callable[[], bool] | None = None) -> None:
    """Send `run.stream` in `chunk_ms` chunks; `speed` 1.0 is real time, 0 as fast as possible.

    Pacing follows an absolute schedule (chunk k leaves at t0 + k*chunk/speed), so late
    sends never accumulate into drift. `extra_silence_s` more zeros are sent afterwards,
    paced the same way, until `stop()` says enough.
    """
    pcm = run.stream.pcm
    chunk = RATE * chunk_ms // 1000
    total = len(pcm) + int(extra_silence_s * RATE)
    t0 = time.perf_counter()
    position = 0
    while position < total:
        end = min(position + chunk, total)
        if speed > 0:
            delay = t0 + end / RATE / speed - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        if position >= len(pcm) and stop is not None and stop():
            break
        piece = pcm[position:end] if end <= len(pcm) else np.concatenate(
            [pcm[position:len(pcm)], np.zeros(end - max(position, len(pcm)), np.int16)])
        await send(piece)
        position = end
        run.sent.append((position, time.perf_counter()))
        if position == len(pcm) or (position > len(pcm) and run.audio_done_at is None):
            run.audio_done_at = time.perf_counter()
        if speed <= 0:
            await asyncio.sleep(0)  # let the receiver run


# ---------------------------------------------------------------- our server: Deepgram live API

DEEPGRAM_PARAMS = {"encoding": "linear16", "sample_rate": RATE, "channels": 1,
                   "interim_results": "true", "endpointing": 600, "vad_events": "true"}


def deepgram_event(message: dict, at: float) -> Event:
    kind = message.get("type")
    if kind == "Results":
        alternative = (message.get("channel", {}).get("alternatives") or [{}])[0]
        start = float(message.get("start", 0.0))
        return Event(at=at, kind="final" if message.get("is_final") else "partial",
                     text=alternative.get("transcript", ""), start=start,
                     end=start + float(message.get("duration", 0.0)),
                     stable_words=message.get("stable_words"), raw=message)
    if kind == "SpeechStarted":
        t = float(message.get("timestamp", 0.0))
        return Event(at=at, kind="speech_started", start=t, end=t, raw=message)
    if kind == "UtteranceEnd":
        t = float(message.get("last_word_end", 0.0))
        return Event(at=at, kind="utterance_end", start=t, end=t, raw=message)
    return Event(at=at, kind="other", raw=message)


async def run_deepgram(base_ws_url: str, stream: Stream, *, speed: float = 1.0,
                       chunk_ms: int = 20, params: dict | None = None,
                       drain_s: float = 0.0, done: Callable[[StreamRun], bool] | None = None,
                       timeout_s: float = 120.0) -> StreamRun:
    """Send `stream` to `/v1/listen`, then up to `drain_s` more silence until `done(run)`,
    then CloseStream; collect every message until the server closes the connection (or
    `timeout_s` after the close was sent)."""
    from websockets.asyncio.client import connect

    query = {**DEEPGRAM_PARAMS, "language": stream.language, **(params or {})}
    url = f"{base_ws_url}/v1/listen?{urlencode(query)}"
    run = StreamRun(stream=stream)
    try:
        async with connect(url, max_size=None, open_timeout=30, ping_interval=None) as ws:
            async def receive() -> None:
                async for message in ws:
                    if isinstance(message, str):
                        run.events.append(deepgram_event(json.loads(message), time.perf_counter()))

            receiver = asyncio.create_task(receive())
            await send_paced(run, lambda piece: ws.send(piece.astype("<i2").tobytes()),
                             speed=speed, chunk_ms=chunk_ms, extra_silence_s=drain_s,
                             stop=done and (lambda: done(run)))
            await ws.send(json.dumps({"type": "CloseStream"}))
            run.closed_at = time.perf_counter()
            try:
                await asyncio.wait_for(receiver, timeout_s)
            except asyncio.TimeoutError:
                run.error = f"server did not close within {timeout_s} s of CloseStream"
                receiver.cancel()
    except Exception as exc:  # recorded, reported; a suite never dies on one stream
        run.error = f"{type(exc).__name__}: {exc}"
    run.finished_at = time.perf_counter()
    return run
