"""/v1/listen end to end: real server on 127.0.0.1, real model, real corpus speech."""

import asyncio
import json

import httpx
import numpy as np
import pytest
import websockets

from streaming.audio import mulaw_encode
from streaming.config import ServerConfig, StreamConfig
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate

from .conftest import timeout
from .wsclient import pcm_bytes, results, stream, transcript

RATE = 16_000
CLIPS = ["en_lj_LJ001-0002", "en_ls_1089-134686-0000", "en_lj_LJ001-0004"]


def silence(seconds):
    return np.zeros(int(seconds * RATE), np.int16)


def conversation(ids=CLIPS, pause=1.5):
    parts, spans, position = [silence(0.5)], [], int(0.5 * RATE)
    for clip_id in ids:
        clip = item(clip_id).mono16k()
        spans.append((position / RATE, (position + len(clip)) / RATE))
        parts += [clip, silence(pause)]
        position += len(clip) + int(pause * RATE)
    return np.concatenate(parts), spans


def listen_url(server, **params):
    query = {"encoding": "linear16", "sample_rate": "16000", "interim_results": "true",
             "vad_events": "true", **params}
    return f"{server.ws_url}/v1/listen?" + "&".join(f"{k}={v}" for k, v in query.items())


async def test_utterances_get_one_final_each_in_order(server):
    audio, spans = conversation()
    messages = await stream(listen_url(server, utterance_end_ms=1000), pcm_bytes(audio))
    finals = results(messages, final=True)
    assert len(finals) == len(CLIPS), [transcript(f) for f in finals]
    for final, clip_id, (start, end) in zip(finals, CLIPS, spans):
        assert error_rate(item(clip_id).references(), transcript(final)) < 0.15
        assert final["speech_final"] and not final["from_finalize"]
        assert final["latency_ms"] is not None and final["latency_ms"] >= 0
        assert final["language"] == "en" and final["hallucination"]["likely"] is False
        words = final["channel"]["alternatives"][0]["words"]
        assert words and all(start - 0.6 <= w["start"] <= w["end"] <= end + 0.3 for w in words)
        assert final["start"] <= words[0]["start"]
    # Partials are best effort (shed under load), but each belongs to an utterance and none
    # comes after that utterance's final.
    order = [(m["type"], m.get("is_final"), m.get("start")) for m in messages]
    final_starts = [f["start"] for f in finals]
    assert {p["start"] for p in results(messages, final=False)} <= set(final_starts)
    for start in final_starts:
        index = order.index(("Results", True, start))
        assert ("Results", False, start) not in order[index:]
    starts = [m for m in messages if m["type"] == "SpeechStarted"]
    assert len(starts) >= len(CLIPS)
    assert sum(m["type"] == "UtteranceEnd" for m in messages) >= 2
    assert messages[-1]["type"] == "Metadata"
    assert messages[-1]["duration"] == pytest.approx(len(audio) / RATE, abs=0.01)


async def test_finalize_flushes_with_from_finalize(server):
    clip = item("en_lj_LJ001-0002").mono16k()
    data = pcm_bytes(np.concatenate([silence(0.3), clip]))
    messages = await stream(listen_url(server, endpointing=2000), data, speed=0,
                            before_close=[json.dumps({"type": "Finalize"})])
    finals = results(messages, final=True)
    assert len(finals) == 1 and finals[0]["from_finalize"]
    assert error_rate(item("en_lj_LJ001-0002").references(), transcript(finals[0])) < 0.15


