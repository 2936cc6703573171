"""Start-up calibration: /healthz reports the real-time headroom measured with the real model;
a model too slow for one live stream gets a warning that names the faster configuration."""

import logging

import httpx
import numpy as np
import pytest

from streaming.config import ModelConfig, StreamConfig
from streaming.model.backends.fake import FakeTranscriber
from streaming.model.calibration import calibrate, measure, utterance
from streaming.model.engine import Engine
from streaming.model.transcriber import SAMPLE_RATE


class StepClock:
    """A clock that the fake models move on: each call 'takes' what its script says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def model(self, seconds: float) -> FakeTranscriber:
        def call(audio: np.ndarray, options: object) -> str:
            self.now += seconds
            return "produced the block books"
        return FakeTranscriber(call)


AUDIO = np.zeros(5 * SAMPLE_RATE, np.float32)


def test_a_model_that_keeps_up_is_live_without_warning(caplog):
    clock = StepClock()
    with caplog.at_level(logging.INFO, "streamscribe.calibration"):
        headroom = measure("base", clock.model(0.5), clock.model(0.05), 500, AUDIO, clock)
    # 0.5 s per 5 s final + 0.05 s per 0.5 s partial = 0.2 s of compute per second of audio.
    assert headroom.compute_per_audio_s == pytest.approx(0.2)
    assert headroom.streams == 5 and headroom.live and headroom.advice is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_slow_final_names_a_smaller_model(caplog):
    clock = StepClock()
    with caplog.at_level(logging.INFO, "streamscribe.calibration"):
        headroom = measure("base", clock.model(3.0), clock.model(0.1), 500, AUDIO, clock)
    assert not headroom.live and headroom.streams == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "STREAMSCRIBE_MODEL_NAME=tiny.en" in warnings[0]


def test_partials_that_do_not_fit_name_a_longer_partial_interval(caplog):
    clock = StepClock()
    with caplog.at_level(logging.INFO, "streamscribe.calibration"):
        headroom = measure("base", clock.model(1.0), clock.model(0.6), 500, AUDIO, clock)
    # 0.2 + 1.2 s of compute per second of audio; the final alone leaves 0.8: one partial
    # per 0.75 s fits, so partials every 800 ms.
    assert not headroom.live
    assert headroom.advice is not None and "PARTIAL_INTERVAL_MS=800" in headroom.advice
    assert any("PARTIAL_INTERVAL_MS=800" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)


def test_the_smallest_model_too_slow_asks_for_more_cpu():
    clock = StepClock()
    headroom = measure("tiny.en", clock.model(2.0), clock.model(0.1), 500, AUDIO, clock)
    assert headroom.advice is not None and "STREAMSCRIBE_MODEL_UPSTREAMS" in headroom.advice


async def test_healthz_reports_the_headroom_measured_at_start_up(start_server):
    server = start_server(calibrate=True)
    async with httpx.AsyncClient() as client:
        health = (await client.get(f"{server.http_url}/healthz")).json()
    headroom = health["headroom"]
    assert headroom["audio_s"] == pytest.approx(len(utterance()) / 16000, abs=0.01)
    assert headroom["final_s"] > 0 and headroom["partial_s"] > 0
    assert headroom["compute_per_audio_s"] == pytest.approx(
        headroom["final_s"] / headroom["audio_s"] + headroom["partial_s"] * 2, rel=0.01)
    assert headroom["live"] == (headroom["advice"] is None)
    # Servers started without calibration say so.
    plain = start_server()
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{plain.http_url}/healthz")).json()["headroom"] is None


async def test_a_failing_model_call_skips_calibration_and_the_server_starts(caplog):
    engine = Engine(ModelConfig(partial_model=""),
                    preloaded={"base": FakeTranscriber(fail_on=lambda n: True)})
    await engine.start()
    try:
        with caplog.at_level(logging.WARNING, "streamscribe.calibration"):
            assert await calibrate(engine, StreamConfig()) is None
        assert any("calibration skipped" in r.getMessage() for r in caplog.records)
    finally:
        await engine.close()
