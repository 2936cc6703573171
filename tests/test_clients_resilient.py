"""ResilientStream: reconnection with backoff, nothing sent twice, every unsent byte reported.

Two layers: a fake `/v1/listen` server (websockets, no model) that records every byte and
breaks the first connection, with a connector that fails on cue; then the real server
behind a fault-injecting TCP proxy that cuts the connection mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import numpy as np
import pytest
from websockets.asyncio.server import serve

from streaming.eval import corpus
from clients import (
    AudioLost,
    Backoff,
    CannotConnect,
    ConnectionRejected,
    Reconnected,
    Reconnecting,
    ResilientStream,
    StreamOptions,
    Transcript,
    connect,
    final_text,
)
from clients.file_stream import send_paced
from streaming.eval.scoring import error_rate

from .conftest import timeout

BPS = 32000   # 16 kHz mono linear16


def results(start: float, duration: float, text: str) -> str:
    return json.dumps({"type": "Results", "is_final": True, "speech_final": True,
                       "start": start, "duration": duration, "channel_index": [0, 1],
                       "channel": {"alternatives": [{"transcript": text, "confidence": 1.0,
                                                     "words": []}]}})


class FakeListen:
    """Records the bytes of each connection; breaks the first after `break_after` bytes."""

    def __init__(self, break_after: int) -> None:
        self.break_after = break_after
        self.connections: list[bytearray] = []

    async def handler(self, ws) -> None:
        received = bytearray()
        self.connections.append(received)
        first = len(self.connections) == 1
        async for message in ws:
            if isinstance(message, bytes):
                received += message
                if first and len(received) >= self.break_after:
                    await ws.send(results(0.0, 0.5, "before the break"))
                    await asyncio.sleep(0.05)
                    ws.transport.abort()     # no close frame: a network failure
                    return
            elif json.loads(message)["type"] == "CloseStream":
                await ws.send(results(0.0, 0.25, "after the break"))
                await ws.send(json.dumps({"type": "Metadata", "request_id": "fake",
                                          "duration": len(received) / BPS, "channels": 1}))
                await ws.close()
                return


async def test_reconnects_with_backoff_sends_nothing_twice_and_reports_lost_audio():
    fake = FakeListen(break_after=BPS)              # 1 s on the first connection
    calls = 0

    async def flaky_connect(url, options, **kwargs):
        nonlocal calls
        calls += 1
        if calls in (2, 3):                         # the first two reconnection attempts fail
            raise CannotConnect("server down (injected)")
        return await connect(url, options, **kwargs)

    audio = (np.arange(3 * 16000) % 30000).astype("<i2")   # every sample position recognizable
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        stream = ResilientStream(url, StreamOptions(), connector=flaky_connect,
                                 backoff=Backoff(initial=0.05, factor=2, jitter=0),
                                 buffer_seconds=0.1)
        await stream.start()
        for start in range(0, len(audio), 320):     # 20 ms chunks, 2x real time
            await stream.send(audio[start:start + 320])
            await asyncio.sleep(0.01)
        await stream.close()
        events = [e async for e in stream]

    reconnecting = [e for e in events if isinstance(e, Reconnecting)]
    assert [(e.attempt, e.delay) for e in reconnecting] == [(1, 0.05), (2, 0.1), (3, 0.2)]
    [reconnected] = [e for e in events if isinstance(e, Reconnected)]
    assert reconnected.attempt == 3
    lost = [e for e in events if isinstance(e, AudioLost)]
    assert lost and all(e.reason == "buffer_full" for e in lost)
    assert stream.stats.reconnects == 1 and stream.stats.connections == 2

    # Byte accounting on the caller's clock: [sent on connection 1][lost][sent on connection 2]
    # = all the audio, in order, nothing twice. The server may have missed the tail of what
    # connection 1 sent (written just before the break): that is the "unconfirmed" part.
    sent = audio.tobytes()
    first, second = (bytes(c) for c in fake.connections)
    lost_bytes = sum(round(e.duration * BPS) for e in lost)
    offset_bytes = round(reconnected.offset * BPS)
    sent_first = offset_bytes - lost_bytes
    assert sent[:len(first)] == first and len(first) <= sent_first
    assert lost[0].start == pytest.approx(sent_first / BPS)
    assert sent[offset_bytes:] == second
    assert reconnecting[0].unconfirmed == pytest.approx(sent_first / BPS - 0.5)
    assert stream.stats.seconds_lost == pytest.approx(lost_bytes / BPS)
    assert stream.stats.seconds_sent == pytest.approx((sent_first + len(second)) / BPS)

    # Times from the second connection are on the caller's clock.
    before, after = [e for e in events if isinstance(e, Transcript)]
    assert before.start == 0.0 and after.start == pytest.approx(reconnected.offset)


async def test_gives_up_on_a_permanent_rejection_and_reports_the_buffer():
    fake = FakeListen(break_after=BPS // 2)
    calls = 0

    async def revoked(url, options, **kwargs):
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ConnectionRejected(401, '{"err_msg": "invalid API key"}')
        return await connect(url, options, **kwargs)

    async with serve(fake.handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        stream = await ResilientStream(url, connector=revoked,
                                       backoff=Backoff(initial=0.05, jitter=0)).start()
        events = []
        with pytest.raises(ConnectionRejected):
            async with asyncio.timeout(timeout(10)):    # send() raises once it has given up
                while True:
                    await stream.send(b"\0" * 640)
                    await asyncio.sleep(0.01)
        with pytest.raises(ConnectionRejected):
            async for event in stream:
                events.append(event)
        await stream.close()
    assert any(isinstance(e, Reconnecting) for e in events)
    assert [e.reason for e in events if isinstance(e, AudioLost)][-1:] in ([], ["gave_up"])
    assert stream.stats.seconds_received == pytest.approx(
        stream.stats.seconds_sent + stream.stats.seconds_lost + stream.stats.seconds_buffered)


class FaultyProxy:
    """A TCP proxy on 127.0.0.1 that can cut every connection and refuse new ones for a while."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refuse_until = 0.0
        self.refused = 0
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    async def start(self) -> "FaultyProxy":
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader, writer) -> None:
        if asyncio.get_running_loop().time() < self.refuse_until:
            self.refused += 1
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        link = (writer, up_writer)
        self._links.add(link)

        async def pump(src, dst) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._links.discard(link)

    def cut(self, refuse_for: float) -> None:
        self.refuse_until = asyncio.get_running_loop().time() + refuse_for
        for client, upstream in list(self._links):
            client.transport.abort()
            upstream.transport.abort()

    async def close(self) -> None:
        self._server.close()


