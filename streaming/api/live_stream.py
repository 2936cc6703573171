"""The asyncio shell around one `StreamSession`: runs its jobs on the shared scheduler.

Used by every streaming endpoint (Deepgram `/v1/listen`, Twilio). Outgoing events wait in a
per-stream buffer that the endpoint drains at its own pace: when a slow client lets it
fill up, partials are dropped (counted) but finals never are; intake waits instead
(`feed` blocks while too many finals are pending), which pushes back on the client's socket.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from dataclasses import replace
from typing import AsyncIterator

from ..audio import ENCODINGS
from ..config import ServerConfig
from ..core.events import Event, StreamWarning, Transcription
from ..core.session import (
    CancelJob,
    Job,
    StartJob,
    StreamOptions,
    StreamSession,
    UtteranceEnded,
)
from ..model.scheduler import Priority, TranscriptionScheduler
from ..model.transcriber import Transcript


class LiveStream:
    def __init__(self, scheduler: TranscriptionScheduler, options: StreamOptions,
                 config: ServerConfig) -> None:
        self.scheduler = scheduler
        self.options = options
        self.session = StreamSession(options, config.vad, config.stream, config.model.beam_size)
        self._limit = config.stream.send_queue
        self.bytes_per_second = options.sample_rate * options.channels * ENCODINGS[options.encoding]
        self._max_pending = config.stream.max_pending_finals
        self._out: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._futures: dict[int, asyncio.Future[Transcript]] = {}
        self._ended_at: dict[tuple[int, int], float] = {}   # (channel, utterance) -> wall time
        self._aborted = False
        self.partials_shed = 0          # refused by the scheduler (workers busy)
        self.partials_overflowed = 0    # dropped because the client's send queue was full

    # -- input ----------------------------------------------------------------------------

    async def feed(self, data: bytes) -> None:
        """Take audio; waits while too many finals are pending. A large input (a 1 MiB frame
        of 8 kHz μ-law is two minutes of audio, ~150 ms of work) is fed a second at a time,
        yielding to the event loop in between, so that no client holds up the others."""
        for start in range(0, len(data), self.bytes_per_second):
            if start:
                await asyncio.sleep(0)
            await self._room.wait()
            self.session.feed(data[start:start + self.bytes_per_second])
            self._pump()

    async def finalize(self) -> None:
        self.session.finalize()
        self._pump()

    async def close(self) -> None:
        """Flush; `events()` ends after the last final."""
        self.session.close()
        self._pump()

    def abort(self) -> None:
        """The client vanished: cancel queued work, keep nothing."""
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
        self._aborted = True
        self._out.clear()
        self._room.set()
        self._wake.set()

    @property
    def aborted(self) -> bool:
        return self._aborted

    def warn(self, warning: StreamWarning) -> None:
        """Tell the client about something it sent that was not accepted."""
        self._out.append(warning)
        self._wake.set()

    # -- output ---------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        while True:
            while self._out:
                yield self._out.popleft()
            if self._aborted or (self.session.done and not self._futures):
                return
            self._wake.clear()
            await self._wake.wait()

    # -- plumbing -------------------------------------------------------------------------

    def _pump(self) -> None:
        now = time.perf_counter()
        for output in self.session.outputs():
            if isinstance(output, StartJob):
                self._start(output.job)
            elif isinstance(output, CancelJob):
                future = self._futures.pop(output.job_id, None)
                if future is not None:
                    future.cancel()
            elif isinstance(output, UtteranceEnded):
                # The final's latency clock starts when its utterance ends.
                self._ended_at.setdefault((output.channel, output.utterance), now)
            else:
                self._push(output, now)
        self._room.clear() if self.session.pending_finals >= self._max_pending else self._room.set()
        self._wake.set()

    def _start(self, job: Job) -> None:
        if job.kind == "partial":
            future = self.scheduler.try_partial(job.audio, job.options)
            if future is None:
                self.partials_shed += 1
                self.session.job_dropped(job.id)
                return
        else:
            future = asyncio.ensure_future(
                self.scheduler.transcribe(job.audio, job.options, Priority.FINAL))
        self._futures[job.id] = future
        future.add_done_callback(functools.partial(self._finished, job.id))

    def _finished(self, job_id: int, future: asyncio.Future[Transcript]) -> None:
        if self._futures.pop(job_id, None) is None or future.cancelled():
            return
        error = future.exception()
        self.session.job_done(job_id, None if error else future.result(), error)
        self._pump()

    def _push(self, event: Event, now: float) -> None:
        if isinstance(event, Transcription):
            if event.is_final:
                ended = self._ended_at.pop((event.channel, event.utterance), None)
                if ended is not None:
                    event = replace(event, latency_ms=round((now - ended) * 1000, 1))
            elif len(self._out) >= self._limit:
                self.partials_overflowed += 1
                return
        self._out.append(event)
