"""The batch API through the official `openai` and `together` SDKs, on real servers and speech.

The format matrix uses the cheapest response format (json), the response-format matrix one
input format (wav); limits that need a small configuration run on one dedicated server.
"""

from __future__ import annotations

import re
import socket
import time

import httpx
import numpy as np
import openai
import pytest
import together

from bench.audio_files import FORMATS, concatenate, encode, flac_claiming
from streaming.audio import wav_bytes
from streaming.config import BatchConfig
from streaming.eval.corpus import human_english, item
from streaming.eval.scoring import corpus_error_rate, error_rate
from streaming.languages import name_of

from .conftest import timeout

CLIP = "en_lj_LJ001-0006"              # 5.7 s, 17 words
NON_ENGLISH = ["de_pico_leopard_test_de", "es_pico_leopard_test_es", "fr_pico_leopard_test_fr",
               "ru_deepspeech_ru", "zh_aishell_BAC009S0724W0121"]
LIMITS = BatchConfig(max_upload_bytes=200_000, upload_idle_timeout_s=1.0,
                     url_allowlist="127.0.0.1", max_url_bytes=300_000)


def client(server, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.http_url + "/v1", api_key=kwargs.pop("api_key", "none"),
                         max_retries=0, timeout=timeout(120), **kwargs)


def upload(name: str, pcm: np.ndarray | None = None) -> tuple[str, bytes]:
    return (f"clip{FORMATS[name][4]}", encode(item(CLIP).mono16k() if pcm is None else pcm, name))


