"""Deepgram pre-recorded (`POST /v1/listen`) through the official deepgram-sdk, LiveKit's
Deepgram plugin and raw HTTP, on real servers and corpus speech; Deepgram model names on both
/v1/listen paths (Pipecat's default `nova-3-general`); and JSON errors everywhere.

Every response body must validate against the SDK's own `ListenV1Response` model, so an SDK
user gets the fields Deepgram documents.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import aiohttp
import httpx
import numpy as np
import pytest
import websockets
from deepgram import DeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from deepgram.types.listen_v1response import ListenV1Response
from livekit import rtc
from livekit.plugins import deepgram as livekit_deepgram
from pipecat.services.deepgram.stt import DeepgramSTTService

from streaming.audio import mulaw_encode, wav_bytes
from streaming.config import BatchConfig
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate

from .conftest import timeout
from . import pipecat_harness, wsclient
from .test_metrics import scrape, value

CLIP = "en_lj_LJ001-0006"          # 5.7 s, LJ Speech
SECOND = "en_lj_LJ001-0001"        # 9.7 s
GUTENBERG = "en_lj_LJ001-0007"     # base writes "Guttenberg" unless told the spelling
GERMAN = "de_pico_leopard_test_de"
LIMITS = BatchConfig(url_allowlist="127.0.0.1", max_upload_bytes=1_000_000)


def sdk(server) -> DeepgramClient:
    environment = DeepgramClientEnvironment(base=server.http_url, production=server.ws_url,
                                            agent=server.ws_url, agent_rest=server.http_url)
    return DeepgramClient(api_key="not-needed-here", environment=environment)


def listen(server, query: str = "", **kwargs) -> httpx.Response:
    return httpx.post(f"{server.http_url}/v1/listen{query}", timeout=timeout(120), **kwargs)


def validated(body: dict) -> ListenV1Response:
    """The body parsed strictly by the SDK's model (its client parses leniently)."""
    return ListenV1Response.model_validate(body)


def transcript(response: ListenV1Response, channel: int = 0) -> str:
    return response.results.channels[channel].alternatives[0].transcript


def check_words(response: ListenV1Response, duration: float) -> None:
    for channel in response.results.channels:
        words = channel.alternatives[0].words
        assert [w.start for w in words] == sorted(w.start for w in words)
        for w in words:
            assert 0 <= w.start <= w.end <= duration + 0.05
            assert w.speaker is None and w.word == w.word.lower()
            assert w.punctuated_word.strip(".,!?").lower() == w.word


@pytest.fixture(scope="module")
def limited(start_server):
    return start_server(batch=LIMITS)


@pytest.fixture(scope="module")
def files_server(serve_files):
    return serve_files({"de.wav": item(GERMAN).audio.read_bytes(),
                        "en.wav": item(CLIP).audio.read_bytes()})


# --- clients ----------------------------------------------------------------------------

def test_sdk_transcribe_file(server):
    entry = item(CLIP)
    audio = entry.audio.read_bytes()
    result = sdk(server).listen.v1.media.transcribe_file(
        request=audio, model="nova-3", smart_format=True, punctuate=True, utterances=True,
        language="en")
    assert isinstance(result, ListenV1Response), result
    result = validated(result.model_dump(by_alias=True))
    assert error_rate(entry.references(), transcript(result)) < 0.15, transcript(result)
    meta = result.metadata
    assert meta.sha256 == hashlib.sha256(audio).hexdigest()
    assert meta.channels == 1 and meta.duration == pytest.approx(entry.duration_s, abs=0.05)
    assert meta.model_info[meta.models[0]]["name"] == "base"
    assert meta.model_info[meta.models[0]]["requested"] == "nova-3"
    check_words(result, entry.duration_s)
    utterances = result.results.utterances
    assert utterances and all(u.channel == 0 and u.words for u in utterances)
    assert " ".join(u.transcript for u in utterances) == " ".join(
        w.punctuated_word for w in result.results.channels[0].alternatives[0].words)
    assert result.results.channels[0].detected_language is None   # not asked for
    paragraphs = result.results.channels[0].alternatives[0].paragraphs   # smart_format's
    assert paragraphs.transcript.startswith("\n") and paragraphs.paragraphs
    assert sum(p.num_words for p in paragraphs.paragraphs) == len(
        result.results.channels[0].alternatives[0].words)


