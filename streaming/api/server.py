"""Run the app with uvicorn: in the foreground (CLI) or on a background thread (tests, bench).

Shutdown (SIGTERM, SIGINT, or `BackgroundServer.stop`) drains first: see `lifecycle.py`.
A second Ctrl-C stops waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from types import FrameType
from typing import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from ..config import ServerConfig
from ..model.engine import Engine
from .app import create_app
from .state import AppState


class _ClientBehaviourFilter(logging.Filter):
    """uvicorn's websockets-sansio protocol logs some ordinary client behaviour as server
    errors. After every refused upgrade sent as an HTTP denial response (our 400/401 with a
    JSON body) it logs an ERROR although the response went out correctly: dropped. Invalid
    UTF-8 in a text frame (answered with close 1007) comes with a traceback: one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "returned without completing handshake" in message:
            return False
        if message.startswith("Invalid UTF-8 sequence received from client"):
            record.msg, record.args = "client sent invalid UTF-8 in a text frame; closed 1007", ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


logging.getLogger("uvicorn.error").addFilter(_ClientBehaviourFilter())


def uvicorn_config(app: ASGIApp, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    # websockets' sans-I/O implementation; size limits are enforced by our own handlers, so the
    # transport limit only guards against absurd frames.
    return uvicorn.Config(app, host=host, port=port, ws="websockets-sansio", ws_max_size=64 << 20,
                          log_level=log_level, lifespan="on", ws_ping_interval=20,
                          ws_ping_timeout=20, timeout_graceful_shutdown=5,
                          # room for a long query string to reach our JSON 414
                          h11_max_incomplete_event_size=64 << 10)


class DrainingServer(uvicorn.Server):
    """uvicorn, but shutdown waits for open streams and requests (up to `drain_s`) before
    uvicorn's own, which closes whatever is still open (WebSockets with 1012)."""

    def __init__(self, app: Starlette, host: str, port: int, log_level: str = "info") -> None:
        super().__init__(uvicorn_config(app, host, port, log_level))
        self.state: AppState = app.state.streamscribe
        self.signals: list[int] = []              # the shutdown signals received, in order

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.signals.append(sig)
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        lifecycle = self.state.lifecycle
        lifecycle.draining = True                 # readiness first, then stop accepting
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        await lifecycle.drain(self.state.config.drain_s, abandon=lambda: self.force_exit)
        await super().shutdown(sockets)


def serve(config: ServerConfig) -> bool:
    """Serve until a signal has drained the server; True when that signal was SIGINT.

    uvicorn re-raises the signal once it has shut down, which normally ends the CLI with a
    KeyboardInterrupt. A server started as a background job (`streamscribe serve &`) inherits
    SIGINT ignored, so that re-raise does nothing: the flag gives it the same exit status."""
    server = DrainingServer(create_app(config), config.host, config.port)
    server.run()
    return signal.SIGINT in server.signals


class BackgroundServer:
    """A real server on 127.0.0.1 (port 0 by default) on its own thread and event loop."""

    def __init__(self, config: ServerConfig, engine: Engine | None = None,
                 log_level: str = "warning") -> None:
        self.app = create_app(config, engine)
        self._server = DrainingServer(self.app, config.host, config.port, log_level)
        self._thread = threading.Thread(target=self._run, name="streamscribe-server", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port: int | None = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._server.serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc

    def start(self, timeout: float = 120.0) -> "BackgroundServer":
        self._thread.start()
        self._thread.join(0)
        import time

        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error or not self._thread.is_alive():
                raise RuntimeError(f"server failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.05)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


@contextlib.contextmanager
def background_server(config: ServerConfig, engine: Engine | None = None) -> Iterator[BackgroundServer]:
    server = BackgroundServer(config, engine).start()
    try:
        yield server
    finally:
        server.stop()