def error_of(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


@pytest.fixture(scope="module")
def limited(start_server):
    return start_server(batch=LIMITS)


@pytest.fixture(scope="module")
def files_server(serve_files):
    return serve_files({"clip.mp3": upload("mp3")[1],
                        "big.wav": wav_bytes(np.zeros(16000 * 20, np.int16))})   # 640 kB


# --- every input format, every response format ------------------------------------------

@pytest.mark.parametrize("name", sorted(n for n in FORMATS if n != "flac_16k"))
def test_openai_sdk_transcribes_every_format(server, name):
    text = client(server).audio.transcriptions.create(
        file=upload(name), model="whisper-1", response_format="json", language="en",
        temperature=0).text
    assert error_rate(item(CLIP).references(), text) < 0.15, text


def test_every_response_format(server):
    api = client(server).audio.transcriptions
    duration = item(CLIP).duration_s
    refs = item(CLIP).references()

    verbose = api.create(file=upload("wav"), model="whisper-1", response_format="verbose_json",
                         timestamp_granularities=["word", "segment"], language="en",
                         temperature=0)
    assert verbose.language == "english" and verbose.task == "transcribe"
    assert verbose.duration == pytest.approx(duration, abs=0.05)
    assert error_rate(refs, verbose.text) < 0.15
    assert verbose.segments and verbose.words and len(verbose.words) >= 12
    for segment in verbose.segments:
        assert 0 <= segment.start < segment.end <= duration + 0.05
        assert segment.tokens and segment.avg_logprob < 0 and 0 <= segment.no_speech_prob <= 1
    for word in verbose.words:
        assert 0 <= word.start <= word.end <= duration + 0.05
    assert [w.start for w in verbose.words] == sorted(w.start for w in verbose.words)

    text = api.create(file=upload("wav"), model="whisper-1", response_format="text",
                      language="en", temperature=0)
    assert text.strip() == verbose.text

    for fmt, sep in (("srt", ","), ("vtt", ".")):
        body = api.create(file=upload("wav"), model="whisper-1", response_format=fmt,
                          language="en", temperature=0)
        if fmt == "vtt":
            assert body.startswith("WEBVTT")
        stamp = rf"(\d\d):(\d\d):(\d\d){re.escape(sep)}(\d\d\d)"
        cues = re.findall(rf"{stamp} --> {stamp}\n(.+)", body)
        assert cues, body
        seconds = [(int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000,
                    int(h2) * 3600 + int(m2) * 60 + int(s2) + int(ms2) / 1000)
                   for h, m, s, ms, h2, m2, s2, ms2, _ in cues]
        assert all(0 <= a < b <= duration + 0.05 for a, b in seconds)
        assert error_rate(refs, " ".join(c[-1] for c in cues)) < 0.15


def test_sse_stream_events(server):
    events = list(client(server).audio.transcriptions.create(
        file=upload("mp3"), model="whisper-1", stream=True, temperature=0))
    assert [e.type for e in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1)
    assert events[-1].type == "transcript.text.done"
    assert "".join(e.delta for e in events[:-1]) == events[-1].text
    assert error_rate(item(CLIP).references(), events[-1].text) < 0.15


def test_english_wer_under_15_percent(server):
    api = client(server).audio.transcriptions
    chosen = [i for i in human_english() if 4 < i.duration_s < 12][:6]
    pairs = []
    for entry in chosen:
        text = api.create(file=(entry.audio.name, entry.audio.read_bytes()), model="whisper-1",
                          language="en", temperature=0).text
        pairs.append((entry.references(), text, "en"))
    assert corpus_error_rate(pairs) < 0.15, pairs


def test_languages_are_detected(server):
    api = client(server).audio.transcriptions
    for entry in map(item, NON_ENGLISH):
        result = api.create(file=(entry.audio.name, entry.audio.read_bytes()), model="whisper-1",
                            response_format="verbose_json", temperature=0)
        assert result.language == name_of(entry.language), (entry.id, result.language)


def test_language_set_restricts_detection(server):
    entry = item("de_pico_leopard_test_de")
    result = client(server).audio.transcriptions.create(
        file=(entry.audio.name, entry.audio.read_bytes()), model="whisper-1", language="en,de",
        response_format="verbose_json", temperature=0)
    assert result.language == "german"


def _english_words(text: str) -> int:
    common = {"the", "a", "an", "is", "of", "and", "to", "in", "was", "it", "are", "on", "with"}
    return sum(w in common for w in re.findall(r"[a-z]+", text.lower()))


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks whisper-1 so
def test_translations_produce_english(server):
    entry = item("es_pico_leopard_test_es")
    result = client(server).audio.translations.create(
        file=(entry.audio.name, entry.audio.read_bytes()), model="whisper-1",
        response_format="verbose_json", temperature=0)
    assert result.language == "english"
    assert result.text.isascii() and _english_words(result.text) >= 1, result.text


def test_together_sdk(server):
    tg = together.Together(base_url=server.http_url, api_key="none", max_retries=0)
    result = tg.audio.transcriptions.create(
        file=upload("m4a"), model="openai/whisper-large-v3", response_format="verbose_json",
        timestamp_granularities="word", language="auto", temperature=0)
    body = result.model_dump()
    assert error_rate(item(CLIP).references(), body["text"]) < 0.15
    assert body["language"] == "english" and body["segments"]
    assert all(0 <= w["start"] <= w["end"] <= item(CLIP).duration_s + 0.05 for w in body["words"])
    entry = item("de_pico_leopard_test_de")
    translated = tg.audio.translations.create(
        file=(entry.audio.name, entry.audio.read_bytes()), model="openai/whisper-large-v3",
        temperature=0)
    assert translated.text.isascii() and _english_words(translated.text) >= 1, translated.text


def test_models_list_aliases_and_local_models(server):
    api = client(server)
    ids = {m.id: m for m in api.models.list().data}
    assert {"base", "whisper-1", "openai/whisper-large-v3"} <= set(ids)
    assert ids["whisper-1"].model_dump()["root"] == "base"
    assert api.models.retrieve("whisper-1").id == "whisper-1"
    with pytest.raises(openai.NotFoundError):
        api.models.retrieve("gpt-17")


def test_three_minute_file_end_to_end(server):
    parts = [item("long_en_two_cities_p1_p3"), item("long_en_dagon_p1"),
             *[item(f"en_lj_LJ001-00{n:02d}") for n in range(1, 11)]]
    pcm = concatenate([p.mono16k() for p in parts], gap_s=1.0)
    duration = len(pcm) / 16000
    assert duration > 170
    result = client(server).audio.transcriptions.create(
        file=("long.mp3", encode(pcm, "mp3")), model="whisper-1", language="en",
        response_format="verbose_json", timestamp_granularities=["word", "segment"],
        temperature=0, timeout=timeout(300))
    assert result.duration == pytest.approx(duration, abs=0.1)
    reference = " ".join(p.text for p in parts)
    assert error_rate(reference, result.text) < 0.15
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end <= duration + 0.05
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    assert all(0 <= w.start <= w.end <= duration + 0.05 for w in result.words)
    # Stitched into file time: the Dagon reading starts after the 86 s Dickens one.
    dagon_start = parts[0].duration_s + 1.0
    first_dagon_word = next(w for w in result.words if w.word.strip(".,").lower() == "writing")
    assert abs(first_dagon_word.start - (dagon_start + 0.5)) < 5, first_dagon_word


# --- errors -----------------------------------------------------------------------------

def test_unknown_model_is_404(server):
    with pytest.raises(openai.NotFoundError) as caught:
        client(server).audio.transcriptions.create(file=upload("wav"), model="gpt-17")
    error = error_of(caught.value)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("extra, param", [
    ({"response_format": "xml"}, "response_format"),
    ({"temperature": 3}, "temperature"),
    ({"timestamp_granularities": ["sentence"]}, "timestamp_granularities[]"),
    ({"language": "xx"}, "language"),
])
def test_bad_parameters_are_400_naming_the_parameter(server, extra, param):
    with pytest.raises(openai.BadRequestError) as caught:
        client(server).audio.transcriptions.create(file=upload("wav"), model="whisper-1",
                                                   **extra)
    assert error_of(caught.value)["param"] == param


def test_missing_file_is_400(server):
    response = httpx.post(server.http_url + "/v1/audio/transcriptions",
                          data={"model": "whisper-1"}, files={"other": ("x", b"1")})
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"


@pytest.mark.parametrize("payload, code", [
    (b"", "empty_file"),
    (b"\x00\x01garbage" * 300, "invalid_audio"),
])
def test_undecodable_files_are_400(server, payload, code):
    with pytest.raises(openai.BadRequestError) as caught:
        client(server).audio.transcriptions.create(file=("a.mp3", payload), model="whisper-1")
    assert error_of(caught.value)["code"] == code


def test_truncated_mp3(server):
    data = upload("mp3")[1]
    api = client(server).audio.transcriptions
    half = api.create(file=("half.mp3", data[: len(data) // 2]), model="whisper-1",
                      response_format="verbose_json", temperature=0)
    assert 2.0 < half.duration < 4.0 and half.text        # what is there is transcribed
    with pytest.raises(openai.BadRequestError) as caught:  # only a header's worth: nothing
        api.create(file=("stub.mp3", data[:200]), model="whisper-1")
    assert error_of(caught.value)["code"] in ("empty_audio", "invalid_audio")


def model_calls(server) -> int:
    return sum(s.stats.calls for s in server.app.state.streamscribe.engine.loaded().values())


def test_file_claiming_a_huge_duration_is_refused_before_any_model_call(server):
    data = flac_claiming(5 * 3600, item(CLIP).mono16k())
    calls = model_calls(server)
    with pytest.raises(openai.BadRequestError) as caught:
        client(server).audio.transcriptions.create(file=("huge.flac", data), model="whisper-1")
    assert error_of(caught.value)["code"] == "audio_too_long"
    assert model_calls(server) == calls


def post_url(server, url: str, **fields) -> httpx.Response:
    """A URL in the `file` field as a multipart text part (the together SDK 3.1 rejects a str
    `file` client-side, so this is what its documented URL input sends on the wire)."""
    form = {"file": (None, url), "model": (None, "openai/whisper-large-v3"),
            **{k: (None, v) for k, v in fields.items()}}
    return httpx.post(server.http_url + "/v1/audio/transcriptions", files=form,
                      timeout=timeout(60))


def test_url_to_loopback_is_refused(server, files_server):
    response = post_url(server, files_server + "/clip.mp3")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": response.json()["error"]["message"], "type": "invalid_request_error",
        "param": "file", "code": "url_not_allowed"}
    for url in ("ftp://example.com/a.mp3", "file:///etc/passwd"):
        assert post_url(server, url).json()["error"]["code"] == "url_not_allowed"


def test_url_input_with_allow_list(limited, files_server):
    response = post_url(limited, files_server + "/clip.mp3", temperature="0", language="en")
    assert response.status_code == 200, response.text
    assert error_rate(item(CLIP).references(), response.json()["text"]) < 0.15
    # A URL-only request may also come form-encoded.
    encoded = httpx.post(limited.http_url + "/v1/audio/transcriptions", timeout=timeout(60),
                         data={"file": files_server + "/clip.mp3", "response_format": "text",
                               "language": "en", "temperature": "0"})
    assert encoded.status_code == 200 and encoded.text.strip() == response.json()["text"]
    for path, code in (("/big.wav", "file_too_large"), ("/missing.mp3", "url_fetch_failed")):
        response = post_url(limited, files_server + path)
        assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_over_limit_upload_is_413(limited):
    big = upload("wav")                                      # about 1 MB > 200 kB
    with pytest.raises(openai.APIStatusError) as caught:
        client(limited).audio.transcriptions.create(file=big, model="whisper-1")
    assert caught.value.status_code == 413
    assert error_of(caught.value)["code"] == "file_too_large"
    # Without Content-Length (chunked), the count stops the upload as it streams.
    request = httpx.Request("POST", limited.http_url + "/v1/audio/transcriptions",
                            files={"file": big}, data={"model": "whisper-1"})
    body = request.read()

    def chunks():
        for start in range(0, len(body), 32_768):
            yield body[start:start + 32_768]

    response = httpx.post(limited.http_url + "/v1/audio/transcriptions", content=chunks(),
                          headers={"content-type": request.headers["content-type"]})
    assert response.status_code == 413


def _raw_request(port: int, path: str = "/v1/audio/transcriptions"):
    """A multipart request as (head bytes, body bytes) for hand-driven sockets."""
    request = httpx.Request("POST", f"http://127.0.0.1:{port}{path}",
                            files={"file": ("clip.wav", wav_bytes(item(CLIP).mono16k()))},
                            data={"model": "whisper-1", "temperature": "0"})
    body = request.read()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            f"{request.headers['content-type']}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    return head, body


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_slow_drip_upload_succeeds_without_blocking_others(server):
    head, body = _raw_request(server.port)
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout(60)) as sock:
        sock.sendall(head)
        pieces = [body[i:i + len(body) // 20 + 1] for i in range(0, len(body), len(body) // 20 + 1)]
        for n, piece in enumerate(pieces):
            sock.sendall(piece)
            time.sleep(0.1)
            if n == 5:   # the upload is incomplete (this thread sends it), yet others are served
                models = httpx.get(server.http_url + "/v1/models", timeout=timeout(10))
                assert models.status_code == 200
        status, answer = _read_response(sock)
    assert status == 200, answer
    assert error_rate(item(CLIP).references(), httpx.Response(200, content=answer).json()["text"]) < 0.15


def test_stalled_upload_is_408(limited):
    head, body = _raw_request(limited.port)
    with socket.create_connection(("127.0.0.1", limited.port), timeout=timeout(30)) as sock:
        sock.sendall(head + body[:1000])           # then nothing, for longer than 1 s
        status, answer = _read_response(sock)
    assert status == 408 and b"upload_timeout" in answer


def test_auth(start_server):
    secured = start_server(api_keys=("sesame",))
    with pytest.raises(openai.AuthenticationError):
        client(secured, api_key="wrong").audio.transcriptions.create(file=upload("wav"),
                                                                     model="whisper-1")
    text = client(secured, api_key="sesame").audio.transcriptions.create(
        file=upload("wav"), model="whisper-1", temperature=0).text
    assert error_rate(item(CLIP).references(), text) < 0.15
    response = httpx.get(secured.http_url + "/v1/models", headers={"Authorization": "Token sesame"})
    assert response.status_code == 200


def test_client_hanging_up_frees_the_model(server):
    """Pieces not yet started are dropped once the client is gone."""
    scheduler = server.app.state.streamscribe.engine.loaded()["base"]
    pcm = item("long_en_two_cities_p1_p3").mono16k()             # 86 s: 4 pieces or more
    request = httpx.Request("POST", server.http_url + "/v1/audio/transcriptions",
                            files={"file": ("long.flac", encode(pcm, "flac_16k"))},
                            data={"model": "whisper-1", "language": "en", "temperature": "0"})
    body = request.read()
    head = (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            f"{request.headers['content-type']}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    calls = scheduler.stats.calls
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + body)
        deadline = time.monotonic() + timeout(30)
        while scheduler.stats.running == 0 and time.monotonic() < deadline:
            time.sleep(0.05)                    # transcription has begun
        assert scheduler.stats.running > 0
    # Once the pieces in flight are done, nothing more runs: the rest were dropped.
    deadline = time.monotonic() + timeout(30)
    while (scheduler.stats.running or scheduler.stats.queued) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(timeout(2))                      # two model calls' time: a next piece would show
    assert scheduler.stats.running == 0 and scheduler.stats.queued == 0
    assert scheduler.stats.calls - calls <= 2                     # at most the pieces in flight
