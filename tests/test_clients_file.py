"""The client library and `streamscribe stream` against the real server on corpus speech."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streaming.eval import corpus
from clients import (
    ConnectionRejected,
    Metadata,
    SpeechStarted,
    StreamClient,
    StreamOptions,
    Transcript,
    connect_sync,
    final_text,
    read_audio,
    stream_file,
)
from clients.file_stream import audio_chunks
from streaming.eval.scoring import error_rate

from .conftest import timeout

CLIP = "en_ls_1089-134686-0000"     # 10.4 s, LibriSpeech test-clean


async def test_file_client_finals_match_reference_and_partials_come_first(server):
    item = corpus.item(CLIP)
    events = await stream_file(server.ws_url, item.audio, speed=1.0,
                               options=StreamOptions(language="en"))
    transcripts = [e for e in events if isinstance(e, Transcript)]
    finals = [e for e in transcripts if e.is_final and e.text.strip()]
    assert finals, events
    first_final = transcripts.index(finals[0])
    assert any(not e.is_final and e.text.strip() for e in transcripts[:first_final]), [
        (e.is_final, e.start, e.text) for e in transcripts]
    assert any(isinstance(e, SpeechStarted) for e in events)
    assert isinstance(events[-1], Metadata)
    assert events[-1].duration == pytest.approx(item.duration_s, abs=0.1)
    wer = error_rate(item.references(), final_text(events))
    assert wer < 0.15, (wer, final_text(events))
    for word in (w for f in finals for w in f.words):
        assert 0 <= word.start <= word.end <= item.duration_s + 0.1


async def test_finalize_flushes_the_current_utterance(server):
    samples = corpus.item("en_timit_LDC93S1").mono16k()
    async with StreamClient(server.ws_url, StreamOptions(interim_results=False)) as conn:
        for chunk in audio_chunks(samples.reshape(-1, 1), 16000, 100):
            await conn.send(chunk)
        await conn.finalize()
        async for event in conn:
            if isinstance(event, Transcript) and event.is_final:
                break
    assert event.from_finalize and "suit" in event.text.lower(), event


async def test_bad_option_is_rejected_with_the_parameter_named(server):
    with pytest.raises(ConnectionRejected) as caught:
        async with StreamClient(server.ws_url, StreamOptions(extra=(("encoding_x", "1"),))):
            pass
    assert caught.value.status == 400 and "encoding_x" in caught.value.message


def test_sync_client_and_non_wav_input(server, tmp_path):
    from bench.audio_files import encode

    item = corpus.item("en_lj_LJ001-0004")
    flac = tmp_path / "clip.flac"              # FLAC goes through PyAV in read_audio
    samples = item.mono16k()
    flac.write_bytes(encode(samples, "flac_16k"))
    decoded, rate = read_audio(flac)
    assert rate == 16000 and np.array_equal(decoded[:, 0], samples)

    with connect_sync(server.ws_url, StreamOptions(language="en")) as stream:
        for chunk in audio_chunks(decoded, rate, 200):
            stream.send(chunk)
    events = list(stream)
    assert isinstance(events[-1], Metadata)
    assert error_rate(item.references(), final_text(events)) < 0.15, final_text(events)


def test_stream_command_prints_json_lines(server, capsys):
    from streaming.cli import main

    item = corpus.item("en_lj_LJ001-0004")
    assert main(["stream", str(item.audio), "--speed", "0", "--json", "--url", server.ws_url,
                 "--language", "en"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["type"] == "Metadata"
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in lines
                    if m["type"] == "Results" and m["is_final"])
    assert error_rate(item.references(), text) < 0.15, text


async def test_token_auth(start_server):
    secured = start_server(api_keys=("s3cret",))
    with pytest.raises(ConnectionRejected) as caught:
        async with StreamClient(secured.ws_url, token="wrong"):
            pass
    assert caught.value.status == 401 and caught.value.permanent
    item = corpus.item("en_lj_LJ001-0004")
    for scheme in ("Token", "Bearer"):
        events = await stream_file(secured.ws_url, item.audio, speed=0, token="s3cret",
                                   auth_scheme=scheme, options=StreamOptions(language="en"))
        assert isinstance(events[-1], Metadata)
    assert error_rate(item.references(), final_text(events)) < 0.15
