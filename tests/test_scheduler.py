"""The scheduler's accounting, with a fake transcriber that blocks until released."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from streaming.model.backends.fake import FakeTranscriber
from streaming.model.scheduler import TranscriptionScheduler
from streaming.model.transcriber import TranscribeOptions

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
