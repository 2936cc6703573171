"""Together's real-time transcription on our `/v1/realtime`: Pipecat's `TogetherSTTService`
pointed at the test server, a raw WebSocket client written from Together's API reference,
and the refusals before the upgrade. Corpus speech, the real model, 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import numpy as np
import pytest
import websockets
from pipecat.frames.frames import VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame
from pipecat.services.together.stt import TogetherSTTService

from streaming.config import ServerConfig
from streaming.eval import corpus
from streaming.eval.scoring import error_rate

from . import pipecat_harness
from .conftest import timeout

CLIPS = ("en_lj_LJ001-0002", "en_lj_LJ001-0004")
HEADERS = {"Authorization": "Bearer not-needed-here", "OpenAI-Beta": "realtime=v1"}


async def test_pipecat_together_stt_service(server):
    """Pipecat runs its own VAD and commits each turn (`turn_detection=none` in its URL);
    here the turns are the corpus clips, marked with the frames its VAD would push."""
    stt = TogetherSTTService(api_key="not-needed-here", base_url=f"{server.ws_url}/v1",
                             sample_rate=16_000)
    async with pipecat_harness.running(stt) as (task, collector):
        for clip in CLIPS:
            await task.queue_frame(VADUserStartedSpeakingFrame())
            await pipecat_harness.send_audio(task, corpus.item(clip).mono16k(), 0.02)
            await task.queue_frame(VADUserStoppedSpeakingFrame())
            collector.arrived.clear()
            async with asyncio.timeout(timeout(90)):
                await collector.arrived.wait()
    assert len(collector.finals) == len(CLIPS)
    for clip, frame in zip(CLIPS, collector.finals):
        assert error_rate([corpus.item(clip).text], frame.text) < 0.15, frame.text
        assert frame.result["type"] == "conversation.item.input_audio_transcription.completed"


async def together_session(url: str, pcm: bytes, before: tuple[dict[str, Any], ...] = (),
                           real_time: bool = False, finals: int = 1, update_at: int = -1,
                           update: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Together's documented client: base64 chunks of 8192 bytes (paced in real time, as
    its sample does, or as fast as possible), then a commit; every message until `finals`
    completed events have arrived. `update` is sent before the chunk at byte `update_at`."""
    received: list[dict[str, Any]] = []
    async with websockets.connect(url, additional_headers=HEADERS) as ws:
        for message in before:
            await ws.send(json.dumps(message))
        chunks = [pcm[:update_at], pcm[update_at:]] if update else [pcm]
        for index, part in enumerate(chunks):
            if index:
                await ws.send(json.dumps(update))
            await send_chunks(ws, part, real_time)
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        async with asyncio.timeout(timeout(120)):
            async for raw in ws:
                received.append(json.loads(raw))
                if sum(m["type"].endswith("completed") for m in received) >= finals:
                    break
    return received


async def send_chunks(ws: Any, pcm: bytes, real_time: bool) -> None:
    for start in range(0, len(pcm), 8192):
        await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                  "audio": base64.b64encode(pcm[start:start + 8192]).decode()}))
        if real_time:
            await asyncio.sleep(8192 / 32_000)


def corpus_pcm(gap_s: float) -> tuple[bytes, list[str]]:
    silence = np.zeros(int(gap_s * 16_000), np.int16)
    parts = [silence]
    for clip in CLIPS:
        parts += [corpus.item(clip).mono16k(), silence]
    return np.concatenate(parts).astype("<i2").tobytes(), [corpus.item(c).text for c in CLIPS]


