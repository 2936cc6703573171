"""Stream options (the `/v1/listen` query string) and URL building (sans-I/O)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["BYTES_PER_SAMPLE", "LISTEN_PATH", "StreamOptions", "listen_url"]

LISTEN_PATH = "/v1/listen"
BYTES_PER_SAMPLE = {"linear16": 2, "mulaw": 1, "alaw": 1}


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class StreamOptions:
    """What the client tells the server about its audio and what it wants back.

    Every field maps to the Deepgram query parameter of the same name; `None` leaves the
    server's default. `extra` carries any other parameter as (name, value) pairs.

    encoding          linear16 (default), mulaw or alaw
    sample_rate       Hz of the audio sent (default 16000)
    channels          interleaved channels in the audio sent (default 1)
    multichannel      transcribe each channel on its own (default: server's, false)
    interim_results   partial transcripts while someone speaks (default True)
    endpointing       ms of silence that ends an utterance, or False (default: server's)
    utterance_end_ms  send UtteranceEnd after this gap between words (default: server's)
    vad_events        send SpeechStarted (default True)
    language          ISO 639-1 code or "multi" for detection (default: server's)
    model             model name, e.g. "base", "tiny.en" (default: server's)
    """

    encoding: str = "linear16"
    sample_rate: int = 16000
    channels: int = 1
    multichannel: bool | None = None
    interim_results: bool | None = True
    endpointing: int | bool | None = None
    utterance_end_ms: int | None = None
    vad_events: bool | None = True
    language: str | None = None
    model: str | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.encoding not in BYTES_PER_SAMPLE:
            raise ValueError(f"encoding must be one of {sorted(BYTES_PER_SAMPLE)}")
        if self.sample_rate <= 0 or self.channels <= 0:
            raise ValueError("sample_rate and channels must be positive")

    @property
    def bytes_per_second(self) -> int:
        """Audio bytes per second of stream time (all channels)."""
        return self.sample_rate * self.channels * BYTES_PER_SAMPLE[self.encoding]

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample frame (one sample of every channel)."""
        return self.channels * BYTES_PER_SAMPLE[self.encoding]

    def query(self) -> list[tuple[str, str]]:
        """The query parameters, in a stable order."""
        names = ("encoding", "sample_rate", "channels", "multichannel", "interim_results",
                 "endpointing", "utterance_end_ms", "vad_events", "language", "model")
        pairs = [(n, _query_value(getattr(self, n))) for n in names if getattr(self, n) is not None]
        return pairs + [(str(k), _query_value(v)) for k, v in self.extra]

    def replace(self, **changes: Any) -> StreamOptions:
        return replace(self, **changes)


def listen_url(url: str, options: StreamOptions | None = None) -> str:
    """The WebSocket URL for `url` with `options` in its query.

    `url` may be a server root ("ws://host:8000", "http://host:8000") or a full endpoint
    URL; http(s) become ws(s), an empty path becomes /v1/listen, and query parameters
    already in `url` are kept unless `options` sets the same name.
    """
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket or HTTP URL: {url!r}")
    path = parts.path if parts.path not in ("", "/") else LISTEN_PATH
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if options is not None:
        query.update(options.query())
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))
