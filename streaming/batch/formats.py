"""Transcripts rendered as the batch API's response formats: json, text, srt, vtt, verbose_json.

Shapes follow OpenAI's `/v1/audio/transcriptions`: `verbose_json` names the language in full
("english") and includes `words` only when word timestamps were asked for. `segments` are
always there: Together's schema requires them even when only words were asked for.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..languages import name_of
from ..model.transcriber import Segment, Transcript

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
MEDIA_TYPES = {"json": "application/json", "verbose_json": "application/json",
               "text": "text/plain; charset=utf-8", "srt": "application/x-subrip; charset=utf-8",
               "vtt": "text/vtt; charset=utf-8"}


def timestamp(seconds: float, separator: str) -> str:
    """00:01:02,345 (srt, separator ",") or 00:01:02.345 (vtt, separator ".")."""
    millis = max(0, int(round(seconds * 1000)))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cues(segments: Iterable[Segment], separator: str) -> Iterable[tuple[int, str]]:
    number = 0
    for segment in segments:
        text = segment.text.strip()
        if not text:
            continue
        number += 1
        times = f"{timestamp(segment.start, separator)} --> {timestamp(segment.end, separator)}"
        yield number, f"{times}\n{text}\n"


def to_srt(transcript: Transcript) -> str:
    return "\n".join(f"{n}\n{cue}" for n, cue in _cues(transcript.segments, ","))


def to_vtt(transcript: Transcript) -> str:
    return "WEBVTT\n\n" + "\n".join(cue for _, cue in _cues(transcript.segments, "."))


def to_verbose_json(transcript: Transcript, granularities: frozenset[str] = frozenset()) -> dict[str, Any]:
    language = "english" if transcript.task == "translate" else name_of(transcript.language)
    body: dict[str, Any] = {"task": transcript.task, "language": language,
                  "duration": round(transcript.duration, 3), "text": transcript.text}
    body["segments"] = [
        {"id": s.id, "seek": s.seek, "start": round(s.start, 3), "end": round(s.end, 3),
         "text": s.text, "tokens": list(s.tokens), "temperature": s.temperature,
         "avg_logprob": s.avg_logprob, "compression_ratio": s.compression_ratio,
         "no_speech_prob": s.no_speech_prob}
        for s in transcript.segments]
    if "word" in granularities:
        body["words"] = [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)}
                         for w in transcript.words]
    body["usage"] = usage(transcript)
    return body


def usage(transcript: Transcript) -> dict[str, Any]:
    return {"type": "duration", "seconds": round(transcript.duration, 3)}


def render(transcript: Transcript, response_format: str,
           granularities: frozenset[str] = frozenset()) -> tuple[str | dict[str, Any], str]:
    """(body, media type): a dict for the JSON formats, text for the others."""
    if response_format == "json":
        body: str | dict[str, Any] = {"text": transcript.text, "usage": usage(transcript)}
    elif response_format == "verbose_json":
        body = to_verbose_json(transcript, granularities)
    elif response_format == "text":
        body = transcript.text + "\n"
    elif response_format == "srt":
        body = to_srt(transcript)
    elif response_format == "vtt":
        body = to_vtt(transcript)
    else:
        raise ValueError(f"unknown response format {response_format!r}")
    return body, MEDIA_TYPES[response_format]
