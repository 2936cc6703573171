"""Deepgram's pre-recorded API (`POST /v1/listen`): query parsing, the response body built from
one transcript per channel, and Deepgram's error body. Sans-I/O: no sockets, no clock.

Shapes follow Deepgram's API reference and the deepgram-sdk's `ListenV1Response` models.
Features that Whisper cannot provide (diarization, summaries, topics, intents, sentiment,
entities, search/replace/redaction, callbacks) are refused with a 400 naming the parameter
when asked for, never silently dropped; formatting switches Whisper makes moot (it always
punctuates and formats) are accepted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..batch.decode import RAW_DEMUXERS, RawFormat
from ..core.session import _confidence, _word_timings
from ..errors import InvalidParameter, StreamscribeError
from ..languages import parse_language
from ..model.transcriber import Transcript
from . import query
from .deepgram import DeepgramEncoder, _boolean, _integer, bias_prompt

# Moot for Whisper, or only bookkeeping: accepted so existing clients run unchanged.
ACCEPTED_BOOLEAN = ("punctuate", "smart_format", "numerals", "profanity_filter", "filler_words",
                    "dictation", "measurements", "mip_opt_out")
ACCEPTED_FREE = ("version", "tier", "token")
# Asked-for features we do not have: refused when true / present.
REFUSED_BOOLEAN = ("diarize", "topics", "intents", "sentiment", "detect_entities")
REFUSED_FREE = ("diarize_model", "summarize", "custom_topic_mode", "custom_intent_mode",
                "callback", "callback_method")
# Deepgram takes these more than once (`keyterm=a&keyterm=b`); every other parameter once.
REPEATABLE = ("keyterm", "keywords", "tag", "extra", "detect_language", "language_hint",
              "search", "replace", "redact", "custom_topic", "custom_intent")
REFUSED_REPEATABLE = ("search", "replace", "redact", "custom_topic", "custom_intent")
IMPLEMENTED = ("model", "language", "encoding", "sample_rate", "channels", "multichannel",
               "utterances", "utt_split", "paragraphs")
KNOWN = frozenset(REPEATABLE + IMPLEMENTED + ACCEPTED_BOOLEAN + ACCEPTED_FREE
                  + REFUSED_BOOLEAN + REFUSED_FREE)


# A pause this long starts a new paragraph; these end a sentence.
PARAGRAPH_PAUSE_S = 1.5
SENTENCE_ENDS = (".", "?", "!", "。", "？", "！", "…")


@dataclass(frozen=True)
class PrerecordedOptions:
    """A validated pre-recorded request (everything but the audio)."""

    model: str | None = None
    language: str | None = "en"                  # None: detect
    languages: tuple[str, ...] | None = None     # detect among these only
    detect_language: bool = False                # report detected_language per channel
    # language=multi without detect_language: each alternative names its `languages`.
    multichannel: bool = False
    utterances: bool = False
    utt_split: float = 0.8
    paragraphs: bool = False                     # asked for, or implied by smart_format
    raw: RawFormat | None = None                 # headerless audio, else the container says
    prompt: str | None = None                    # from keyterm / keywords
    tags: tuple[str, ...] = ()
    extra: dict[str, str] | None = None


def _utt_split(raw: str | None) -> float:
    if raw is None:
        return 0.8
    value = query.canonical_float(raw, "utt_split")
    if not 0.1 <= value <= 10.0:
        raise InvalidParameter(f"utt_split={raw!r}: expected seconds from 0.1 to 10",
                               param="utt_split")
    return value


def _detection(values: list[str]) -> tuple[bool, tuple[str, ...] | None]:
    """`detect_language=true|false`, or a list of codes to detect among (Deepgram allows both)."""
    if len(values) == 1 and values[0].strip().lower() in ("true", "false", "1", "0"):
        return _boolean({"detect_language": values[0]}, "detect_language", False), None
    codes = tuple(dict.fromkeys(code for v in values
                                if (code := parse_language(v, "detect_language")) is not None))
    return True, codes or None


def _raw_format(params: dict[str, str]) -> RawFormat | None:
    encoding = params.get("encoding")
    if encoding is None:
        return None
    encoding = encoding.strip().lower()
    if encoding not in RAW_DEMUXERS:
        # Containers (wav, mp3, flac, ogg/opus...) say their own encoding: then `encoding`
        # is redundant, as Deepgram documents. Headerless audio must be one of these.
        if "sample_rate" in params:
            raise InvalidParameter(f"encoding={encoding!r}: headerless audio must be "
                                   f"{', '.join(RAW_DEMUXERS)}", param="encoding")
        return None
    rate = _integer(params, "sample_rate", None, 8_000, 48_000)
    if rate is None:
        raise InvalidParameter(f"encoding={encoding} is headerless audio: sample_rate is "
                               "required", param="sample_rate")
    channels = _integer(params, "channels", 1, 1, 8)
    return RawFormat(encoding, rate, channels or 1)


def parse_query(items: Iterable[tuple[str, str]]) -> PrerecordedOptions:
    """Validate the query string (name, value pairs in order); raise InvalidParameter naming
    the first bad parameter."""
    grouped = query.grouped(items, KNOWN, REPEATABLE)
    single = {name: values[0] for name, values in grouped.items() if name not in REPEATABLE}
    for name in (*ACCEPTED_BOOLEAN, *REFUSED_BOOLEAN):
        if _boolean(single, name, False) and name in REFUSED_BOOLEAN:
            raise InvalidParameter(f"{name} is not supported by this server", param=name)
    for name in REFUSED_FREE + REFUSED_REPEATABLE:
        if name in grouped:
            raise InvalidParameter(f"{name} is not supported by this server", param=name)
    detect, languages = _detection(grouped.get("detect_language", ["false"]))
    language = parse_language(single.get("language", "multi" if detect else "en"))
    if detect:
        language = None
    extra = {key: value for key, _, value in (e.partition(":") for e in grouped.get("extra", []))}
    return PrerecordedOptions(
        model=single.get("model") or None,
        language=language, languages=languages,
        detect_language=detect,
        multichannel=_boolean(single, "multichannel", False),
        utterances=_boolean(single, "utterances", False),
        utt_split=_utt_split(single.get("utt_split")),
        # Deepgram's smart_format includes paragraphs on pre-recorded audio.
        paragraphs=(_boolean(single, "paragraphs", False)
                    or _boolean(single, "smart_format", False)),
        raw=_raw_format(single),
        prompt=bias_prompt(grouped.get("keyterm", []), grouped.get("keywords", [])),
        tags=tuple(grouped.get("tag", [])),
        extra=extra or None)


def _words(transcript: Transcript) -> list[dict[str, Any]]:
    # No `speaker`: there is no diarization, and Deepgram omits it then.
    return [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.confidence,
             "punctuated_word": w.punctuated_word}
            for w in _word_timings(transcript, 0.0, transcript.duration)]


def _at_pauses(words: list[dict[str, Any]], pause_s: float) -> list[list[dict[str, Any]]]:
    """`words` grouped where the gap between two words is longer than `pause_s`."""
    groups: list[list[dict[str, Any]]] = []
    for word in words:
        if not groups or word["start"] - groups[-1][-1]["end"] > pause_s:
            groups.append([])
        groups[-1].append(word)
    return groups


def _sentences(words: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    sentences: list[list[dict[str, Any]]] = [[]]
    for word in words:
        sentences[-1].append(word)
        if word["punctuated_word"].endswith(SENTENCE_ENDS):
            sentences.append([])
    return [sentence for sentence in sentences if sentence]


def _paragraphs(words: list[dict[str, Any]]) -> dict[str, Any]:
    """Deepgram's `paragraphs`: breaks at long pauses, sentences at end punctuation."""
    paragraphs = [{"sentences": [{"text": " ".join(w["punctuated_word"] for w in sentence),
                                  "start": sentence[0]["start"], "end": sentence[-1]["end"]}
                                 for sentence in _sentences(group)],
                   "num_words": len(group), "start": group[0]["start"], "end": group[-1]["end"]}
                  for group in _at_pauses(words, PARAGRAPH_PAUSE_S)]
    text = "\n\n".join(" ".join(s["text"] for s in p["sentences"]) for p in paragraphs)
    return {"transcript": "\n" + text if text else "", "paragraphs": paragraphs}


