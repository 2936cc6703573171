"""After CloseStream the server keeps reading while it flushes: a client that keeps talking
(LiveKit's Deepgram plugin sends KeepAlive every few seconds) still gets every final and the
Metadata, and audio sent after CloseStream is answered with an Error, not dropped silently."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import websockets

from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate

from .conftest import timeout
from .wsclient import pcm_bytes, results, transcript

RATE = 16_000
CLIPS = ["en_lj_LJ001-0002", "en_lj_LJ001-0004"]


async def test_keepalive_and_audio_during_the_flush_after_closestream(server):
    gap = np.zeros(RATE, np.int16)
    audio = np.concatenate([gap, item(CLIPS[0]).mono16k(), gap, item(CLIPS[1]).mono16k()])
    url = f"{server.ws_url}/v1/listen?encoding=linear16&sample_rate=16000"
    messages: list[dict] = []
    async with websockets.connect(url, max_size=None) as ws:
        data = pcm_bytes(audio)
        for i in range(0, len(data), 3200):
            await ws.send(data[i:i + 3200])
        await ws.send(json.dumps({"type": "CloseStream"}))
        await ws.send(data[:3200])                       # too late: answered with an Error

        async def keep_alive() -> int:
            sent = 0
            try:
                while True:
                    await ws.send(json.dumps({"type": "KeepAlive"}))
                    sent += 1
                    await ws.ping()
                    await asyncio.sleep(0.05)
            except websockets.ConnectionClosed:
                return sent

        talker = asyncio.create_task(keep_alive())
        async for raw in ws:
            messages.append(json.loads(raw))
        keepalives = await asyncio.wait_for(talker, timeout(30))
        code = ws.close_code

    finals = results(messages, final=True)
    assert len(finals) == 2, [transcript(f) for f in finals]
    for final, clip_id in zip(finals, CLIPS):
        assert error_rate(item(clip_id).references(), transcript(final)) < 0.2
    errors = [m for m in messages if m["type"] == "Error"]
    assert [e["code"] for e in errors] == ["audio_after_close"], errors
    assert messages[-1]["type"] == "Metadata" and code == 1000
    assert abs(messages[-1]["duration"] - len(audio) / RATE) < 0.01
    assert keepalives >= 1
