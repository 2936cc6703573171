"""/v1/twilio end to end: a Twilio Media Streams replay of a real two-channel call, real model.

The replay is generated from the corpus's 8 kHz μ-law dual-channel dialogue (channel 0 =
inbound, channel 1 = outbound), with the outbound track's silent chunks left out so the server
must place audio by Twilio's timestamps. Checked: per-track WER, the time order of turns
against the manifest's turn sequence, the events WebSocket, the webhook, bad messages, auth,
and the bounded store of finished calls.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import websockets

from demos.call_center.callfile import CallAudio, read_call
from demos.call_center.twilio_replay import replay, twilio_messages
from streaming.config import TwilioConfig
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate

from .conftest import timeout

CALL_ID = "2spk_en_constructed_dialogue_dualchannel"


class WebhookReceiver:
    """A local HTTP server on 127.0.0.1 that records every POSTed JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.received.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/call"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def twilio_server(start_server, webhook):
    return start_server(twilio=TwilioConfig(webhook_url=webhook.url, keep_calls=2))


def call_audio() -> CallAudio:
    return read_call(item(CALL_ID).audio.parent.parent.parent / item(CALL_ID).raw["audio_native"])


async def collect_events(url: str, connected: asyncio.Event | None = None) -> list[dict]:
    """Every message of a call's events socket; `connected` is set once the server has taken
    the subscription (it subscribes before it accepts)."""
    messages = []
    async with websockets.connect(url) as ws:
        if connected is not None:
            connected.set()
        async for raw in ws:
            messages.append(json.loads(raw))
    return messages


def short_call(call_sid: str, seconds: float = 0.5) -> list[str]:
    silence = CallAudio(b"\xff" * int(8000 * seconds) * 2, "mulaw", 8000, 2)
    return list(twilio_messages(silence, call_sid=call_sid))


async def test_replayed_call_gives_per_speaker_time_ordered_transcript(twilio_server, webhook):
    call_sid = "CAtest0000000000000000000000000001"
    messages = list(twilio_messages(call_audio(), call_sid=call_sid, skip_silent_outbound=True))
    # Bad messages in the middle of the call: reported, skipped, the call goes on.
    bad = ["this is not json", json.dumps({"event": "hangup"}),
           json.dumps({"event": "media", "streamSid": json.loads(messages[1])["streamSid"],
                       "media": {"track": "inbound", "timestamp": "0", "payload": "%%%"}})]
    messages[500:500] = bad
    # A subscriber that comes before the call starts gets everything live.
    events_url = f"{twilio_server.ws_url}/v1/twilio/calls/{call_sid}/events"
    connected = asyncio.Event()
    subscriber = asyncio.create_task(collect_events(events_url, connected))
    await asyncio.wait_for(connected.wait(), timeout(10))
    await asyncio.wait_for(replay(f"{twilio_server.ws_url}/v1/twilio", messages), timeout(120))
    events = await asyncio.wait_for(subscriber, timeout(60))

    async with httpx.AsyncClient(base_url=twilio_server.http_url) as client:
        call = (await client.get(f"/v1/twilio/calls/{call_sid}")).json()
        listing = (await client.get("/v1/twilio/calls")).json()
    assert call["status"] == "completed" and call["tracks"] == ["inbound", "outbound"]
    assert call["speakers"] == ["inbound", "outbound"]
    assert call["duration_s"] == pytest.approx(item(CALL_ID).duration_s, abs=0.05)
    assert call_sid in [c["call_sid"] for c in listing["calls"]]

    turns = call["turns"]
    reference = item(CALL_ID).raw
    for channel in reference["channels"]:
        track = ["inbound", "outbound"][channel["channel"]]
        text = " ".join(t["text"] for t in turns if t["speaker"] == track)
        wer = error_rate(channel["text"], text)
        print(f"{track}: WER {wer:.3f}: {text}")
        assert wer < 0.15, (track, text)
    # Time order, and the same alternation of speakers as the recording.
    starts = [t["start"] for t in turns]
    assert starts == sorted(starts)
    spoken = [k for k, _ in itertools.groupby(t["speaker"] for t in turns)]
    expected = [["inbound", "outbound"][s["channel"]] for s in reference["segments"]]
    assert spoken == expected
    for turn, segment in zip(turns, reference["segments"]):
        # Turn times are the call's: outbound gaps were filled from timestamps.
        assert abs(turn["start"] - segment["start"]) < 0.8, (turn, segment)
        assert turn["words"] and turn["language"] == "en"

    errors = [e["message"] for e in call["errors"]]
    assert any("not JSON" in e for e in errors) and any("unknown event 'hangup'" in e for e in errors)
    assert any("base64" in e for e in errors)

    # The events WebSocket saw the call start, every turn as it came, the errors, the end.
    kinds = [e["type"] for e in events]
    assert kinds[0] == "call_started" and kinds[-1] == "call_ended"
    live_turns = [e for e in events if e["type"] == "turn"]
    assert sorted((t["start"], t["text"]) for t in live_turns) == [(t["start"], t["text"])
                                                                   for t in turns]
    assert kinds.count("error") == 3
    assert events[-1]["call"]["turns"] == turns

    # The webhook got the same transcript.
    assert await asyncio.to_thread(webhook.received.wait, timeout(10))
    hook = next(b for b in webhook.bodies if b["call"]["call_sid"] == call_sid)
    assert hook["event"] == "call.completed" and hook["call"]["turns"] == turns
    assert call["webhook"]["status"] == 204


