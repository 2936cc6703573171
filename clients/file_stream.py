"""Stream an audio file as if it were live, and collect what comes back: over `/v1/listen`
(Deepgram's protocol, the default) or `/v1/realtime` (`protocol="openai"` or `"together"`).

    events = await stream_file("ws://127.0.0.1:8000", "talk.wav", speed=0)   # as fast as possible
    print(final_text(events))

    async for event in iter_file(url, "talk.wav"):                           # real-time pace
        ...

16-bit PCM WAV is read directly (any rate, any channel count: the server is told which);
any other file that FFmpeg can decode (mp3, flac, ogg, m4a, 24-bit WAV...) goes through
PyAV and is sent as 16-bit PCM at its own rate and channel count.
"""

from __future__ import annotations

import asyncio
import wave
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import numpy as np

from .connection import Connection, StreamClient
from .errors import ConnectionLost
from .events import Event
from .options import StreamOptions
from .realtime import RealtimeClient

__all__ = ["audio_chunks", "file_options", "iter_file", "read_audio", "send_paced", "stream_file"]


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """An audio file as int16 samples of shape (frames, channels), and its sample rate."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() == 2 and w.getcomptype() == "NONE":
                data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
                return data.reshape(-1, w.getnchannels()).astype(np.int16), w.getframerate()
    except (wave.Error, EOFError):
        pass    # not a plain PCM WAV: let FFmpeg decode it
    return _decode_with_av(path)


def _decode_with_av(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        layout = stream.layout.name if stream.layout else "mono"
        channels = stream.layout.nb_channels if stream.layout else 1
        resampler = av.AudioResampler(format="s16", layout=layout, rate=stream.rate)
        parts: list[np.ndarray] = []
        for frame in container.decode(stream):
            parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
        data = np.concatenate(parts) if parts else np.zeros(0, np.int16)
        return data.astype(np.int16).reshape(-1, channels), int(stream.rate)


def file_options(samples: np.ndarray, rate: int, options: StreamOptions | None = None) -> StreamOptions:
    """`options` with the audio facts (linear16, rate, channels) of the samples filled in."""
    return (options or StreamOptions()).replace(encoding="linear16", sample_rate=rate,
                                                channels=samples.shape[1])


def audio_chunks(samples: np.ndarray, rate: int, chunk_ms: float = 50.0) -> Iterator[bytes]:
    """Interleaved little-endian int16 bytes, `chunk_ms` of audio per chunk."""
    step = max(1, int(rate * chunk_ms / 1000))
    interleaved = np.ascontiguousarray(samples, dtype="<i2")
    for start in range(0, len(interleaved), step):
        yield interleaved[start:start + step].tobytes()


async def send_paced(conn: Connection | Any, samples: np.ndarray, rate: int, *,
                     speed: float = 1.0, chunk_ms: float = 50.0) -> None:
    """Send `samples` on `conn` (anything with `async send(bytes)`) at `speed` x real time.

    Each chunk leaves when its last sample would have been captured live (a microphone's
    timing); `speed=0` sends as fast as the connection takes it. The schedule is absolute,
    so slow sends do not accumulate drift.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent_frames = 0
    for chunk in audio_chunks(samples, rate, chunk_ms):
        sent_frames += len(chunk) // (2 * samples.shape[1])
        if speed > 0:
            delay = started + sent_frames / rate / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)
        await conn.send(chunk)


async def iter_file(url: str, path: str | Path, *, speed: float = 1.0,
                    options: StreamOptions | None = None, chunk_ms: float = 50.0,
                    protocol: str = "deepgram", **connect_kwargs: Any) -> AsyncIterator[Event]:
    """Stream the file and yield every event as it arrives, ending with the server's Metadata.

    `options` sets what the server should do (language, model, interim_results...); the
    encoding, rate and channels come from the file. `connect_kwargs` go to `connect()`
    (token, headers, timeouts). `protocol` "openai" or "together" streams over
    `/v1/realtime` instead (mono: channels are mixed down; the Metadata is made by the
    client once every utterance has completed). Breaking out of the loop stops sending and
    closes.
    Raises ConnectionLost if the server's Metadata (which follows the last final) does not
    come within 30 s + the audio's duration after the last chunk.
    """
    samples, rate = read_audio(path)
    # After the last chunk the server may still be transcribing a backlog (speed 0 sends a
    # long file in moments): wait for Metadata as long as real-time processing would take.
    close_wait = max(connect_kwargs.get("close_timeout", 10.0), 30.0 + len(samples) / rate)
    client = StreamClient if protocol == "deepgram" else partial(RealtimeClient, protocol=protocol)
    async with client(url, file_options(samples, rate, options), **connect_kwargs) as conn:
        async def send_all() -> None:
            await send_paced(conn, samples, rate, speed=speed, chunk_ms=chunk_ms)
            if await conn.close(timeout=close_wait) is None and conn.metadata is None:
                raise ConnectionLost(f"no Metadata within {close_wait:.0f} s of the end of the "
                                     "audio: the last transcripts may be missing")

        sender = asyncio.create_task(send_all(), name="streamscribe-file-sender")
        try:
            async for event in conn:
                yield event
        finally:
            if not sender.done():
                sender.cancel()
            try:
                await sender
            except asyncio.CancelledError:
                pass


async def stream_file(url: str, path: str | Path, **kwargs: Any) -> list[Event]:
    """Stream the file (see `iter_file` for the arguments) and return every event."""
    return [event async for event in iter_file(url, path, **kwargs)]
