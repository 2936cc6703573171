"""The batch API's parts without a model: decoding, splitting, stitching, formats, params, URLs."""

from __future__ import annotations

import asyncio
import io
import re
import time
import tracemalloc

import httpx
import numpy as np
import pytest
from starlette.datastructures import FormData

from bench.audio_files import (
    FORMATS,
    concatenate,
    encode,
    flac_claiming,
    write_long_silence,
)
from streaming.api.transcriptions import parse_params
from streaming.batch.decode import AudioFile, decode_all
from streaming.batch.formats import render, timestamp
from streaming.batch.pipeline import pieces
from streaming.batch.splitter import PauseSplitter, stitch
from streaming.batch.url_fetch import check_url, download
from streaming.cli.transcribe import ProgressBar, progress_line
from streaming.config import BatchConfig
from streaming.errors import (
    AudioDecodeError,
    AudioTooLong,
    FileTooLarge,
    InvalidParameter,
    UrlRefused,
)
from streaming.eval.corpus import item
from streaming.languages import code_of, name_of, parse_language_set
from streaming.model.transcriber import Segment, Transcript, Word

SPEECH = "en_jfk_inaugural"


def speech() -> np.ndarray:
    return item(SPEECH).mono16k()


# --- decoding ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(n for n in FORMATS if n != "flac_16k"))
def test_every_format_decodes_to_16k_mono_of_the_right_length(name):
    pcm = speech()
    decoded = decode_all(io.BytesIO(encode(pcm, name)))
    assert decoded.dtype == np.int16
    assert abs(len(decoded) / 16000 - len(pcm) / 16000) < 0.1


def test_zero_byte_file_is_empty_file():
    with pytest.raises(AudioDecodeError) as caught:
        AudioFile(io.BytesIO(b""))
    assert caught.value.code == "empty_file"


def test_garbage_is_invalid_audio():
    with pytest.raises(AudioDecodeError) as caught:
        AudioFile(io.BytesIO(b"this is not audio at all " * 100))
    assert caught.value.code == "invalid_audio"


def test_huge_claimed_duration_is_refused_from_the_header():
    data = flac_claiming(5 * 3600, speech()[:16000])
    started = time.perf_counter()
    with pytest.raises(AudioTooLong) as caught:
        AudioFile(io.BytesIO(data), max_duration_s=4 * 3600)
    assert caught.value.code == "audio_too_long" and caught.value.status == 400
    assert time.perf_counter() - started < 1.0


def test_duration_limit_is_enforced_while_decoding_when_the_header_says_nothing():
    data = flac_claiming(0, speech())          # total_samples = 0: "unknown"
    with AudioFile(io.BytesIO(data), max_duration_s=2.0) as audio:
        assert audio.info.duration is None
        with pytest.raises(AudioTooLong):
            for _ in audio.chunks():
                pass
        assert audio.seconds_decoded < 3.5      # stopped early, not at the end


