"""Pure tests of the realtime codecs (OpenAI and Together dialects): client events in,
commands out; session events in, protocol messages out. No sockets."""

from __future__ import annotations

import base64
import json

import pytest

from streaming.config import VadConfig
from streaming.core.events import (
    SpeechEnded,
    SpeechStarted,
    StreamWarning,
    Transcription,
    WordTiming,
)
from streaming.errors import InvalidParameter, ProtocolError
from streaming.protocols import openai_realtime, together
from streaming.protocols.realtime import (
    Append,
    Clear,
    Commit,
    RealtimeSettings,
    TranscriptionItems,
    TurnDetection,
    UpdateSession,
    decode,
    parse_command,
)


def command(message: dict, settings: RealtimeSettings | None = None):
    return parse_command(decode(json.dumps(message)), settings or RealtimeSettings())


def words(text: str, start: float = 0.0) -> tuple[WordTiming, ...]:
    return tuple(WordTiming(w.lower().strip(".,"), w, start + i * 0.3, start + i * 0.3 + 0.2, 0.9)
                 for i, w in enumerate(text.split()))


def partial(text: str, stable: int, utterance: int = 0) -> Transcription:
    return Transcription(0, 1.0, 1.0, text, words(text), False, stable_words=stable,
                         utterance=utterance)


def final(text: str, utterance: int = 0, flush: bool = False) -> Transcription:
    return Transcription(0, 1.0, 2.0, text, words(text), True, speech_final=not flush,
                         from_finalize=flush, utterance=utterance, language="en")


def types(messages: list[dict]) -> list[str]:
    return [m["type"].rsplit(".", 1)[-1] for m in messages]


# -- client events --------------------------------------------------------------------------

def test_audio_buffer_events():
    pcm = b"\x01\x00\x02\x00"
    assert command({"type": "input_audio_buffer.append",
                    "audio": base64.b64encode(pcm).decode()}) == Append(pcm)
    assert command({"type": "input_audio_buffer.commit"}) == Commit()
    assert command({"type": "input_audio_buffer.clear"}) == Clear()


@pytest.mark.parametrize("message, code, param", [
    ({"type": "input_audio_buffer.append", "audio": "@@@"}, "invalid_value", "audio"),
    ({"type": "input_audio_buffer.append"}, "missing_required_parameter", "audio"),
    ({"type": "response.create"}, "invalid_value", "type"),
    ({"type": "session.update", "session": {"type": "realtime"}}, "invalid_value", "session.type"),
    ({"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/opus"}}}}},
     "invalid_value", "session.audio.input.format.type"),
    ({"type": "session.update", "session": {"audio": {"input": {"turn_detection": {
        "type": "server_vad", "silence_duration_ms": "long"}}}}},
     "invalid_type", "session.audio.input.turn_detection.silence_duration_ms"),
    ({"type": "transcription_session.update", "session": {"input_audio_transcription": {
        "language": "xx-klingon"}}}, "invalid_value", "session.input_audio_transcription.language"),
])
def test_bad_events_name_the_field(message, code, param):
    with pytest.raises(ProtocolError) as caught:
        command(message)
    assert (caught.value.code, caught.value.param) == (code, param)


@pytest.mark.parametrize("text", ["not json", "[1]", '{"type": 3}', None])
def test_frames_that_are_not_events(text):
    with pytest.raises(ProtocolError):
        decode(text)


def test_ga_session_update_merges_into_the_settings():
    update = command({"type": "session.update", "session": {
        "type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcmu"},
            "transcription": {"model": "gpt-4o-transcribe", "language": "de", "prompt": "Quilter"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 800}}}}})
    assert isinstance(update, UpdateSession) and update.reply == "session.updated"
    settings = update.settings
    assert (settings.encoding, settings.sample_rate) == ("mulaw", 8000)
    assert (settings.model, settings.language, settings.prompt) == ("gpt-4o-transcribe", "de",
                                                                    "Quilter")
    assert settings.turn_detection == TurnDetection(silence_ms=800)
    # A later update that names only turn detection keeps the rest; null means manual mode.
    manual = command({"type": "session.update", "session": {
        "type": "transcription", "audio": {"input": {"turn_detection": None}}}}, settings)
    assert manual.settings.turn_detection is None and manual.settings.language == "de"
    assert manual.settings.stream_options().endpointing_ms == 0


