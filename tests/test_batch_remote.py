"""The remote backend: a pool of OpenAI-compatible servers behind the Transcriber interface.

Against our own server on real sockets, behind a gateway server, and with faults injected
through httpx.MockTransport.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from streaming.api.server import BackgroundServer
from streaming.audio import to_float32
from streaming.config import ModelConfig, ServerConfig
from streaming.errors import InvalidParameter, TranscriptionError
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate
from streaming.model.backends.remote import (
    RemoteConfig,
    RemoteTranscriber,
    parse_verbose_json,
)
from streaming.model.engine import Engine
from streaming.model.transcriber import TranscribeOptions, Transcriber

from .conftest import timeout

CLIP = "en_lj_LJ001-0006"
VERBOSE = {"task": "transcribe", "language": "english", "duration": 2.0, "text": " Hi there.",
           "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": 1.5, "text": " Hi there.",
                         "tokens": [1, 2], "temperature": 0.0, "avg_logprob": -0.2,
                         "compression_ratio": 1.0, "no_speech_prob": 0.01}],
           "words": [{"word": " Hi", "start": 0.1, "end": 0.5},
                     {"word": " there.", "start": 0.5, "end": 1.2}]}


def audio():
    return to_float32(item(CLIP).mono16k())


def test_against_our_server(server):
    remote = RemoteTranscriber(RemoteConfig(urls=(server.http_url,), timeout_s=timeout(60)))
    assert isinstance(remote, Transcriber)
    transcript = remote.transcribe(audio(), TranscribeOptions(language="en", temperature=0.0))
    assert error_rate(item(CLIP).references(), transcript.text) < 0.15
    assert transcript.language == "en" and transcript.segments
    assert len(transcript.words) >= 12
    assert all(0 <= w.start <= w.end <= item(CLIP).duration_s + 0.05 for w in transcript.words)
    german = to_float32(item("de_pico_leopard_test_de").mono16k())
    assert remote.detect_language(german) == {"de": 1.0}
    remote.close()


def test_dead_server_in_the_pool_is_skipped(server):
    with socket_closed_port() as dead:
        remote = RemoteTranscriber(RemoteConfig(
            urls=(f"http://127.0.0.1:{dead}", server.http_url), timeout_s=timeout(60),
            retries=1, cooldown_s=60))
        for _ in range(2):
            text = remote.transcribe(audio(), TranscribeOptions(language="en", temperature=0.0)).text
            assert error_rate(item(CLIP).references(), text) < 0.15
        stats = {s["url"]: s for s in remote.stats()}
        assert stats[f"http://127.0.0.1:{dead}"]["failures"] == 1   # then avoided
        assert stats[server.http_url]["calls"] == 2
        remote.close()


class socket_closed_port:
    """A port on 127.0.0.1 where nothing listens."""

    def __enter__(self) -> int:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        return self.port

    def __exit__(self, *exc) -> None:
        pass


def test_gateway_scales_out_through_a_remote_engine(server):
    """A server whose engine holds a RemoteTranscriber serves the SDK from another server."""
    remote = RemoteTranscriber(RemoteConfig(urls=(server.http_url,), timeout_s=timeout(60)))
    engine = Engine(ModelConfig(), preloaded={"base": remote})
    gateway = BackgroundServer(ServerConfig(port=0), engine).start(timeout=timeout(30))
    try:
        api = openai.OpenAI(base_url=gateway.http_url + "/v1", api_key="none", max_retries=0)
        result = api.audio.transcriptions.create(
            file=("clip.wav", item(CLIP).audio.read_bytes()), model="whisper-1", language="en",
            temperature=0, response_format="verbose_json", timestamp_granularities=["word"])
        assert error_rate(item(CLIP).references(), result.text) < 0.15
        assert result.words and result.language == "english"
    finally:
        gateway.stop()
        remote.close()


# --- fault injection --------------------------------------------------------------------

class Pool:
    """MockTransport handler: per-host scripted answers, records every request."""

    def __init__(self, script: dict[str, list]) -> None:
        self.script = script
        self.seen: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read().decode("latin-1")
        with self.lock:
            self.seen.append((request.url.host, {"path": request.url.path, "body": body}))
            answers = self.script[request.url.host]
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            return httpx.Response(answer, json={"error": {"message": "boom", "type": "x",
                                                          "param": "language", "code": "bad"}})
        return httpx.Response(200, json=answer)


def make(script: dict[str, list], **config) -> tuple[RemoteTranscriber, Pool]:
    pool = Pool(script)
    urls = tuple(f"http://{host}" for host in script)
    return RemoteTranscriber(RemoteConfig(urls=urls, **config),
                             transport=httpx.MockTransport(pool)), pool


@pytest.mark.parametrize("fault", [500, 503, 429, httpx.ConnectError("refused"),
                                   httpx.ReadTimeout("slow")])
def test_failures_are_retried_on_another_server(fault):
    remote, pool = make({"a": [fault], "b": [VERBOSE]})
    transcript = remote.transcribe(audio()[:16000], TranscribeOptions())
    assert transcript.text == "Hi there." and [h for h, _ in pool.seen] == ["a", "b"]
    # "a" now cools down: the next call goes straight to "b".
    remote.transcribe(audio()[:16000], TranscribeOptions())
    assert [h for h, _ in pool.seen] == ["a", "b", "b"]


def test_client_errors_are_not_retried():
    remote, pool = make({"a": [400], "b": [VERBOSE]})
    with pytest.raises(InvalidParameter) as caught:
        remote.transcribe(audio()[:16000], TranscribeOptions())
    assert caught.value.param == "language" and len(pool.seen) == 1


def test_all_servers_failing_is_a_502():
    remote, pool = make({"a": [500], "b": [httpx.ConnectError("down")]}, retries=3)
    with pytest.raises(TranscriptionError) as caught:
        remote.transcribe(audio()[:16000], TranscribeOptions())
    assert caught.value.status == 502 and caught.value.code == "upstream_unavailable"
    assert len(pool.seen) == 4


def test_requests_carry_the_options():
    remote, pool = make({"a": [VERBOSE]}, model="whisper-1", api_key="k")
    remote.transcribe(audio()[:16000], TranscribeOptions(
        languages=("en", "de"), task="translate", prompt="Kennedy", temperature=(0.0, 0.2)))
    _, request = pool.seen[0]
    assert request["path"] == "/v1/audio/translations"
    for field, value in (("language", "en,de"), ("prompt", "Kennedy"), ("temperature", "0.0"),
                         ("response_format", "verbose_json"), ("model", "whisper-1")):
        assert f'name="{field}"\r\n\r\n{value}\r\n' in request["body"], field
    assert 'filename="audio.wav"' in request["body"] and "RIFF" in request["body"]


def test_least_busy_server_gets_the_call():
    release = threading.Event()
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "a" and calls.count("a") == 1:
            release.wait(timeout(10))          # "a" stays busy with the first call
        return httpx.Response(200, json=VERBOSE)

    remote = RemoteTranscriber(RemoteConfig(urls=("http://a", "http://b", "http://c")),
                               transport=httpx.MockTransport(handler))
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(remote.transcribe, audio()[:1600], TranscribeOptions())
        while not calls:
            pass
        others = [remote.transcribe(audio()[:1600], TranscribeOptions()) for _ in range(4)]
        release.set()
        first.result()
    assert calls[0] == "a" and "a" not in calls[1:]     # busy "a" skipped; "b"/"c" in turn
    assert sorted(calls[1:]) == ["b", "b", "c", "c"] and len(others) == 4


def test_parse_verbose_json_assigns_words_to_segments():
    body = json.loads(json.dumps(VERBOSE))
    body["segments"].append({**body["segments"][0], "id": 1, "start": 1.5, "end": 2.0,
                             "text": " Bye."})
    body["words"].append({"word": " Bye.", "start": 1.6, "end": 1.9})
    transcript = parse_verbose_json(body)
    assert [len(s.words) for s in transcript.segments] == [2, 1]
    assert transcript.language == "en" and transcript.words[0].word == "Hi"
    translated = parse_verbose_json(body, task="translate", fallback_language="de")
    assert translated.language == "de" and translated.task == "translate"
