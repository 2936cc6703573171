"""Shares one loaded model between every connection and request, off the event loop.

Jobs wait in one priority queue: stream finals first, then batch pieces, then partials.
Partials are best effort: when the backlog is already as long as the number of workers,
a new partial is refused (and counted) instead of queued, so under load partials thin out
and finals keep their latency. Finals and batch jobs are never dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .transcriber import TranscribeOptions, Transcriber, Transcript


class Priority(IntEnum):
    FINAL = 0
    BATCH = 1
    PARTIAL = 2


@dataclass
class SchedulerStats:
    calls: int = 0
    partials_shed: int = 0            # partials refused because the workers were busy
    busy_seconds: float = 0.0
    queued: int = 0
    running: int = 0


# (priority, order, audio, options, future, transcriber): the order breaks ties first-come.
_Entry = tuple[int, int, np.ndarray, TranscribeOptions, "asyncio.Future[Transcript]", Transcriber]


class TranscriptionScheduler:
    """Run `transcriber.transcribe` on `workers` threads, highest priority first.

    An optional `partial_transcriber` (a smaller English model) takes the English partials:
    on a small CPU a partial with the main model costs as much as a final, so partials would
    otherwise come slower than every 0.5 s and make finals wait behind them. Both models run
    on the same workers, so they never compete for the cores.
    """

    def __init__(self, transcriber: Transcriber, workers: int = 1,
                 partial_transcriber: Transcriber | None = None) -> None:
        self.transcriber = transcriber
        self.partial_transcriber = partial_transcriber
        self.workers = workers
        self.stats = SchedulerStats()
        self._queue: asyncio.PriorityQueue[_Entry] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transcribe")
        self._order = itertools.count()
        # Jobs queued and not cancelled: cancelled ones stay in the queue until a worker pops
        # them, so the queue's size overstates the backlog (stale /healthz `queued`).
        self._waiting: set[asyncio.Future[Transcript]] = set()

    async def start(self) -> None:
        self._queue = asyncio.PriorityQueue()
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _submit(self, audio: np.ndarray, options: TranscribeOptions, priority: Priority,
                transcriber: Transcriber | None = None) -> asyncio.Future[Transcript]:
        if self._queue is None:
            raise RuntimeError("scheduler not started")
        future: asyncio.Future[Transcript] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((int(priority), next(self._order), audio, options, future,
                                transcriber or self.transcriber))
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
        if self._queue is not None and len(self._waiting) + self.stats.running >= self.workers:
            self.stats.partials_shed += 1
            return None
        fast = self.partial_transcriber if options.language == "en" else None
        return self._submit(audio, options, Priority.PARTIAL, fast)

    async def _worker(self) -> None:
        assert self._queue is not None, "started before its workers"
        loop = asyncio.get_running_loop()
        while True:
            _, _, audio, options, future, transcriber = await self._queue.get()
            self._left_queue(future)
            if future.cancelled():
                continue
            self.stats.running += 1
            started = time.perf_counter()
            try:
                result = await loop.run_in_executor(
                    self._executor, transcriber.transcribe, audio, options)
            except Exception as exc:  # handed to the waiting caller, who reports it
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
            finally:
                self.stats.running -= 1
                self.stats.calls += 1
                self.stats.busy_seconds += time.perf_counter() - started
