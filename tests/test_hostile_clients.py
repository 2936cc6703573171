"""Clients that misbehave on purpose: each gets a specific answer, nothing blocks the
server, and it keeps serving everyone else."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
import websockets

from streaming.config import TwilioConfig

from .conftest import timeout

KEY = "hostile-test-key"
SID = "MZ" + "0" * 32


def media(timestamp_ms: int, sid: str = SID) -> str:
    return json.dumps({"event": "media", "streamSid": sid, "media": {
        "track": "inbound", "chunk": "1", "timestamp": str(timestamp_ms),
        "payload": base64.b64encode(b"\xff" * 160).decode()}})


def start(call_sid: str, token: str | None = KEY) -> str:
    return json.dumps({"event": "start", "streamSid": SID, "start": {
        "streamSid": SID, "callSid": call_sid, "accountSid": "AC1", "tracks": ["inbound"],
        "customParameters": {"token": token} if token else {},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})


@pytest.fixture(scope="module")
def keyed_server(start_server):
    return start_server(api_keys=(KEY,), twilio=TwilioConfig(start_timeout_s=1.0))


async def closed_with(ws: websockets.ClientConnection) -> tuple[int | None, str]:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout(30))
    except websockets.ConnectionClosed:
        pass
    return ws.close_code, ws.close_reason


async def test_deeply_nested_text_frame_gets_an_error_and_the_stream_goes_on(server):
    url = f"{server.ws_url}/v1/listen?encoding=linear16&sample_rate=16000"
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send("[" * 60_000)
        error = json.loads(await asyncio.wait_for(ws.recv(), timeout(30)))
        assert error["type"] == "Error" and error["code"] == "invalid_json"
        assert "nested deeper" in error["message"]
        await ws.send(b"\x00\x00" * 16_000)
        await ws.send(json.dumps({"type": "CloseStream"}))
        messages = [json.loads(m) async for m in ws]
        assert messages[-1]["type"] == "Metadata" and messages[-1]["duration"] == 1.0
        assert ws.close_code == 1000


async def test_twilio_without_start_is_closed_at_the_start_deadline(keyed_server):
    async with websockets.connect(f"{keyed_server.ws_url}/v1/twilio") as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1"}))
        code, reason = await closed_with(ws)     # before: open until the 30 s idle timeout
    assert (code, reason) == (1008, "no start within 1 s")


async def test_twilio_media_flood_before_start_is_cut_off(keyed_server):
    async with websockets.connect(f"{keyed_server.ws_url}/v1/twilio") as ws:
        try:
            for i in range(2000):
                await ws.send(media(i * 20))
        except websockets.ConnectionClosed:
            pass
        code, reason = await closed_with(ws)
    assert code == 1008 and "without a start" in reason


async def test_twilio_refuses_a_wrong_key_in_start_and_requires_upgrade_auth_when_configured(
        keyed_server, start_server):
    async with websockets.connect(f"{keyed_server.ws_url}/v1/twilio") as ws:
        await ws.send(start("CAwrongkey", token="nope"))
        assert (await closed_with(ws))[0] == 1008
    strict = start_server(api_keys=(KEY,), twilio=TwilioConfig(token_in_start=False))
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{strict.ws_url}/v1/twilio"):
            pass
    assert refused.value.response.status_code == 401
    async with websockets.connect(f"{strict.ws_url}/v1/twilio?token={KEY}") as ws:
        await ws.send(start("CAupgradeauth", token=None))
        await ws.send(json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
        assert (await closed_with(ws))[0] == 1000


async def test_twilio_timestamp_jumps_add_bounded_silence(keyed_server):
    """100 media messages claiming 600 s each (16 hours) used to be filled with silence on
    the event loop; now at most a couple of seconds are, and the jump is reported."""
    call_sid = "CAgaps000000000000000000000000001"
    async with websockets.connect(f"{keyed_server.ws_url}/v1/twilio") as ws:
        await ws.send(start(call_sid))
        for i in range(1, 101):
            await ws.send(media(i * 600_000))
        await ws.send(json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
        assert (await closed_with(ws))[0] == 1000
    async with httpx.AsyncClient(base_url=keyed_server.http_url,
                                 headers={"Authorization": f"Token {KEY}"}) as client:
        call = (await client.get(f"/v1/twilio/calls/{call_sid}")).json()
        health = (await client.get("/healthz")).json()
    assert call["status"] == "completed"
    assert call["duration_s"] <= 100 * 0.02 + 2.0 + 0.1
    assert [e["code"] for e in call["errors"]] == ["timestamp_gap_refused"]
    assert health["active_streams"] == 0


async def test_protocol_errors_of_every_protocol_are_counted(server):
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        before = (await client.get("/metrics")).text
        async with websockets.connect(f"{server.ws_url}/v1/twilio") as ws:
            await ws.send("not json")
            await ws.close()
        async with websockets.connect(f"{server.ws_url}/v1/realtime?intent=transcription") as ws:
            await ws.recv()                              # session.created
            await ws.send("not json")
            assert json.loads(await ws.recv())["type"] == "error"
        after = (await client.get("/metrics")).text

    def count(text: str, code: str) -> float:
        line = f'streamscribe_errors_total{{code="{code}"}} '
        return next((float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), 0.0)

    assert count(after, "twilio_protocol_error") == count(before, "twilio_protocol_error") + 1
    assert count(after, "invalid_json") == count(before, "invalid_json") + 1


async def test_a_huge_frame_is_fed_in_pieces_that_let_other_clients_run():
    """1 MiB of 8 kHz μ-law is 131 s of audio (~150 ms of work): it is fed a second at a
    time, and the event loop runs other tasks in between."""
    from streaming.api.live_stream import LiveStream
    from streaming.config import ServerConfig
    from streaming.core.session import StreamOptions
    from streaming.model.backends.fake import FakeTranscriber
    from streaming.model.scheduler import TranscriptionScheduler

    scheduler = TranscriptionScheduler(FakeTranscriber())
    await scheduler.start()
    stream = LiveStream(scheduler, StreamOptions(encoding="mulaw", sample_rate=8000, channels=1),
                        ServerConfig())
    ticks = 0

    async def other_client() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_client())
    await asyncio.sleep(0)
    try:
        start = ticks
        await stream.feed(b"\xff" * (1 << 20))
        assert ticks - start >= 100          # one turn of the loop per second of audio
        assert stream.session.duration == pytest.approx((1 << 20) / 8000)
    finally:
        ticker.cancel()
        stream.abort()
        await scheduler.close()


async def test_twilio_signature_authenticates_the_upgrade(start_server):
    """Twilio signs the handshake (X-Twilio-Signature, HMAC-SHA1 of the <Stream url> with the
    account's Auth Token): with auth tokens configured that signature, or an API key, is
    required at the upgrade; nothing waits for `start`."""
    from streaming.api.twilio.signature import compute

    signed = start_server(api_keys=(KEY,), twilio=TwilioConfig(auth_tokens="tw-token"))
    url = f"{signed.ws_url}/v1/twilio"
    for headers in ({}, {"X-Twilio-Signature": compute("other-token", url)}):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
    good = {"X-Twilio-Signature": compute("tw-token", url)}
    async with websockets.connect(url, additional_headers=good) as ws:
        await ws.send(start("CAsigned", token=None))
        await ws.send(json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
        assert (await closed_with(ws))[0] == 1000

    public = "wss://calls.example.com/v1/twilio"       # behind a TLS-terminating proxy
    proxied = start_server(twilio=TwilioConfig(auth_tokens="tw-token", public_url=public))
    local = f"{proxied.ws_url}/v1/twilio"
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(local, additional_headers={
                "X-Twilio-Signature": compute("tw-token", local)}):
            pass
    async with websockets.connect(local, additional_headers={
            "X-Twilio-Signature": compute("tw-token", public)}) as ws:
        await ws.send(start("CAproxied", token=None))
        await ws.send(json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
        assert (await closed_with(ws))[0] == 1000