def _utterances(transcript: Transcript, channel: int, split_s: float) -> list[dict[str, Any]]:
    """The channel's words grouped at pauses longer than `split_s`."""
    groups = _at_pauses(_words(transcript), split_s)
    return [{"start": g[0]["start"], "end": g[-1]["end"],
             "confidence": round(sum(w["confidence"] for w in g) / len(g), 4),
             "channel": channel, "transcript": " ".join(w["punctuated_word"] for w in g),
             "words": g, "id": str(uuid.uuid4())} for g in groups]


def response(transcripts: Sequence[Transcript], options: PrerecordedOptions, *,
             encoder: DeepgramEncoder, duration: float, sha256: str) -> dict[str, Any]:
    """The `ListenV1Response` body: one channel per transcript (one when not multichannel)."""
    channels = []
    for transcript in transcripts:
        words = _words(transcript)
        alternative: dict[str, Any] = {"transcript": transcript.text.strip(),
                                       "confidence": _confidence(transcript), "words": words}
        if options.paragraphs:
            alternative["paragraphs"] = _paragraphs(words)
        channel: dict[str, Any] = {"alternatives": [alternative]}
        if options.detect_language:
            channel["detected_language"] = transcript.language
            channel["language_confidence"] = round(transcript.language_probability, 4)
        if options.language is None and not options.detect_language:
            alternative["languages"] = [transcript.language]
        channels.append(channel)
    metadata = encoder.metadata(duration, sha256)
    del metadata["type"]
    if options.tags:
        metadata["tags"] = list(options.tags)
    if options.extra:
        metadata["extra"] = options.extra
    results: dict[str, Any] = {"channels": channels}
    if options.utterances:
        results["utterances"] = sorted(
            (u for i, t in enumerate(transcripts) for u in _utterances(t, i, options.utt_split)),
            key=lambda u: (u["start"], u["channel"]))
    return {"metadata": metadata, "results": results}


def error_body(error: StreamscribeError, request_id: str) -> dict[str, Any]:
    """Deepgram's REST error shape; `err_code` carries streamscribe's machine-readable code."""
    body: dict[str, Any] = {"err_code": error.code, "err_msg": error.message,
                            "request_id": request_id}
    if error.param:
        body["param"] = error.param
    return body
