"""Shared fixtures: each model is loaded once per session; servers are real, on 127.0.0.1:0.

Every server started here shares the session's loaded models (a model is thread-safe),
but has its own config, engine and scheduler, so tests can vary auth, VAD and limits.

Waits follow the machine. `timeout(seconds)` is a wait written for the reference machine,
stretched by how much slower this one is: the first call times one real model call (the
default model on a 5 s corpus clip, after a warm-up call) and compares it with the same call
on the reference machine. A machine that is slower, or busier, gets proportionally longer
waits; none gets shorter ones. No test asserts on elapsed time.
"""

from __future__ import annotations

import functools
import http.server
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from streaming.api.server import BackgroundServer
from streaming.config import ModelConfig, ServerConfig
from streaming.eval.corpus import item
from streaming.model.engine import Engine, load_local
from streaming.model.transcriber import TranscribeOptions, Transcriber

CALIBRATION_CLIP = "en_lj_LJ001-0004"      # 5.1 s of LJ Speech
# That call on the machine the waits were written for (2-core AMD EPYC, base int8, the default
# ModelConfig), per backend: faster-whisper measured there (0.75 s); the adaptive-window backend
# encodes a 10 s window instead of 30 s and took about a third of that, back to back on the
# same machine (0.23-0.28 s, one thread or two alike).
REFERENCE_CALL_S = {"faster-whisper": 0.75, "ctranslate2": 0.25}


class ModelCache:
    """Loads each local model at most once per test session."""

    def __init__(self) -> None:
        self._models: dict[str, Transcriber] = {}
        self._lock = threading.Lock()

    def load(self, name: str, config: ModelConfig) -> Transcriber:
        with self._lock:
            if name not in self._models:
                self._models[name] = load_local(name, config)
            return self._models[name]


MODELS = ModelCache()


@functools.cache
def slowness() -> float:
    """How many times longer than on the reference machine one model call takes here (>= 1),
    measured once per test session."""
    config = ModelConfig()
    model = MODELS.load(config.name, config)
    audio = item(CALIBRATION_CLIP).mono16k().astype(np.float32) / 32768
    options = TranscribeOptions(language="en", word_timestamps=True, temperature=0.0)
    model.transcribe(audio, options)                # the first call pays one-time set-up
    started = time.perf_counter()
    model.transcribe(audio, options)
    return max(1.0, (time.perf_counter() - started) / REFERENCE_CALL_S[model.info.backend])


def ctrl_c_reaches_child() -> None:
    """Popen's preexec_fn for a child a test sends Ctrl-C (SIGINT): a shell starts a background
    job (`cmd &`, as a CI runner may) with SIGINT ignored and children inherit that, so the
    child gets the default action back, as under a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def timeout(seconds: float) -> float:
    """A wait of `seconds` on the reference machine, scaled to this one."""
    return seconds * slowness()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if slowness.cache_info().currsize:
        terminalreporter.write_line(f"waits scaled x{slowness():.2f} (one model call timed "
                                    "against the same call on the reference machine)")


@pytest.fixture(scope="session")
def model_cache() -> ModelCache:
    return MODELS


@pytest.fixture(scope="session")
def base_model() -> Transcriber:
    """The default model (base) on the default backend, loaded once per session."""
    return MODELS.load("base", ModelConfig())


@pytest.fixture(scope="session")
def start_server() -> Iterator[Callable[..., BackgroundServer]]:
    """Factory: start_server(config=None, calibrate=False, **overrides) -> a running
    BackgroundServer. Start-up calibration is off unless asked for: it would time the same
    shared models again for every server."""
    servers = SERVERS

    def start(config: ServerConfig | None = None, calibrate: bool = False,
              **overrides: Any) -> BackgroundServer:
        config = replace(config or ServerConfig(port=0), port=0, **overrides)
        config = replace(config, model=replace(config.model, calibrate=calibrate))
        engine = Engine(config.model, loader=MODELS.load)
        server = BackgroundServer(config, engine).start(timeout=timeout(120))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def shared_server(start_server: Callable[..., BackgroundServer]) -> BackgroundServer:
    return start_server()


@pytest.fixture
def server(shared_server: BackgroundServer) -> BackgroundServer:
    """The shared default server (base model, no auth), handed over with no stream open."""
    _wait_until(lambda: shared_server.app.state.streamscribe.lifecycle.open_streams == 0,
                "the shared server still has streams open")
    return shared_server


SERVERS: list[BackgroundServer] = []      # every test server of this session


@pytest.fixture(autouse=True)
def quiet_servers() -> None:
    """Each test starts with no model work left on any test server (a vanished client's
    stream, a batch piece in flight): no test inherits an earlier test's load. The models are
    shared, so work on one server slows every other."""
    _wait_until(lambda: not any(_busy(s) for s in SERVERS), "test servers still busy")


def _busy(server: BackgroundServer) -> bool:
    return any(s.stats.running or s.stats.queued
               for s in server.app.state.streamscribe.engine.loaded().values())


def _wait_until(done: Callable[[], bool], failure: str) -> None:
    if done():
        return
    deadline = time.monotonic() + timeout(120)
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(failure)
        time.sleep(0.05)


@pytest.fixture(scope="session")
def serve_files(tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Callable[[dict[str, bytes]], str]]:
    """Factory: serve_files({name: bytes}) -> the base URL of a plain HTTP server on 127.0.0.1
    serving them (URL input for the batch and pre-recorded APIs)."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(files: dict[str, bytes]) -> str:
        root = tmp_path_factory.mktemp("served")
        for name, data in files.items():
            (root / name).write_bytes(data)
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield serve
    for httpd in servers:
        httpd.shutdown()


@pytest.fixture(scope="session")
def pulse_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for PulseAudio clients: a private daemon with a virtual microphone."""
    from .virtual_mic import pulse_daemon

    with pulse_daemon(tmp_path_factory.mktemp("pulse")) as env:
        yield env
