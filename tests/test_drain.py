"""SIGTERM drains a real server process: readiness goes false, every open stream gets the
finals of what it sent (mid-utterance), its Metadata and close 1001, a running batch request
gets its transcript, and only then does the process exit. (uvicorn ends by re-raising the
signal it caught, so the exit status is "killed by SIGTERM", which systemd and Kubernetes
count as a clean stop.)"""

from __future__ import annotations

import asyncio
import base64
import json
import signal

import httpx
import numpy as np
import websockets

from demos.call_center.callfile import CallAudio
from demos.call_center.twilio_replay import twilio_messages
from streaming.audio import Resampler, mulaw_encode
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate

from .conftest import timeout
from .server_process import ServerProcess
from .test_twilio import WebhookReceiver
from .wsclient import pcm_bytes, results, transcript

RATE = 16_000
CLIP = "en_ls_1089-134686-0000"          # 10.4 s, one long sentence
BATCH = "long_en_two_cities_p1"          # 44 s: still running when the signal comes
BARRIER = json.dumps({"type": "Barrier"})   # answered with an Error once all before it is read


def mid_utterance() -> np.ndarray:
    """Silence, then the clip cut off in the middle of its sentence."""
    clip = item(CLIP).mono16k()
    return np.concatenate([np.zeros(RATE // 2, np.int16), clip[:int(len(clip) * 0.6)]])


async def open_listen(server: ServerProcess, audio: np.ndarray) -> websockets.ClientConnection:
    url = f"{server.ws_url}/v1/listen?encoding=linear16&sample_rate=16000"
    ws = await websockets.connect(url, max_size=None)
    data = pcm_bytes(audio)
    for i in range(0, len(data), 3200):
        await ws.send(data[i:i + 3200])
    await ws.send(BARRIER)
    reply = json.loads(await asyncio.wait_for(ws.recv(), timeout(60)))
    assert reply["type"] == "Error" and reply["code"] == "unknown_message_type", reply
    return ws


async def open_realtime(server: ServerProcess, audio: np.ndarray) -> websockets.ClientConnection:
    """An OpenAI realtime transcription session (24 kHz), cut off mid-utterance."""
    resampler = Resampler(RATE, 24_000)
    pcm = pcm_bytes(np.concatenate([resampler.feed(audio), resampler.flush()]))
    ws = await websockets.connect(f"{server.ws_url}/v1/realtime?intent=transcription",
                                  max_size=None)
    assert json.loads(await ws.recv())["type"] == "session.created"
    for i in range(0, len(pcm), 9600):
        await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                  "audio": base64.b64encode(pcm[i:i + 9600]).decode()}))
    await ws.send(json.dumps({"type": "barrier"}))
    while (reply := json.loads(await asyncio.wait_for(ws.recv(), timeout(60))))["type"] != "error":
        pass
    return ws


async def read_until_closed(ws: websockets.ClientConnection) -> tuple[list[dict], int | None, str]:
    messages = []
    try:
        async for raw in ws:
            messages.append(json.loads(raw))
    except websockets.ConnectionClosedError:
        pass
    return messages, ws.close_code, ws.close_reason


async def open_twilio(server: ServerProcess, call_sid: str) -> websockets.ClientConnection:
    """A Twilio call (inbound track only) cut off mid-utterance, without `stop`."""
    resampler = Resampler(RATE, 8000)
    pcm8k = np.concatenate([resampler.feed(mid_utterance()), resampler.flush()])
    call = CallAudio(mulaw_encode(pcm8k), "mulaw", 8000, 1)
    messages = [m for m in twilio_messages(call, call_sid=call_sid)
                if '"event": "stop"' not in m]
    ws = await websockets.connect(f"{server.ws_url}/v1/twilio", max_size=None)
    for message in messages:
        await ws.send(message)
    return ws


async def call_events(server: ServerProcess, call_sid: str, ready: asyncio.Event) -> list[dict]:
    events = []
    async with websockets.connect(f"{server.ws_url}/v1/twilio/calls/{call_sid}/events") as ws:
        async for raw in ws:
            events.append(json.loads(raw))
            if events[-1]["type"] == "error":      # the barrier: everything before it is in
                ready.set()
    return events


