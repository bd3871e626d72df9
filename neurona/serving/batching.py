"""Dynamic batching: requests for one model version wait in a bounded queue; batch threads take up
to `max_batch_size` rows at a time -- as soon as that many are waiting, or `batch_timeout_micros`
after the oldest arrived -- run ONE prediction on the concatenated rows and hand each request its
slice of the outputs (TF Serving's BasicBatchScheduler, in plain threads).

Nothing waits without bound: a request that does not fit in the queue
(`max_enqueued_batches * max_batch_size` rows) is refused at once (`Overloaded`), a request whose
deadline passed while queued is answered `Unavailable` without running, and a closed batcher
refuses new work but finishes what it holds (the drain on shutdown). With `coalesce=False` the
same queue and threads run each request on its own (the server without batching).
May import: numpy, neurona.serving.config, neurona.serving.protocol.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future

import numpy as np

from .config import BatchingConfig
from .protocol import InvalidInput, Overloaded, Unavailable


class _Request:
    __slots__ = ("inputs", "rows", "future", "deadline", "enqueued")

    def __init__(self, inputs, rows, deadline):
        self.inputs, self.rows, self.deadline = inputs, rows, deadline
        self.future, self.enqueued = Future(), time.monotonic()


class Batcher:
    """Run `fn(list of input arrays) -> list of output arrays` on batches of queued requests.

    >>> import numpy as np
    >>> b = Batcher(lambda xs: [xs[0] * 2], BatchingConfig(max_batch_size=8, batch_timeout_micros=0))
    >>> b.submit([np.ones((3, 2))], deadline=None).result()[0].tolist()
    [[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]]
    >>> b.close()
    """

    def __init__(self, fn, config: BatchingConfig, coalesce=True, name="batcher", on_batch=None, on_depth=None):
        self._fn, self.config, self.coalesce = fn, config, coalesce
        self._on_batch, self._on_depth = on_batch, on_depth
        # Without coalescing a "batch" is one request of any size, so capacity counts requests.
        self.capacity = config.max_enqueued_batches * (config.max_batch_size if coalesce else 1)
        self._timeout = config.batch_timeout_micros / 1e6
        self._queue: deque[_Request] = deque()
        self._queued = 0  # rows (coalesce) or requests waiting
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(config.num_batch_threads)]
        for t in self._threads:
            t.start()

    @property
    def depth(self) -> int:
        """Rows (requests when not coalescing) waiting now."""
        return self._queued

    def submit(self, inputs, deadline=None) -> Future:
        """Queue one request (a list of arrays sharing the batch axis); `deadline` is a
        `time.monotonic()` value or None. Raises Overloaded when the queue is full."""
        rows = int(inputs[0].shape[0])
        if self.coalesce and rows > self.config.max_batch_size:
            raise InvalidInput(f"the request holds {rows} rows; this model batches at most "
                               f"max_batch_size={self.config.max_batch_size} per request")
        req = _Request(inputs, rows, deadline)
        cost = rows if self.coalesce else 1
        with self._cond:
            if self._closed:
                raise Unavailable("the server is shutting down this model version")
            if self._queued + cost > self.capacity:
                raise Overloaded(f"the queue is full ({self._queued} of {self.capacity} "
                                 f"{'rows' if self.coalesce else 'requests'} waiting); retry later")
            was_empty = not self._queue
            self._queue.append(req)
            self._queued += cost
            # Wake a batch thread only when one has something to do: the first request of a batch
            # (an idle thread starts gathering), or a full batch (the gathering thread stops waiting
            # for the timeout). Waking it for every request costs each one a thread switch and a
            # turn of the GIL, only for the thread to see the batch still open and sleep again.
            if not self.coalesce or was_empty or self._queued >= self.config.max_batch_size:
                self._cond.notify()
        if self._on_depth:
            self._on_depth(self._queued)
        return req.future

    def _take(self):
        """Wait for work and return the next batch (a list of requests), or None to stop."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            if self.coalesce:
                end = self._queue[0].enqueued + self._timeout
                while self._queued < self.config.max_batch_size and not self._closed:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                    if not self._queue:  # another batch thread took them
                        return []
                batch, rows = [], 0
                while self._queue and rows + self._queue[0].rows <= self.config.max_batch_size:
                    req = self._queue.popleft()
                    batch.append(req)
                    rows += req.rows
                self._queued -= rows
            else:
                batch = [self._queue.popleft()]
                self._queued -= 1
            if self._queue:
                self._cond.notify()  # more work: wake another batch thread
        if self._on_depth:
            self._on_depth(self._queued)
        return batch

    def _work(self):
        while True:
            batch = self._take()
            if batch is None:
                return
            now = time.monotonic()
            live = []
            for req in batch:
                if not req.future.set_running_or_notify_cancel():
                    continue  # the client gave up
                if req.deadline is not None and now > req.deadline:
                    req.future.set_exception(Unavailable("the request's deadline passed while it waited in the queue"))
                else:
                    live.append(req)
            if live:
                self._run(live, now)

    def _run(self, batch, now):
        try:
            if len(batch) == 1:
                outs = self._fn(batch[0].inputs)
            else:
                outs = self._fn([np.concatenate(parts) for parts in zip(*(r.inputs for r in batch))])
        except BaseException as e:  # hand the model's error to every caller instead of losing it
            for req in batch:
                req.future.set_exception(e)
            return
        if self._on_batch:
            self._on_batch(sum(r.rows for r in batch), [now - r.enqueued for r in batch])
        start = 0
        for req in batch:
            req.future.set_result([o[start:start + req.rows] for o in outs])
            start += req.rows

    def close(self, timeout=None):
        """Refuse new requests, finish the queued ones, and stop the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)
