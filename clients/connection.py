"""The async client: one WebSocket connection to `/v1/listen`.

    async with StreamClient("ws://127.0.0.1:8000", StreamOptions(language="en")) as conn:
        await conn.send(pcm_bytes)          # any size; int16 numpy arrays also accepted
        await conn.finalize()               # optional: flush the current utterance now
        async for event in conn:            # Transcript, SpeechStarted, UtteranceEnd, ...
            ...

Leaving the block sends CloseStream and waits for the server's Metadata (the last
transcripts arrive before it and stay readable). A background task reads the socket, so
sending and iterating can happen in different tasks; events queue until they are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from types import TracebackType
from typing import Any, AsyncIterator, Generic, Mapping, Self, TypeVar

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .errors import CannotConnect, ConnectionLost, ConnectionRejected, StreamClosed
from .events import (
    Event,
    Metadata,
    ServerEvent,
    Transcript,
    UnknownMessage,
    parse_event,
)
from .options import StreamOptions, listen_url

__all__ = ["Connection", "StreamClient", "connect"]

class _End:
    """The marker after a stream's last event."""


_END = _End()
E = TypeVar("E", bound="Event")


def _as_bytes(audio: Any) -> bytes:
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return bytes(audio)
    tobytes = getattr(audio, "tobytes", None)   # numpy arrays: sent in their own dtype
    if tobytes is None:
        raise TypeError(f"audio must be bytes or an array, not {type(audio).__name__}")
    return bytes(tobytes())


def auth_headers(token: str | None, scheme: str = "Token") -> dict[str, str]:
    """`Authorization: Token KEY` (Deepgram style; scheme "Bearer" for OpenAI style)."""
    return {"Authorization": f"{scheme} {token}"} if token else {}


async def connect(url: str, options: StreamOptions | None = None, *, token: str | None = None,
                  auth_scheme: str = "Token", headers: Mapping[str, str] | None = None,
                  open_timeout: float = 10.0, close_timeout: float = 10.0,
                  keepalive_interval: float | None = 5.0) -> "Connection":
    """Open a stream. `url` is a server root ("ws://127.0.0.1:8000") or an endpoint URL.

    Keyword arguments:
      token               API key, sent as `Authorization: {auth_scheme} {token}`
      headers             any other handshake headers
      open_timeout        seconds for TCP + WebSocket handshake (CannotConnect after it)
      close_timeout       seconds close() waits for the server's Metadata
      keepalive_interval  send KeepAlive after this many seconds without audio (None: never)

    Raises ConnectionRejected (HTTP 400 bad option, 401 bad key: `.status`, `.message`)
    or CannotConnect.
    """
    options = options or StreamOptions()
    target = listen_url(url, options)
    all_headers = {**auth_headers(token, auth_scheme), **(headers or {})}
    ws = await open_websocket(target, all_headers, open_timeout, close_timeout)
    return Connection(ws, options, url=target, close_timeout=close_timeout,
                      keepalive_interval=keepalive_interval)


async def open_websocket(target: str, headers: Mapping[str, str], open_timeout: float,
                         close_timeout: float) -> ClientConnection:
    """The WebSocket handshake; raises ConnectionRejected (the server answered with an HTTP
    status: `.status`, `.message`) or CannotConnect."""
    try:
        return await websockets.connect(target, additional_headers=dict(headers),
                                        open_timeout=open_timeout, max_size=16 << 20,
                                        close_timeout=close_timeout, proxy=None)
    except InvalidStatus as exc:
        body = exc.response.body or b""
        raise ConnectionRejected(exc.response.status_code,
                                 body.decode("utf-8", "replace")) from exc
    except (OSError, TimeoutError, EOFError, InvalidHandshake) as exc:
        raise CannotConnect(f"cannot connect to {target.split('?')[0]}: {exc}") from exc


class EventSource(Generic[E]):
    """`recv()` and `async for` over an event queue closed by an end marker.

    Subclasses fill `_events`, and put `_END` last; `_end_error()` is raised once, after every
    event queued before it.
    """

    _events: asyncio.Queue[E | _End]
    _finished: bool

    def _end_error(self) -> Exception | None:
        raise NotImplementedError

    async def recv(self) -> E | None:
        """The next event; None once the stream has ended normally (raises on an abnormal end)."""
        if self._finished:
            return None
        item = await self._events.get()
        if isinstance(item, _End):
            self._finished = True
            error = self._end_error()
            if error is not None:
                raise error
            return None
        return item

    def __aiter__(self) -> AsyncIterator[E]:
        return self

    async def __anext__(self) -> E:
        event = await self.recv()
        if event is None:
            raise StopAsyncIteration
        return event


