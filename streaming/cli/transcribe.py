"""`streamscribe transcribe FILE|URL`: one file, in-process (model loaded here) or via a server.

In-process runs the same pipeline as the batch API (`transcribe_file.py`) and draws a progress
bar on stderr for files longer than a minute; with `--url` the file is uploaded to a running
server's OpenAI-compatible endpoint (upload progress shown the same way).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Callable, IO, TextIO, cast

from ..batch.formats import render
from ..batch.url_fetch import download, is_url
from ..config import BatchConfig, ServerConfig
from ..errors import StreamscribeError, TranscriptionError
from ..languages import parse_language_set
from ..model.engine import Engine
from ..model.transcriber import Task, TranscribeOptions

PROGRESS_MIN_S = 60.0   # shorter files finish before a bar would say anything


@dataclass(frozen=True)
class TranscribeRequest:
    source: str                     # a path or an http(s) URL
    model: str | None = None
    language: str | None = None
    task: Task = "transcribe"
    response_format: str = "text"
    prompt: str | None = None
    temperature: float = 0.0
    word_timestamps: bool = False


def progress_line(done: float, total: float, width: int = 30, unit: str = "s") -> str:
    """`[#########.....]  45%  1:02:03 / 4:00:00` (or bytes when unit="B")."""
    fraction = 0.0 if total <= 0 else min(1.0, done / total)
    filled = int(round(fraction * width))
    bar = "#" * filled + "." * (width - filled)
    if unit == "B":
        amounts = f"{done / 1e6:.1f} / {total / 1e6:.1f} MB"
    else:
        amounts = f"{_clock(done)} / {_clock(total)}"
    return f"[{bar}] {fraction * 100:3.0f}%  {amounts}"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """Redraws one line on `stream` (stderr); silent when total is unknown or small."""

    def __init__(self, total: float | None, stream: TextIO, *, unit: str = "s",
                 minimum: float = PROGRESS_MIN_S) -> None:
        self.total = total
        self.stream = stream
        self.unit = unit
        self.enabled = total is not None and total >= minimum
        self.drawn = False

    def __call__(self, done: float) -> None:
        if self.enabled and self.total is not None:
            self.stream.write("\r" + progress_line(done, self.total, unit=self.unit))
            self.stream.flush()
            self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _options(request: TranscribeRequest, beam_size: int) -> TranscribeOptions:
    language, languages = parse_language_set(request.language)
    return TranscribeOptions(language=language, languages=languages, task=request.task,
                             prompt=request.prompt, temperature=request.temperature,
                             word_timestamps=request.word_timestamps, beam_size=beam_size)


async def _local_input(source: str, config: BatchConfig) -> BinaryIO:
    if not is_url(source):
        return await asyncio.to_thread(open, source, "rb")
    handle = await asyncio.to_thread(tempfile.TemporaryFile)
    # The user runs this on their own machine: any address they can reach is theirs to fetch.
    await download(source, handle, replace(config, url_allowlist="0.0.0.0/0,::/0"))
    await asyncio.to_thread(handle.seek, 0)
    return handle


async def run_in_process(request: TranscribeRequest, config: ServerConfig,
                         stderr: TextIO | None = None, engine: Engine | None = None,
                         ) -> str | dict[str, Any]:
    """Load the model here and transcribe; returns the rendered body."""
    from ..batch.decode import AudioFile
    from ..batch.pipeline import transcribe_file
    from ..model.engine import Engine

    model = config.model
    if request.model:
        # Here the model is the user's choice, not a client's: any local directory will do.
        model = replace(model, name=model.alias_map().get(request.model, request.model))
    engine = engine or Engine(model)
    handle = await _local_input(request.source, config.batch)
    try:
        audio = await asyncio.to_thread(AudioFile, handle,
                                        max_duration_s=config.batch.max_duration_s)
        with audio:
            scheduler = await engine.get(None)
            bar = ProgressBar(audio.info.duration, stderr or sys.stderr)
            try:
                transcript = await transcribe_file(
                    audio, scheduler, _options(request, model.beam_size), config.batch,
                    progress=bar)
            finally:
                bar.close()
    finally:
        handle.close()
        await engine.close()
    granularities = frozenset({"segment", "word"} if request.word_timestamps else {"segment"})
    return render(transcript, request.response_format, granularities)[0]


class _ReadProgress:
    """A file whose reads report how far the upload got."""

    def __init__(self, handle: BinaryIO, report: Callable[[float], None]) -> None:
        self._handle = handle
        self._report = report

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._report(self._handle.tell())
        return data


def run_remote(request: TranscribeRequest, url: str, api_key: str | None = None,
               stderr: TextIO | None = None, timeout_s: float = 3600.0) -> str | dict[str, Any]:
    """POST the file (or its URL) to a server's /v1/audio/{transcriptions,translations}."""
    import httpx

    endpoint = "translations" if request.task == "translate" else "transcriptions"
    data: dict[str, str | list[str]] = {"model": request.model or "whisper-1", "response_format": request.response_format,
            "temperature": str(request.temperature)}
    if request.language:
        data["language"] = request.language
    if request.prompt:
        data["prompt"] = request.prompt
    if request.word_timestamps:
        data["timestamp_granularities[]"] = ["word", "segment"]
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s, headers=headers) as client:
        if is_url(request.source):
            response = client.post(f"/v1/audio/{endpoint}", data={**data, "file": request.source})
        else:
            size = os.path.getsize(request.source)
            bar = ProgressBar(size, stderr or sys.stderr, unit="B", minimum=10e6)
            with open(request.source, "rb") as handle:
                upload = _ReadProgress(handle, bar)
                files = {"file": (Path(request.source).name, cast(IO[bytes], upload))}
                try:
                    response = client.post(f"/v1/audio/{endpoint}", data=data, files=files)
                finally:
                    bar.close()
    if response.status_code >= 400:
        raise StreamscribeError.from_openai(response.text, response.status_code) or \
            TranscriptionError(f"server answered HTTP {response.status_code}: "
                               f"{response.text[:200]}")
    if request.response_format in ("json", "verbose_json"):
        body: dict[str, Any] = response.json()
        return body
    return response.text


def write_output(body: str | dict[str, Any], out: str | None, stdout: TextIO | None = None) -> None:
    text = json.dumps(body, ensure_ascii=False, indent=2) + "\n" if isinstance(body, dict) \
        else body
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        (stdout or sys.stdout).write(text)
