"""Shares one loaded model between every connection and request, off the event loop.

Jobs wait in one priority queue: stream finals first, then batch pieces, then partials.
Partials are best effort: when the backlog is already as long as the number of workers,
a new partial is refused (and counted) instead of queued, so under load partials thin out
and finals keep their latency. Finals and batch jobs are never dropped.

When the backend can batch (`BatchTranscriber`), a worker that takes a job also takes the
other queued jobs of the same priority, model and options (up to `max_batch`) and runs them
as one model call (`max_batch` > 1): one encoder and decoder pass over several clips costs
less than one pass per clip, so a backlog drains faster. It is off by default: on one CPU
thread per call the saving is modest and every job in a batch waits for the whole batch,
which at 32 streams raised the p95 final latency more than the CPU it saved lowered it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from .memory import release_free_memory
from .transcriber import BatchTranscriber, TranscribeOptions, Transcriber, Transcript


class Priority(IntEnum):
    FINAL = 0
    BATCH = 1
    PARTIAL = 2


@dataclass
class SchedulerStats:
    calls: int = 0                    # jobs run
    model_calls: int = 0              # model calls made for them (a batch is one call)
    partials_shed: int = 0            # partials refused because the workers were busy
    partials: int = 0                 # partials queued ...
    partials_fast: int = 0            # ... of which on the English partial model
    busy_seconds: float = 0.0
    queued: int = 0
    running: int = 0


@dataclass(order=True)
class _Job:
    priority: int
    order: int                        # first come, first served within a priority
    audio: np.ndarray = field(compare=False)
    options: TranscribeOptions = field(compare=False)
    future: asyncio.Future[Transcript] = field(compare=False)
    transcriber: Transcriber = field(compare=False)

    def joins(self, first: _Job) -> bool:
        """Whether this job can run in the same model call as `first`."""
        return (self.priority == first.priority and self.transcriber is first.transcriber
                and self.options == first.options and not self.future.cancelled())


class TranscriptionScheduler:
    """Run `transcriber.transcribe` on `workers` threads, highest priority first.

    An optional `partial_transcriber` (a smaller English model) takes the English partials:
    on a small CPU a partial with the main model costs as much as a final, so partials would
    otherwise come slower than every 0.5 s and make finals wait behind them. Both models run
    on the same workers, so they never compete for the cores.
    """

    def __init__(self, transcriber: Transcriber, workers: int = 1,
                 partial_transcriber: Transcriber | None = None, max_batch: int = 1) -> None:
        self.transcriber = transcriber
        self.partial_transcriber = partial_transcriber
        self.workers = workers
        self.max_batch = max_batch
        self.stats = SchedulerStats()
        self._pending: list[_Job] = []            # a heap: most urgent first
        self._wakeup: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transcribe")
        self._order = itertools.count()
        # Jobs queued and not cancelled: cancelled ones stay in the queue until a worker pops
        # them, so the queue's size overstates the backlog (stale /healthz `queued`).
        self._waiting: set[asyncio.Future[Transcript]] = set()

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _submit(self, audio: np.ndarray, options: TranscribeOptions, priority: Priority,
                transcriber: Transcriber | None = None) -> asyncio.Future[Transcript]:
        if self._wakeup is None:
            raise RuntimeError("scheduler not started")
        future: asyncio.Future[Transcript] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._pending, _Job(int(priority), next(self._order), audio, options,
                                           future, transcriber or self.transcriber))
        self._wakeup.set()
        self._waiting.add(future)
        future.add_done_callback(self._left_queue)
        self.stats.queued = len(self._waiting)
        return future

    def _left_queue(self, future: asyncio.Future[Transcript]) -> None:
        self._waiting.discard(future)
        self.stats.queued = len(self._waiting)

    async def transcribe(self, audio: np.ndarray, options: TranscribeOptions,
                         priority: Priority = Priority.FINAL) -> Transcript:
        """Queue a job that is never dropped; wait for its transcript."""
        return await self._submit(audio, options, priority)

    def try_partial(self, audio: np.ndarray, options: TranscribeOptions,
                    ) -> asyncio.Future[Transcript] | None:
        """Queue a partial only if a worker will take it soon; None means it was dropped."""
        if self._wakeup is not None and len(self._waiting) + self.stats.running >= self.workers:
            self.stats.partials_shed += 1
            return None
        fast = self.partial_transcriber if options.language == "en" else None
        self.stats.partials += 1
        self.stats.partials_fast += fast is not None
        return self._submit(audio, options, Priority.PARTIAL, fast)

    async def _next_batch(self) -> list[_Job]:
        """The most urgent live job and the queued jobs that can share its model call."""
        assert self._wakeup is not None, "started before its workers"
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            first = heapq.heappop(self._pending)
            if first.future.cancelled():
                continue
            batch = [first]
            if isinstance(first.transcriber, BatchTranscriber) and self.max_batch > 1:
                rest = []
                for job in sorted(self._pending):
                    if len(batch) < self.max_batch and job.joins(first):
                        batch.append(job)
                    elif not job.future.cancelled():
                        rest.append(job)
                self._pending = rest              # sorted, so still a heap
            for job in batch:
                self._left_queue(job.future)
            return batch

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            self.stats.running += len(batch)
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, _run, batch)
            finally:
                self.stats.running -= len(batch)
                self.stats.calls += len(batch)
                self.stats.model_calls += 1
                self.stats.busy_seconds += time.perf_counter() - started
            for job, result in zip(batch, results):
                if job.future.done():
                    continue
                if isinstance(result, Exception):  # handed to the waiting caller, who reports it
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)


def _run(batch: list[_Job]) -> list[Transcript | Exception]:
    """Each job's transcript, or the exception it raised; runs in a worker thread, and
    hands the call's freed buffers back to the system afterwards (see `memory.py`)."""
    try:
        return _transcribe(batch)
    finally:
        release_free_memory()


def _transcribe(batch: list[_Job]) -> list[Transcript | Exception]:
    """A batch that fails is run again job by job, so one bad clip fails only its own job."""
    first = batch[0]
    if len(batch) > 1 and isinstance(first.transcriber, BatchTranscriber):
        try:
            return list(first.transcriber.transcribe_batch([job.audio for job in batch],
                                                           first.options))
        except Exception:
            return [_transcribe([job])[0] for job in batch]
    try:
        return [first.transcriber.transcribe(first.audio, first.options)]
    except Exception as exc:
        return [exc]
