"""A stream that survives connection loss: reconnect with exponential backoff, never send
anything twice, and report every piece of audio that could not be sent.

    async with ResilientStream("ws://127.0.0.1:8000", StreamOptions()) as stream:
        await stream.send(pcm)              # never fails on a broken connection
        async for event in stream:          # server events + Reconnecting/Reconnected/AudioLost
            ...

How audio is accounted for (in seconds of the caller's audio, `stream.stats`):
- sent on a connection: never re-sent, even if that connection then breaks. What was sent on a
  broken connection after the end of its last final is reported as `Reconnecting.unconfirmed`
  (it reached the server, but its transcript may never come).
- sent while disconnected: held in a buffer (`buffer_seconds`) and sent first on the next
  connection; when the buffer is full the oldest audio is dropped and reported as `AudioLost`.
- left in the buffer when the stream closes or gives up: reported as `AudioLost`.

Event times are shifted so that they count from the start of the caller's audio across all
connections (each new connection starts at time 0 on the server).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Awaitable, Callable

from .connection import _END, Connection, EventSource, _as_bytes, _End, connect
from .errors import ClientError, ConnectionLost, ConnectionRejected, StreamClosed
from .events import AudioLost, Event, Metadata, Reconnected, Reconnecting
from .options import StreamOptions

__all__ = ["Backoff", "ResilientStream", "StreamStats"]


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnection attempt n (1-based): initial * factor**(n-1), capped at
    `maximum`, randomized by ±`jitter` (a fraction). `max_attempts` None: retry forever."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 15.0
    jitter: float = 0.1
    max_attempts: int | None = None

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        base = min(self.maximum, self.initial * self.factor ** max(attempt - 1, 0))
        return max(0.0, base * (1 + self.jitter * (2 * rand() - 1)))


@dataclass
class StreamStats:
    """Counters of a ResilientStream (seconds of the caller's audio)."""

    connections: int = 0        # connections opened, the first one included
    reconnects: int = 0
    seconds_received: float = 0.0   # given to send()
    seconds_sent: float = 0.0       # written to a connection (never twice)
    seconds_lost: float = 0.0       # could not be sent: reported as AudioLost
    seconds_unconfirmed: float = 0.0  # sent on a connection that broke before finals covered it
    seconds_buffered: float = 0.0   # waiting for the next connection now


class ResilientStream(EventSource[Event]):
    """Like `Connection`, but reconnects. Keyword arguments:

      backoff          Backoff() — delays between attempts, and when to give up
      buffer_seconds   audio held while disconnected (default 10 s); older audio is dropped
                       and reported as AudioLost(reason="buffer_full")
      connector        the coroutine that opens a connection (default `connect`; tests inject)
      **connect_kwargs passed to connect(): token, headers, open_timeout, ...

    The first connection is opened by `start()` / `async with` and its failure raises
    (CannotConnect, ConnectionRejected). After that, losses are retried; a permanent
    rejection (HTTP 4xx) or `backoff.max_attempts` failures end the stream: iteration raises
    ConnectionLost once, after every event and AudioLost report, and send() raises it too.
    """

    def __init__(self, url: str, options: StreamOptions | None = None, *,
                 backoff: Backoff = Backoff(), buffer_seconds: float = 10.0,
                 connector: Callable[..., Awaitable[Connection]] = connect,
                 **connect_kwargs: Any) -> None:
        self.url = url
        self.options = options or StreamOptions()
        self.backoff = backoff
        self.stats = StreamStats()
        self.metadata: Metadata | None = None
        self._connector = connector
        self._connect_kwargs = connect_kwargs
        frame = self.options.frame_bytes
        self._bps = self.options.bytes_per_second
        self._buffer_limit = max(frame, int(buffer_seconds * self._bps) // frame * frame)
        self._frame = frame
        self._conn: Connection | None = None
        # Positions count whole-frame bytes of the caller's audio. Every byte before `_head`
        # was sent or dropped (in order); the buffer holds the bytes from `_head` on.
        self._head = 0
        self._conn_start = 0            # position of the current connection's first byte
        self._received = 0              # bytes given to send()
        self._sent = 0                  # bytes written to connections
        self._partial = b""             # < one frame, waiting for the rest
        self._buffer: deque[bytes] = deque()
        self._buffer_bytes = 0
        self._lost_range: list[int] | None = None   # [start, end) of a run of dropped bytes
        self._lock = asyncio.Lock()
        self._events: asyncio.Queue[Event | _End] = asyncio.Queue()
        self._closing = False
        self._finished = False
        self._error: ClientError | None = None
        self._supervisor: asyncio.Task[None] | None = None

    # --- lifetime ------------------------------------------------------------------------

    async def start(self) -> "ResilientStream":
        conn = await self._connector(self.url, self.options, **self._connect_kwargs)
        self._attach(conn)
        self._supervisor = asyncio.create_task(self._supervise(), name="streamscribe-resilient")
        return self

    async def __aenter__(self) -> "ResilientStream":
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close(timeout=None if exc_type is None else 0.0)

    async def close(self, timeout: float | None = None) -> Metadata | None:
        """CloseStream on the current connection and wait for its Metadata (`timeout` 0:
        abort instead). Audio still buffered because the stream is disconnected is reported
        as AudioLost(reason="closed").
        Returns the last connection's Metadata (None if disconnected or it did not come).
        """
        if self._closing:
            return self.metadata
        self._closing = True
        async with self._lock:
            conn = self._conn
            if self._partial:               # less than one sample frame: count it as lost
                self.stats.seconds_lost += len(self._partial) / self._bps
                self._partial = b""
        if conn is not None and timeout != 0.0:
            self.metadata = await conn.close(timeout)
        elif conn is not None:
            await conn.abort()
        if self._supervisor is not None:
            if conn is None:
                self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._conn is not None and self._conn is not conn:
            await self._conn.abort()    # a reconnection that raced with close()
        self._flush_lost("buffer_full")
        self._trim_buffer(self._buffer_bytes)
        self._flush_lost("closed")
        self._events.put_nowait(_END)
        return self.metadata

    @property
    def connected(self) -> bool:
        return self._conn is not None

    # --- sending -------------------------------------------------------------------------

    async def send(self, audio: Any) -> None:
        """Send audio now, or buffer it while disconnected. Never raises for a lost
        connection; raises StreamClosed after close() and the final error after giving up."""
        if self._closing:
            raise StreamClosed("the stream is closed")
        if self._error is not None:
            raise self._error
        data = self._partial + _as_bytes(audio)
        self._received += len(data) - len(self._partial)
        self.stats.seconds_received = self._received / self._bps
        whole = len(data) - len(data) % self._frame
        data, self._partial = data[:whole], data[whole:]
        if not data:
            return
        async with self._lock:
            if self._conn is not None:
                try:
                    await self._conn.send(data)
                    self._mark_sent(len(data))
                    return
                except (ConnectionLost, StreamClosed):
                    self._detach()      # the supervisor reconnects; this chunk was not sent
            self._buffer_append(data)

    async def finalize(self) -> None:
        """Finalize on the current connection (a no-op while disconnected)."""
        async with self._lock:
            if self._conn is not None:
                with contextlib.suppress(ConnectionLost, StreamClosed):
                    await self._conn.finalize()

    # --- receiving -----------------------------------------------------------------------

    def _end_error(self) -> Exception | None:
        return self._error

    # --- internals -----------------------------------------------------------------------

    def _attach(self, conn: Connection) -> None:
        self._conn = conn
        self._conn_start = self._head      # this connection's time 0 on the caller's clock
        self.stats.connections += 1

    def _detach(self) -> None:
        self._conn = None

    def _mark_sent(self, count: int) -> None:
        self._head += count
        self._sent += count
        self.stats.seconds_sent = self._sent / self._bps

    def _buffer_append(self, data: bytes) -> None:
        self._buffer.append(data)
        self._buffer_bytes += len(data)
        excess = self._buffer_bytes - self._buffer_limit
        if excess > 0:
            self._trim_buffer(excess + -excess % self._frame)
        self.stats.seconds_buffered = self._buffer_bytes / self._bps

    def _trim_buffer(self, count: int) -> None:
        """Drop `count` bytes from the buffer's head (oldest audio first), reporting them."""
        while count > 0 and self._buffer:
            head = self._buffer[0]
            take = min(count, len(head))
            self._record_lost(self._head, take)
            self._head += take
            if take == len(head):
                self._buffer.popleft()
            else:
                self._buffer[0] = head[take:]
            self._buffer_bytes -= take
            count -= take
        self.stats.seconds_buffered = self._buffer_bytes / self._bps

    def _record_lost(self, start: int, count: int) -> None:
        if self._lost_range is not None and self._lost_range[1] == start:
            self._lost_range[1] += count
        else:
            self._flush_lost("buffer_full")
            self._lost_range = [start, start + count]
        self.stats.seconds_lost += count / self._bps

    def _flush_lost(self, reason: str) -> None:
        if self._lost_range is None:
            return
        start, end = self._lost_range
        self._lost_range = None
        if end > start:
            self._events.put_nowait(AudioLost(start=start / self._bps,
                                              duration=(end - start) / self._bps, reason=reason))

    async def _flush_buffer(self, conn: Connection) -> None:
        """Send the buffer first on a new connection (under the lock)."""
        self._flush_lost("buffer_full")
        self._attach(conn)
        while self._buffer:
            chunk = self._buffer[0]
            await conn.send(chunk)       # ConnectionLost here: the chunk stays buffered
            self._buffer.popleft()
            self._buffer_bytes -= len(chunk)
            self._mark_sent(len(chunk))
        self.stats.seconds_buffered = 0.0

    async def _forward(self, conn: Connection) -> ConnectionLost | None:
        offset = self._conn_start / self._bps
        try:
            async for event in conn:
                self._events.put_nowait(event.shifted(offset) if offset else event)
        except ConnectionLost as exc:
            return exc
        return None if self._closing else ConnectionLost("server closed the stream", 1000)

    async def _supervise(self) -> None:
        conn = self._conn
        attempt = 0
        while conn is not None:
            lost: ClientError | None = await self._forward(conn)
            if self._closing:
                return
            async with self._lock:
                if self._conn is conn:
                    self._detach()
                # Whatever was sent on `conn` stays sent; only the part after its last final
                # is unconfirmed.
                unconfirmed = max(0.0, conn.seconds_sent - conn.confirmed_until)
                self.stats.seconds_unconfirmed += unconfirmed
            conn = None
            while conn is None and not self._closing:
                attempt += 1
                if self.backoff.max_attempts is not None and attempt > self.backoff.max_attempts:
                    self._give_up(lost)
                    return
                delay = self.backoff.delay(attempt)
                self._events.put_nowait(Reconnecting(attempt=attempt, delay=delay,
                                                     reason=str(lost), unconfirmed=unconfirmed))
                unconfirmed = 0.0
                await asyncio.sleep(delay)
                try:
                    conn = await self._connector(self.url, self.options, **self._connect_kwargs)
                except ConnectionRejected as exc:
                    if exc.permanent:
                        self._give_up(exc)
                        return
                    lost = exc
                    continue                # a refusal that may pass: try again after a delay
                except ClientError as exc:
                    lost = exc
                    continue
                if self._closing:
                    await conn.abort()
                    return
                async with self._lock:
                    try:
                        await self._flush_buffer(conn)
                    except (ConnectionLost, StreamClosed) as exc:
                        self._detach()
                        lost, conn = exc, None
                        continue
                self.stats.reconnects += 1
                self._events.put_nowait(Reconnected(attempt=attempt,
                                                    offset=self._conn_start / self._bps))
                attempt = 0

    def _give_up(self, error: BaseException | None) -> None:
        self._error = error if isinstance(error, ClientError) else ConnectionLost(str(error))
        self._flush_lost("buffer_full")
        self._trim_buffer(self._buffer_bytes)
        self._flush_lost("gave_up")
        self._events.put_nowait(_END)
