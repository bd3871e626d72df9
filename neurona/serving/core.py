"""The protocol-independent request path shared by the REST and gRPC front ends: resolve the
model version (explicit version, label, or the canary split), check the inputs against its
signature, queue them on its batcher under a deadline, and record metrics and the sampled
request log whatever the outcome.

Both front ends go through the same steps (`_submit`, then `_finish` or `_failed`); they differ
only in how they wait for the batcher's future: `infer` blocks its thread (gRPC's thread pool),
`infer_async` awaits it on the event loop (the REST handlers) without holding a thread.
May import: numpy, neurona.serving.repository, neurona.serving.protocol, neurona.serving.metrics,
neurona.serving.reqlog, neurona.serving.schema_check.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid

from . import schema_check
from .protocol import InvalidInput, ServingError, Unavailable

_LATE = "the request's deadline passed before its prediction finished"


class Outcome:
    """A finished inference: the version that ran and its outputs by name."""

    def __init__(self, version, outputs):
        self.version, self.outputs = version, outputs


class _Call:
    """One inference request on its way through the core (what `_record` needs about it)."""
    __slots__ = ("t0", "model", "protocol", "request_id", "arrays", "lv", "future", "deadline", "flags")

    def __init__(self, t0, model, protocol, request_id, arrays):
        self.t0, self.model, self.protocol, self.request_id, self.arrays = t0, model, protocol, request_id, arrays
        self.lv = self.future = self.deadline = self.flags = None  # flags: its schema violations, for the log


class InferenceCore:
    def __init__(self, repository, metrics, request_log=None, request_timeout_s=30.0):
        self.repository, self.metrics, self.request_log = repository, metrics, request_log
        self.request_timeout_s = request_timeout_s
        self.draining = False
        # prometheus-client's `labels()` builds and looks up a key under a lock on every call: keep
        # the children per label values (a bounded set: known models, versions, protocols, statuses)
        self._counters, self._histograms = {}, {}

    def _deadline(self, timeout_s):
        t = self.request_timeout_s if timeout_s is None else min(timeout_s, self.request_timeout_s)
        return time.monotonic() + t

    def _prepare(self, model, version, label, arrays, strict_dtype):
        if self.draining:
            raise Unavailable("the server is shutting down")
        lv = self.repository.get(model).resolve(version, label)
        return lv, lv.signature.check(arrays, lv.max_rows, strict_dtype)

    def _schema(self, call: "_Call"):
        """The version folder's schema.json check (flag or reject): counts the violations and
        keeps them on the call for its request-log record; in reject mode raises InvalidInput."""
        lv = call.lv
        check = lv.schema_check
        found = check.violations(call.arrays)
        if found:
            action = "rejected" if check.mode == "reject" else "flagged"
            for v in found:
                self.metrics.schema_violations.labels(lv.name, str(lv.version), v["feature"], v["kind"], action).inc()
            call.flags = schema_check.summary(found)
            if check.mode == "reject":
                raise InvalidInput(schema_check.message(found))

    def _record(self, t0, model, lv, protocol, status, request_id, arrays, outputs=None, error=None, flags=None):
        latency = time.perf_counter() - t0
        version = "" if lv is None else str(lv.version)
        # a name no model has is counted as one label value: clients must not grow the series
        known = model if model in self.repository.models else "_unknown"
        key = (known, version, protocol, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.metrics.requests.labels(known, version, protocol, str(status))
        counter.inc()
        if lv is not None:
            key = (model, version, protocol)
            hist = self._histograms.get(key)
            if hist is None:
                hist = self._histograms[key] = self.metrics.latency.labels(model, version, protocol)
            hist.observe(latency)
        log = self.request_log
        if log is not None and log.sampled():
            # a random id only for the requests logged: uuid4 reads os.urandom, which releases the
            # GIL, and under load every release hands the event loop's turn to a batch thread
            log.log(request_id=request_id or uuid.uuid4().hex, model=model,
                    version=None if lv is None else lv.version, protocol=protocol, status=status, latency_s=latency,
                    inputs=arrays, outputs=outputs, error=error, schema_violations=flags)

    def refused(self, t0, model, protocol, error: ServingError, request_id=None):
        """Count and log a request refused before it reached `infer` (unreadable body, unknown
        model); `t0` is its `time.perf_counter()` at receipt."""
        self._record(t0, model, None, protocol, error.http_status, request_id, None, error=str(error))

    def _submit(self, model, arrays, version, label, protocol, strict_dtype, timeout_s, request_id) -> _Call:
        """Check the request and queue it on its version's batcher; a refusal is recorded and raised."""
        call = _Call(time.perf_counter(), model, protocol, request_id, arrays)
        try:
            call.lv, xs = self._prepare(model, version, label, arrays, strict_dtype)
            if call.lv.schema_check is not None:
                self._schema(call)
            call.deadline = self._deadline(timeout_s)
            call.future = call.lv.batcher.submit(xs, call.deadline)
        except Exception as e:
            self._failed(call, e)
            raise
        return call

    def _failed(self, call: _Call, e: Exception):
        if isinstance(e, ServingError):
            status, error = e.http_status, str(e)
        else:
            status, error = 500, f"{type(e).__name__}: {e}"
        self._record(call.t0, call.model, call.lv, call.protocol, status, call.request_id, call.arrays, error=error,
                     flags=call.flags)

    def _finish(self, call: _Call, outs) -> Outcome:
        outputs = dict(zip(call.lv.signature.output_names, outs))
        self._record(call.t0, call.model, call.lv, call.protocol, 200, call.request_id, call.arrays, outputs,
                     flags=call.flags)
        return Outcome(call.lv.version, outputs)

    def infer(self, model, arrays, *, version=None, label=None, protocol, strict_dtype, timeout_s=None,
              request_id=None) -> Outcome:
        """Blocking inference (the gRPC threads)."""
        call = self._submit(model, arrays, version, label, protocol, strict_dtype, timeout_s, request_id)
        try:
            try:
                outs = call.future.result(timeout=max(0.0, call.deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                call.future.cancel()
                raise Unavailable(_LATE) from None
        except Exception as e:
            self._failed(call, e)
            raise
        return self._finish(call, outs)

    async def infer_async(self, model, arrays, *, version=None, label=None, protocol, strict_dtype, timeout_s=None,
                          request_id=None) -> Outcome:
        """The same on the event loop (the REST handlers): waits without holding a thread."""
        call = self._submit(model, arrays, version, label, protocol, strict_dtype, timeout_s, request_id)
        try:
            try:
                outs = await asyncio.wait_for(asyncio.wrap_future(call.future),
                                              max(0.0, call.deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise Unavailable(_LATE) from None
        except Exception as e:  # not a cancelled wait (the client left): uncounted
            self._failed(call, e)
            raise
        return self._finish(call, outs)