async def test_finished_calls_are_bounded_and_late_subscribers_get_the_record(twilio_server):
    sids = [f"CAbounded{i}" for i in range(3)]
    for sid in sids:
        await asyncio.wait_for(replay(f"{twilio_server.ws_url}/v1/twilio", short_call(sid)),
                               timeout(30))
    async with httpx.AsyncClient(base_url=twilio_server.http_url) as client:
        gone = await client.get(f"/v1/twilio/calls/{sids[0]}")
        kept = await client.get(f"/v1/twilio/calls/{sids[2]}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "call_not_found"
    assert kept.status_code == 200 and kept.json()["turns"] == []     # silence: no invented turns
    # A subscriber after the end gets the record and the end, then the socket closes.
    late = await asyncio.wait_for(collect_events(
        f"{twilio_server.ws_url}/v1/twilio/calls/{sids[2]}/events"), timeout(10))
    assert [e["type"] for e in late] == ["call_started", "call_ended"]


async def test_unusable_stream_is_closed_with_a_reason_and_the_server_keeps_serving(twilio_server):
    start = json.loads(short_call("CAbadformat")[1])
    start["start"]["mediaFormat"] = {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}
    async with websockets.connect(f"{twilio_server.ws_url}/v1/twilio") as ws:
        await ws.send(json.dumps(start))
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), timeout(10))
    assert info.value.rcvd.code == 1008 and "unsupported mediaFormat" in info.value.rcvd.reason
    # ...and a good call right after still works.
    await asyncio.wait_for(replay(f"{twilio_server.ws_url}/v1/twilio", short_call("CAafter")),
                           timeout(30))
    async with httpx.AsyncClient(base_url=twilio_server.http_url) as client:
        assert (await client.get("/v1/twilio/calls/CAafter")).json()["status"] == "completed"
        assert (await client.get("/healthz")).status_code == 200


async def test_auth_by_custom_parameter_header_or_query(start_server):
    server = start_server(api_keys=("sekret",))
    url = f"{server.ws_url}/v1/twilio"
    # Twilio sends no headers: the key comes in <Parameter name="token">.
    await asyncio.wait_for(replay(url, list(twilio_messages(
        CallAudio(b"\xff" * 8000, "mulaw", 8000, 2), call_sid="CAauth",
        custom_parameters={"token": "sekret"}))), timeout(30))
    async with websockets.connect(url) as ws:
        for message in short_call("CAnokey")[:2]:
            await ws.send(message)
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), timeout(10))
    assert info.value.rcvd.code == 1008 and "API key" in info.value.rcvd.reason
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url + "?token=wrong"):
            pass
    assert refused.value.response.status_code == 401
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        assert (await client.get("/v1/twilio/calls/CAauth")).status_code == 401
        ok = await client.get("/v1/twilio/calls/CAauth", headers={"Authorization": "Token sekret"})
        assert ok.status_code == 200 and "token" not in ok.json()["custom_parameters"]
        # an unauthenticated stream leaves no record
        assert (await client.get("/v1/twilio/calls/CAnokey",
                                 headers={"Authorization": "Bearer sekret"})).status_code == 404


async def test_a_flood_of_bad_messages_is_reported_sparingly(twilio_server):
    messages = short_call("CAflood", seconds=0.2)
    messages[2:2] = [json.dumps({"event": "mystery"})] * 250
    await asyncio.wait_for(replay(f"{twilio_server.ws_url}/v1/twilio", messages), timeout(30))
    async with httpx.AsyncClient(base_url=twilio_server.http_url) as client:
        call = (await client.get("/v1/twilio/calls/CAflood")).json()
    assert call["status"] == "completed"
    messages = [e["message"] for e in call["errors"]]
    assert len(messages) == 12 and messages[-1].endswith("(error 200 on this stream)")


async def test_a_failing_webhook_is_recorded_and_the_call_still_ends(start_server):
    import socket

    with socket.socket() as s:               # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    server = start_server(twilio=TwilioConfig(webhook_url=dead, webhook_timeout_s=2))
    connected = asyncio.Event()
    events = asyncio.create_task(collect_events(f"{server.ws_url}/v1/twilio/calls/CAdeadhook/events",
                                                connected))
    await asyncio.wait_for(connected.wait(), timeout(10))
    await asyncio.wait_for(replay(f"{server.ws_url}/v1/twilio", short_call("CAdeadhook")), timeout(30))
    ended = (await asyncio.wait_for(events, timeout(30)))[-1]
    assert ended["type"] == "call_ended"
    assert ended["call"]["webhook"]["status"] is None and ended["call"]["webhook"]["error"]
    assert ended["call"]["errors"][-1]["code"] == "webhook_failed"


async def test_a_media_stream_counts_in_healthz_while_it_is_open(start_server):
    server = start_server()
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        async with websockets.connect(f"{server.ws_url}/v1/twilio") as ws:
            for message in short_call("CAcounted")[:2]:          # connected, start
                await ws.send(message)
            assert (await client.get("/healthz")).json()["active_streams"] == 1
        deadline = asyncio.get_running_loop().time() + timeout(10)
        while (await client.get("/healthz")).json()["active_streams"]:
            assert asyncio.get_running_loop().time() < deadline, "the ended stream still counts"
            await asyncio.sleep(0.05)
