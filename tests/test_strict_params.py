"""Parameters are read strictly and answered in JSON: a parameter given twice is refused,
numbers only in canonical form, language codes checked down to the region, no internal
error text in messages, a truncated upload named as such."""

from __future__ import annotations

import io

import httpx
import pytest
import websockets
from starlette.datastructures import FormData

from streaming.api.transcriptions import parse_params
from streaming.errors import InvalidParameter
from streaming.languages import parse_language, parse_language_set
from streaming.protocols import deepgram, deepgram_rest, together

from .conftest import timeout

NOT_CANONICAL = ["16_000", " 16000", "16000 ", "１６０００", "١٦٠٠٠", "016000", "+16000", "1e4",
                 "16000.0", ""]


@pytest.mark.parametrize("raw", NOT_CANONICAL)
def test_only_canonical_integers(raw):
    with pytest.raises(InvalidParameter) as caught:
        deepgram.parse_query([("sample_rate", raw)])
    assert caught.value.param == "sample_rate"
    with pytest.raises(InvalidParameter):
        deepgram_rest.parse_query([("encoding", "linear16"), ("sample_rate", raw)])


@pytest.mark.parametrize("raw", ["0_5", "０.5", ".5", "5.", "nan", "inf", "1e-1"])
def test_only_canonical_decimals(raw):
    with pytest.raises(InvalidParameter) as caught:
        parse_params(FormData([("temperature", raw)]), "transcribe")
    assert caught.value.param == "temperature"
    with pytest.raises(InvalidParameter):
        together.parse_query({"input_audio_format": "pcm_s16le_16000", "threshold": raw})


def test_canonical_numbers_still_work():
    options = deepgram.parse_query([("sample_rate", "8000"), ("endpointing", "300")])
    assert options.sample_rate == 8000 and options.endpointing_ms == 300
    assert parse_params(FormData([("temperature", "0.2")]), "transcribe").options.temperature == 0.2


def test_a_parameter_given_twice_is_refused_unless_it_is_a_list():
    with pytest.raises(InvalidParameter, match="given 2 times") as caught:
        deepgram.parse_query([("sample_rate", "16000"), ("sample_rate", "8000")])
    assert caught.value.param == "sample_rate"
    deepgram.parse_query([("keyterm", "Kennedy"), ("keyterm", "Berlin")])
    with pytest.raises(InvalidParameter, match="given 2 times") as caught:
        parse_params(FormData([("model", "whisper-1"), ("model", "base")]), "transcribe")
    assert caught.value.param == "model"


@pytest.mark.parametrize("code", ["en-ZZ", "en-USA", "en-US-x", "en-Latn-ZZ", "de-", "xx-US"])
def test_language_codes_are_checked_down_to_the_region(code):
    with pytest.raises(InvalidParameter):
        parse_language(code)
    with pytest.raises(InvalidParameter):
        deepgram.parse_query([("language", code)])
    with pytest.raises(InvalidParameter):
        parse_language_set(code)


@pytest.mark.parametrize("code, expected", [("en-US", "en"), ("en-gb", "en"), ("es-419", "es"),
                                            ("zh-Hant-TW", "zh"), ("pt_BR", "pt")])
def test_real_language_tags_are_accepted(code, expected):
    assert parse_language(code) == expected


async def test_server_answers_bad_parameters_in_json(server):
    url = f"{server.ws_url}/v1/listen?sample_rate=16000&sample_rate=8000"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code == 400
    assert b'"param":"sample_rate"' in refused.value.response.body
    realtime = f"{server.ws_url}/v1/realtime?intent=transcription&intent=transcription"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(realtime):
            pass
    assert refused.value.response.status_code == 400

    async with httpx.AsyncClient(base_url=server.http_url, timeout=timeout(60)) as client:
        garbage = await client.post("/v1/audio/transcriptions",
                                    files={"file": ("a.wav", b"\x00" * 4000)})
        error = garbage.json()["error"]
        assert garbage.status_code == 400 and error["code"] == "invalid_audio"
        assert "Errno" not in error["message"] and "<none>" not in error["message"]
        assert "'None'" not in error["message"]

        boundary = "cutshort"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
                f"whisper-1\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode() + b"RIFF" * 100
        truncated = await client.post(
            "/v1/audio/transcriptions", content=io.BytesIO(body).read(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        error = truncated.json()["error"]
        assert truncated.status_code == 400 and error["code"] == "truncated_body", error

        long_query = await client.get("/v1/models?" + "x=1&" * 10_000)
        assert long_query.status_code == 414
        assert long_query.json()["error"]["code"] == "query_too_long"
