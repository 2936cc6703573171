"""Replay a two-channel call recording to `/v1/twilio` as Twilio Media Streams would send it.

Channel 0 becomes the `inbound` track (the caller), channel 1 the `outbound` track (the agent).
Messages follow Twilio's shapes: `connected`, `start` (mediaFormat audio/x-mulaw 8000 1,
tracks, customParameters), `media` (20 ms chunks of base64 μ-law, both tracks interleaved,
`timestamp` in ms from the stream start), `mark`, `stop`.

    python -m demos.call_center.twilio_replay CALL.wav --url ws://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import sys
from typing import Iterator

import httpx
import numpy as np
import websockets

from streaming.audio import MULAW_TO_PCM

from .callfile import CallAudio, read_call

CHUNK_MS = 20
CHUNK_BYTES = 8000 * CHUNK_MS // 1000
TRACKS = ("inbound", "outbound")


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def twilio_messages(call: CallAudio, *, call_sid: str | None = None,
                    stream_sid: str | None = None, custom_parameters: dict | None = None,
                    skip_silent_outbound: bool = False) -> Iterator[str]:
    """The JSON frames Twilio would send for this call (8 kHz, one track per channel).

    `skip_silent_outbound` leaves out outbound chunks that are digital near-silence, as a
    media server may, so the receiver must place later chunks by their `timestamp`.
    """
    if call.sample_rate != 8000:
        raise ValueError("Twilio Media Streams carry 8 kHz audio; resample the call first")
    call_sid = call_sid or _sid("CA")
    stream_sid = stream_sid or _sid("MZ")
    account_sid = "AC" + "0" * 32
    tracks = TRACKS[:min(call.channels, 2)]
    audio = [call.channel_mulaw(i) for i in range(len(tracks))]
    sequence = 1

    def frame(event: str, **body) -> str:
        nonlocal sequence
        message = {"event": event, "sequenceNumber": str(sequence), "streamSid": stream_sid, **body}
        sequence += 1
        return json.dumps(message)

    yield json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    yield frame("start", start={
        "accountSid": account_sid, "streamSid": stream_sid, "callSid": call_sid,
        "tracks": list(tracks), "customParameters": dict(custom_parameters or {}),
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}})
    chunks = [0] * len(tracks)
    for offset in range(0, len(audio[0]), CHUNK_BYTES):
        for index, track in enumerate(tracks):
            payload = audio[index][offset:offset + CHUNK_BYTES]
            if not payload:
                continue
            if skip_silent_outbound and track == "outbound":
                level = np.abs(MULAW_TO_PCM[np.frombuffer(payload, np.uint8)].astype(np.int32))
                if level.max() < 64:
                    continue
            chunks[index] += 1
            yield frame("media", media={
                "track": track, "chunk": str(chunks[index]),
                "timestamp": str(offset * 1000 // 8000),
                "payload": base64.b64encode(payload).decode()})
    yield frame("mark", mark={"name": "end-of-recording"})
    yield frame("stop", stop={"accountSid": account_sid, "callSid": call_sid})


async def replay(url: str, messages: list[str], *, speed: float = 0.0,
                 headers: dict | None = None) -> None:
    """Send `messages` to a `/v1/twilio` WebSocket; `speed` 1.0 = real time, 0 = at once.

    Returns when the server closes the stream (after it has transcribed the call's end).
    """
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        for message in messages:
            if speed > 0 and '"event": "media"' in message and '"track": "inbound"' in message:
                await asyncio.sleep(CHUNK_MS / 1000 / speed)
            await ws.send(message)
        try:
            await ws.wait_closed()
        except websockets.ConnectionClosed:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demos.call_center.twilio_replay",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("call", help="two-channel WAV (μ-law or PCM, 8 kHz)")
    parser.add_argument("--url", default="ws://127.0.0.1:8000", help="server base URL")
    parser.add_argument("--speed", type=float, default=0.0, help="1 = real time; 0 = as fast as possible")
    parser.add_argument("--token", help="API key (sent as the `token` custom parameter)")
    args = parser.parse_args(argv)
    call_sid = _sid("CA")
    params = {"token": args.token} if args.token else {}
    messages = list(twilio_messages(read_call(args.call), call_sid=call_sid, custom_parameters=params))
    base = args.url.rstrip("/")
    asyncio.run(replay(base + "/v1/twilio", messages, speed=args.speed))
    http = base.replace("ws://", "http://").replace("wss://", "https://")
    headers = {"Authorization": f"Token {args.token}"} if args.token else {}
    call = httpx.get(f"{http}/v1/twilio/calls/{call_sid}", headers=headers, timeout=30).json()
    labels = {"inbound": "Caller", "outbound": "Agent"}
    for turn in call.get("turns", []):
        print(f"[{turn['start']:6.2f}] {labels.get(turn['speaker'], turn['speaker']):<6}  {turn['text']}")
    print(f"call {call_sid}: {len(call.get('turns', []))} turns, status {call.get('status')}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
