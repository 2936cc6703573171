"""The loaded models and their schedulers, shared by every endpoint of one server."""

from __future__ import annotations

import asyncio
from typing import Callable

from .backends.faster_whisper import FasterWhisperConfig, FasterWhisperTranscriber
from .config import ModelConfig
from .errors import ModelNotFound
from .models import resolve_model
from .scheduler import TranscriptionScheduler
from .transcriber import Transcriber

Loader = Callable[[str, ModelConfig], Transcriber]


def load_faster_whisper(name: str, config: ModelConfig) -> Transcriber:
    return FasterWhisperTranscriber(
        resolve_model(name),
        FasterWhisperConfig(compute_type=config.compute_type, cpu_threads=config.cpu_threads,
                            workers=config.workers))


class Engine:
    """Resolves public model names to local models, loading each once, off the event loop."""

    def __init__(self, config: ModelConfig, loader: Loader = load_faster_whisper,
                 preloaded: dict[str, Transcriber] | None = None) -> None:
        self.config = config
        self._loader = loader
        self._preloaded = dict(preloaded or {})
        self._schedulers: dict[str, TranscriptionScheduler] = {}
        self._loading: dict[str, asyncio.Task] = {}

    @property
    def default(self) -> str:
        return self.config.name

    def local_name(self, public: str | None) -> str:
        """The local model behind a public name; raises ModelNotFound."""
        if public is None or public == "":
            return self.default
        aliases = self.config.alias_map()
        name = aliases.get(public, public)
        if name not in self.config.allowed_models():
            known = sorted({*self.config.allowed_models(), *aliases})
            raise ModelNotFound(f"model {public!r} not found; available: {', '.join(known)}",
                                param="model")
        return name

    async def start(self) -> None:
        await self.get(self.default)

    async def get(self, public: str | None = None) -> TranscriptionScheduler:
        name = self.local_name(public)
        if name in self._schedulers:
            return self._schedulers[name]
        if name not in self._loading:
            self._loading[name] = asyncio.create_task(self._load(name))
        return await asyncio.shield(self._loading[name])

    async def _load(self, name: str) -> TranscriptionScheduler:
        try:
            transcriber = self._preloaded.get(name) or await asyncio.to_thread(
                self._loader, name, self.config)
            scheduler = TranscriptionScheduler(transcriber, workers=self.config.workers)
            await scheduler.start()
            self._schedulers[name] = scheduler
            return scheduler
        finally:
            self._loading.pop(name, None)

    def loaded(self) -> dict[str, TranscriptionScheduler]:
        return dict(self._schedulers)

    async def close(self) -> None:
        for scheduler in self._schedulers.values():
            await scheduler.close()
        self._schedulers.clear()