def test_beta_and_together_session_updates():
    beta = command({"type": "transcription_session.update", "session": {
        "input_audio_format": "g711_alaw", "turn_detection": {"prefix_padding_ms": 200}}})
    assert beta.reply == "transcription_session.updated"
    assert beta.settings.encoding == "alaw" and beta.settings.turn_detection.prefix_padding_ms == 200
    vad = command({"type": "transcription_session.updated", "session": {"turn_detection": {
        "type": "server_vad", "threshold": 0.1, "min_silence_duration_ms": 300,
        "min_speech_duration_ms": 100, "max_speech_duration_s": 8, "speech_pad_ms": 150}}})
    config = vad.settings.vad(VadConfig())
    assert (config.aggressiveness, config.endpointing_ms, config.min_speech_ms,
            config.max_utterance_s, config.preroll_ms) == (0, 300, 100, 8.0, 150)
    assert config.speculative_ms <= config.endpointing_ms


# -- queries --------------------------------------------------------------------------------

def test_together_query():
    params = {"model": "openai/whisper-large-v3", "input_audio_format": "pcm_s16le_16000",
              "intent": "transcription", "turn_detection": "none"}
    assert together.is_together(params) and not together.is_together({"intent": "transcription"})
    settings = together.parse_query(params)
    assert settings.sample_rate == 16000 and settings.turn_detection is None
    tuned = together.parse_query({"input_audio_format": "pcm_s16le_16000",
                                  "min_silence_duration_ms": "900"})
    assert tuned.turn_detection == TurnDetection(silence_ms=900)
    for bad, param in [({"input_audio_format": "opus"}, "input_audio_format"),
                       ({"turn_detection": "semantic"}, "turn_detection"),
                       ({"input_audio_format": "pcm_s16le_16000", "threshold": "2"}, "threshold"),
                       ({"input_audio_format": "pcm_s16le_16000", "beam": "5"}, "beam")]:
        with pytest.raises(InvalidParameter) as caught:
            together.parse_query(bad)
        assert caught.value.param == param


def test_openai_query_needs_the_transcription_intent():
    assert openai_realtime.parse_query({"intent": "transcription", "model": "x"}).model == "x"
    with pytest.raises(InvalidParameter) as caught:
        openai_realtime.parse_query({"model": "gpt-realtime"})
    assert caught.value.param == "intent"
    assert openai_realtime.local_model("gpt-4o-transcribe") is None
    assert openai_realtime.local_model("whisper-1") == "whisper-1"


# -- items ----------------------------------------------------------------------------------

def test_server_vad_items_follow_the_utterance():
    items = TranscriptionItems("openai", manual=False, sample_rate=24000, bytes_per_sample=2)
    out = items.encode(SpeechStarted(0, 1.25, 0))
    out += items.encode(partial("Hello there", 1))
    out += items.encode(partial("Hello there my friend", 3))
    out += items.encode(SpeechEnded(0, 3.0, 0))
    out += items.encode(final("Hello there, my friend.", 0))
    assert types(out) == ["speech_started", "delta", "delta", "speech_stopped", "committed",
                          "delta", "completed"]
    assert len({m["item_id"] for m in out}) == 1
    assert out[0]["audio_start_ms"] == 1250 and out[3]["audio_end_ms"] == 3000
    assert [m["delta"] for m in out if m["type"].endswith("delta")] == [
        "Hello", " there my", " friend."]
    assert out[-1]["transcript"] == "Hello there, my friend."
    # A burst too short to be speech: stopped, no item.
    noise = items.encode(SpeechStarted(0, 5.0, 1)) + items.encode(SpeechEnded(0, 5.2, 1, kept=False))
    assert types(noise) == ["speech_started", "speech_stopped"]


