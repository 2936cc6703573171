"""A `Transcriber` that calls a pool of OpenAI-compatible `/v1/audio/transcriptions` servers.

This is how a streaming gateway scales out: its engine holds a `RemoteTranscriber` instead of
a local model, and each call goes to the least busy server of the pool (ties in turn), as a
WAV upload asking for `verbose_json` with word timestamps. A server that fails (connection
error, timeout, 5xx, 429) is skipped for `cooldown_s` and the call is retried on another, up to
`retries` more times; a 4xx answer is the caller's mistake and is raised at once.

Blocking and thread-safe, like every backend. The httpx transport can be injected
(`httpx.MockTransport` in tests).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import httpx
import numpy as np

from ...audio import wav_bytes
from ...errors import (
    InvalidParameter,
    ModelNotFound,
    StreamscribeError,
    TranscriptionError,
)
from ...languages import code_of
from ..transcriber import ModelInfo, Segment, TranscribeOptions, Transcript, Word

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RemoteConfig:
    urls: tuple[str, ...]               # base URLs, e.g. "http://10.0.0.5:8000"
    model: str = "whisper-1"            # the name sent to the servers
    api_key: str | None = None
    timeout_s: float = 120.0
    retries: int = 2                    # further attempts, each on another server if possible
    cooldown_s: float = 5.0             # a failed server is avoided this long
    multilingual: bool = True

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("RemoteConfig needs at least one server URL")


@dataclass
class _Server:
    url: str
    in_flight: int = 0
    failed_until: float = 0.0
    calls: int = 0
    failures: int = 0


class RemoteTranscriber:
    def __init__(self, config: RemoteConfig, *, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._servers = [_Server(url.rstrip("/")) for url in config.urls]
        self._lock = threading.Lock()
        self._last = -1
        self._clock = clock
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.Client(transport=transport, timeout=config.timeout_s,
                                    headers=headers)
        self._info = ModelInfo(name=config.model, multilingual=config.multilingual,
                               backend="remote")

    @property
    def info(self) -> ModelInfo:
        return self._info

    def stats(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"url": s.url, "in_flight": s.in_flight, "calls": s.calls,
                     "failures": s.failures} for s in self._servers]

    def close(self) -> None:
        self._client.close()

    def _acquire(self, avoid: set[str]) -> _Server:
        """The least busy healthy server not yet tried for this call; ties taken in turn."""
        with self._lock:
            now = self._clock()
            candidates = [s for s in self._servers if s.url not in avoid] or self._servers
            healthy = [s for s in candidates if s.failed_until <= now]
            n = len(self._servers)
            if healthy:
                # Among the least busy, the first after the one chosen last (round-robin).
                server = min(healthy, key=lambda s: (
                    s.in_flight, (self._servers.index(s) - self._last - 1) % n))
            else:  # everyone failed lately: try the one that recovers first rather than none
                server = min(candidates, key=lambda s: s.failed_until)
            server.in_flight += 1
            server.calls += 1
            self._last = self._servers.index(server)
            return server

    def _release(self, server: _Server, failed: bool) -> None:
        with self._lock:
            server.in_flight -= 1
            if failed:
                server.failures += 1
                server.failed_until = self._clock() + self.config.cooldown_s
            else:
                server.failed_until = 0.0

    def _form(self, options: TranscribeOptions) -> dict[str, Any]:
        temperature = options.temperature
        if isinstance(temperature, tuple):
            # OpenAI's temperature 0 already means "0 with fallback".
            temperature = temperature[0] if temperature else 0.0
        form = {"model": self.config.model, "response_format": "verbose_json",
                "temperature": str(temperature),
                "timestamp_granularities[]": ["segment", "word"] if options.word_timestamps
                else ["segment"]}
        if options.language:
            form["language"] = options.language
        elif options.languages:
            form["language"] = ",".join(options.languages)   # streamscribe's extension
        prompt = " ".join(p for p in (options.prompt, options.prefix) if p)
        if prompt:
            form["prompt"] = prompt
        return form

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        pcm = np.clip(audio * 32768.0, -32768, 32767).astype(np.int16)
        files = {"file": ("audio.wav", wav_bytes(pcm), "audio/wav")}
        endpoint = "translations" if options.task == "translate" else "transcriptions"
        form = self._form(options)
        tried: set[str] = set()
        errors: list[str] = []
        for _ in range(self.config.retries + 1):
            server = self._acquire(tried)
            tried.add(server.url)
            failed = True
            try:
                response = self._client.post(f"{server.url}/v1/audio/{endpoint}", data=form,
                                             files=files)
                if response.status_code in RETRY_STATUSES:
                    errors.append(f"{server.url}: HTTP {response.status_code}")
                    continue
                failed = False
            except httpx.TransportError as exc:
                errors.append(f"{server.url}: {exc!r}")
                continue
            finally:
                self._release(server, failed)
            if response.status_code >= 400:
                raise _client_error(response)
            return parse_verbose_json(response.json(), task=options.task,
                                      fallback_language=options.language)
        raise TranscriptionError("every transcription server failed: " + "; ".join(errors),
                                 code="upstream_unavailable", status=502)

    def detect_language(self, audio: np.ndarray) -> dict[str, float]:
        # The OpenAI API reports a language, not probabilities: the one found is certain.
        transcript = self.transcribe(audio[:30 * 16000], TranscribeOptions(word_timestamps=False))
        return {transcript.language: 1.0}


def _client_error(response: httpx.Response) -> StreamscribeError:
    kind = ModelNotFound if response.status_code == 404 else InvalidParameter
    return kind.from_openai(response.text, response.status_code, "remote server: ") or kind(
        f"remote server: {response.text[:200]}", status=response.status_code)


def parse_verbose_json(body: dict[str, Any], *, task: str = "transcribe",
                       fallback_language: str | None = None) -> Transcript:
    """An OpenAI `verbose_json` body as a Transcript; top-level words go to their segments."""
    raw_words = [Word(w["word"].strip(), float(w["start"]), float(w["end"]), 1.0)
                 for w in body.get("words") or ()]
    raw_segments = body.get("segments") or []
    owner: list[list[Word]] = [[] for _ in raw_segments]
    for word in raw_words:
        if not raw_segments:
            break
        middle = (word.start + word.end) / 2
        index = min(range(len(raw_segments)), key=lambda i: (
            0 if raw_segments[i]["start"] <= middle <= raw_segments[i]["end"] else 1,
            abs((raw_segments[i]["start"] + raw_segments[i]["end"]) / 2 - middle)))
        owner[index].append(word)
    segments = tuple(
        Segment(id=i, seek=int(s.get("seek", 0)), start=float(s["start"]), end=float(s["end"]),
                text=s["text"], tokens=tuple(s.get("tokens") or ()),
                temperature=float(s.get("temperature") or 0.0),
                avg_logprob=float(s.get("avg_logprob") or 0.0),
                compression_ratio=float(s.get("compression_ratio") or 0.0),
                no_speech_prob=float(s.get("no_speech_prob") or 0.0),
                words=tuple(owner[i]))
        for i, s in enumerate(raw_segments))
    language = body.get("language") or fallback_language or "en"
    if task == "translate":
        language = fallback_language or code_of(language)
    return Transcript(text=body.get("text", "").strip(), language=code_of(language),
                      language_probability=1.0, duration=float(body.get("duration") or 0.0),
                      segments=segments, task=task)