def test_sdk_transcribe_url(limited, files_server):
    entry = item(CLIP)
    result = sdk(limited).listen.v1.media.transcribe_url(
        url=files_server + "/en.wav", model="nova-2-general", smart_format=True)
    result = validated(result.model_dump(by_alias=True))
    assert error_rate(entry.references(), transcript(result)) < 0.15, transcript(result)
    assert result.metadata.sha256 == hashlib.sha256(entry.audio.read_bytes()).hexdigest()


def test_url_as_curl_sends_it_detecting_the_language(limited, files_server):
    response = listen(limited, "?detect_language=true", json={"url": files_server + "/de.wav"})
    assert response.status_code == 200, response.text
    channel = validated(response.json()).results.channels[0]
    assert channel.detected_language == "de"
    # base is weak on German ("Portal liegende" or "portalliegende", by CPU), but hears this
    assert "portal" in channel.alternatives[0].transcript.lower()
    # A URL the allow-list does not cover is refused (the batch API's SSRF guard).
    deepgram_error(listen(limited, json={"url": "http://10.0.0.1/a.wav"}), 400, "url_not_allowed")


def test_multichannel_and_utterances_curl_style(server):
    """Two speakers, one per channel, as `curl --data-binary @call.wav` sends them."""
    first, second = item(CLIP).mono16k(), item(SECOND).mono16k()
    stereo = np.zeros((len(second) + 16000, 2), np.int16)
    stereo[:len(first), 0] = first
    stereo[16000:, 1] = second
    response = listen(server, "?model=nova-3&multichannel=true&utterances=true&utt_split=0.8",
                      content=wav_bytes(stereo), headers={"Content-Type": "audio/wav"})
    assert response.status_code == 200, response.text
    assert response.headers["dg-request-id"] == response.json()["metadata"]["request_id"]
    result = validated(response.json())
    assert result.metadata.channels == 2 and len(result.results.channels) == 2
    assert error_rate(item(CLIP).references(), transcript(result, 0)) < 0.15
    assert error_rate(item(SECOND).references(), transcript(result, 1)) < 0.15
    check_words(result, len(stereo) / 16000)
    assert all(w.start >= 1.0 for w in result.results.channels[1].alternatives[0].words)
    utterances = result.results.utterances
    assert {u.channel for u in utterances} == {0, 1}
    assert [u.start for u in utterances] == sorted(u.start for u in utterances)