async def test_sigterm_mid_stream_and_mid_batch_delivers_every_final():
    drain_s = timeout(120)
    webhook = WebhookReceiver()
    with ServerProcess({"STREAMSCRIBE_DRAIN_S": str(drain_s),
                        "STREAMSCRIBE_TWILIO_WEBHOOK_URL": webhook.url}) as server:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=timeout(300)) as probe, \
                httpx.AsyncClient(base_url=server.http_url, timeout=timeout(300)) as batch_client:
            assert (await probe.get("/readyz")).json() == {
                "ready": True, "model_loaded": True, "draining": False}
            audio = mid_utterance()
            listeners = [await open_listen(server, audio) for _ in range(2)]
            realtime = await open_realtime(server, audio)
            call_sid = "CAdrain00000000000000000000000001"
            heard = asyncio.Event()
            subscriber = asyncio.create_task(call_events(server, call_sid, heard))
            await asyncio.sleep(0)
            twilio = await open_twilio(server, call_sid)
            await twilio.send(json.dumps({"event": "hangup"}))       # reported: the barrier
            await asyncio.wait_for(heard.wait(), timeout(60))

            wav = item(BATCH).audio.read_bytes()
            batch = asyncio.create_task(batch_client.post(
                "/v1/audio/transcriptions", files={"file": ("speech.wav", wav)},
                data={"model": "whisper-1"}))
            while (await probe.get("/healthz")).json()["requests_in_flight"] < 1:
                await asyncio.sleep(0.05)
            assert not batch.done()

            server.signal(signal.SIGTERM)
            while (await probe.get("/readyz")).status_code == 200:
                await asyncio.sleep(0.05)
            assert (await probe.get("/readyz")).json()["draining"] is True

            outcomes = await asyncio.wait_for(
                asyncio.gather(*(read_until_closed(ws) for ws in listeners)), timeout(240))
            realtime_events, *realtime_close = await asyncio.wait_for(
                read_until_closed(realtime), timeout(240))
            response = await asyncio.wait_for(batch, timeout(240))
            events = await asyncio.wait_for(subscriber, timeout(240))
            await twilio.close()
        exit_code = await asyncio.to_thread(server.proc.wait, timeout(240))

    spoken = len(audio) / RATE
    for messages, code, reason in outcomes:
        finals = results(messages, final=True)
        assert finals, messages
        text = " ".join(transcript(f) for f in finals)
        assert "stew for dinner" in text.lower(), text
        assert messages[-1]["type"] == "Metadata"
        assert abs(messages[-1]["duration"] - spoken) < 0.01
        assert (code, reason) == (1001, "server shutting down")

    completed = [e for e in realtime_events
                 if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert completed and "stew for dinner" in completed[-1]["transcript"].lower(), realtime_events
    assert tuple(realtime_close) == (1001, "server shutting down")

    assert response.status_code == 200, response.text
    assert error_rate(item(BATCH).references(), response.json()["text"]) < 0.2

    turns = [e for e in events if e["type"] == "turn"]
    assert turns and turns[0]["speaker"] == "inbound", events
    assert events[-1]["type"] == "call_ended" and events[-1]["call"]["status"] == "shutdown"
    webhook.close()
    [posted] = webhook.bodies                    # the drain waited for the transcript's POST
    assert posted["call"]["call_sid"] == call_sid and posted["call"]["turns"] == [
        {k: v for k, v in turn.items() if k not in ("type", "call_sid")} for turn in turns]

    assert exit_code == -signal.SIGTERM, server.log[-3000:]
    assert "draining: 4 stream(s), 1 request(s)" in server.log
    assert "drained in" in server.log
    assert "Traceback" not in server.log, server.log


async def test_ctrl_c_drains_too_and_a_second_one_stops_waiting():
    with ServerProcess({"STREAMSCRIBE_DRAIN_S": str(timeout(120))}) as server:
        listener = await open_listen(server, mid_utterance())
        server.signal(signal.SIGINT)
        messages, code, reason = await asyncio.wait_for(read_until_closed(listener), timeout(120))
        assert results(messages, final=True) and messages[-1]["type"] == "Metadata"
        assert (code, reason) == (1001, "server shutting down")
        exit_code = await asyncio.to_thread(server.proc.wait, timeout(60))
    assert exit_code == 130 and "drained in" in server.log      # the CLI: 130 after Ctrl-C

    # An upload that stalls keeps its request in flight; the second Ctrl-C gives up on it.
    with ServerProcess({"STREAMSCRIBE_DRAIN_S": str(timeout(600)),
                        "STREAMSCRIBE_BATCH_UPLOAD_IDLE_TIMEOUT_S": "600"}) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n")
        await writer.drain()
        async with httpx.AsyncClient(base_url=server.http_url) as probe:
            while (await probe.get("/healthz")).json()["requests_in_flight"] < 1:
                await asyncio.sleep(0.05)
        server.signal(signal.SIGINT)
        while not any("draining:" in line for line in server.lines):
            await asyncio.sleep(0.05)
        server.signal(signal.SIGINT)
        exit_code = await asyncio.to_thread(server.proc.wait, timeout(60))
        writer.close()
    assert exit_code == 130 and "drain stopped after" in server.log


def _ignore_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def test_ctrl_c_to_a_background_server_still_drains_and_exits_130():
    """`streamscribe serve &` inherits SIGINT ignored: uvicorn still takes it as a shutdown,
    and the exit status is the CLI's usual 130, not the 0 a lost re-raise would give."""
    with ServerProcess(preexec=_ignore_ctrl_c) as server:
        listener = await open_listen(server, mid_utterance())
        server.signal(signal.SIGINT)
        messages, code, _ = await asyncio.wait_for(read_until_closed(listener), timeout(120))
        assert results(messages, final=True) and code == 1001
        exit_code = await asyncio.to_thread(server.proc.wait, timeout(60))
    assert exit_code == 130 and "drained in" in server.log