class ClosingOnExit(EventSource[E]):
    """A connection for `async with`: on a normal exit it is closed (the server's last
    results still come), on an exception aborted at once."""

    async def close(self, timeout: float | None = None) -> Metadata | None:
        raise NotImplementedError

    async def abort(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.abort()


class Connection(ClosingOnExit[ServerEvent]):
    """An open stream. Create with `connect()` or `async with StreamClient(...)`.

    Attributes: `url`, `options`, `request_id` (from the handshake, when the server sends
    one), `bytes_sent`, `metadata` (the Metadata event, once received), `confirmed_until`
    (end, in stream seconds, of the last final transcript received).
    """

    def __init__(self, ws: ClientConnection, options: StreamOptions, *, url: str = "",
                 close_timeout: float = 10.0, keepalive_interval: float | None = 5.0) -> None:
        self._ws = ws
        self.options = options
        self.url = url
        self.request_id: str | None = ws.response.headers.get("dg-request-id") if ws.response else None
        self.bytes_sent = 0
        self.metadata: Metadata | None = None
        self.confirmed_until = 0.0
        self._close_timeout = close_timeout
        self._events: asyncio.Queue[ServerEvent | _End] = asyncio.Queue()
        self._metadata_seen = asyncio.Event()
        self._closing = False
        self._finished = False          # the end marker was taken from the queue
        self._error: ConnectionLost | None = None
        self._loop = asyncio.get_running_loop()
        self._last_send = self._loop.time()
        self._reader = asyncio.create_task(self._read(), name="streamscribe-client-reader")
        self._keepalive = (asyncio.create_task(self._keep_alive_loop(keepalive_interval))
                           if keepalive_interval else None)

    # --- sending -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once close() was called or the connection ended."""
        return self._closing or self._reader.done()

    @property
    def seconds_sent(self) -> float:
        return self.bytes_sent / self.options.bytes_per_second

    async def send(self, audio: bytes | bytearray | memoryview | Any) -> None:
        """Send audio (raw bytes in the options' encoding, or an int16 numpy array).

        Raises StreamClosed after close(), ConnectionLost when the connection broke.
        """
        data = _as_bytes(audio)
        if not data:
            return
        await self._send(data)
        self.bytes_sent += len(data)

    async def keep_alive(self) -> None:
        await self._send(json.dumps({"type": "KeepAlive"}))

    async def finalize(self) -> None:
        """Ask the server to finish the current utterance now (a final with from_finalize)."""
        await self._send(json.dumps({"type": "Finalize"}))

    async def _send(self, message: str | bytes) -> None:
        if self._closing:
            raise StreamClosed("the stream is closed")
        try:
            await self._ws.send(message)
        except ConnectionClosed as exc:
            raise self._lost(exc) from exc
        self._last_send = self._loop.time()

    async def _keep_alive_loop(self, interval: float) -> None:
        with contextlib.suppress(ConnectionClosed, StreamClosed, ConnectionLost):
            while not self.closed:
                wait = self._last_send + interval - self._loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                await self.keep_alive()

    # --- closing -------------------------------------------------------------------------

    async def close(self, timeout: float | None = None) -> Metadata | None:
        """Send CloseStream, wait for the server's Metadata (all finals come before it), close.

        Returns the Metadata, or None if the server did not send it within `timeout`
        (default: the connection's close_timeout). Safe to call more than once.
        """
        if not self._closing and not self._reader.done():
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(json.dumps({"type": "CloseStream"}))
        self._closing = True
        timeout = self._close_timeout if timeout is None else timeout
        metadata_seen = asyncio.ensure_future(self._metadata_seen.wait())
        try:
            await asyncio.wait({metadata_seen, self._reader}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            metadata_seen.cancel()
        await self._shutdown()
        return self.metadata

    async def abort(self) -> None:
        """Close at once without waiting for pending transcripts."""
        self._closing = True
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._keepalive:
            self._keepalive.cancel()
        await self._ws.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), self._close_timeout)

    # --- receiving -----------------------------------------------------------------------

    def _lost(self, exc: ConnectionClosed | None = None) -> ConnectionLost:
        if self._error is None:
            frame = exc.rcvd if exc is not None else None
            code = frame.code if frame is not None else self._ws.close_code
            reason = (frame.reason if frame is not None else self._ws.close_reason) or ""
            self._error = ConnectionLost(reason or "no close frame", code or 1006)
        return self._error

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if isinstance(message, bytes):
                    continue
                try:
                    event = parse_event(message)
                except ValueError:
                    event = UnknownMessage(type="", raw={"text": message})
                if isinstance(event, Transcript) and event.is_final:
                    self.confirmed_until = max(self.confirmed_until, event.end)
                self._events.put_nowait(event)
                if isinstance(event, Metadata):
                    self.metadata = event
                    self._metadata_seen.set()
            if self._ws.close_code != 1000 and not self._closing:
                self._lost()
        except ConnectionClosed as exc:
            if not self._closing:
                self._lost(exc)
        finally:
            self._events.put_nowait(_END)

    def _end_error(self) -> Exception | None:
        return None if self._closing else self._error


C = TypeVar("C", bound=ClosingOnExit[Any])


class OpeningClient(Generic[C]):
    """`async with` around opening a connection: closes it as the connection's own
    `__aexit__` would (close on success, abort on an exception)."""

    def __init__(self, url: str, options: StreamOptions | None = None, **kwargs: Any) -> None:
        self.url = url
        self.options = options or StreamOptions()
        self._kwargs = kwargs
        self._conn: C | None = None

    async def _open(self) -> C:
        raise NotImplementedError

    async def __aenter__(self) -> C:
        self._conn = await self._open()
        return self._conn

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._conn is not None:
            await self._conn.__aexit__(exc_type, exc, tb)


class StreamClient(OpeningClient[Connection]):
    """`async with StreamClient(url, options, **connect_kwargs) as conn:` — see `connect()`."""

    async def _open(self) -> Connection:
        return await connect(self.url, self.options, **self._kwargs)
