"""Pure tests of the Deepgram codec; encoded shapes are checked with the official SDK's models."""

import json

import pytest
from deepgram.listen.v1.types import (
    ListenV1Error,
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)

from streaming.core.events import (
    SpeechStarted,
    StreamWarning,
    Transcription,
    UtteranceEnd,
    WordTiming,
)
from streaming.errors import InvalidParameter, ProtocolError
from streaming.protocols import deepgram


def test_defaults_follow_deepgram():
    options = deepgram.parse_query({})
    assert (options.encoding, options.sample_rate, options.channels) == ("linear16", 16000, 1)
    assert options.interim_results is False and options.language == "en"


def test_full_query_is_parsed():
    options = deepgram.parse_query({
        "encoding": "mulaw", "sample_rate": "8000", "channels": "2", "multichannel": "true",
        "interim_results": "true", "endpointing": "300", "utterance_end_ms": "1000",
        "vad_events": "true", "language": "es-ES", "model": "nova-2", "punctuate": "true",
        "smart_format": "false"})
    assert options.encoding == "mulaw" and options.sample_rate == 8000
    assert options.multichannel and options.interim_results and options.vad_events
    assert options.endpointing_ms == 300 and options.utterance_end_ms == 1000
    assert options.language == "es" and options.model == "nova-2"


def test_endpointing_false_turns_it_off_and_multi_detects():
    options = deepgram.parse_query({"endpointing": "false", "language": "multi"})
    assert options.endpointing_ms == 0 and options.language is None


@pytest.mark.parametrize("params,param", [
    ({"encoding": "opus"}, "encoding"),
    ({"sample_rate": "4000"}, "sample_rate"),
    ({"sample_rate": "abc"}, "sample_rate"),
    ({"channels": "0"}, "channels"),
    ({"interim_results": "maybe"}, "interim_results"),
    ({"endpointing": "-5"}, "endpointing"),
    ({"utterance_end_ms": "10"}, "utterance_end_ms"),
    ({"language": "xx"}, "language"),
    ({"punctuate": "yes please"}, "punctuate"),
    ({"bogus": "1"}, "bogus"),
])
def test_invalid_values_name_the_parameter(params, param):
    with pytest.raises(InvalidParameter) as caught:
        deepgram.parse_query(params)
    assert caught.value.param == param and caught.value.status == 400


@pytest.mark.parametrize("text,code", [
    ("not json", "invalid_json"),
    ("[1, 2]", "invalid_message"),
    ('{"type": "Dance"}', "unknown_message_type"),
    ("[" * 100_000, "invalid_json"),                     # RecursionError in json.loads
    ('{"type": "KeepAlive", "x": ' + "[" * 40 + "]" * 40 + "}", "invalid_json"),
    ('{"type": "KeepAlive", "pad": "' + "x" * 70_000 + '"}', "invalid_json"),
])
def test_bad_client_text_has_a_code(text, code):
    with pytest.raises(ProtocolError) as caught:
        deepgram.parse_client_text(text)
    assert caught.value.code == code


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = '{"type": "KeepAlive", "note": "' + "[{" * 100 + '"}'
    assert isinstance(deepgram.parse_client_text(text), deepgram.KeepAlive)


def test_client_messages():
    assert isinstance(deepgram.parse_client_text('{"type":"KeepAlive"}'), deepgram.KeepAlive)
    assert isinstance(deepgram.parse_client_text('{"type":"Finalize"}'), deepgram.Finalize)
    assert isinstance(deepgram.parse_client_text('{"type":"CloseStream"}'), deepgram.CloseStream)


def roundtrip(payload):
    return json.loads(json.dumps(payload))


def test_encoded_messages_validate_against_the_official_sdk_models():
    encoder = deepgram.DeepgramEncoder("base", channels=2)
    words = (WordTiming("hello", "Hello,", 0.5, 0.9, 0.93), WordTiming("world", "world.", 0.9, 1.3, 0.9))
    final = Transcription(1, 0.4, 1.2, "Hello, world.", words, True, True, False, 0.91, "en",
                          latency_ms=120.0, hallucination={"score": 0.1, "flags": [], "likely": False})
    results = ListenV1Results.model_validate(roundtrip(encoder.encode(final)))
    assert results.channel_index == [1, 2] and results.is_final and results.speech_final
    alternative = results.channel.alternatives[0]
    assert alternative.transcript == "Hello, world."
    assert [w.punctuated_word for w in alternative.words] == ["Hello,", "world."]
    assert results.metadata.model_info.name == "base"

    partial = encoder.encode(Transcription(0, 0.0, 0.5, "Hel", (), False, stable_words=0))
    assert ListenV1Results.model_validate(roundtrip(partial)).is_final is False
    assert partial["stable_words"] == 0

    started = ListenV1SpeechStarted.model_validate(roundtrip(encoder.encode(SpeechStarted(0, 1.25))))
    assert started.channel == [0, 2] and started.timestamp == 1.25
    end = ListenV1UtteranceEnd.model_validate(roundtrip(encoder.encode(UtteranceEnd(1, 2.5))))
    assert end.last_word_end == 2.5
    error = ListenV1Error.model_validate(roundtrip(encoder.encode(StreamWarning("invalid_json", "x"))))
    assert error.code == "invalid_json"
    metadata = ListenV1Metadata.model_validate(roundtrip(encoder.metadata(3.5, "ab" * 32)))
    assert metadata.duration == 3.5 and metadata.channels == 2