async def test_raw_client_in_togethers_documented_shape(server):
    pcm, references = corpus_pcm(gap_s=1.5)
    # `language` is ours (Together detects it): English partials run on the fast model.
    url = (f"{server.ws_url}/v1/realtime?model=openai/whisper-large-v3"
           "&input_audio_format=pcm_s16le_16000&language=en")
    vad = {"type": "server_vad", "threshold": 0.5, "min_silence_duration_ms": 700,
           "min_speech_duration_ms": 250, "max_speech_duration_s": 20, "speech_pad_ms": 300}
    messages = await together_session(
        url, pcm, before=({"type": "transcription_session.updated",
                           "session": {"turn_detection": vad}},
                          {"type": "no.such.event"}),
        real_time=True, finals=len(CLIPS))
    created = messages[0]
    assert created["type"] == "session.created"
    assert created["session"]["object"] == "realtime.session"
    assert created["session"]["model"] == "openai/whisper-large-v3"
    updated = [m for m in messages if m["type"] == "transcription_session.updated"]
    assert updated and updated[0]["session"]["turn_detection"] == vad
    errors = [m for m in messages if m["type"] == "error"]
    assert [e["error"]["code"] for e in errors] == ["invalid_value"]
    assert set(errors[0]["error"]) >= {"message", "type", "param", "code"}
    completed = [m for m in messages if m["type"].endswith(".completed")]
    assert len(completed) == len(CLIPS)
    for reference, message in zip(references, completed):
        assert error_rate([reference], message["transcript"]) < 0.15, message
    # With VAD on, each utterance completes by itself; each delta replaces the one before,
    # so the last delta of an item is most of its transcript.
    deltas = [m for m in messages if m["type"].endswith(".delta")]
    assert deltas and all(d["delta"] == d["transcript"] for d in deltas)
    last = {d["item_id"]: d["delta"] for d in deltas}
    assert any(error_rate([c["transcript"]], last.get(c["item_id"], "")) < 0.5 for c in completed)


async def test_raw_client_with_vad_off_commits_one_item(server):
    pcm, references = corpus_pcm(gap_s=1.2)
    url = (f"{server.ws_url}/v1/realtime?model=openai/whisper-large-v3"
           "&input_audio_format=pcm_s16le_16000&turn_detection=none")
    messages = await together_session(url, pcm)
    assert messages[0]["session"]["turn_detection"] is None
    completed = [m for m in messages if m["type"].endswith(".completed")]
    committed = [m for m in messages if m["type"] == "input_audio_buffer.committed"]
    assert len(completed) == 1 and committed[0]["item_id"] == completed[0]["item_id"]
    assert error_rate([" ".join(references)], completed[0]["transcript"]) < 0.15, completed


async def test_vad_settings_change_mid_session(server):
    """Together applies `transcription_session.updated` at any time: the utterance before
    the update completes with the old settings, the one after with the new, times go on."""
    first, second = (corpus.item(c).mono16k() for c in CLIPS)
    pause = np.zeros(24_000, np.int16)
    url = (f"{server.ws_url}/v1/realtime?model=openai/whisper-large-v3"
           "&input_audio_format=pcm_s16le_16000&language=en")
    update = {"type": "transcription_session.updated",
              "session": {"turn_detection": {"min_silence_duration_ms": 900}}}
    head = np.concatenate([pause, first, pause]).astype("<i2").tobytes()
    messages = await together_session(
        url, head + np.concatenate([second, pause]).astype("<i2").tobytes(),
        update_at=len(head), update=update, finals=2)
    updated = [m for m in messages if m["type"] == "transcription_session.updated"]
    assert updated[0]["session"]["turn_detection"]["min_silence_duration_ms"] == 900
    completed = [m for m in messages if m["type"].endswith(".completed")]
    assert [error_rate([corpus.item(c).text], m["transcript"]) < 0.15
            for c, m in zip(CLIPS, completed)] == [True, True], completed
    assert completed[1]["start_ms"] >= len(head) / 32 - 100   # bytes / 32 = ms at 16 kHz
    assert completed[1]["item_id"] != completed[0]["item_id"]


@pytest.fixture(scope="module")
def keyed_server(start_server):
    return start_server(ServerConfig(api_keys=("s3cret",)))


@pytest.mark.parametrize("query, headers, status, code", [
    ("model=openai/whisper-large-v3&input_audio_format=pcm_s16le_16000", {}, 401,
     "missing_api_key"),
    ("model=openai/whisper-large-v3&input_audio_format=pcm_s16le_16000",
     {"Authorization": "Bearer wrong"}, 401, "invalid_api_key"),
    ("model=no-such-model&input_audio_format=pcm_s16le_16000",
     {"Authorization": "Bearer s3cret"}, 400, "model_not_available"),
    ("model=openai/whisper-large-v3&input_audio_format=opus",
     {"Authorization": "Bearer s3cret"}, 400, "invalid_parameter"),
    ("model=gpt-realtime", {"Authorization": "Bearer s3cret"}, 400, "invalid_parameter"),
])
async def test_refused_before_the_upgrade(keyed_server, query, headers, status, code):
    with pytest.raises(websockets.InvalidStatus) as caught:
        async with websockets.connect(f"{keyed_server.ws_url}/v1/realtime?{query}",
                                      additional_headers=headers):
            pass
    assert caught.value.response.status_code == status
    error = json.loads(caught.value.response.body)["error"]
    assert error["code"] == code and error["message"] and "type" in error