def test_headerless_audio(server):
    pcm = item(CLIP).mono16k()
    mulaw = mulaw_encode(pcm[::2])       # 8 kHz telephone audio (the clip has no energy above 4 kHz)
    response = listen(server, "?encoding=mulaw&sample_rate=8000", content=mulaw,
                      headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200, response.text
    result = validated(response.json())
    assert error_rate(item(CLIP).references(), transcript(result)) < 0.15, transcript(result)
    assert result.metadata.duration == pytest.approx(len(pcm) / 16000, abs=0.05)
    # Headerless stereo, one channel each: speech on the right, silence on the left.
    stereo = np.stack([np.zeros_like(pcm), pcm], axis=1)
    response = listen(server, "?encoding=linear16&sample_rate=16000&channels=2&multichannel=true",
                      content=stereo.astype("<i2").tobytes())
    result = validated(response.json())
    assert transcript(result, 0) == "" and result.results.channels[0].alternatives[0].words == []
    assert error_rate(item(CLIP).references(), transcript(result, 1)) < 0.15


async def test_livekit_recognize(server):
    entry = item(CLIP)
    pcm = entry.mono16k()
    frame = rtc.AudioFrame(pcm.tobytes(), 16000, 1, len(pcm))
    async with aiohttp.ClientSession() as session:
        stt = livekit_deepgram.STT(base_url=server.http_url + "/v1/listen", api_key="none",
                                   http_session=session, model="nova-3", language="en-US",
                                   smart_format=True)
        event = await asyncio.wait_for(stt.recognize(buffer=frame), timeout(120))
    speech = event.alternatives[0]
    assert error_rate(entry.references(), speech.text) < 0.15, speech.text
    assert event.request_id and speech.words and speech.end_time <= entry.duration_s + 0.05


def test_deepgram_model_names_stand_for_the_default_model(server):
    silence = wav_bytes(np.zeros(16000, np.int16))   # no speech: no model call is needed
    for name in ("nova-3-general", "nova-2-phonecall", "nova-2-meeting", "enhanced", "base",
                 "whisper-large", "phonecall"):
        response = listen(server, f"?model={name}", content=silence)
        assert response.status_code == 200, (name, response.text)
        info = next(iter(response.json()["metadata"]["model_info"].values()))
        assert info["name"] == "base" and info.get("requested", "base") == name
    body = deepgram_error(listen(server, "?model=tiny.en&language=de", content=silence), 400,
                          "invalid_parameter")
    assert body["param"] == "language"
    response = listen(server, "?model=gpt-9", content=silence)
    assert response.status_code == 400
    assert response.json()["err_code"] == "model_not_found"


async def test_live_stream_accepts_deepgram_model_names(server):
    """Pipecat's default `nova-3-general` used to be refused on the live path."""
    url = server.ws_url + "/v1/listen?model=nova-3-general&encoding=linear16&sample_rate=16000"
    async with websockets.connect(url) as ws:
        await ws.send(np.zeros(1600, np.int16).tobytes())
        await ws.send(json.dumps({"type": "CloseStream"}))
        messages = [json.loads(m) async for m in ws]
    metadata = messages[-1]
    assert metadata["type"] == "Metadata"
    info = metadata["model_info"][metadata["models"][0]]
    assert info == {"name": "base", "version": "streamscribe-0.1", "arch": "whisper",
                    "requested": "nova-3-general"}


def test_keyterm_biases_recognition(server):
    audio = item(GUTENBERG).audio.read_bytes()
    media = sdk(server).listen.v1.media
    plain = transcript(media.transcribe_file(request=audio, model="nova-3"))
    assert "Guttenberg" in plain, plain            # the mistake the keyterm should fix
    biased = transcript(media.transcribe_file(request=audio, model="nova-3",
                                              keyterm=["Gutenberg", "movable types"]))
    assert "Gutenberg" in biased and "Guttenberg" not in biased, biased
    assert error_rate(item(GUTENBERG).references(), biased) < 0.3   # numbers come as digits


async def test_keyterm_on_the_live_stream(server):
    url = server.ws_url + "/v1/listen?model=nova-3&keyterm=Gutenberg&interim_results=false"
    messages = await wsclient.stream(url, wsclient.pcm_bytes(item(GUTENBERG).mono16k()), speed=0)
    text = " ".join(wsclient.transcript(m) for m in wsclient.results(messages, final=True))
    assert "Gutenberg" in text and "Guttenberg" not in text, text


async def test_pipecat_deepgram_stt_service_with_its_default_model(server):
    """Pipecat's DeepgramSTTService asks for `nova-3-general`, which used to be refused."""
    stt = DeepgramSTTService(api_key="not-needed-here", base_url=server.ws_url,
                             sample_rate=16_000)
    samples = np.concatenate([item(CLIP).mono16k(), np.zeros(32_000, np.int16)])
    async with pipecat_harness.running(stt) as (task, collector):
        await pipecat_harness.send_audio(task, samples, 0.05)
        async with asyncio.timeout(timeout(60)):
            await collector.arrived.wait()
    text = " ".join(frame.text for frame in collector.finals)
    assert error_rate(item(CLIP).references(), text) < 0.15, text


# --- errors -----------------------------------------------------------------------------

def await_scrape(server) -> dict:
    return asyncio.run(scrape(server))


def deepgram_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["err_code"] == code and body["err_msg"], body
    assert body["request_id"] == response.headers["dg-request-id"]
    return body


def test_errors_have_deepgram_shape(server):
    wav = item(CLIP).audio.read_bytes()
    for query, code in (("?nonsense=1", "invalid_parameter"),
                        ("?model=nova-3&model=nova-2", "invalid_parameter"),
                        ("?diarize=true", "invalid_parameter"),
                        ("?summarize=v2", "invalid_parameter"),
                        ("?punctuate=maybe", "invalid_parameter"),
                        ("?utt_split=-1", "invalid_parameter"),
                        ("?encoding=linear16", "invalid_parameter"),
                        ("?language=xx", "invalid_parameter"),
                        ("?keyterm=" + "&keyterm=".join(f"term{i}" for i in range(101)),
                         "invalid_parameter")):
        body = deepgram_error(listen(server, query, content=wav), 400, code)
        assert body["param"]
    deepgram_error(listen(server, content=b""), 400, "empty_file")
    deepgram_error(listen(server, content=b"not audio at all " * 100), 400, "invalid_audio")
    deepgram_error(listen(server, content=b"{nope", headers={"Content-Type": "application/json"}),
                   400, "invalid_json")
    deepgram_error(listen(server, json={"uri": "http://x"}), 400, "invalid_parameter")
    deepgram_error(listen(server, json={"url": "http://127.0.0.1/a.wav"}), 400,
                   "url_not_allowed")
    # Every one of them is counted in /metrics by its code.
    assert value(await_scrape(server), "streamscribe_errors_total", code="empty_file") >= 1
    # The SDK raises its own error type, carrying our body.
    with pytest.raises(ApiError) as raised:
        sdk(server).listen.v1.media.transcribe_file(request=b"", model="nova-3")
    assert raised.value.status_code == 400 and raised.value.body["err_code"] == "empty_file"


def test_limits_and_auth(limited, start_server):
    too_big = wav_bytes(np.zeros(600_000, np.int16))      # 1.2 MB > 1 MB
    deepgram_error(listen(limited, content=too_big), 413, "file_too_large")
    secured = start_server(api_keys=("sesame",))
    deepgram_error(listen(secured, content=b"RIFF"), 401, "invalid_api_key")
    response = listen(secured, content=wav_bytes(np.zeros(16000, np.int16)),
                      headers={"Authorization": "Token sesame"})
    assert response.status_code == 200


@pytest.mark.parametrize("method, path, status, shape", [
    ("GET", "/nope", 404, "openai"),
    ("POST", "/v1/nope", 404, "openai"),
    ("GET", "/v1/listen", 426, "deepgram"),
    ("PUT", "/v1/listen", 405, "deepgram"),
    ("DELETE", "/v1/listen", 405, "deepgram"),
    ("GET", "/v1/listen/extra", 404, "deepgram"),
    ("GET", "/v1/audio/transcriptions", 405, "openai"),
    ("POST", "/v1/audio/nope", 404, "openai"),
    ("DELETE", "/v1/models", 405, "openai"),
    ("POST", "/healthz", 405, "openai"),
    ("GET", "/v1/realtime", 426, "openai"),
    ("GET", "/v1/twilio", 426, "openai"),
])
def test_unknown_paths_and_methods_answer_json(server, method, path, status, shape):
    response = httpx.request(method, server.http_url + path, timeout=timeout(10))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    if shape == "deepgram":
        assert set(body) == {"err_code", "err_msg", "request_id"}, body
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
    if status == 405:
        assert response.headers["allow"]


async def test_unknown_websocket_path_is_refused_with_json(server):
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(server.ws_url + "/v1/nope"):
            pass
    response = refused.value.response
    assert response.status_code == 404
    assert json.loads(response.body)["error"]["code"] == "not_found"