async def test_concurrent_streams_with_odd_frames_and_telephony_audio(server):
    """Three clients at once: odd-length frames, μ-law 8 kHz, and a multichannel call."""
    jfk = item("en_jfk_inaugural")
    odd = stream(listen_url(server, interim_results="false"),
                 pcm_bytes(np.concatenate([silence(0.3), jfk.mono16k(), silence(1)])),
                 chunk=1001, speed=4)
    tel = item("tel_derived_en_ls_1089-134686-0000")
    native = tel.raw["audio_native"]
    from streaming.audio import read_wav
    mulaw_samples, _ = read_wav(item(tel.id).audio)  # 16 kHz copy, re-made as 8 kHz μ-law
    mono8k = mulaw_samples[::2, 0]
    phone = stream(listen_url(server, encoding="mulaw", sample_rate="8000"),
                   mulaw_encode(np.concatenate([np.zeros(4000, np.int16), mono8k,
                                                np.zeros(8000, np.int16)])),
                   bytes_per_second=8000, chunk=800, speed=4)
    outs = await asyncio.gather(odd, phone)
    assert native  # the corpus documents the μ-law original this item came from
    jfk_text = " ".join(transcript(f) for f in results(outs[0], final=True))
    assert error_rate(jfk.references(), jfk_text) < 0.15
    tel_text = " ".join(transcript(f) for f in results(outs[1], final=True))
    assert error_rate(tel.references(), tel_text) < 0.2


