"""Pure parts of the client library: message parsing, options and URLs, captions, the API."""

from __future__ import annotations

import io
import json

import pytest

import clients
from clients import (
    AudioLost,
    Backoff,
    Metadata,
    ServerError,
    SpeechStarted,
    StreamOptions,
    Transcript,
    UnknownMessage,
    UtteranceEnd,
    final_text,
    listen_url,
    parse_event,
)
from clients.captions import CaptionPrinter, event_json, timestamp
from clients.errors import ConnectionRejected

RESULTS = {
    "type": "Results", "channel_index": [1, 2], "start": 1.5, "duration": 2.0,
    "is_final": True, "speech_final": True, "from_finalize": False,
    "channel": {"alternatives": [{"transcript": "Hello, world.", "confidence": 0.9, "words": [
        {"word": "hello", "start": 1.6, "end": 1.9, "confidence": 0.95, "punctuated_word": "Hello,"},
        {"word": "world", "start": 2.0, "end": 2.4, "confidence": 0.85}]}]},
    "metadata": {"request_id": "r"}, "language": "en", "latency_ms": 120.5,
    "hallucination": {"score": 0.1, "flags": [], "likely": False},
}


def test_parse_results_with_words_channel_and_extras():
    event = parse_event(json.dumps(RESULTS))
    assert isinstance(event, Transcript)
    assert (event.text, event.is_final, event.speech_final, event.channel, event.channels) == \
        ("Hello, world.", True, True, 1, 2)
    assert event.end == pytest.approx(3.5) and event.language == "en"
    assert event.latency_ms == 120.5 and not event.likely_hallucination
    assert [w.text for w in event.words] == ["Hello,", "world"]   # punctuated_word falls back
    assert event.raw == RESULTS
    moved = event.shifted(10)
    assert moved.start == 11.5 and moved.words[0].start == pytest.approx(11.6)


def test_parse_other_messages():
    assert parse_event('{"type":"SpeechStarted","channel":[0,1],"timestamp":0.5}') == \
        SpeechStarted(timestamp=0.5)
    assert parse_event({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 2.5}) == \
        UtteranceEnd(last_word_end=2.5)
    assert parse_event({"type": "Metadata", "request_id": "x", "duration": 3.0,
                        "channels": 2}) == Metadata(request_id="x", duration=3.0, channels=2)
    # Deepgram's own Error shape and ours
    assert parse_event({"type": "Error", "variant": "bad", "description": "d"}) == \
        ServerError(code="bad", message="d")
    assert parse_event({"type": "Error", "code": "odd_frame", "message": "m"}).code == "odd_frame"
    assert parse_event({"type": "Welcome"}) == UnknownMessage(type="Welcome")
    with pytest.raises(ValueError):
        parse_event("[1, 2]")


def test_final_text_joins_finals_of_one_or_all_channels():
    final = parse_event(RESULTS)
    partial = parse_event({**RESULTS, "is_final": False})
    other = parse_event({**RESULTS, "channel_index": [0, 2]})
    assert final_text([partial, final, other]) == "Hello, world. Hello, world."
    assert final_text([partial, final, other], channel=1) == "Hello, world."


def test_options_query_and_urls():
    options = StreamOptions(language="de", endpointing=False, extra=(("tag", "a b"),))
    assert options.query() == [("encoding", "linear16"), ("sample_rate", "16000"),
                               ("channels", "1"), ("interim_results", "true"),
                               ("endpointing", "false"), ("vad_events", "true"),
                               ("language", "de"), ("tag", "a b")]
    assert options.bytes_per_second == 32000
    assert StreamOptions(encoding="mulaw", sample_rate=8000, channels=2).frame_bytes == 2
    assert listen_url("http://h:8000", StreamOptions(model="base")).startswith(
        "ws://h:8000/v1/listen?encoding=linear16&")
    assert listen_url("https://h/v1/listen?token=k&language=en",
                      StreamOptions(language="fr")).startswith("wss://h/v1/listen?token=k&language=fr")
    assert listen_url("127.0.0.1:9") == "ws://127.0.0.1:9/v1/listen"
    with pytest.raises(ValueError):
        StreamOptions(encoding="opus")
    with pytest.raises(ValueError):
        listen_url("ftp://h")


def test_rejection_explains_the_server_body():
    body = json.dumps({"err_code": "invalid_parameter", "err_msg": "sample_rate=5: too low",
                       "error": {"message": "sample_rate=5: too low", "param": "sample_rate"}})
    error = ConnectionRejected(400, body)
    assert error.permanent and error.message == "sample_rate=5: too low (parameter sample_rate)"
    assert not ConnectionRejected(503, "busy").permanent


def test_backoff_grows_and_caps():
    backoff = Backoff(initial=0.5, factor=2, maximum=3, jitter=0)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]
    jittered = Backoff(initial=1, jitter=0.1)
    assert jittered.delay(1, rand=lambda: 0.0) == pytest.approx(0.9)
    assert jittered.delay(1, rand=lambda: 1.0) == pytest.approx(1.1)


def test_captions_rewrite_the_partial_and_commit_finals():
    out, err = io.StringIO(), io.StringIO()
    printer = CaptionPrinter(out, err, live=True)
    printer.show(parse_event({**RESULTS, "is_final": False, "channel_index": [0, 1]}))
    printer.show(parse_event({**RESULTS, "channel_index": [0, 1]}))
    printer.show(parse_event({**RESULTS, "channel_index": [0, 1], "start": 4.0, "hallucination": {
        "likely": True, "flags": ["stock_phrase"]}}))
    printer.show(AudioLost(start=3.0, duration=1.5, reason="buffer_full"))
    text = out.getvalue()
    assert text.startswith("\r\x1b[2K") and "Hello, world." in text
    assert text.endswith("\r\x1b[2K[00:01.5] Hello, world.\n")     # the flagged final is hidden
    assert printer.finals == [(1.5, "Hello, world.")]
    assert "audio lost: 1.5 s at 00:03.0" in err.getvalue()

    piped = io.StringIO()
    quiet = CaptionPrinter(piped, io.StringIO(), live=False)
    quiet.show(parse_event({**RESULTS, "is_final": False}))
    quiet.show(parse_event(RESULTS))
    assert piped.getvalue() == "[00:01.5] [ch1] Hello, world.\n"
    assert timestamp(3725.25) == "1:02:05.2"
    assert json.loads(event_json(parse_event(RESULTS))) == RESULTS
    assert json.loads(event_json(AudioLost(1.0, 2.0, "closed")))["type"] == "AudioLost"


def test_public_api_is_sorted_and_complete():
    assert clients.__all__ == sorted(clients.__all__)
    assert all(hasattr(clients, name) for name in clients.__all__)
