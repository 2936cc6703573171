"""Together AI real-time transcription (`/v1/realtime?model=…&input_audio_format=pcm_s16le_16000`):
the query (audio format and VAD parameters) and the session messages. Sans-I/O. Messages
and items: `realtime.py` (Together's client messages are OpenAI's; its deltas replace).

Shapes follow Together's API reference for `GET /realtime`: `session.created`,
`transcription_session.updated` (the client's update and the server's confirmation share
the name), VAD parameters in the query or in `session.turn_detection`, `turn_detection=none`
or null for manual commits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..config import VadConfig
from ..errors import InvalidParameter, ProtocolError
from ..languages import parse_language
from .query import canonical_float
from .realtime import Message, RealtimeSettings, new_id, parse_turn_detection, server_vad

VAD_PARAMS = ("threshold", "min_silence_duration_ms", "min_speech_duration_ms",
              "max_speech_duration_s", "speech_pad_ms")
KNOWN = {"model", "input_audio_format", "turn_detection", "language", "intent", "token",
         *VAD_PARAMS}

_FORMAT = re.compile(r"pcm_s16le_(\d+)")


def is_together(params: Mapping[str, str]) -> bool:
    """Together's clients name the audio format or VAD in the query; OpenAI's never do."""
    return any(name in params for name in ("input_audio_format", "turn_detection", *VAD_PARAMS))


def parse_query(params: Mapping[str, str]) -> RealtimeSettings:
    """Validate a Together query; raise InvalidParameter naming the first bad parameter."""
    for name in params:
        if name not in KNOWN:
            raise InvalidParameter(f"unknown parameter {name!r}", param=name)
    audio_format = params.get("input_audio_format", "pcm_s16le_16000")
    match = _FORMAT.fullmatch(audio_format)
    if match is None or not 8_000 <= int(match.group(1)) <= 48_000:
        raise InvalidParameter(
            f"input_audio_format={audio_format!r}: expected pcm_s16le_RATE, e.g. pcm_s16le_16000",
            param="input_audio_format")
    mode = params.get("turn_detection", "server_vad").lower()
    if mode not in ("server_vad", "none", "null"):
        raise InvalidParameter(f"turn_detection={mode!r}: expected server_vad or none",
                               param="turn_detection")
    vad: dict[str, Any] = {}
    for name in VAD_PARAMS:
        if name in params:
            vad[name] = canonical_float(params[name], name)
    try:
        turn = None if mode != "server_vad" else parse_turn_detection(vad, None, "query")
    except ProtocolError as exc:
        raise InvalidParameter(exc.message, param=(exc.param or "").removeprefix("query.")) \
            from None
    language = params.get("language")
    return RealtimeSettings(sample_rate=int(match.group(1)), model=params.get("model"),
                            language=parse_language(language) if language else None,
                            turn_detection=turn)


def _turn_detection(settings: RealtimeSettings, vad: VadConfig) -> dict[str, Any] | None:
    return server_vad(settings, vad, min_silence_duration_ms=vad.endpointing_ms,
                      min_speech_duration_ms=vad.min_speech_ms,
                      max_speech_duration_s=vad.max_utterance_s, speech_pad_ms=vad.preroll_ms)


def session_created(session_id: str, settings: RealtimeSettings, vad: VadConfig,
                    model_name: str) -> Message:
    return {"type": "session.created", "event_id": new_id("event"),
            "session": {"id": session_id, "object": "realtime.session", "modalities": ["audio"],
                        "model": settings.model or model_name,
                        "input_audio_format": f"pcm_s16le_{settings.sample_rate}",
                        "turn_detection": _turn_detection(settings, vad)}}


def session_updated(settings: RealtimeSettings, vad: VadConfig) -> Message:
    return {"type": "transcription_session.updated", "event_id": new_id("event"),
            "session": {"turn_detection": _turn_detection(settings, vad)}}