def test_truncated_mp3_decodes_what_is_there():
    data = encode(speech(), "mp3")
    decoded = decode_all(io.BytesIO(data[: len(data) // 2]))
    assert 4.0 < len(decoded) / 16000 < 7.0


# --- splitting and stitching -----------------------------------------------------------

def test_pieces_are_cut_in_pauses_and_silence_is_skipped():
    clip = speech()                                           # 11 s
    audio = concatenate([clip, np.zeros(16000 * 40, np.int16), clip, clip, clip], gap_s=1.5)
    splitter = PauseSplitter(max_s=30, min_s=10)
    found = []
    for start in range(0, len(audio), 7000):                  # odd chunk sizes
        found += splitter.feed(audio[start:start + 7000])
    found += splitter.finish()
    assert all(p.duration <= 30.0 for p in found)
    assert [p.index for p in found] == list(range(len(found)))
    assert splitter.skipped_s > 10                            # most of the 40 s silence
    # Every cut lies in a pause: the audio around each piece boundary is quiet.
    for piece in found[:-1]:
        end = int(piece.end * 16000)
        around = audio[max(0, end - 1600):end + 1600].astype(np.float32)
        assert np.sqrt(np.mean(around ** 2)) < 300, piece
    covered = sum(p.duration for p in found) + splitter.skipped_s
    assert abs(covered - len(audio) / 16000) < 0.05


def test_stitch_moves_times_to_file_time_and_renumbers():
    def part(text, start, end):
        words = (Word(text, start, end, 0.9),)
        seg = Segment(0, 0, start, end, " " + text, (1, 2), 0.0, -0.2, 1.1, 0.01, words)
        return Transcript(text, "en", 0.9, 30.0, (seg,))

    out = stitch([(0.0, part("one", 1.0, 2.0)), (29.5, part("two", 0.5, 1.5))],
                 duration=40.0, language="en")
    assert out.text == "one two"
    assert [s.id for s in out.segments] == [0, 1]
    assert out.segments[1].start == pytest.approx(30.0)
    assert out.segments[1].seek == 2950
    assert out.words[1].end == pytest.approx(31.0)
    assert out.duration == 40.0


def test_four_hour_mostly_silent_file_splits_quickly_in_flat_memory(tmp_path):
    path = tmp_path / "four_hours.flac"
    write_long_silence(path, 240, speech())
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with AudioFile(path, max_duration_s=4 * 3600 + 1) as audio:
            assert audio.info.duration == pytest.approx(4 * 3600)
            found = list(pieces(audio, BatchConfig()))
            decoded = audio.seconds_decoded
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded == pytest.approx(4 * 3600)
    assert len(found) == 12                                   # one per speech burst
    for n, piece in enumerate(found):                         # each holds its burst
        assert piece.start <= n * 1200 + 1 and piece.end >= n * 1200 + 12
    assert peak < 20e6                                        # 4 h of int16 would be 460 MB
    assert time.perf_counter() - started < 60


# --- formats ----------------------------------------------------------------------------

def _transcript(task="transcribe"):
    words = (Word("Hello", 0.5, 0.9, 0.9), Word("there.", 0.9, 1.4, 0.9))
    segments = (Segment(0, 0, 0.5, 1.4, " Hello there.", (50, 51), 0.0, -0.3, 1.2, 0.02, words),
                Segment(1, 140, 3661.25, 3662.0, " Bye.", (52,), 0.2, -0.4, 1.0, 0.03))
    return Transcript("Hello there. Bye.", "de", 0.99, 3663.0, segments, task)


def test_srt_and_vtt_render_cues_that_parse_back():
    srt, media = render(_transcript(), "srt")
    assert media.startswith("application/x-subrip")
    cues = re.findall(r"(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n(.+)\n", srt)
    assert cues == [("1", "00:00:00,500", "00:00:01,400", "Hello there."),
                    ("2", "01:01:01,250", "01:01:02,000", "Bye.")]
    vtt, _ = render(_transcript(), "vtt")
    assert vtt.startswith("WEBVTT\n\n")
    assert "01:01:01.250 --> 01:01:02.000\nBye.\n" in vtt
    assert timestamp(59.9996, ".") == "00:01:00.000"


def test_verbose_json_has_openai_shape():
    body, _ = render(_transcript(), "verbose_json", frozenset({"word", "segment"}))
    assert body["task"] == "transcribe" and body["language"] == "german"
    assert set(body["segments"][0]) == {"id", "seek", "start", "end", "text", "tokens",
                                        "temperature", "avg_logprob", "compression_ratio",
                                        "no_speech_prob"}
    assert body["words"] == [{"word": "Hello", "start": 0.5, "end": 0.9},
                             {"word": "there.", "start": 0.9, "end": 1.4}]
    no_words, _ = render(_transcript(), "verbose_json", frozenset({"segment"}))
    assert "words" not in no_words
    translated, _ = render(_transcript("translate"), "verbose_json")
    assert translated["language"] == "english" and translated["task"] == "translate"
    assert render(_transcript(), "text")[0] == "Hello there. Bye.\n"
    assert render(_transcript(), "json")[0]["text"] == "Hello there. Bye."


def test_language_names_and_sets():
    assert name_of("en") == "english" and code_of("german") == "de" and code_of("de") == "de"
    assert parse_language_set("auto") == (None, None)
    assert parse_language_set(None) == (None, None)
    assert parse_language_set("de") == ("de", None)
    assert parse_language_set("en, de") == (None, ("en", "de"))
    with pytest.raises(InvalidParameter) as caught:
        parse_language_set("en,xx")
    assert caught.value.param == "language"


# --- parameters -------------------------------------------------------------------------

@pytest.mark.parametrize("fields, param", [
    ({"response_format": "xml"}, "response_format"),
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": "1.5"}, "temperature"),
    ({"timestamp_granularities[]": "sentence"}, "timestamp_granularities[]"),
    ({"stream": "maybe"}, "stream"),
    ({"stream": "true", "response_format": "srt"}, "stream"),
    ({"language": "klingon"}, "language"),
    ({"diarize": "true"}, "diarize"),
])
def test_bad_parameters_are_named(fields, param):
    with pytest.raises(InvalidParameter) as caught:
        parse_params(FormData(list(fields.items())), "transcribe")
    assert caught.value.param == param and caught.value.status == 400


def test_parameters_parse():
    form = FormData([("model", "whisper-1"), ("language", "en,de"), ("temperature", "0"),
                     ("response_format", "verbose_json"), ("timestamp_granularities[]", "word"),
                     ("timestamp_granularities[]", "segment"), ("prompt", "Kennedy")])
    params = parse_params(form, "translate")
    assert params.model == "whisper-1" and params.response_format == "verbose_json"
    assert params.granularities == {"word", "segment"}
    assert params.options.languages == ("en", "de") and params.options.language is None
    assert params.options.temperature == 0.0 and params.options.word_timestamps
    assert params.options.task == "translate" and params.options.prompt == "Kennedy"
    default = parse_params(FormData([]), "transcribe")
    assert default.response_format == "json" and not default.options.word_timestamps
    assert isinstance(default.options.temperature, tuple)     # Whisper's fallback schedule


# --- URL input --------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1:9/a.wav", "http://10.1.2.3/a.wav",
                                 "http://169.254.169.254/latest/meta-data",
                                 "http://[::1]/a.wav", "http://localhost/a.wav",
                                 "ftp://example.com/a.wav", "file:///etc/passwd"])
def test_private_addresses_and_other_schemes_are_refused(url):
    with pytest.raises(UrlRefused) as caught:
        asyncio.run(check_url(url, BatchConfig()))
    assert caught.value.param == "file" and caught.value.status == 400


def test_allow_list_permits_named_networks_and_hosts():
    asyncio.run(check_url("http://127.0.0.1:9/a.wav", BatchConfig(url_allowlist="127.0.0.0/8")))
    asyncio.run(check_url("http://localhost/a.wav", BatchConfig(url_allowlist="localhost")))


def test_download_is_capped_and_redirects_are_checked_again():
    config = BatchConfig(url_allowlist="203.0.113.0/24", max_url_bytes=1000)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/big":
            return httpx.Response(200, content=b"x" * 5000)
        if request.url.path == "/hop":
            return httpx.Response(302, headers={"location": "http://127.0.0.1/secret"})
        return httpx.Response(200, content=b"y" * 10)

    transport = httpx.MockTransport(handler)
    sink = io.BytesIO()
    assert asyncio.run(download("http://203.0.113.5/ok", sink, config, transport=transport)) == 10
    with pytest.raises(FileTooLarge) as caught:
        asyncio.run(download("http://203.0.113.5/big", io.BytesIO(), config, transport=transport))
    assert caught.value.status == 400 and caught.value.code == "file_too_large"
    with pytest.raises(UrlRefused) as refused:
        asyncio.run(download("http://203.0.113.5/hop", io.BytesIO(), config, transport=transport))
    assert refused.value.code == "url_not_allowed"


# --- CLI progress -----------------------------------------------------------------------

def test_progress_bar():
    assert progress_line(3600, 14400, width=8) == "[##......]  25%  1:00:00 / 4:00:00"
    out = io.StringIO()
    bar = ProgressBar(120.0, out)
    bar(60.0)
    bar.close()
    assert out.getvalue() == "\r" + progress_line(60, 120) + "\n"
    quiet = io.StringIO()
    ProgressBar(10.0, quiet)(5.0)
    assert quiet.getvalue() == ""


def test_batch_config_from_environment():
    from streaming.config import ServerConfig

    config = ServerConfig.from_env({"STREAMSCRIBE_BATCH_MAX_UPLOAD_BYTES": "1000",
                                    "STREAMSCRIBE_BATCH_URL_ALLOWLIST": "10.0.0.0/8"})
    assert config.batch.max_upload_bytes == 1000 and config.batch.url_allowlist == "10.0.0.0/8"
    assert config.batch.max_duration_s == 4 * 3600


def test_video_without_audio_is_no_audio_stream():
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        video = out.add_stream("mpeg4", rate=5)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    with pytest.raises(AudioDecodeError) as caught:
        AudioFile(io.BytesIO(buf.getvalue()))
    assert caught.value.code == "no_audio_stream"