async def test_multichannel_transcribes_each_channel_on_its_own(server):
    left = item("en_lj_LJ001-0002").mono16k()
    right = item("en_lj_LJ001-0004").mono16k()
    n = max(len(left), len(right)) + RATE
    stereo = np.zeros((n + RATE, 2), np.int16)
    stereo[RATE // 2:RATE // 2 + len(left), 0] = left
    stereo[RATE:RATE + len(right), 1] = right
    messages = await stream(listen_url(server, channels=2, multichannel="true",
                                       interim_results="false"),
                            pcm_bytes(stereo.reshape(-1)), bytes_per_second=64_000, speed=4)
    finals = results(messages, final=True)
    by_channel = {f["channel_index"][0]: transcript(f) for f in finals if transcript(f)}
    assert all(f["channel_index"][1] == 2 for f in finals)
    assert error_rate(item("en_lj_LJ001-0002").references(), by_channel[0]) < 0.15
    assert error_rate(item("en_lj_LJ001-0004").references(), by_channel[1]) < 0.15


async def test_language_detection_with_multi(server):
    es = item("es_pico_leopard_test_es")
    messages = await stream(listen_url(server, language="multi", interim_results="false"),
                            pcm_bytes(np.concatenate([silence(0.3), es.mono16k(), silence(1)])),
                            speed=0)
    finals = [f for f in results(messages, final=True) if transcript(f)]
    assert finals and finals[0]["language"] == "es"
    assert finals[0]["channel"]["alternatives"][0]["languages"] == ["es"]


async def test_silence_and_noise_invent_no_text(server):
    rng = np.random.default_rng(7)
    noise = (rng.standard_normal(RATE * 6) * 900).astype(np.int16)
    quiet, noisy = await asyncio.gather(
        stream(listen_url(server), pcm_bytes(silence(6)), speed=0),
        stream(listen_url(server, language="multi"), pcm_bytes(noise), speed=0))
    for messages in (quiet, noisy):
        assert all(transcript(f) == "" for f in results(messages, final=True))
        assert messages[-1]["type"] == "Metadata"


async def test_bad_text_frames_get_errors_and_the_stream_goes_on(server):
    clip = item("en_lj_LJ001-0002")
    messages = []
    async with websockets.connect(listen_url(server, interim_results="false")) as ws:
        await ws.send("this is not json")
        await ws.send(json.dumps({"type": "Dance"}))
        await ws.send(json.dumps({"type": "KeepAlive"}))
        await ws.send(pcm_bytes(np.concatenate([silence(0.3), clip.mono16k(), silence(1.0)])))
        await ws.send(json.dumps({"type": "CloseStream"}))
        async for message in ws:
            messages.append(json.loads(message))
    errors = [m for m in messages if m["type"] == "Error"]
    assert [e["code"] for e in errors] == ["invalid_json", "unknown_message_type"]
    finals = results(messages, final=True)
    assert error_rate(clip.references(), " ".join(transcript(f) for f in finals)) < 0.15


async def test_invalid_query_is_rejected_before_upgrade_with_the_parameter(server):
    async with httpx.AsyncClient() as client:
        for query, param in [("sample_rate=123", "sample_rate"), ("encoding=flac", "encoding"),
                             ("model=gpt-9", "model"), ("wat=1", "wat")]:
            with pytest.raises(websockets.InvalidStatus) as caught:
                async with websockets.connect(f"{server.ws_url}/v1/listen?{query}"):
                    pass
            response = caught.value.response
            assert response.status_code == 400
            body = json.loads(response.body)
            assert body["error"]["param"] == param, body
    # ...and the server still serves.
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{server.http_url}/healthz")).json()["status"] == "ok"


@pytest.fixture(scope="module")
def guarded_server(start_server):
    return start_server(ServerConfig(api_keys=("s3cret",),
                                     stream=StreamConfig(max_frame_bytes=64_000)))


async def test_auth_is_required_before_any_audio(guarded_server):
    url = listen_url(guarded_server, interim_results="false")
    for headers, subprotocols in [(None, None), ({"Authorization": "Token wrong"}, None)]:
        with pytest.raises(websockets.InvalidStatus) as caught:
            async with websockets.connect(url, additional_headers=headers,
                                          subprotocols=subprotocols) as ws:
                await ws.send(pcm_bytes(silence(0.5)))
        assert caught.value.response.status_code == 401
        assert json.loads(caught.value.response.body)["error"]["code"] == "invalid_api_key"
    data = pcm_bytes(silence(0.5))
    for kwargs in [{"headers": {"Authorization": "Token s3cret"}},
                   {"headers": {"Authorization": "Bearer s3cret"}},
                   {"subprotocols": ["token", "s3cret"]}]:
        messages = await stream(url, data, speed=0, **kwargs)
        assert messages[-1]["type"] == "Metadata"
    messages = await stream(url + "&token=s3cret", data, speed=0)
    assert messages[-1]["type"] == "Metadata"


async def test_oversized_frame_is_refused_and_reported(guarded_server):
    url = listen_url(guarded_server, interim_results="false") + "&token=s3cret"
    clip = item("en_lj_LJ001-0002")
    big = pcm_bytes(silence(3))  # 96 kB > 64 kB limit
    good = pcm_bytes(np.concatenate([silence(0.3), clip.mono16k(), silence(1.0)]))
    messages = []
    async with websockets.connect(url) as ws:
        await ws.send(big)
        for i in range(0, len(good), 32_000):
            await ws.send(good[i:i + 32_000])
        await ws.send(json.dumps({"type": "CloseStream"}))
        async for message in ws:
            messages.append(json.loads(message))
    assert [m["code"] for m in messages if m["type"] == "Error"] == ["frame_too_large"]
    assert error_rate(clip.references(),
                      " ".join(transcript(f) for f in results(messages, final=True))) < 0.15
    # Only accepted audio counts in the stream's duration.
    assert messages[-1]["duration"] == pytest.approx(len(good) / 32_000, abs=0.01)


async def test_vanishing_client_leaks_nothing_and_others_are_unaffected(server):
    clip = item("en_lj_LJ001-0004")
    ws = await websockets.connect(listen_url(server))
    await ws.send(pcm_bytes(np.concatenate([silence(0.3), clip.mono16k()[: RATE * 2]])))
    await asyncio.sleep(0.3)
    ws.transport.abort()  # mid-utterance, no close handshake
    messages = await stream(listen_url(server, interim_results="false"),
                            pcm_bytes(np.concatenate([silence(0.3), clip.mono16k(), silence(1)])),
                            speed=0)
    assert error_rate(clip.references(),
                      " ".join(transcript(f) for f in results(messages, final=True))) < 0.15
    # The vanished stream is cleaned up: its pending work ends, its count goes.
    deadline = asyncio.get_running_loop().time() + timeout(10)
    async with httpx.AsyncClient() as client:
        while (health := (await client.get(f"{server.http_url}/healthz")).json())["active_streams"]:
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
    assert health["active_streams"] == 0
