"""The Twilio Media Streams codec and the conversation model: pure, no server."""

from __future__ import annotations

import base64
import json

import pytest

from streaming.core.conversation import Conversation
from streaming.core.events import Transcription, WordTiming
from streaming.protocols.twilio import (
    Dtmf,
    Mark,
    MediaStream,
    Start,
    Stop,
    TrackAudio,
    TwilioProtocolError,
    parse_message,
)

SID = "MZ00000000000000000000000000000001"


def start(tracks=("inbound", "outbound"), encoding="audio/x-mulaw", rate=8000, channels=1, **extra):
    return json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": SID, "start": {
        "streamSid": SID, "callSid": "CA1", "accountSid": "AC1", "tracks": list(tracks),
        "customParameters": extra, "mediaFormat": {"encoding": encoding, "sampleRate": rate,
                                                   "channels": channels}}})


def media(track, timestamp, payload=b"\x7f" * 160, chunk=1, sid=SID):
    return json.dumps({"event": "media", "sequenceNumber": "2", "streamSid": sid, "media": {
        "track": track, "chunk": str(chunk), "timestamp": str(timestamp),
        "payload": base64.b64encode(payload).decode()}})


def test_full_sequence_in_order():
    stream = MediaStream()
    assert stream.receive(json.dumps({"event": "connected", "protocol": "Call",
                                      "version": "1.0.0"})) == []
    [s] = stream.receive(start(language="es"))
    assert isinstance(s, Start) and s.tracks == ("inbound", "outbound")
    assert s.custom_parameters == {"language": "es"} and s.call_sid == "CA1"
    [a] = stream.receive(media("inbound", 0))
    assert a == TrackAudio("inbound", b"\x7f" * 160)
    [b] = stream.receive(media("outbound", 0))
    assert b.track == "outbound" and len(b.payload) == 160
    [m] = stream.receive(json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": "x"}}))
    assert m == Mark(SID, "x")
    [d] = stream.receive(json.dumps({"event": "dtmf", "streamSid": SID,
                                     "dtmf": {"track": "inbound_track", "digit": "5"}}))
    assert d == Dtmf(SID, "inbound", "5")
    [stop] = stream.receive(json.dumps({"event": "stop", "streamSid": SID,
                                        "stop": {"callSid": "CA1", "accountSid": "AC1"}}))
    assert isinstance(stop, Stop) and stream.stopped
    assert stream.duration("inbound") == 0.02


def test_timestamp_gap_is_filled_with_silence_and_jitter_is_not():
    stream = MediaStream()
    stream.receive(start())
    stream.receive(media("outbound", 0))          # 20 ms
    [jitter] = stream.receive(media("outbound", 25))
    assert jitter.gap_filled == 0
    [late] = stream.receive(media("outbound", 1000))   # 40 ms received, next at 1 s
    assert late.gap_filled == 8000 - 320 and late.gap_refused_ms == 0
    assert stream.duration("outbound") == pytest.approx(1.02)


def test_timestamp_gaps_are_filled_only_as_far_as_audio_was_received():
    """100 messages of 20 ms, each claiming a 600 s jump, add at most `max_lead_ms` of
    silence, not 16 hours; a silent track's gap backed by the other track's audio is filled."""
    stream = MediaStream(max_lead_ms=2_000)
    stream.receive(start(tracks=("inbound",)))
    for i in range(1, 101):
        [audio] = stream.receive(media("inbound", i * 600_000))
        assert audio.gap_filled <= 2 * 8000
    assert stream.duration("inbound") <= 100 * 0.02 + 2.0
    assert audio.gap_refused_ms > 59_000_000

    two = MediaStream(max_lead_ms=2_000)
    two.receive(start())
    for i in range(3000):                        # a minute of caller audio, outbound silent
        two.receive(media("inbound", i * 20))
    [reply] = two.receive(media("outbound", 60_000))
    assert reply.gap_filled == 60 * 8000 and reply.gap_refused_ms == 0


def test_a_flood_before_start_is_fatal():
    stream = MediaStream(max_before_start=10)
    stream.receive(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    for _ in range(9):
        with pytest.raises(TwilioProtocolError, match="before start") as info:
            stream.receive(media("inbound", 0))
        assert not info.value.fatal
    with pytest.raises(TwilioProtocolError, match="without a start") as info:
        stream.receive(media("inbound", 0))
    assert info.value.fatal


@pytest.mark.parametrize("frame, words", [
    ("not json", "not JSON"),
    ("[1]", "JSON object"),
    ('{"foo": 1}', "no 'event'"),
    ('{"event": "hangup"}', "unknown event 'hangup'"),
    (b"\x00\x01", "binary frame"),
])
def test_malformed_frames_name_the_problem(frame, words):
    with pytest.raises(TwilioProtocolError, match=words) as info:
        parse_message(frame)
    assert not info.value.fatal and info.value.code == "twilio_protocol_error"


def test_media_errors_are_not_fatal_and_the_stream_goes_on():
    stream = MediaStream()
    with pytest.raises(TwilioProtocolError, match="before start"):
        stream.receive(media("inbound", 0))
    stream.receive(start(tracks=("inbound",)))
    bad_payload = json.loads(media("inbound", 0))
    bad_payload["media"]["payload"] = "***"
    for frame, words in [
        (json.dumps(bad_payload), "not valid base64"),
        (media("outbound", 0), "which start did not announce"),
        (media("sideways", 0), "unknown track"),
        (media("inbound", 0, sid="MZother"), "does not match"),
        (json.dumps({"event": "media", "streamSid": SID, "media": {
            "track": "inbound", "timestamp": "soon", "payload": ""}}), "'timestamp' must be an integer"),
        (start(), "second start"),
    ]:
        with pytest.raises(TwilioProtocolError, match=words) as info:
            stream.receive(frame)
        assert not info.value.fatal
    [ok] = stream.receive(media("inbound", 0))
    assert len(ok.payload) == 160
    assert stream.errors == 7


@pytest.mark.parametrize("frame", [start(encoding="audio/l16"), start(rate=16000),
                                   start(channels=2), start(tracks=("both",))])
def test_unusable_start_is_fatal(frame):
    with pytest.raises(TwilioProtocolError) as info:
        MediaStream().receive(frame)
    assert info.value.fatal


def test_messages_after_stop_are_refused():
    stream = MediaStream()
    stream.receive(start())
    stream.receive(json.dumps({"event": "stop", "streamSid": SID}))
    with pytest.raises(TwilioProtocolError, match="after stop"):
        stream.receive(media("inbound", 0))


def final(start, text, channel=0):
    words = tuple(WordTiming(w, w, start + i * .1, start + i * .1 + .1, .9)
                  for i, w in enumerate(text.split()))
    return Transcription(channel=channel, start=start, duration=1.0, text=text, words=words,
                         is_final=True, language="en", confidence=.8)


def test_conversation_orders_turns_across_speakers():
    conversation = Conversation(("inbound", "outbound"))
    conversation.add("inbound", final(0.5, "hello there"))
    conversation.add("inbound", final(5.0, "third"))
    conversation.add("outbound", final(2.0, "second"))     # arrives late, slots in between
    assert conversation.add("outbound", final(3.0, "  ")) is None
    conversation.add("outbound", final(5.0, "tie goes to speaker order"))
    turns = conversation.turns
    assert [(t.speaker, t.text) for t in turns] == [
        ("inbound", "hello there"), ("outbound", "second"), ("inbound", "third"),
        ("outbound", "tie goes to speaker order")]
    data = conversation.to_json()
    assert data["speakers"] == ["inbound", "outbound"]
    assert data["turns"][0]["words"][1] == {"word": "there", "punctuated_word": "there",
                                            "start": 0.6, "end": 0.7, "confidence": 0.9}
    text = conversation.to_text({"inbound": "Caller", "outbound": "Agent"})
    assert text.splitlines()[:2] == ["[00:00] Caller  hello there", "[00:02] Agent   second"]
    assert conversation.text_of("inbound") == "hello there third"


def test_public_names_are_sorted_and_exist():
    from streaming.core import conversation
    from streaming.protocols import twilio

    for module in (twilio, conversation):
        assert module.__all__ == sorted(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)
