"""One file through the model: decode and split in a thread, pieces through the scheduler.

Used by the batch API and the in-process CLI. Memory stays flat whatever the file's length:
the decoder is pulled one piece at a time, at most `parallelism` pieces wait on the model,
and finished pieces leave only their (small) transcripts behind.

Language: unless the caller fixed it, the first piece detects it and every later piece is
transcribed in that language (detection on every piece costs about as much as transcribing,
and a stray misdetection would switch languages mid-file).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, replace
from typing import AsyncIterator, Callable, Generator

from ..audio import to_float32
from ..config import BatchConfig
from ..model.scheduler import Priority, TranscriptionScheduler
from ..model.transcriber import TranscribeOptions, Transcript
from .decode import AudioFile
from .splitter import PauseSplitter, Piece, stitch


@dataclass(frozen=True)
class PieceResult:
    piece_start: float
    piece_end: float
    transcript: Transcript       # in the piece's own time; `stitch` moves it to file time


def pieces(audio: AudioFile, config: BatchConfig) -> Generator[Piece, None, None]:
    """Blocking: decode `audio` and yield its speech pieces in order."""
    splitter = PauseSplitter(max_s=config.piece_max_s, min_s=config.piece_min_s)
    for chunk in audio.chunks():
        yield from splitter.feed(chunk)
    yield from splitter.finish()


async def transcribe_pieces(audio: AudioFile, scheduler: TranscriptionScheduler,
                            options: TranscribeOptions, config: BatchConfig
                            ) -> AsyncIterator[PieceResult]:
    """Each speech piece's transcript, in file order, as soon as it and all before it are done."""
    source = pieces(audio, config)
    in_flight: deque[tuple[Piece, asyncio.Future[Transcript]]] = deque()
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < config.parallelism:
                piece = await asyncio.to_thread(next, source, None)
                if piece is None:
                    exhausted = True
                    break
                job: asyncio.Future[Transcript] = asyncio.ensure_future(scheduler.transcribe(
                    to_float32(piece.audio), options, Priority.BATCH))
                in_flight.append((piece, job))
                if options.language is None:
                    # Detect once, on the first piece, then hold the language for the rest.
                    transcript = await job
                    options = replace(options, language=transcript.language, languages=None)
            if not in_flight:
                return
            piece, job = in_flight.popleft()
            yield PieceResult(piece.start, piece.end, await job)
    finally:
        for _, job in in_flight:
            job.cancel()
        with contextlib.suppress(Exception):
            source.close()


async def transcribe_file(audio: AudioFile, scheduler: TranscriptionScheduler,
                          options: TranscribeOptions, config: BatchConfig,
                          progress: Callable[[float], None] | None = None) -> Transcript:
    """The whole file's transcript in file time. `progress(seconds_done)` after each piece."""
    parts: list[tuple[float, Transcript]] = []
    language = options.language
    async for result in transcribe_pieces(audio, scheduler, options, config):
        parts.append((result.piece_start, result.transcript))
        language = language or result.transcript.language
        if progress is not None:
            progress(result.piece_end)
    if progress is not None:
        progress(audio.seconds_decoded)
    return stitch(parts, duration=audio.seconds_decoded, language=language or "en",
                  task=options.task)
