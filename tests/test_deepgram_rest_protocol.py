"""The pre-recorded codec without sockets: query parsing, model names, keyterm bounds, and the
response built from transcripts (validated by the deepgram-sdk's own model)."""

from __future__ import annotations

import pytest
from deepgram.types.listen_v1response import ListenV1Response

from streaming.batch.decode import RawFormat
from streaming.errors import InvalidParameter
from streaming.model.transcriber import Segment, Transcript, Word
from streaming.protocols import deepgram, deepgram_rest


def test_query_defaults_and_features():
    options = deepgram_rest.parse_query([("model", "nova-3"), ("smart_format", "true"),
                                         ("keyterm", "Kubernetes"), ("keyterm", "LJ Speech"),
                                         ("keywords", "gRPC:2"), ("keywords", "NOT_GIVEN"),
                                         ("tag", "a"), ("tag", "b"), ("extra", "k:v")])
    assert options.language == "en" and not options.detect_language
    assert options.prompt == "Kubernetes, LJ Speech, gRPC."
    assert options.tags == ("a", "b") and options.extra == {"k": "v"}
    detect = deepgram_rest.parse_query([("detect_language", "true")])
    assert detect.language is None and detect.detect_language and detect.languages is None
    among = deepgram_rest.parse_query([("detect_language", "en"), ("detect_language", "de")])
    assert among.languages == ("en", "de")
    multi = deepgram_rest.parse_query([("language", "multi")])
    assert multi.language is None and not multi.detect_language
    raw = deepgram_rest.parse_query([("encoding", "mulaw"), ("sample_rate", "8000"),
                                     ("channels", "2"), ("multichannel", "true")])
    assert raw.raw == RawFormat("mulaw", 8000, 2) and raw.multichannel
    # A container's own encoding named: redundant, as Deepgram documents; no raw decoding.
    assert deepgram_rest.parse_query([("encoding", "opus")]).raw is None


@pytest.mark.parametrize("items, param", [
    ([("nonsense", "1")], "nonsense"),
    ([("model", "a"), ("model", "b")], "model"),
    ([("diarize", "true")], "diarize"),
    ([("summarize", "v2")], "summarize"),
    ([("callback", "http://x")], "callback"),
    ([("utt_split", "inf")], "utt_split"),
    ([("encoding", "linear16")], "sample_rate"),
    ([("encoding", "opus"), ("sample_rate", "16000")], "encoding"),
    ([("keyterm", "x" * 700)], "keyterm"),
    ([("keyterm", f"t{i}") for i in range(101)], "keyterm"),
    ([("detect_language", "xx")], "detect_language"),
])
def test_bad_queries_name_the_parameter(items, param):
    with pytest.raises(InvalidParameter) as refused:
        deepgram_rest.parse_query(items)
    assert refused.value.param == param


def test_model_names():
    for name in ("nova-3", "nova-3-general", "nova-2-phonecall", "enhanced-meeting", "base",
                 "whisper-large", "phonecall", "nova"):
        assert deepgram.is_deepgram_model(name), name
    for name in ("gpt-4o-transcribe", "tiny.en", "large-v3", "novak"):
        assert not deepgram.is_deepgram_model(name), name
    known = {"base", "tiny.en", "nova-3"}.__contains__
    assert deepgram.served_model("nova-3", known) == "nova-3"          # configured alias
    assert deepgram.served_model("nova-2-meeting", known) is None      # the default model
    assert deepgram.served_model("gpt-9", known) == "gpt-9"            # refused by the engine
    assert deepgram.served_model(None, known) is None


def test_live_query_takes_keyterms_too():
    options = deepgram.parse_query([("keyterm", "Gutenberg"), ("keyterm", "Caxton")])
    assert options.prompt == "Gutenberg, Caxton."
    assert deepgram.parse_query({"keywords": "Caxton:3"}).prompt == "Caxton."


def _transcript(words: list[tuple[str, float, float]], language: str = "en") -> Transcript:
    segment = Segment(0, 0, words[0][1], words[-1][2], " ".join(w for w, _, _ in words), (1,),
                      0.0, -0.2, 1.2, 0.01, tuple(Word(w, a, b, 0.9) for w, a, b in words))
    return Transcript(segment.text, language, 0.97, 6.0, (segment,))


def test_response_shape_with_utterances_and_channels():
    left = _transcript([("Hello,", 0.1, 0.5), ("world.", 0.5, 0.9), ("Again", 2.5, 2.9)])
    right = _transcript([("Hallo", 1.0, 1.4)], language="de")
    options = deepgram_rest.parse_query([("multichannel", "true"), ("utterances", "true"),
                                         ("detect_language", "true"), ("paragraphs", "true")])
    encoder = deepgram.DeepgramEncoder("base", 2, "req-1", requested_model="nova-3")
    body = deepgram_rest.response([left, right], options, encoder=encoder, duration=6.0,
                                  sha256="ab" * 32)
    parsed = ListenV1Response.model_validate(body)
    assert parsed.metadata.request_id == "req-1" and parsed.metadata.channels == 2
    assert [c.detected_language for c in parsed.results.channels] == ["en", "de"]
    words = body["results"]["channels"][0]["alternatives"][0]["words"]
    assert words[0] == {"word": "hello", "start": 0.1, "end": 0.5, "confidence": 0.9,
                        "punctuated_word": "Hello,"}
    utterances = parsed.results.utterances
    assert [(u.channel, u.transcript) for u in utterances] == [
        (0, "Hello, world."), (1, "Hallo"), (0, "Again")]
    assert "type" not in body["metadata"]
    paragraphs = parsed.results.channels[0].alternatives[0].paragraphs
    assert paragraphs.transcript == "\nHello, world.\n\nAgain"     # a 1.6 s pause between
    first = paragraphs.paragraphs[0]
    assert (first.num_words, first.start, first.end) == (2, 0.1, 0.9)
    assert [s.text for s in first.sentences] == ["Hello, world."]


def test_smart_format_implies_paragraphs():
    assert deepgram_rest.parse_query([("smart_format", "true")]).paragraphs
    assert not deepgram_rest.parse_query([("punctuate", "true")]).paragraphs
