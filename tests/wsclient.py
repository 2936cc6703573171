"""A minimal raw-protocol WebSocket driver for server tests (the client library has its own tests)."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import websockets

from .conftest import timeout


async def stream(url: str, data: bytes, *, bytes_per_second: int = 32_000, chunk: int = 3_200,
                 speed: float = 1.0, before_close=(), headers=None, subprotocols=None,
                 close: bool = True) -> list[dict]:
    """Send `data` in chunks paced at `speed` x real time, then CloseStream; return every
    server message with its arrival time (`_at`, seconds since the first frame was sent)."""
    received: list[dict] = []
    async with websockets.connect(url, additional_headers=headers, subprotocols=subprotocols,
                                  max_size=None) as ws:
        start = time.perf_counter()

        async def reader():
            async for message in ws:
                payload = json.loads(message)
                payload["_at"] = time.perf_counter() - start
                received.append(payload)

        task = asyncio.create_task(reader())
        for i in range(0, len(data), chunk):
            await ws.send(data[i:i + chunk])
            if speed:
                target = (i + chunk) / bytes_per_second / speed
                await asyncio.sleep(max(0.0, target - (time.perf_counter() - start)))
        for message in before_close:
            await ws.send(message)
        if close:
            await ws.send(json.dumps({"type": "CloseStream"}))
        await asyncio.wait_for(task, timeout(120))
    return received


def results(messages: list[dict], final: bool | None = None) -> list[dict]:
    return [m for m in messages if m["type"] == "Results"
            and (final is None or m["is_final"] == final)]


def transcript(message: dict) -> str:
    return message["channel"]["alternatives"][0]["transcript"]


def pcm_bytes(samples: np.ndarray) -> bytes:
    return samples.astype("<i2").tobytes()
