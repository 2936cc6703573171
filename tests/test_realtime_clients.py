"""Our own clients over `/v1/realtime`: `stream_file(..., protocol=...)` and
`streamscribe stream --protocol openai|together` on corpus speech against the real server."""

from __future__ import annotations

import json

import pytest

from clients import (
    Metadata,
    SpeechStarted,
    StreamOptions,
    Transcript,
    final_text,
    stream_file,
)
from streaming.eval import corpus
from streaming.eval.scoring import error_rate

CLIP = "en_ls_1089-134686-0000"     # 10.4 s, LibriSpeech test-clean


@pytest.mark.parametrize("protocol", ["openai", "together"])
async def test_stream_file_over_a_realtime_protocol(server, protocol):
    item = corpus.item(CLIP)
    events = await stream_file(server.ws_url, item.audio, speed=0, protocol=protocol,
                               options=StreamOptions(language="en", endpointing=500))
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final and e.text]
    assert finals and any(isinstance(e, SpeechStarted) for e in events)
    assert isinstance(events[-1], Metadata)
    assert events[-1].duration == pytest.approx(item.duration_s, abs=0.1)
    assert error_rate(item.references(), final_text(events)) < 0.15, final_text(events)
    assert all(0 <= f.start <= f.end <= item.duration_s + 0.5 for f in finals)


def test_stream_command_with_protocol_prints_the_servers_events(server, capsys):
    from streaming.cli import main

    item = corpus.item("en_lj_LJ001-0004")
    assert main(["stream", str(item.audio), "--speed", "0", "--json", "--url", server.ws_url,
                 "--language", "en", "--protocol", "together"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["type"] == "Metadata"
    text = " ".join(m["transcript"] for m in lines
                    if m["type"] == "conversation.item.input_audio_transcription.completed")
    assert error_rate(item.references(), text) < 0.15, text