def test_commit_and_clear_with_server_vad():
    items = TranscriptionItems("openai", manual=False, sample_rate=24000, bytes_per_sample=2)
    replies, finalize = items.commit()
    assert types(replies) == ["error"] and not finalize
    assert replies[0]["error"]["code"] == "input_audio_buffer_commit_empty"
    items.appended(24000)        # 0.5 s of silence: an empty item
    replies, finalize = items.commit()
    assert types(replies) == ["committed", "completed"] and not finalize
    assert replies[1]["transcript"] == ""
    together = TranscriptionItems("together", manual=False, sample_rate=16000, bytes_per_sample=2)
    together.appended(16000)
    assert together.commit() == ([], False)
    items.encode(SpeechStarted(0, 1.0, 0))
    assert items.commit() == ([], True)      # the session's SpeechEnded will commit it
    items.encode(SpeechStarted(0, 4.0, 1))
    replies, finalize = items.clear()
    assert types(replies) == ["cleared"] and finalize
    # The cleared utterance's events are swallowed.
    assert items.encode(partial("gone", 1, utterance=1)) == []
    assert items.encode(SpeechEnded(0, 5.0, 1)) == []
    assert items.encode(final("gone", utterance=1, flush=True)) == []


def test_manual_mode_joins_the_finals_of_one_commit():
    items = TranscriptionItems("together", manual=True, sample_rate=16000, bytes_per_sample=2)
    items.appended(16000 * 2 * 3)
    out = items.encode(partial("first part", 1))
    out += items.encode(final("First part.", 0))            # a pause inside the buffer
    out += items.encode(partial("second", 0, utterance=1))
    replies, finalize = items.commit()
    assert finalize and types(replies) == ["committed"]
    out += replies + items.encode(final("Second part.", 1, flush=True))
    assert types(out) == ["delta", "delta", "committed", "completed"]
    # Together's deltas replace: each holds the whole text so far, also as `transcript`.
    assert out[1]["delta"] == out[1]["transcript"] == "First part. second"
    assert out[-1]["transcript"] == "First part. Second part."
    assert len({m["item_id"] for m in out}) == 1
    # A clear drops what was buffered, including finals still on their way.
    items.appended(16000)
    items.clear()
    assert items.encode(final("dropped", 2)) == [] and items.encode(final("", 3, flush=True)) == []
    items.appended(16000 * 2)
    replies, _ = items.commit()
    assert types(replies + items.encode(final("kept", 4, flush=True))) == ["committed", "completed"]


def test_failures_and_warnings_become_events():
    items = TranscriptionItems("openai", manual=False, sample_rate=24000, bytes_per_sample=2)
    items.encode(SpeechStarted(0, 1.0, 0))
    items.encode(SpeechEnded(0, 2.0, 0))
    assert items.encode(StreamWarning("transcription_failed", "model crashed")) == []
    failed = items.encode(final("", 0))
    assert types(failed) == ["failed"] and failed[0]["error"]["message"] == "model crashed"
    error = items.encode(StreamWarning("idle_timeout", "no audio"))[0]
    assert error["type"] == "error" and error["error"]["code"] == "idle_timeout"


@pytest.mark.parametrize("text", ["[" * 100_000, '{"type": ' + "[" * 50 + "]" * 50 + "}"])
def test_deeply_nested_events_are_refused_not_recursed(text):
    with pytest.raises(ProtocolError) as caught:
        decode(text)
    assert caught.value.code == "invalid_json"


def test_a_new_stream_continues_the_session_time():
    items = TranscriptionItems("together", manual=False, sample_rate=16000, bytes_per_sample=2)
    first = items.encode(SpeechStarted(0, 1.0, 0))
    items.encode(SpeechEnded(0, 2.0, 0))
    items.encode(final("One.", 0))
    items.next_stream(manual=False, sample_rate=8000, bytes_per_sample=1, offset_s=5.0)
    # The new stream counts from 0 again, utterance 0 included: a new item at 5 s + 1 s.
    second = items.encode(SpeechStarted(0, 1.0, 0)) + items.encode(SpeechEnded(0, 2.0, 0))
    done = items.encode(final("Two.", 0))
    assert second[0]["audio_start_ms"] == 6000 and second[1]["audio_end_ms"] == 7000
    assert second[0]["item_id"] != first[0]["item_id"] == second[2]["previous_item_id"]
    assert done[-1]["start_ms"] == 6000 and done[-1]["transcript"] == "Two."
