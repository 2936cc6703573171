"""The loaded models and their schedulers, shared by every endpoint of one server."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ..config import ModelConfig
from ..errors import ModelNotFound, StreamscribeError
from .backends.ctranslate2 import CTranslate2Transcriber, WindowConfig
from .backends.faster_whisper import FasterWhisperConfig, FasterWhisperTranscriber
from .memory import tune_memory
from .scheduler import TranscriptionScheduler
from .transcriber import Transcriber
from .weights import resolve_model

log = logging.getLogger("streamscribe.engine")

Loader = Callable[[str, ModelConfig], Transcriber]


def load_local(name: str, config: ModelConfig) -> Transcriber:
    """The local model `name` on the configured backend: `ctranslate2` (adaptive window, the
    default) or `faster-whisper` (every call padded to 30 s; kept for comparison)."""
    weights = resolve_model(name)
    runtime = FasterWhisperConfig(compute_type=config.compute_type,
                                  cpu_threads=config.cpu_threads, workers=config.workers)
    if config.backend == "faster-whisper":
        return FasterWhisperTranscriber(weights, runtime)
    return CTranslate2Transcriber(weights, runtime, WindowConfig(min_window_s=config.min_window_s))


def load_remote(name: str, config: ModelConfig) -> Transcriber:
    """The pool of upstream servers stands in for the local model `name`."""
    from .backends.remote import RemoteConfig, RemoteTranscriber

    return RemoteTranscriber(RemoteConfig(urls=config.upstream_urls(), model=config.upstream_model,
                                          api_key=config.upstream_api_key or None))


class Engine:
    """Resolves public model names to local models, loading each once, off the event loop."""

    def __init__(self, config: ModelConfig, loader: Loader = load_local,
                 preloaded: dict[str, Transcriber] | None = None) -> None:
        self.config = config
        self._loader = loader
        self._transcribers = dict(preloaded or {})
        self._schedulers: dict[str, TranscriptionScheduler] = {}
        self._loading: dict[str, asyncio.Task[TranscriptionScheduler]] = {}

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
        tune_memory()  # before the model and its worker threads allocate
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
            transcriber = await self._transcriber(name)
            partial = None
            if self.config.partial_model and self.config.partial_model != name \
                    and not self.config.upstream_urls():
                try:
                    partial = await self._transcriber(self.config.partial_model)
                except StreamscribeError as exc:
                    log.warning("partials will use %s: partial model unavailable (%s)",
                                name, exc.message)
            scheduler = TranscriptionScheduler(transcriber, workers=self.config.workers,
                                               partial_transcriber=partial,
                                               max_batch=self.config.max_batch)
            await scheduler.start()
            self._schedulers[name] = scheduler
            return scheduler
        finally:
            self._loading.pop(name, None)

    async def _transcriber(self, name: str) -> Transcriber:
        if name not in self._transcribers:
            load = load_remote if self.config.upstream_urls() else self._loader
            self._transcribers[name] = await asyncio.to_thread(load, name, self.config)
        return self._transcribers[name]

    def loaded(self) -> dict[str, TranscriptionScheduler]:
        return dict(self._schedulers)

    async def close(self) -> None:
        for scheduler in self._schedulers.values():
            await scheduler.close()
        self._schedulers.clear()
        for transcriber in self._transcribers.values():
            if hasattr(transcriber, "close"):  # remote pools hold HTTP connections
                transcriber.close()
