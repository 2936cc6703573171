"""The scheduler's accounting, with a fake transcriber that blocks until released."""

from __future__ import annotations

import asyncio
import threading
from typing import Sequence

import numpy as np

from streaming.errors import TranscriptionError
from streaming.model.backends.fake import FakeTranscriber
from streaming.model.scheduler import Priority, TranscriptionScheduler
from streaming.model.transcriber import TranscribeOptions, Transcript

from .conftest import timeout

AUDIO = np.zeros(16_000, np.float32)


async def test_queued_counts_only_jobs_still_waiting_after_cancellations():
    release = threading.Event()
    fake = FakeTranscriber(script=lambda audio, options: "x" if release.wait(timeout(30)) else "")
    scheduler = TranscriptionScheduler(fake, workers=1)
    await scheduler.start()
    try:
        options = TranscribeOptions()
        running = asyncio.ensure_future(scheduler.transcribe(AUDIO, options))
        waiting = [asyncio.ensure_future(scheduler.transcribe(AUDIO, options)) for _ in range(3)]
        while scheduler.stats.running < 1:
            await asyncio.sleep(0.01)
        assert scheduler.stats.queued == 3
        for job in waiting:
            job.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        assert scheduler.stats.queued == 0          # was 3 until a worker popped them
        release.set()
        assert (await running).text == "x"
        assert scheduler.stats.queued == 0 and len(fake.calls) == 1
    finally:
        release.set()
        await scheduler.close()


class BatchingFake(FakeTranscriber):
    """A fake that can batch: records the size of every batch and the order of calls."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.batches: list[list[int]] = []

    def transcribe_batch(self, audios: Sequence[np.ndarray],
                         options: TranscribeOptions) -> list[Transcript]:
        self.batches.append([len(a) for a in audios])
        return [self.transcribe(a, options) for a in audios]


def clip(samples: int) -> np.ndarray:
    return np.zeros(samples, np.float32)


async def _while_busy(fake: FakeTranscriber, release: threading.Event,
                      scheduler: TranscriptionScheduler,
                      queue: list[tuple[int, TranscribeOptions, Priority]]) -> list[object]:
    """Occupy the one worker, queue `queue` (audio length, options, priority) behind it,
    then let everything run; the results (or exceptions) of the queued jobs, in order."""
    first = asyncio.ensure_future(scheduler.transcribe(clip(1), TranscribeOptions()))
    while scheduler.stats.running < 1:
        await asyncio.sleep(0.01)
    jobs = [asyncio.ensure_future(scheduler.transcribe(clip(n), options, priority))
            for n, options, priority in queue]
    await asyncio.sleep(0)
    release.set()
    await first
    return await asyncio.gather(*jobs, return_exceptions=True)


async def test_queued_jobs_of_one_kind_run_as_one_batch_finals_first():
    release = threading.Event()
    fake = BatchingFake(script=lambda audio, options: f"{len(audio)}"
                        if release.wait(timeout(30)) else "")
    scheduler = TranscriptionScheduler(fake, workers=1, max_batch=3)
    await scheduler.start()
    english, other = TranscribeOptions(language="en"), TranscribeOptions(language="de")
    try:
        results = await _while_busy(fake, release, scheduler, [
            (10, english, Priority.PARTIAL), (11, english, Priority.FINAL),
            (12, other, Priority.FINAL), (13, english, Priority.FINAL),
            (14, english, Priority.PARTIAL), (15, english, Priority.FINAL),
            (16, english, Priority.FINAL)])
    finally:
        release.set()
        await scheduler.close()
    assert [r.text for r in results] == [str(n) for n in range(10, 17)]  # type: ignore[union-attr]
    # finals of one kind together (at most max_batch), then the other final, then partials
    assert fake.batches == [[11, 13, 15], [10, 14]]
    assert [n for n, _ in fake.calls] == [1, 11, 13, 15, 12, 16, 10, 14]
    assert scheduler.stats.calls == 8 and scheduler.stats.model_calls == 5


async def test_a_failing_batch_fails_only_the_bad_job():
    release = threading.Event()

    def script(audio: np.ndarray, options: TranscribeOptions) -> str:
        release.wait(timeout(30))
        if len(audio) == 6:
            raise TranscriptionError("this clip cannot be transcribed")
        return "ok"

    fake = BatchingFake(script=script)
    scheduler = TranscriptionScheduler(fake, workers=1, max_batch=8)
    await scheduler.start()
    try:
        results = await _while_busy(fake, release, scheduler,
                                    [(n, TranscribeOptions(), Priority.FINAL) for n in (5, 6, 7)])
    finally:
        release.set()
        await scheduler.close()
    assert fake.batches == [[5, 6, 7]]              # tried together, then one by one
    assert isinstance(results[1], TranscriptionError)
    assert [r.text for r in (results[0], results[2])] == ["ok", "ok"]  # type: ignore[union-attr]
