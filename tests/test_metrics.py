"""/metrics (Prometheus), /readyz and /healthz on a real server: the series move with real
traffic, and the auth matrix holds (probes open, metrics behind the key)."""

from __future__ import annotations

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from streaming.eval.corpus import item

from .conftest import timeout
from .wsclient import pcm_bytes, results, stream

KEY = "metrics-test-key"


async def scrape(server, headers=None) -> dict[tuple[str, tuple], float]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=timeout(30)) as client:
        response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_series_follow_streams_and_batch_requests(server):
    before = await scrape(server)
    clip = item("en_lj_LJ001-0002").mono16k()
    audio = np.concatenate([np.zeros(8000, np.int16), clip, np.zeros(16000, np.int16)])
    url = f"{server.ws_url}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true"
    messages = await stream(url, pcm_bytes(audio), speed=0)
    finals = results(messages, final=True)
    async with httpx.AsyncClient(base_url=server.http_url, timeout=timeout(60)) as client:
        bad = await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"\0" * 999)})
    assert bad.status_code == 400
    after = await scrape(server)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    seconds = len(audio) / 16000
    assert abs(delta("streamscribe_audio_seconds_total", protocol="deepgram") - seconds) < 1e-6
    assert delta("streamscribe_results_total", protocol="deepgram", kind="final") == len(finals)
    assert delta("streamscribe_results_total", protocol="deepgram", kind="partial") == len(
        results(messages, final=False))
    assert delta("streamscribe_final_latency_seconds_count", protocol="deepgram") == len(finals)
    assert value(after, "streamscribe_streams_open", protocol="deepgram") == 0
    assert delta("streamscribe_batch_requests_total", path="/v1/audio/transcriptions",
                 status="400") == 1
    assert delta("streamscribe_errors_total", code="invalid_audio") == 1
    model = "base"
    assert delta("streamscribe_model_calls_total", model=model) >= len(finals)
    assert delta("streamscribe_model_busy_seconds_total", model=model) > 0
    assert ("streamscribe_model_queue_depth", (("model", model),)) in after
    assert value(after, "streamscribe_ready") == 1 and value(after, "streamscribe_draining") == 0
    metadata = messages[-1]
    assert delta("streamscribe_partials_shed_total", protocol="deepgram",
                 reason="model_busy") == metadata["partials_shed"]
    assert delta("streamscribe_partials_shed_total", protocol="deepgram",
                 reason="slow_client") == metadata["partials_overflowed"]


async def test_probes_are_open_and_metrics_need_the_key(start_server):
    keyed = start_server(api_keys=(KEY,))
    async with httpx.AsyncClient(base_url=keyed.http_url, timeout=timeout(30)) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "model_loaded": True, "draining": False}
        assert (await client.get("/healthz")).status_code == 200
        refused = await client.get("/metrics")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    samples = await scrape(keyed, headers={"Authorization": f"Bearer {KEY}"})
    assert value(samples, "streamscribe_ready") == 1
