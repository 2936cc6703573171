"""Ordinary client behaviour is logged in one line, never with a traceback: hanging up in
the middle of an upload, hanging up right after Twilio's `stop`, invalid UTF-8 in a text
frame."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import httpx
import pytest
import websockets

from .conftest import timeout

LOGGERS = ("uvicorn", "uvicorn.error", "streamscribe", "asyncio", "")
SID = "MZ" + "1" * 32


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not any(r is record for r in self.records):     # seen again as it propagates
            self.records.append(record)

    def tracebacks(self) -> list[str]:
        return [self.format(r) for r in self.records if r.exc_info or "Traceback" in r.getMessage()]


@pytest.fixture
def records():
    handler = Records()
    ours = logging.getLogger("streamscribe")
    level = ours.level
    ours.setLevel(logging.INFO)
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    ours.setLevel(level)


async def settle(server) -> None:
    """Wait until the server has no stream or request left."""
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        for _ in range(int(timeout(30) / 0.05)):
            health = (await client.get("/healthz")).json()
            if health["active_streams"] == 0 and health["requests_in_flight"] == 0:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the server did not settle")


async def test_hang_up_mid_upload_is_one_line(server, records):
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: multipart/form-data; boundary=" + boundary.encode() +
                 b"\r\nContent-Length: 1000000\r\n\r\n" + head + b"\x00" * 50_000)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()
    await settle(server)
    assert records.tracebacks() == []
    assert sum("hung up before its request was read" in r.getMessage() for r in records.records) == 1


async def test_twilio_hang_up_right_after_stop_is_quiet(server, records):
    start = {"event": "start", "streamSid": SID, "start": {
        "streamSid": SID, "callSid": "CAquiet", "accountSid": "AC1", "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
    for _ in range(3):
        ws = await websockets.connect(f"{server.ws_url}/v1/twilio")
        await ws.send(json.dumps(start))
        await ws.send(json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
        ws.transport.abort()                       # gone before the server's close frame
    await settle(server)
    assert records.tracebacks() == []


async def test_invalid_utf8_text_frame_is_quiet(server, records):
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /v1/listen HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert b"101" in sock.recv(4096).split(b"\r\n")[0]
    payload = b"\xff\xfe{\x80"
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)   # text frame, bad UTF-8
    reply = b""
    sock.settimeout(timeout(10))
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
        if b"\x88" in reply:                      # a close frame
            break
    sock.close()
    await settle(server)
    assert records.tracebacks() == []
    assert sum("invalid UTF-8" in r.getMessage() for r in records.records) == 1
    close = reply[reply.index(b"\x88"):]
    assert int.from_bytes(close[2:4], "big") == 1007     # invalid frame payload data
