"""Prometheus metrics of one server, in its own `CollectorRegistry` (two servers in one process
keep separate counts): requests by model/version/protocol/status, end-to-end latency, time spent
queued, batch sizes, queue depth and loaded versions. With several worker processes
(`--workers N`) the values go through prometheus-client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR), summed over the workers.
May import: prometheus_client.
"""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    """The server's metrics; `render()` gives the /metrics body and its content type."""

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("neurona_serving_requests", "Inference requests answered",
                                ["model", "version", "protocol", "status"], registry=r)
        self.latency = Histogram("neurona_serving_request_latency_seconds", "Request latency, receipt to answer",
                                 ["model", "version", "protocol"], buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_time = Histogram("neurona_serving_queue_time_seconds", "Time a request waited for its batch",
                                    ["model", "version"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("neurona_serving_batch_size", "Rows per prediction the batcher ran",
                                    ["model", "version"], buckets=_BATCH_BUCKETS, registry=r)
        self.queue_depth = Gauge("neurona_serving_queue_depth", "Rows (requests without batching) waiting",
                                 ["model", "version"], registry=r, multiprocess_mode="livesum")
        self.loaded_versions = Gauge("neurona_serving_loaded_versions", "Versions loaded and serving",
                                     ["model"], registry=r, multiprocess_mode="livemax")
        self.load_failures = Counter("neurona_serving_load_failures", "Model versions that failed to load",
                                     ["model", "version"], registry=r)
        self.schema_violations = Counter("neurona_serving_schema_violations",
                                         "Requests violating the training schema (schema.json), by feature and kind",
                                         ["model", "version", "feature", "kind", "action"], registry=r)

    def batch_observer(self, model, version):
        size, queued = self.batch_size.labels(model, str(version)), self.queue_time.labels(model, str(version))

        def observe(rows, waits):
            size.observe(rows)
            for w in waits:
                queued.observe(w)
        return observe

    def depth_observer(self, model, version):
        return self.queue_depth.labels(model, str(version)).set

    def render(self) -> tuple[bytes, str]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
