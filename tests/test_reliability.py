"""Connection churn with random abrupt closes, and a slow reader, against a real server:
no stream leaks (every LiveStream is freed), memory stays bounded, every final reaches a
client that reads slowly, and the server keeps serving throughout."""

from __future__ import annotations

import asyncio
import gc
import json
import random

import httpx
import numpy as np
import pytest
import websockets

from streaming.api.live_stream import LiveStream
from streaming.config import StreamConfig
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate

from .conftest import timeout
from .wsclient import pcm_bytes, results, transcript

RATE = 16_000
CLOSE_MODES = ("abort_mid_audio", "close_mid_audio", "closestream_then_abort",
               "closestream_and_wait", "silent_abort", "garbage_then_abort", "twilio_abort")
START = json.dumps({"event": "start", "streamSid": "MZchurn", "start": {
    "streamSid": "MZchurn", "callSid": "CAchurn", "accountSid": "AC1", "tracks": ["inbound"],
    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


async def one_connection(server, mode: str, audio: bytes, rng: random.Random) -> None:
    if mode == "twilio_abort":
        ws = await websockets.connect(f"{server.ws_url}/v1/twilio")
        await ws.send(START)
        ws.transport.abort()
        return
    url = f"{server.ws_url}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true"
    ws = await websockets.connect(url, max_size=None)
    cut = rng.randrange(3200, len(audio), 3200)
    if mode != "silent_abort":
        for i in range(0, cut, 3200):
            await ws.send(audio[i:i + 3200])
    if mode == "garbage_then_abort":
        await ws.send("[" * 60_000)
        await ws.send(b"\x01")
    if mode in ("closestream_then_abort", "closestream_and_wait"):
        await ws.send(json.dumps({"type": "CloseStream"}))
    if mode == "close_mid_audio":
        await ws.close()
    elif mode == "closestream_and_wait":
        async for _ in ws:
            pass
    else:
        ws.transport.abort()


async def settle(server) -> dict:
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        for _ in range(int(timeout(60) / 0.1)):
            health = (await client.get("/healthz")).json()
            if health["active_streams"] == 0 and all(
                    m["queued"] == 0 and m["running"] == 0 for m in health["models"].values()):
                return health
            await asyncio.sleep(0.1)
    raise AssertionError(f"streams or model jobs left: {health}")


def live_streams() -> int:
    gc.collect()
    return sum(isinstance(o, LiveStream) for o in gc.get_objects())


async def churn(server, rounds: int, rng: random.Random, audio: bytes) -> None:
    for _ in range(rounds):
        modes = [rng.choice(CLOSE_MODES) for _ in range(6)]
        await asyncio.gather(*(one_connection(server, m, audio, rng) for m in modes))


async def test_churn_with_abrupt_closes_leaks_nothing(server):
    rng = random.Random(9)
    clip = item("en_lj_LJ001-0004").mono16k()
    audio = pcm_bytes(np.concatenate([np.zeros(RATE // 4, np.int16), clip]))
    await churn(server, 3, rng, audio)            # warm-up: caches, pools, first allocations
    await settle(server)
    baseline = rss_mb()
    await churn(server, 15, rng, audio)           # 90 connections, every close mode
    await settle(server)
    assert live_streams() == 0
    grown = rss_mb() - baseline
    print(f"RSS {baseline:.0f} MB -> {baseline + grown:.0f} MB over 90 connections")
    assert grown < 60, f"RSS grew {grown:.0f} MB over 90 connections"
    # Still serving: a normal stream gets its final.
    url = f"{server.ws_url}/v1/listen?encoding=linear16&sample_rate=16000"
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(audio)
        await ws.send(json.dumps({"type": "CloseStream"}))
        messages = [json.loads(m) async for m in ws]
    assert error_rate(item("en_lj_LJ001-0004").references(),
                      " ".join(transcript(f) for f in results(messages, True))) < 0.2


@pytest.fixture(scope="module")
def small_buffer_server(start_server):
    return start_server(stream=StreamConfig(send_queue=4))


async def test_slow_reader_gets_every_final(small_buffer_server):
    """The client reads nothing until all its audio is sent, then slowly: partials may be
    dropped (counted in Metadata), finals never are."""
    clips = ["en_lj_LJ001-0002", "en_lj_LJ001-0008", "en_lj_LJ001-0013"]
    gap = np.zeros(RATE, np.int16)
    audio = np.concatenate([part for c in clips for part in (gap, item(c).mono16k())] + [gap])
    url = (f"{small_buffer_server.ws_url}/v1/listen?encoding=linear16&sample_rate=16000"
           "&interim_results=true")
    async with websockets.connect(url, max_size=None, max_queue=1) as ws:
        data = pcm_bytes(audio)
        for i in range(0, len(data), 3200):
            await ws.send(data[i:i + 3200])
        await ws.send(json.dumps({"type": "CloseStream"}))
        messages = []
        async for raw in ws:
            messages.append(json.loads(raw))
            await asyncio.sleep(0.05)
    finals = results(messages, final=True)
    assert len(finals) == len(clips), [transcript(f) for f in finals]
    for final, clip in zip(finals, clips):
        assert error_rate(item(clip).references(), transcript(final)) < 0.25
    metadata = messages[-1]
    assert metadata["type"] == "Metadata"
    assert ws.close_code == 1000
