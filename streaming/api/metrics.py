"""Prometheus metrics of one server, served at `/metrics` (text exposition format).

Counters are updated where things happen (a stream's audio arrives, a result is sent, a
batch request is answered, an error goes to a client); gauges and the model's counters are
read from the live state when Prometheus scrapes. Each app has its own registry, so several
servers in one process (tests) never mix their numbers. docs/operations.md explains every
series.
"""

from __future__ import annotations

from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from ..core.events import Event, StreamWarning, Transcription
from ..model.engine import Engine
from .lifecycle import Lifecycle
from .live_stream import LiveStream

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class Metrics:
    """The counters endpoints update, and the registry `/metrics` renders."""

    def __init__(self, lifecycle: Lifecycle, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self._audio = Counter(
            "streamscribe_audio_seconds", "Seconds of audio received on streams",
            ["protocol"], registry=self.registry)
        self._results = Counter(
            "streamscribe_results", "Transcription results sent on streams (final or partial)",
            ["protocol", "kind"], registry=self.registry)
        self._shed = Counter(
            "streamscribe_partials_shed", "Partials not sent, counted when the stream ends: "
            "model_busy (not computed, workers busy) or slow_client (its send buffer was full)",
            ["protocol", "reason"], registry=self.registry)
        self._latency = Histogram(
            "streamscribe_final_latency_seconds", "From the end of an utterance (its audio "
            "received) to its final being ready", ["protocol"], buckets=LATENCY_BUCKETS,
            registry=self.registry)
        self._requests = Counter(
            "streamscribe_batch_requests", "Batch requests (transcriptions, translations, "
            "pre-recorded /v1/listen) answered, by path and HTTP status",
            ["path", "status"], registry=self.registry)
        self._errors = Counter(
            "streamscribe_errors", "Errors reported to clients (HTTP error bodies, refused "
            "upgrades, stream Error messages), by code", ["code"], registry=self.registry)
        self.registry.register(_LiveState(lifecycle, engine))

    def audio(self, protocol: str, seconds: float) -> None:
        self._audio.labels(protocol).inc(seconds)

    def sent(self, protocol: str, event: Event) -> None:
        """One event went out on a stream."""
        if isinstance(event, Transcription):
            self._results.labels(protocol, "final" if event.is_final else "partial").inc()
            if event.is_final and event.latency_ms is not None:
                self._latency.labels(protocol).observe(event.latency_ms / 1000)
        elif isinstance(event, StreamWarning):
            self.error(event.code)

    def stream_ended(self, protocol: str, stream: LiveStream) -> None:
        self._shed.labels(protocol, "model_busy").inc(stream.partials_shed)
        self._shed.labels(protocol, "slow_client").inc(stream.partials_overflowed)

    def batch_request(self, path: str, status: int) -> None:
        self._requests.labels(path, str(status)).inc()

    def error(self, code: str) -> None:
        self._errors.labels(code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveState(Collector):
    """Read at scrape time: open streams, readiness, and each loaded model's scheduler."""

    def __init__(self, lifecycle: Lifecycle, engine: Engine) -> None:
        self.lifecycle = lifecycle
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        streams = GaugeMetricFamily("streamscribe_streams_open", "Streaming connections open",
                                    labels=["protocol"])
        for protocol in ("deepgram", "twilio", "realtime"):
            streams.add_metric([protocol], self.lifecycle.streams[protocol])
        yield streams
        yield GaugeMetricFamily("streamscribe_http_requests_in_flight",
                                "HTTP requests for work being served",
                                value=self.lifecycle.requests)
        yield GaugeMetricFamily("streamscribe_ready", "1 when /readyz answers 200",
                                value=int(self.lifecycle.ready))
        yield GaugeMetricFamily("streamscribe_draining", "1 while the server drains",
                                value=int(self.lifecycle.draining))
        queued = GaugeMetricFamily("streamscribe_model_queue_depth",
                                   "Model calls waiting for a worker", labels=["model"])
        running = GaugeMetricFamily("streamscribe_model_running", "Model calls running",
                                    labels=["model"])
        calls = CounterMetricFamily("streamscribe_model_calls", "Model calls completed",
                                    labels=["model"])
        busy = CounterMetricFamily("streamscribe_model_busy_seconds",
                                   "Seconds the model's workers spent in calls (summed over "
                                   "workers)", labels=["model"])
        for name, scheduler in self.engine.loaded().items():
            stats = scheduler.stats
            queued.add_metric([name], stats.queued)
            running.add_metric([name], stats.running)
            calls.add_metric([name], stats.calls)
            busy.add_metric([name], stats.busy_seconds)
        yield from (queued, running, calls, busy)
