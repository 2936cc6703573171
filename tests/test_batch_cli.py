"""`streamscribe transcribe`: in-process (on the session's cached model) and against a server."""

from __future__ import annotations

import asyncio
import io
import json
import re

import numpy as np

from bench.audio_files import concatenate, encode
from streaming.cli import main
from streaming.cli.transcribe import TranscribeRequest, run_in_process
from streaming.config import ServerConfig
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate
from streaming.model.engine import Engine

CLIP = "en_lj_LJ001-0006"


def test_in_process_with_progress_bar(model_cache, tmp_path):
    # 70 s, mostly silence: long enough for the bar, cheap to transcribe.
    pcm = concatenate([item(CLIP).mono16k(), np.zeros(16000 * 64, np.int16)], gap_s=0.5)
    path = tmp_path / "long.m4a"
    path.write_bytes(encode(pcm, "m4a"))
    config = ServerConfig()
    engine = Engine(config.model, loader=model_cache.load)
    stderr = io.StringIO()
    body = asyncio.run(run_in_process(
        TranscribeRequest(str(path), language="en", response_format="verbose_json",
                          word_timestamps=True), config, stderr=stderr, engine=engine))
    assert error_rate(item(CLIP).references(), body["text"]) < 0.15
    assert body["duration"] > 69 and body["words"]
    lines = stderr.getvalue().split("\r")
    assert lines[-1].rstrip().endswith("0:01:10 / 0:01:10") and "100%" in lines[-1]


def test_against_a_server_writes_srt(server, tmp_path):
    source = tmp_path / "clip.mp3"
    source.write_bytes(encode(item(CLIP).mono16k(), "mp3"))
    out = tmp_path / "clip.srt"
    assert main(["transcribe", str(source), "--url", server.http_url, "--language", "en",
                 "--response-format", "srt", "-o", str(out)]) == 0
    srt = out.read_text()
    assert re.match(r"1\n00:00:0\d,\d{3} --> 00:00:0\d,\d{3}\n", srt)
    text = " ".join(line for line in srt.splitlines() if line and not line[0].isdigit())
    assert error_rate(item(CLIP).references(), text) < 0.15


def test_translate_against_a_server(server, capsys):
    entry = item("es_pico_leopard_test_es")
    assert main(["transcribe", str(entry.audio), "--url", server.http_url, "--task", "translate",
                 "--response-format", "json"]) == 0
    text = json.loads(capsys.readouterr().out)["text"]
    assert text.isascii() and text


def test_errors_exit_2_with_the_message(server, tmp_path, capsys):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert main(["transcribe", str(empty), "--url", server.http_url]) == 2
    assert "empty" in capsys.readouterr().err


def test_in_process_url_input(model_cache, tmp_path):
    import functools
    import http.server
    import threading

    (tmp_path / "clip.webm").write_bytes(encode(item(CLIP).mono16k(), "webm"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        config = ServerConfig()
        body = asyncio.run(run_in_process(
            TranscribeRequest(f"http://127.0.0.1:{httpd.server_address[1]}/clip.webm",
                              language="en"), config,
            engine=Engine(config.model, loader=model_cache.load)))
    finally:
        httpd.shutdown()
    assert error_rate(item(CLIP).references(), body) < 0.15
