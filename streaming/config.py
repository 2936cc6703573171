"""Configuration as frozen dataclasses, read from the environment with one prefix.

Every field has a documented default; `ServerConfig.from_env(environ)` reads
`STREAMSCRIBE_*` variables so tests can inject their own mapping.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping, TYPE_CHECKING, TypeVar

from .booleans import parse_bool
from .errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")

ENV_PREFIX = "STREAMSCRIBE_"


@dataclass(frozen=True)
class VadConfig:
    """Speech segmentation. Times are in ms of audio, counted in samples, never wall clock."""

    aggressiveness: int = 2         # webrtcvad mode 0..3
    frame_ms: int = 30              # webrtcvad frame (10, 20 or 30)
    start_window_ms: int = 150      # speech starts when most of this window is voiced
    start_voiced_ms: int = 90       # ... this much of it
    preroll_ms: int = 300           # audio kept before the detected start (no clipped onsets)
    endpointing_ms: int = 600       # silence that ends an utterance (Deepgram `endpointing`)
    # webrtcvad keeps calling frames speech for ~100 ms after the voice stops (median over the
    # corpus clips, 60-70 ms at p10): that much of the endpointing silence is already behind
    # when the detector first reports silence.
    hangover_ms: int = 90
    speculative_ms: int = 150       # silence after which the final is transcribed ahead
    min_speech_ms: int = 250        # shorter bursts are dropped as noise
    max_utterance_s: float = 25.0   # longer monologues are split at the quietest pause

    def __post_init__(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ConfigError("vad aggressiveness must be 0..3")
        if self.frame_ms not in (10, 20, 30):
            raise ConfigError("vad frame_ms must be 10, 20 or 30")
        if not 0 < self.speculative_ms:
            raise ConfigError("speculative_ms must be positive")


@dataclass(frozen=True)
class StreamConfig:
    """Per-connection behaviour of the streaming endpoints."""

    partial_interval_ms: int = 500       # new audio between partial transcriptions
    max_frame_bytes: int = 1 << 20       # larger binary frames are rejected
    max_pending_finals: int = 32         # beyond this, audio intake waits (backpressure)
    send_queue: int = 256                # outgoing messages per connection
    idle_timeout_s: float = 30.0         # no audio nor KeepAlive for this long: close (Deepgram: 10 s)
    # A final shorter than this gets up to this much of the speech before it as left context
    # (tiny endpointing cuts sentences into pieces); only its own words are kept. 0: off.
    left_context_s: float = 3.0


@dataclass(frozen=True)
class ModelConfig:
    name: str = "base"                   # bundled name or CTranslate2 directory
    compute_type: str = "int8"
    cpu_threads: int = 1
    workers: int = 2                     # concurrent model calls
    beam_size: int = 1
    # "ctranslate2": Whisper on a window sized to the audio (at least `min_window_s`, chosen
    # from the curve in docs/streaming.md); "faster-whisper": every call padded to 30 s.
    backend: str = "ctranslate2"
    min_window_s: float = 10.0
    # Queued calls of one kind run as one model call. Off (1) by default: on one CPU thread per
    # call a batch saves some CPU but every final in it waits for the slowest, which at 32
    # streams cost more latency than it saved (docs/streaming.md); worth it on a GPU.
    max_batch: int = 1
    # English partials on a smaller model ("" = partials on the main model); finals always
    # use the main model.
    partial_model: str = "tiny.en"
    # Time a final and a partial at start-up: /healthz `headroom`, a warning when the model
    # cannot keep one stream live here (streaming/model/calibration.py).
    calibrate: bool = True
    # Scale out: comma-separated base URLs of OpenAI-compatible transcription servers. When
    # set, the main model's calls go to this pool (streamscribe replicas, vLLM, a hosted API)
    # instead of a local model; `upstream_model` is the model name sent to them.
    upstreams: str = ""
    upstream_model: str = "whisper-1"
    upstream_api_key: str = ""

    def __post_init__(self) -> None:
        if self.backend not in ("ctranslate2", "faster-whisper"):
            raise ConfigError("model backend must be ctranslate2 or faster-whisper")
        if not 0 < self.min_window_s <= 30.0:
            raise ConfigError("model min_window_s must be in (0, 30]")
        if self.max_batch < 1:
            raise ConfigError("model max_batch must be at least 1")

    def upstream_urls(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in self.upstreams.split(",") if u.strip())
    # Public names (OpenAI, Together, Deepgram) mapped to local models: "alias=model,...".
    aliases: str = ("whisper-1=base,openai/whisper-large-v3=base,nova-2=base,nova-3=base,"
                    "nova=base,general=base,whisper=base")
    allowed: str = "base,tiny.en"        # local models that may be loaded on request

    def alias_map(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.aliases.split(",") if "=" in item)
        return {k.strip(): v.strip() for k, v in pairs}

    def allowed_models(self) -> tuple[str, ...]:
        names = [n.strip() for n in self.allowed.split(",") if n.strip()]
        return tuple(dict.fromkeys([self.name, *names]))


@dataclass(frozen=True)
class BatchConfig:
    """The batch API (/v1/audio/*): limits as Together publishes them, and long-file splitting."""

    max_upload_bytes: int = 500 * 1000 * 1000    # larger uploads: 413, while the body streams in
    upload_idle_timeout_s: float = 60.0         # no upload bytes for this long: 408
    max_url_bytes: int = 1000 * 1000 * 1000      # larger URL downloads: 400 file_too_large
    url_timeout_s: float = 30.0                 # connect / between-bytes timeout of a URL fetch
    url_total_timeout_s: float = 600.0          # whole URL download
    # Hosts or networks (CIDR) that URL input may reach although private/loopback: "a,b/24".
    url_allowlist: str = ""
    max_duration_s: float = 4 * 3600.0          # longer audio: 400 audio_too_long
    piece_max_s: float = 30.0                   # long audio is cut at pauses into pieces this long
    piece_min_s: float = 20.0                   # ... and no shorter (Whisper pads every call to 30 s)
    parallelism: int = 2                        # pieces of one request in flight at once

    def __post_init__(self) -> None:
        if not 0 < self.piece_min_s <= self.piece_max_s <= 30.0:
            raise ConfigError("batch pieces need 0 < piece_min_s <= piece_max_s <= 30")
        if self.parallelism < 1:
            raise ConfigError("batch parallelism must be at least 1")


@dataclass(frozen=True)
class TwilioConfig:
    """The Twilio Media Streams endpoint (`/v1/twilio`) and its call transcripts."""

    webhook_url: str = ""                # POST each finished call's transcript here ("" = off)
    webhook_timeout_s: float = 10.0
    keep_calls: int = 100                # finished calls kept for GET /v1/twilio/calls/{sid}
    language: str = "en"                 # "multi" to detect; a call's customParameters may override
    model: str = ""                      # "" = the server's default model
    max_subscribers: int = 64            # event-WebSocket listeners per call
    start_timeout_s: float = 5.0         # the `start` message must come this soon after the upgrade
    # With API keys: False = the key must come with the upgrade (header or ?token=), as from a
    # proxy in front; True also takes it from `start`'s custom parameter `token` (how Twilio
    # itself authenticates: it sends no headers and its <Stream> URL takes no query string).
    token_in_start: bool = True
    # Twilio Auth Tokens (comma-separated): a valid X-Twilio-Signature on the upgrade then
    # authenticates the stream, and an upgrade with neither it nor an API key is refused.
    auth_tokens: str = ""
    public_url: str = ""                 # the <Stream url> Twilio signs ("" = from Host header)

    def auth_token_list(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in self.auth_tokens.split(",") if t.strip())


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = ()
    # On SIGTERM/SIGINT: how long open streams and running requests may take to finish
    # (STREAMSCRIBE_DRAIN_S); keep it below the orchestrator's kill timeout.
    drain_s: float = 30.0
    model: ModelConfig = field(default_factory=ModelConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    twilio: TwilioConfig = field(default_factory=TwilioConfig)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Defaults, then `STREAMSCRIBE_*` variables, then keyword overrides.

        Nested fields use the section name: STREAMSCRIBE_MODEL_NAME, STREAMSCRIBE_VAD_AGGRESSIVENESS.
        STREAMSCRIBE_API_KEYS is a comma-separated list.
        """
        env = os.environ if environ is None else environ
        config = cls()
        for f in fields(cls):
            value = getattr(config, f.name)
            if hasattr(value, "__dataclass_fields__"):
                sub = _from_env(type(value), env, f"{ENV_PREFIX}{f.name.upper()}_")
                config = replace(config, **{f.name: sub})
        top: dict[str, Any] = {}
        for key in ("host", "port", "drain_s"):
            raw = env.get(f"{ENV_PREFIX}{key.upper()}")
            if raw is not None:
                top[key] = _convert(raw, type(getattr(config, key)), f"{ENV_PREFIX}{key.upper()}")
        keys = env.get(f"{ENV_PREFIX}API_KEYS")
        if keys:
            top["api_keys"] = tuple(k.strip() for k in keys.split(",") if k.strip())
        return replace(config, **top, **overrides)


def _convert(raw: str, kind: type, variable: str) -> Any:
    try:
        if kind is bool:
            return parse_bool(raw)
        return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{variable}={raw!r}: {exc}") from exc


def _from_env(kind: type[C], env: Mapping[str, str], prefix: str) -> C:
    default = kind()
    values: dict[str, Any] = {}
    for f in fields(kind):
        raw = env.get(prefix + f.name.upper())
        if raw is not None:
            values[f.name] = _convert(raw, type(getattr(default, f.name)), prefix + f.name.upper())
    return kind(**values)
