"""Property-based fuzz (hypothesis) of the wire codecs and the query parsing: whatever a
client sends, the answer is the protocol's own error (with a code and, for parameters, the
parameter's name) or a valid result, never another exception; Twilio's stream state keeps
its bounds. Sans-I/O, no server: a few seconds in all."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming.errors import InvalidParameter, ProtocolError
from streaming.protocols import deepgram, deepgram_rest, openai_realtime, together
from streaming.protocols import twilio as proto
from streaming.protocols.realtime import RealtimeSettings, decode, parse_command

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=25)
# Text that is sometimes JSON, sometimes nearly: deep nesting, broken brackets, odd characters.
texts = st.one_of(st.text(max_size=300), json_values.map(json.dumps),
                  st.integers(1, 5000).map(lambda n: "[" * n + "]" * (n % 3)),
                  st.integers(1, 5000).map(lambda n: '{"a":' * n))


def params(names: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    values = st.one_of(st.text(max_size=12), st.integers(-10**6, 10**6).map(str),
                       st.sampled_from(["true", "false", "16_000", " 16000", "１６０００", "en-ZZ",
                                        "en-US", "linear16", "mulaw", "nan", "0.5", ""]))
    return st.lists(st.tuples(st.sampled_from(names) | st.text(max_size=8), values), max_size=8)


@FUZZ
@given(texts)
def test_deepgram_client_text(text):
    try:
        message = deepgram.parse_client_text(text)
    except ProtocolError as exc:
        assert exc.code in ("invalid_json", "invalid_message", "unknown_message_type")
    else:
        assert isinstance(message, (deepgram.KeepAlive, deepgram.Finalize, deepgram.CloseStream))


@FUZZ
@given(params(sorted(deepgram.KNOWN)))
def test_deepgram_query(items):
    try:
        options = deepgram.parse_query(items)
    except InvalidParameter as exc:
        assert exc.param is not None and exc.status == 400
    else:
        assert 8_000 <= options.sample_rate <= 48_000 and 1 <= options.channels <= 8


@FUZZ
@given(params(sorted(deepgram_rest.KNOWN)))
def test_deepgram_prerecorded_query(items):
    try:
        deepgram_rest.parse_query(items)
    except InvalidParameter as exc:
        assert exc.param is not None and exc.status == 400


@FUZZ
@given(params(sorted(together.KNOWN)), params(sorted(openai_realtime.KNOWN)))
def test_realtime_queries(together_items, openai_items):
    for parse, items in ((together.parse_query, together_items),
                         (openai_realtime.parse_query, openai_items)):
        try:
            parse(dict(items))
        except InvalidParameter as exc:
            assert exc.param is not None


@FUZZ
@given(st.one_of(texts, json_values.map(lambda v: json.dumps({"type": "session.update",
                                                              "session": v})),
                 st.builds(lambda kind, audio: json.dumps({"type": kind, "audio": audio}),
                           st.sampled_from(["input_audio_buffer.append",
                                            "input_audio_buffer.commit", "x"]),
                           st.text(max_size=40) | st.binary(max_size=30).map(
                               lambda b: base64.b64encode(b).decode()))))
def test_realtime_client_events(text):
    try:
        parse_command(decode(text), RealtimeSettings())
    except (ProtocolError, InvalidParameter) as exc:
        assert exc.code


SID = "MZ" + "7" * 32
twilio_media = st.builds(
    lambda track, timestamp, payload, sid: json.dumps({
        "event": "media", "streamSid": sid, "media": {
            "track": track, "chunk": "1", "timestamp": timestamp,
            "payload": base64.b64encode(payload).decode()}}),
    st.sampled_from(["inbound", "outbound", "outbound_track", "both", ""]),
    st.one_of(st.integers(-5, 10**12).map(str), st.text(max_size=5), st.integers(0, 10**6)),
    st.binary(max_size=400), st.sampled_from([SID, SID, "MZother"]))
twilio_start = st.builds(
    lambda tracks, rate: json.dumps({"event": "start", "streamSid": SID, "start": {
        "streamSid": SID, "callSid": "CA1", "accountSid": "AC1", "tracks": tracks,
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": rate, "channels": 1}}}),
    st.lists(st.sampled_from(["inbound", "outbound", "inbound_track", "x"]), max_size=3),
    st.sampled_from([8000, 8000, 16000]))
twilio_other = st.sampled_from([
    json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
    json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": "m"}}),
    json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"track": "inbound_track",
                                                            "digit": "5"}}),
    json.dumps({"event": "stop", "streamSid": SID, "stop": {}})])


@FUZZ
@given(st.lists(st.one_of(twilio_media, twilio_start, twilio_other, texts,
                          st.binary(max_size=20)), max_size=40))
def test_twilio_stream(messages):
    stream = proto.MediaStream(max_lead_ms=2_000)
    for message in messages:
        try:
            actions = stream.receive(message)
        except proto.TwilioProtocolError as exc:
            assert exc.code == "twilio_protocol_error"
            if exc.fatal:
                break
            continue
        for action in actions:
            if isinstance(action, proto.TrackAudio):
                assert action.gap_filled >= 0 and action.gap_refused_ms >= 0
        # No track runs ahead of the audio received by more than the lead (plus one payload).
        most = max(stream.received.values(), default=0)
        assert all(samples <= most + 2 * 8000 + 400 for samples in stream.samples.values())
