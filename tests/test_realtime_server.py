"""`/v1/realtime` behaviour that needs a controllable model: servers on 127.0.0.1 whose
engine holds a fake transcriber (slow, or failing), driven by a raw WebSocket client."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import websockets

from streaming.api.server import BackgroundServer
from streaming.audio import Resampler
from streaming.config import ModelConfig, ServerConfig, StreamConfig
from streaming.eval import corpus
from streaming.model.backends.fake import FakeTranscriber
from streaming.model.engine import Engine

from .conftest import timeout


def fake_server(fake: FakeTranscriber, idle_timeout_s: float = 30.0) -> BackgroundServer:
    engine = Engine(ModelConfig(partial_model="", calibrate=False), preloaded={"base": fake})
    config = ServerConfig(port=0, stream=StreamConfig(idle_timeout_s=idle_timeout_s))
    return BackgroundServer(config, engine).start(timeout=timeout(30))


@pytest.fixture(scope="module")
def slow_server() -> Iterator[BackgroundServer]:
    """Each model call takes longer than the (short) idle timeout."""
    server = fake_server(FakeTranscriber("hello world", delay=2.5), idle_timeout_s=1.0)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def failing_server() -> Iterator[BackgroundServer]:
    server = fake_server(FakeTranscriber(fail_on=lambda n: True))
    yield server
    server.stop()


def speech_24k() -> bytes:
    samples = corpus.item("en_lj_LJ001-0004").mono16k()
    resampler = Resampler(16_000, 24_000)
    audio = np.concatenate([resampler.feed(samples), resampler.flush()])
    return audio.astype("<i2").tobytes()


async def manual_turn(server: BackgroundServer) -> list[dict[str, Any]]:
    """A manual-commit OpenAI session: a corpus clip, a commit, then silence from the
    client until the item has an answer."""
    received: list[dict[str, Any]] = []
    async with websockets.connect(f"{server.ws_url}/v1/realtime?intent=transcription") as ws:
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "transcription", "audio": {"input": {"turn_detection": None}}}}))
        await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                  "audio": base64.b64encode(speech_24k()).decode()}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        async with asyncio.timeout(timeout(60)):
            async for raw in ws:
                received.append(json.loads(raw))
                if received[-1]["type"].endswith((".completed", ".failed")):
                    break
    return received


async def test_no_idle_timeout_while_a_transcript_is_pending(slow_server):
    received = await manual_turn(slow_server)
    assert [m for m in received if m["type"] == "error"] == []
    assert received[-1]["type"].endswith(".completed")
    assert received[-1]["transcript"] == "hello world"


async def test_a_failed_transcription_fails_its_item_and_the_session_goes_on(failing_server):
    received = await manual_turn(failing_server)
    committed = next(m for m in received if m["type"] == "input_audio_buffer.committed")
    failed = received[-1]
    assert failed["type"] == "conversation.item.input_audio_transcription.failed"
    assert failed["item_id"] == committed["item_id"]
    assert failed["error"]["code"] == "transcription_failed" and failed["error"]["message"]
    # The server still serves the next session.
    assert (await manual_turn(failing_server))[-1]["type"].endswith(".failed")
