"""The protocol-independent request path shared by the REST and gRPC front ends: resolve the
model version (explicit version, label, or the canary split), check the inputs against its
signature, queue them on its batcher under a deadline, and record metrics and the sampled
request log whatever the outcome.
May import: numpy, neurona.serving.repository, neurona.serving.protocol, neurona.serving.metrics,
neurona.serving.reqlog, neurona.serving.schema_check.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import time
import uuid

from . import schema_check
from .protocol import InvalidInput, ServingError, Unavailable

# the schema violations of the request being prepared, for its request-log record; a context
# variable, so each gRPC thread and each REST request's asyncio task sees its own
_flags = contextvars.ContextVar("schema_violations", default=None)


class Outcome:
    """A finished inference: the version that ran and its outputs by name."""

    def __init__(self, version, outputs):
        self.version, self.outputs = version, outputs


class InferenceCore:
    def __init__(self, repository, metrics, request_log=None, request_timeout_s=30.0):
        self.repository, self.metrics, self.request_log = repository, metrics, request_log
        self.request_timeout_s = request_timeout_s
        self.draining = False

    def _deadline(self, timeout_s):
        t = self.request_timeout_s if timeout_s is None else min(timeout_s, self.request_timeout_s)
        return time.monotonic() + t

    def _prepare(self, model, version, label, arrays, strict_dtype):
        if self.draining:
            raise Unavailable("the server is shutting down")
        lv = self.repository.get(model).resolve(version, label)
        xs = lv.signature.check(arrays, lv.max_rows, strict_dtype)
        if lv.schema_check is not None:  # the version folder's schema.json: flag or reject
            self._schema(lv, arrays)
        return lv, xs

    def _schema(self, lv, arrays):
        check = lv.schema_check
        found = check.violations(arrays)
        if found:
            action = "rejected" if check.mode == "reject" else "flagged"
            for v in found:
                self.metrics.schema_violations.labels(lv.name, str(lv.version), v["feature"], v["kind"], action).inc()
            _flags.set(schema_check.summary(found))
            if check.mode == "reject":
                raise InvalidInput(schema_check.message(found))

    def _record(self, t0, model, lv, protocol, status, request_id, arrays, outputs=None, error=None):
        latency = time.perf_counter() - t0
        version = "" if lv is None else str(lv.version)
        # a name no model has is counted as one label value: clients must not grow the series
        known = model if model in self.repository.models else "_unknown"
        self.metrics.requests.labels(known, version, protocol, str(status)).inc()
        if lv is not None:
            self.metrics.latency.labels(model, version, protocol).observe(latency)
        flags = _flags.get()
        _flags.set(None)
        log = self.request_log
        if log is not None and log.sampled():
            log.log(request_id=request_id, model=model, version=None if lv is None else lv.version, protocol=protocol,
                    status=status, latency_s=latency, inputs=arrays, outputs=outputs, error=error,
                    schema_violations=flags)

    def refused(self, t0, model, protocol, error: ServingError, request_id=None):
        """Count and log a request refused before it reached `infer` (unreadable body, unknown
        model); `t0` is its `time.perf_counter()` at receipt."""
        self._record(t0, model, None, protocol, error.http_status, request_id or uuid.uuid4().hex, None,
                     error=str(error))

    def infer(self, model, arrays, *, version=None, label=None, protocol, strict_dtype, timeout_s=None,
              request_id=None) -> Outcome:
        """Blocking inference (the gRPC threads)."""
        t0, lv = time.perf_counter(), None
        request_id = request_id or uuid.uuid4().hex
        try:
            lv, xs = self._prepare(model, version, label, arrays, strict_dtype)
            deadline = self._deadline(timeout_s)
            fut = lv.batcher.submit(xs, deadline)
            try:
                outs = fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                fut.cancel()
                raise Unavailable("the request's deadline passed before its prediction finished") from None
        except ServingError as e:
            self._record(t0, model, lv, protocol, e.http_status, request_id, arrays, error=str(e))
            raise
        except Exception as e:
            self._record(t0, model, lv, protocol, 500, request_id, arrays, error=f"{type(e).__name__}: {e}")
            raise
        outputs = dict(zip(lv.signature.output_names, outs))
        self._record(t0, model, lv, protocol, 200, request_id, arrays, outputs)
        return Outcome(lv.version, outputs)

    async def infer_async(self, model, arrays, *, version=None, label=None, protocol, strict_dtype, timeout_s=None,
                          request_id=None) -> Outcome:
        """The same on the event loop (the REST handlers): waits without holding a thread."""
        t0, lv = time.perf_counter(), None
        request_id = request_id or uuid.uuid4().hex
        try:
            lv, xs = self._prepare(model, version, label, arrays, strict_dtype)
            deadline = self._deadline(timeout_s)
            fut = lv.batcher.submit(xs, deadline)
            try:
                outs = await asyncio.wait_for(asyncio.wrap_future(fut), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise Unavailable("the request's deadline passed before its prediction finished") from None
        except ServingError as e:
            self._record(t0, model, lv, protocol, e.http_status, request_id, arrays, error=str(e))
            raise
        except Exception as e:
            self._record(t0, model, lv, protocol, 500, request_id, arrays, error=f"{type(e).__name__}: {e}")
            raise
        outputs = dict(zip(lv.signature.output_names, outs))
        self._record(t0, model, lv, protocol, 200, request_id, arrays, outputs)
        return Outcome(lv.version, outputs)
