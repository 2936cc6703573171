"""A blocking wrapper: the async client runs on its own event-loop thread.

    with connect_sync("ws://127.0.0.1:8000", StreamOptions()) as stream:
        stream.send(pcm)
        stream.finalize()
        for event in stream:       # blocks; ends after close() (from another thread) or
            ...                    # when the server closes

Sending and iterating may happen on different threads. Leaving the block closes the stream
(CloseStream, then the server's Metadata); events not read by then stay readable.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any, Coroutine, Iterator, TypeVar

from .connection import Connection, connect
from .events import Event, Metadata
from .options import StreamOptions
from .resilient import ResilientStream

__all__ = ["SyncStream", "connect_sync"]

T = TypeVar("T")


class SyncStream:
    """Blocking methods over a `Connection` or `ResilientStream` living on a private loop."""

    def __init__(self, url: str, options: StreamOptions | None = None, *,
                 resilient: bool = False, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="streamscribe-client-loop", daemon=True)
        self._thread.start()
        self._stream: Connection | ResilientStream
        try:
            if resilient:
                self._stream = self._call(ResilientStream(url, options, **kwargs).start())
            else:
                self._stream = self._call(connect(url, options, **kwargs))
        except BaseException:
            self._stop_loop()
            raise
        self.metadata: Metadata | None = None
        self._left: list[Event] = []        # events still unread at close()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def stream(self) -> Connection | ResilientStream:
        """The underlying async Connection or ResilientStream (use only on its loop)."""
        return self._stream

    def send(self, audio: Any) -> None:
        self._call(self._stream.send(audio))

    def finalize(self) -> None:
        self._call(self._stream.finalize())

    def recv(self, timeout: float | None = None) -> Event | None:
        """The next event, None at the end; TimeoutError after `timeout` seconds."""
        if self._loop.is_closed():
            return self._left.pop(0) if self._left else None
        future = asyncio.run_coroutine_threadsafe(self._stream.recv(), self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def __iter__(self) -> Iterator[Event]:
        while (event := self.recv()) is not None:
            yield event

    def close(self, timeout: float | None = None) -> Metadata | None:
        """CloseStream, wait for Metadata, stop the loop thread. Safe to call twice."""
        if self._loop.is_closed():
            return self.metadata
        try:
            self.metadata = self._call(self._stream.close(timeout))
            self._left = self._call(self._drain())
        finally:
            self._stop_loop()
        return self.metadata

    async def _drain(self) -> list[Event]:
        # After close() every event is already queued: read them so they outlive the loop.
        left = []
        try:
            while (event := await self._stream.recv()) is not None:
                left.append(event)
        except Exception:    # the error was the stream's end; the events before it are kept
            pass
        return left

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> "SyncStream":
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close(timeout=None if exc_type is None else 0.0)


def connect_sync(url: str, options: StreamOptions | None = None, **kwargs: Any) -> SyncStream:
    """Open a blocking stream; `resilient=True` reconnects (see ResilientStream)."""
    return SyncStream(url, options, **kwargs)
