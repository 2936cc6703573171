"""streamscribe clients: a small library for the Deepgram-compatible `/v1/listen` stream.

    from clients import StreamClient, StreamOptions, Transcript

    async with StreamClient("ws://127.0.0.1:8000", StreamOptions(language="en")) as conn:
        await conn.send(pcm16_bytes)
        async for event in conn:
            if isinstance(event, Transcript) and event.is_final:
                print(event.start, event.text)

- `connect()` / `StreamClient`: one connection (`clients.connection`)
- `ResilientStream`: reconnects with backoff, reports unsent audio (`clients.resilient`)
- `connect_sync()` / `SyncStream`: the same, blocking (`clients.sync`)
- `stream_file()` / `iter_file()`: a file streamed at real-time pace or faster (`clients.file_stream`)
- `connect_realtime()` / `RealtimeClient`: the same events over `/v1/realtime`, OpenAI's or
  Together's protocol (`clients.realtime`)
- typed events (`clients.events`), options (`clients.options`), exceptions (`clients.errors`)

The microphone client (`clients.mic`) needs PortAudio and is imported on its own.
See docs/clients.md.
"""

from .connection import Connection, StreamClient, connect
from .errors import (
                     CannotConnect,
                     ClientError,
                     ConnectionLost,
                     ConnectionRejected,
                     StreamClosed,
)
from .events import (
                     AudioLost,
                     Event,
                     Metadata,
                     Reconnected,
                     Reconnecting,
                     ServerError,
                     SpeechStarted,
                     Transcript,
                     UnknownMessage,
                     UtteranceEnd,
                     Word,
                     final_text,
                     parse_event,
)
from .file_stream import iter_file, read_audio, stream_file
from .options import StreamOptions, listen_url
from .realtime import RealtimeClient, connect_realtime
from .resilient import Backoff, ResilientStream, StreamStats
from .sync import SyncStream, connect_sync

__all__ = [
    "AudioLost",
    "Backoff",
    "CannotConnect",
    "ClientError",
    "Connection",
    "ConnectionLost",
    "ConnectionRejected",
    "Event",
    "Metadata",
    "RealtimeClient",
    "Reconnected",
    "Reconnecting",
    "ResilientStream",
    "ServerError",
    "SpeechStarted",
    "StreamClient",
    "StreamClosed",
    "StreamOptions",
    "StreamStats",
    "SyncStream",
    "Transcript",
    "UnknownMessage",
    "UtteranceEnd",
    "Word",
    "connect",
    "connect_realtime",
    "connect_sync",
    "final_text",
    "iter_file",
    "listen_url",
    "parse_event",
    "read_audio",
    "stream_file",
]