async def test_real_server_connection_cut_mid_stream(server):
    first = corpus.item("en_lj_LJ001-0004")        # 5.1 s
    second = corpus.item("en_lj_LJ001-0011")       # 4.5 s
    before_cut = np.concatenate([first.mono16k(), np.zeros(int(0.8 * 16000), np.int16)])
    after_cut = np.concatenate([np.zeros(int(2.2 * 16000), np.int16), second.mono16k()])
    second_at = (len(before_cut) + int(2.2 * 16000)) / 16000
    proxy = await FaultyProxy(server.port).start()
    events = []
    first_final = asyncio.Event()
    stream = await ResilientStream(f"ws://127.0.0.1:{proxy.port}", StreamOptions(language="en"),
                                   backoff=Backoff(initial=0.1, jitter=0),
                                   buffer_seconds=0.2).start()

    async def receive() -> None:
        async for event in stream:
            events.append(event)
            if isinstance(event, Transcript) and event.is_final and event.text:
                first_final.set()

    receiver = asyncio.create_task(receive())
    await send_paced(stream, before_cut.reshape(-1, 1), 16000, speed=1.0)
    # Cut in the pause, once the first utterance is transcribed (however busy the machine),
    # and refuse reconnections for a while; the audio keeps coming meanwhile.
    await asyncio.wait_for(first_final.wait(), timeout(30))
    proxy.cut(refuse_for=0.5)
    await send_paced(stream, after_cut.reshape(-1, 1), 16000, speed=1.0)
    await stream.close(timeout=timeout(30))
    await asyncio.wait_for(receiver, timeout(30))
    await proxy.close()

    assert proxy.refused >= 1
    reconnecting = [e for e in events if isinstance(e, Reconnecting)]
    assert reconnecting and reconnecting[0].unconfirmed >= 0
    [reconnected] = [e for e in events if isinstance(e, Reconnected)]
    lost = [e for e in events if isinstance(e, AudioLost)]
    assert lost and sum(e.duration for e in lost) == pytest.approx(stream.stats.seconds_lost)
    assert all(len(before_cut) / 16000 <= e.start and e.start + e.duration <= second_at
               for e in lost), lost
    assert stream.stats.seconds_received == pytest.approx(
        stream.stats.seconds_sent + stream.stats.seconds_lost, abs=1e-3)
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final and e.text.strip()]
    text = final_text(finals)
    reference = first.references()[0] + " " + second.references()[0]
    assert error_rate(reference, text) < 0.15, (text, events, stream.stats)
    # The second utterance came over the new connection, timed on the caller's clock.
    last = finals[-1]
    assert last.start >= reconnected.offset
    assert last.start == pytest.approx(second_at, abs=0.6), (last.start, second_at)
