"""OpenAI realtime transcription sessions (`/v1/realtime?intent=transcription`): the query,
and the session objects of `session.created` / `session.updated` (GA) and
`transcription_session.updated` (beta). Sans-I/O. Messages and items: `realtime.py`.

Shapes follow the `openai` SDK's types (`openai.types.realtime`), which the tests parse
every event with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import VadConfig
from ..errors import InvalidParameter
from .realtime import Message, RealtimeSettings, new_id, server_vad

KNOWN = {"intent", "model", "token", "call_id"}

# OpenAI's model names (realtime and transcription) run on the server's default model.
OPENAI_MODEL_PREFIXES = ("gpt-",)

_GA_FORMATS = {"linear16": "audio/pcm", "mulaw": "audio/pcmu", "alaw": "audio/pcma"}
_BETA_FORMATS = {"linear16": "pcm16", "mulaw": "g711_ulaw", "alaw": "g711_alaw"}


def local_model(name: str | None) -> str | None:
    """The model to resolve on this server for an OpenAI name (None: the default)."""
    if name is None or name.startswith(OPENAI_MODEL_PREFIXES):
        return None
    return name


def parse_query(params: Mapping[str, str]) -> RealtimeSettings:
    """Validate the query of an OpenAI transcription session; raise InvalidParameter."""
    for name in params:
        if name not in KNOWN:
            raise InvalidParameter(f"unknown parameter {name!r}", param=name)
    if params.get("intent") != "transcription":
        raise InvalidParameter(
            "this server runs transcription sessions only: connect with ?intent=transcription",
            param="intent")
    if "call_id" in params:
        raise InvalidParameter("call_id: joining calls (WebRTC/SIP) is not supported",
                               param="call_id")
    return RealtimeSettings(model=params.get("model"))


def _turn_detection(settings: RealtimeSettings, vad: VadConfig) -> dict[str, Any] | None:
    return server_vad(settings, vad, prefix_padding_ms=vad.preroll_ms,
                      silence_duration_ms=vad.endpointing_ms)


def _transcription(settings: RealtimeSettings, model_name: str) -> dict[str, Any]:
    return {"model": settings.model or model_name, "language": settings.language,
            "prompt": settings.prompt}


def session_event(kind: str, session_id: str, settings: RealtimeSettings, vad: VadConfig,
                  model_name: str) -> Message:
    """`session.created` or `session.updated` with the effective GA transcription session."""
    audio_format: dict[str, Any] = {"type": _GA_FORMATS[settings.encoding]}
    if settings.encoding == "linear16":
        audio_format["rate"] = settings.sample_rate
    session = {
        "type": "transcription", "object": "realtime.transcription_session", "id": session_id,
        "audio": {"input": {"format": audio_format,
                            "transcription": _transcription(settings, model_name),
                            "turn_detection": _turn_detection(settings, vad),
                            "noise_reduction": None}},
        "include": None}
    return {"type": kind, "event_id": new_id("event"), "session": session}


def beta_session_event(session_id: str, settings: RealtimeSettings, vad: VadConfig,
                       model_name: str) -> Message:
    """`transcription_session.updated`, the beta API's answer to `transcription_session.update`."""
    session = {
        "id": session_id, "object": "realtime.transcription_session",
        "modalities": ["text"], "input_audio_format": _BETA_FORMATS[settings.encoding],
        "input_audio_transcription": _transcription(settings, model_name),
        "turn_detection": _turn_detection(settings, vad),
        "input_audio_noise_reduction": None, "include": None}
    return {"type": "transcription_session.updated", "event_id": new_id("event"),
            "session": session}
