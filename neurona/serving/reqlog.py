"""Sampled request/response logging to JSON lines, one record per sampled inference request:

    {"ts": "2025-01-01T12:00:00.123456+00:00", "request_id": "…", "model": "fashion", "version": 2,
     "protocol": "rest-v2", "status": 200, "latency_ms": 3.1,
     "inputs": {"input": {"shape": [4, 784], "dtype": "float32", "values": [[...], ...]}},
     "outputs": {"output": {"shape": [4, 10], "dtype": "float32", "values": [[...], ...]}}}

A tensor of at most `max_values` elements is logged in full ("values"); a larger one by its
summary ("mean", "std", "min", "max") instead. Failed requests carry "error" and no outputs;
requests that broke the training schema (neurona.serving.schema_check) carry "schema_violations".
docs/serving.md documents the format (the pipeline's skew monitor reads it).
May import: numpy, json.
"""
from __future__ import annotations

import datetime
import json
import random
import threading

import numpy as np


def describe(arr, max_values) -> dict:
    a = np.asarray(arr)
    d = {"shape": list(a.shape), "dtype": a.dtype.name}
    if a.size <= max_values:
        d["values"] = a.tolist()
    elif a.size:
        f = a.astype(np.float64)
        d.update(mean=float(f.mean()), std=float(f.std()), min=float(f.min()), max=float(f.max()))
    return d


class RequestLogger:
    """Append a sampled share (`sample_rate` in [0, 1]) of requests to `path` as JSON lines."""

    def __init__(self, path, sample_rate=1.0, max_values=4096):
        if not 0 <= sample_rate <= 1:
            raise ValueError(f"RequestLogger: sample_rate must lie in [0, 1], got {sample_rate}")
        self.path, self.sample_rate, self.max_values = str(path), sample_rate, max_values
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # line-buffered: whole records
        self._lock = threading.Lock()
        self._rng = random.Random()

    def sampled(self) -> bool:
        return self.sample_rate >= 1 or self._rng.random() < self.sample_rate

    def log(self, *, request_id, model, version, protocol, status, latency_s, inputs=None, outputs=None, error=None,
            schema_violations=None):
        rec = {"ts": datetime.datetime.now(datetime.timezone.utc).isoformat(), "request_id": request_id,
               "model": model, "version": version, "protocol": protocol, "status": status,
               "latency_ms": round(latency_s * 1e3, 3)}
        if inputs is not None:
            rec["inputs"] = {k: describe(v, self.max_values) for k, v in inputs.items()}
        if outputs is not None:
            rec["outputs"] = {k: describe(v, self.max_values) for k, v in outputs.items()}
        if error is not None:
            rec["error"] = error
        if schema_violations:
            rec["schema_violations"] = schema_violations
        line = json.dumps(rec)
        with self._lock:
            self._file.write(line + "\n")

    def close(self):
        with self._lock:
            self._file.close()
