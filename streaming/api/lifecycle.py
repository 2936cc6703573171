"""Readiness and graceful drain of one server.

Every streaming connection registers with `stream(protocol)` and every HTTP request (but the
probes) with `request()`. On SIGTERM/SIGINT the server (`server.py`) calls `drain(deadline)`:

1. readiness goes false (`/readyz` answers 503) and `stopping` fires;
2. the server closes its listening sockets (no new connections);
3. every open stream treats `stopping` like a CloseStream: it flushes its pending finals and
   Metadata, then closes with 1001 "server shutting down";
4. running HTTP requests (batch jobs) and held background work (a finished call's webhook)
   run to their end.

`drain` returns when nothing is left or at the deadline, whichever comes first; then uvicorn
closes what remains (WebSockets with 1012, e.g. listeners of a call's events that never
started) and the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any, Callable, Iterator

from starlette.websockets import WebSocket

log = logging.getLogger("streamscribe.lifecycle")

SHUTDOWN_CODE = 1001                  # WebSocket "going away"
SHUTDOWN_REASON = "server shutting down"
_POLL_S = 0.05


class Lifecycle:
    """What is open on one server, whether it is ready, and its drain."""

    def __init__(self) -> None:
        self.model_loaded = False
        self.draining = False
        self.streams: Counter[str] = Counter()     # open streams by protocol
        self.requests = 0                          # HTTP requests in flight (probes excluded)
        self.stopping = asyncio.Event()

    @property
    def ready(self) -> bool:
        """The model is loaded and the server is not draining: send it traffic."""
        return self.model_loaded and not self.draining

    @property
    def open_streams(self) -> int:
        return sum(self.streams.values())

    @contextlib.contextmanager
    def stream(self, protocol: str) -> Iterator[None]:
        """Count one streaming connection for as long as the block runs."""
        self.streams[protocol] += 1
        try:
            yield
        finally:
            self.streams[protocol] -= 1

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Count one HTTP request for as long as the block runs."""
        self.requests += 1
        try:
            yield
        finally:
            self.requests -= 1

    def hold(self, task: asyncio.Task[None]) -> None:
        """Count background work (a call's webhook) as a request in flight until it ends."""
        self.requests += 1
        task.add_done_callback(self._release)

    def _release(self, task: asyncio.Task[None]) -> None:
        self.requests -= 1

    async def receive(self, websocket: WebSocket, timeout_s: float) -> dict[str, Any] | None:
        """The next ASGI message from `websocket`, or None once the server drains; raises
        TimeoutError after `timeout_s` without a message."""
        if self.stopping.is_set():
            return None
        receiving = asyncio.ensure_future(websocket.receive())
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            done, _ = await asyncio.wait({receiving, stopping}, timeout=timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not receiving.done():
                receiving.cancel()
        if receiving in done:
            return dict(receiving.result())
        if stopping in done:
            return None
        raise TimeoutError

    async def drain(self, timeout_s: float, abandon: Callable[[], bool] = lambda: False) -> bool:
        """Ask every stream to finish and wait for them and for running requests.

        Returns True when everything ended within `timeout_s`; False at the deadline or once
        `abandon()` is true (a second Ctrl-C)."""
        started = time.monotonic()
        deadline = started + timeout_s
        self.draining = True
        self.stopping.set()
        log.info("draining: %d stream(s), %d request(s) in flight; up to %g s",
                 self.open_streams, self.requests, timeout_s)

        async def until(done: Callable[[], bool]) -> bool:
            while not done():
                if abandon() or time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(_POLL_S)
            return True

        drained = await until(lambda: self.open_streams == 0 and self.requests == 0)
        if drained:
            log.info("drained in %.1f s", time.monotonic() - started)
        else:
            log.warning("drain stopped after %.1f s with %d stream(s) and %d request(s) still "
                        "open; they are cut off", time.monotonic() - started, self.open_streams,
                        self.requests)
        return drained
