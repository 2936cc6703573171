"""Running a Pipecat STT service against the test server: a pipeline of the service and a
collector of its transcription frames, fed 16 kHz PCM as Pipecat's transport would."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

import numpy as np
from pipecat.frames.frames import EndFrame, Frame, InputAudioRawFrame, TranscriptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.task import PipelineParams
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from .conftest import timeout


class Collector(FrameProcessor):
    """The end of the pipeline: keeps the transcription frames the STT service pushes."""

    def __init__(self) -> None:
        super().__init__()
        self.finals: list[TranscriptionFrame] = []
        self.arrived = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame):
            self.finals.append(frame)
            self.arrived.set()
        await self.push_frame(frame, direction)


@contextlib.asynccontextmanager
async def running(stt: FrameProcessor) -> AsyncIterator[tuple[PipelineWorker, Collector]]:
    """The pipeline [stt, collector], running; on leaving, EndFrame and a clean stop."""
    collector = Collector()
    task = PipelineWorker(Pipeline([stt, collector]),
                          params=PipelineParams(audio_in_sample_rate=16_000))
    workers = WorkerRunner(handle_sigint=False)
    await workers.add_workers(task)
    runner = asyncio.create_task(workers.run())
    try:
        yield task, collector
        await task.queue_frame(EndFrame())
        async with asyncio.timeout(timeout(30)):
            await runner
    finally:
        runner.cancel()


async def send_audio(task: PipelineWorker, samples: np.ndarray, pause_s: float) -> None:
    """16 kHz mono int16 `samples` in 100 ms frames, `pause_s` apart."""
    for start in range(0, len(samples), 1600):
        await task.queue_frame(InputAudioRawFrame(
            audio=samples[start:start + 1600].astype("<i2").tobytes(), sample_rate=16_000,
            num_channels=1))
        await asyncio.sleep(pause_s)
