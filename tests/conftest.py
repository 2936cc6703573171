"""Shared fixtures: each model is loaded once per session; servers are real, on 127.0.0.1:0.

Every server started here shares the session's loaded models (a model is thread-safe),
but has its own config, engine and scheduler, so tests can vary auth, VAD and limits.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace

import pytest

from streaming.api.server import BackgroundServer
from streaming.config import ModelConfig, ServerConfig
from streaming.model.engine import Engine, load_faster_whisper

# Every timeout in the tests is a multiple of this; raise it on slow machines.
TIMEOUT_SCALE = float(os.environ.get("STREAMSCRIBE_TIMEOUT_SCALE", "1"))


def timeout(seconds: float) -> float:
    return seconds * TIMEOUT_SCALE


class ModelCache:
    """Loads each local model at most once per test session."""

    def __init__(self) -> None:
        self._models = {}
        self._lock = threading.Lock()

    def load(self, name: str, config: ModelConfig):
        with self._lock:
            if name not in self._models:
                self._models[name] = load_faster_whisper(name, config)
            return self._models[name]


@pytest.fixture(scope="session")
def model_cache() -> ModelCache:
    return ModelCache()


@pytest.fixture(scope="session")
def start_server(model_cache):
    """Factory: start_server(config=None, **overrides) -> a running BackgroundServer."""
    servers: list[BackgroundServer] = []

    def start(config: ServerConfig | None = None, **overrides) -> BackgroundServer:
        config = replace(config or ServerConfig(port=0), port=0, **overrides)
        engine = Engine(config.model, loader=model_cache.load)
        server = BackgroundServer(config, engine).start(timeout=timeout(120))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server) -> BackgroundServer:
    """The shared default server (base model, no auth)."""
    return start_server()


@pytest.fixture(scope="session")
def pulse_env(tmp_path_factory):
    """Environment for PulseAudio clients: a private daemon with a virtual microphone."""
    from .virtual_mic import pulse_daemon

    with pulse_daemon(tmp_path_factory.mktemp("pulse")) as env:
        yield env
