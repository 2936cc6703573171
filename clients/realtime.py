"""The client for `/v1/realtime`: OpenAI's or Together's real-time protocol, with the same
events as the `/v1/listen` client (`Transcript`, `SpeechStarted`, `ServerError`, and a
`Metadata` made at the end), so captions and `stream_file` work over any protocol.

    async with RealtimeClient("ws://127.0.0.1:8000", StreamOptions(language="en"),
                              protocol="openai") as conn:
        await conn.send(pcm16_bytes)     # at options.sample_rate; resampled as the protocol needs
        async for event in conn:
            ...

Audio goes out as base64 `input_audio_buffer.append` events (24 kHz PCM for OpenAI, 16 kHz
for Together), channels mixed down to mono; the server's VAD ends utterances.
`finalize()` commits the buffer; `close()` commits, waits until every item the server
announced has completed, then closes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from streaming.audio import Resampler

from .connection import _END, ClosingOnExit, OpeningClient, _End, open_websocket
from .errors import ConnectionLost, StreamClosed
from .events import Event, Metadata, ServerError, SpeechStarted, Transcript
from .options import StreamOptions

__all__ = ["PROTOCOLS", "RealtimeClient", "RealtimeConnection", "connect_realtime"]

Protocol = Literal["openai", "together"]
PROTOCOLS = ("deepgram", "openai", "together")
RATES = {"openai": 24_000, "together": 16_000}
# After the last commit, the stream is over once every announced item has completed and the
# server has said nothing more for this long (neither protocol has an end-of-stream event).
SETTLE_S = 1.0


def realtime_url(url: str, protocol: Protocol, options: StreamOptions) -> str:
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if protocol == "openai":
        query = {"intent": "transcription"}
    else:
        query = {"model": options.model or "openai/whisper-large-v3",
                 "input_audio_format": f"pcm_s16le_{RATES['together']}"}
        if options.language and options.language != "multi":
            query["language"] = options.language
    return urlunsplit((scheme, parts.netloc, "/v1/realtime", urlencode(query), ""))


def session_update(protocol: Protocol, options: StreamOptions) -> dict[str, Any] | None:
    """The session event that carries what `options` asks for (None: nothing to say)."""
    silence = options.endpointing if isinstance(options.endpointing, int) \
        and not isinstance(options.endpointing, bool) else None
    if protocol == "together":
        if silence is None:
            return None
        return {"type": "transcription_session.updated", "session": {"turn_detection": {
            "type": "server_vad", "min_silence_duration_ms": silence}}}
    transcription: dict[str, Any] = {}
    if options.model:
        transcription["model"] = options.model
    if options.language and options.language != "multi":
        transcription["language"] = options.language
    turn: dict[str, Any] = {"type": "server_vad"}
    if silence is not None:
        turn["silence_duration_ms"] = silence
    return {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": RATES["openai"]},
        "transcription": transcription, "turn_detection": turn}}}}


class RealtimeConnection(ClosingOnExit[Event]):
    """An open realtime session. Create with `connect_realtime()` or `RealtimeClient`."""

    def __init__(self, ws: ClientConnection, options: StreamOptions, protocol: Protocol, *,
                 url: str = "", close_timeout: float = 10.0) -> None:
        self._ws = ws
        self.options = options
        self.protocol = protocol
        self.url = url
        self.request_id = ""
        self.bytes_sent = 0
        self.metadata: Metadata | None = None
        self._close_timeout = close_timeout
        self._resampler = Resampler(options.sample_rate, RATES[protocol])
        self._events: asyncio.Queue[Event | _End] = asyncio.Queue()
        self._finished = False
        self._closing = False
        self._error: ConnectionLost | None = None
        self._starts: dict[str, float] = {}     # item id -> start (s), items not yet completed
        self._texts: dict[str, str] = {}        # OpenAI: item id -> deltas so far
        self._heard = asyncio.Event()
        self._reader = asyncio.create_task(self._read(), name="streamscribe-realtime-reader")

    @property
    def closed(self) -> bool:
        return self._closing or self._reader.done()

    async def send(self, audio: bytes | bytearray | memoryview | Any) -> None:
        """Send int16 audio (interleaved at options.sample_rate/channels, bytes or array)."""
        data = audio.tobytes() if isinstance(audio, np.ndarray) else bytes(audio)
        samples = np.frombuffer(data, dtype="<i2")
        if not len(samples):
            return
        if self.options.channels > 1:
            samples = samples.reshape(-1, self.options.channels).mean(axis=1).astype(np.int16)
        await self._append(self._resampler.feed(samples))
        self.bytes_sent += len(samples) * 2 * self.options.channels

    async def _append(self, samples: np.ndarray) -> None:
        if len(samples):
            await self._send({"type": "input_audio_buffer.append",
                              "audio": base64.b64encode(samples.astype("<i2").tobytes()).decode()})

    async def finalize(self) -> None:
        """Commit the buffer: the utterance in progress ends now."""
        await self._send({"type": "input_audio_buffer.commit"})

    async def _send(self, event: Mapping[str, Any]) -> None:
        if self._closing:
            raise StreamClosed("the stream is closed")
        try:
            await self._ws.send(json.dumps(event))
        except ConnectionClosed as exc:
            raise self._lost(exc) from exc

    async def close(self, timeout: float | None = None) -> Metadata | None:
        """Commit what is left, wait until every item has completed, close. Returns the
        Metadata made at the end, or None if the items did not complete within `timeout`."""
        if not self._closing and not self._reader.done():
            with contextlib.suppress(ConnectionClosed, ConnectionLost):
                await self._append(self._resampler.flush())
                await self.finalize()
        self._closing = True
        timeout = self._close_timeout if timeout is None else timeout
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._settled(), timeout)
        if self._settled_now():
            self.metadata = Metadata(request_id=self.request_id,
                                     duration=self.bytes_sent / self.options.bytes_per_second)
            self._events.put_nowait(self.metadata)
        await self.abort()
        return self.metadata

    def _settled_now(self) -> bool:
        return not self._starts

    async def _settled(self) -> None:
        while True:
            self._heard.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._heard.wait(), SETTLE_S)
                continue
            if self._settled_now() or self._reader.done():
                return

    async def abort(self) -> None:
        self._closing = True
        await self._ws.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), self._close_timeout)

    # --- receiving -----------------------------------------------------------------------

    def _lost(self, exc: ConnectionClosed | None = None) -> ConnectionLost:
        if self._error is None:
            code = self._ws.close_code or 1006
            self._error = ConnectionLost(self._ws.close_reason or "no close frame", code)
        return self._error

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if isinstance(message, bytes):
                    continue
                self._heard.set()
                for event in self._translate(json.loads(message)):
                    self._events.put_nowait(event)
            if self._ws.close_code != 1000 and not self._closing:
                self._lost()
        except ConnectionClosed as exc:
            if not self._closing:
                self._lost(exc)
        finally:
            self._events.put_nowait(_END)

    def _translate(self, data: Mapping[str, Any]) -> list[Event]:
        """One server event as client events (session and buffer bookkeeping give none)."""
        kind = str(data.get("type", ""))
        item = str(data.get("item_id", ""))
        if kind == "session.created":
            self.request_id = str((data.get("session") or {}).get("id", ""))
        elif kind == "input_audio_buffer.speech_started":
            self._starts[item] = data.get("audio_start_ms", 0) / 1000
            return [SpeechStarted(timestamp=self._starts[item])]
        elif kind == "input_audio_buffer.committed":
            self._starts.setdefault(item, 0.0)
        elif kind.endswith("input_audio_transcription.delta"):
            if self.protocol == "openai":
                self._texts[item] = self._texts.get(item, "") + str(data.get("delta", ""))
            else:
                self._texts[item] = str(data.get("delta", ""))
            self._starts.setdefault(item, 0.0)
            return [Transcript(text=self._texts[item].strip(), is_final=False,
                               start=self._starts[item], duration=0.0, raw=data)]
        elif kind.endswith("input_audio_transcription.completed"):
            start = self._starts.pop(item, 0.0)
            self._texts.pop(item, None)
            start = data.get("start_ms", start * 1000) / 1000
            end = data.get("end_ms", start * 1000) / 1000
            return [Transcript(text=str(data.get("transcript", "")).strip(), is_final=True,
                               start=start, duration=max(0.0, end - start), speech_final=True,
                               language=data.get("language"), raw=data)]
        elif kind.endswith("input_audio_transcription.failed") or kind == "error":
            self._starts.pop(item, None)
            error = data.get("error") or {}
            return [ServerError(code=str(error.get("code") or "error"),
                                message=str(error.get("message", "")), raw=data)]
        return []

    def _end_error(self) -> Exception | None:
        return None if self._closing else self._error


async def connect_realtime(url: str, options: StreamOptions | None = None, *,
                           protocol: Protocol = "openai", token: str | None = None,
                           open_timeout: float = 10.0, close_timeout: float = 10.0,
                           **_: Any) -> RealtimeConnection:
    """Open a realtime session and configure it from `options` (language, model,
    endpointing). Raises ConnectionRejected (HTTP 400/401) or CannotConnect."""
    options = options or StreamOptions()
    if options.encoding != "linear16":
        raise ValueError("the realtime client sends 16-bit PCM (encoding linear16)")
    target = realtime_url(url, protocol, options)
    headers = {"OpenAI-Beta": "realtime=v1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    ws = await open_websocket(target, headers, open_timeout, close_timeout)
    conn = RealtimeConnection(ws, options, protocol, url=target, close_timeout=close_timeout)
    update = session_update(protocol, options)
    if update is not None:
        await conn._send(update)
    return conn


class RealtimeClient(OpeningClient[RealtimeConnection]):
    """`async with RealtimeClient(url, options, protocol=...) as conn:` — see `connect_realtime()`."""

    async def _open(self) -> RealtimeConnection:
        return await connect_realtime(self.url, self.options, **self._kwargs)
