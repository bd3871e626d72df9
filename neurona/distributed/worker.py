"""`Worker`: a model replica and a shard of the data, run by Ray as an actor (course topic 9).

The replica is rebuilt from the model's JSON description and its weights (`replica.py`); the
data shard is this worker's slice of the training set, shuffled each epoch by its own seed. A
worker offers one method per way of training:

- `local_steps` (parameter averaging): start from the weights given, take `k` optimiser steps
  on the next batches, return the new weights, one dict per parameter-server shard.
- `async_steps` (async SGD, Downpour): talk to the shards itself, fetching every `n_fetch`
  steps and pushing the gradients summed over the steps of the call (its `n_push`).
- `gradients` + `ring_send`/`ring_receive` + `apply_ring` (all-reduce): ring all-reduce of the
  flattened gradient with the neighbours, through Ray object references.

Each returns a stats dict (samples, loss, compute time, fetch/push latencies, what the shards
answered), which the driver turns into the progress line and the metrics.
May import: numpy, time, os, neurona (no_grad), neurona.distributed.replica,
neurona.distributed.cluster, ray (lazily).
"""
from __future__ import annotations

import os
import time

import numpy as np

from .. import backend as B
from ..autograd.grad_mode import no_grad
from . import replica
from .cluster import actor_failed, call, wait_alive


def _blas_threads():
    """NumPy's BLAS thread counts, as threadpoolctl reads them (what `ping` reports)."""
    from threadpoolctl import threadpool_info

    return [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]


def share_of_cpus(n_workers: int) -> int:
    """This machine's CPUs (affinity and cgroup quota) divided among `n_workers`, at least 1."""
    return max(1, B.available_cpus() // max(1, int(n_workers)))


class Worker:
    """index: this worker's number; spec: `replica.describe(model)`; weights: {name: array} of
    the trainable weights; data: tuple of arrays (*inputs, *targets), this worker's shard;
    n_inputs: how many of them are inputs; batch_size: samples per step on this worker;
    threads: threads for this worker's kernels and BLAS, or None for its share of the machine
    (`share_of_cpus(n_workers)`)."""

    def __init__(self, index, spec, weights, frozen, data, n_inputs, batch_size, seed=0, shards=(),
                 layout=(), call_timeout=60.0, restart_timeout=60.0, threads=None, n_workers=1):
        self.threads = int(threads) if threads else share_of_cpus(n_workers)
        B.set_num_threads(self.threads)
        self._batches = 0
        self.index, self.n_inputs, self.batch_size, self.seed = int(index), int(n_inputs), int(batch_size), seed
        self.model = replica.rebuild(spec)
        replica.set_arrays(self.model, weights)
        replica.set_arrays(self.model, frozen, trainable=False)
        self.data = tuple(np.asarray(a) for a in data)
        self.shards, self.layout = list(shards), [list(names) for names in layout]
        self.call_timeout, self.restart_timeout = call_timeout, restart_timeout
        self.fetched = None  # versions of the weights now in the replica, one per shard
        self.steps_done, self.delay = 0, 0.0
        self.started = time.time()

    def ping(self):
        import ray

        return {"pid": os.getpid(), "index": self.index, "node": ray.get_runtime_context().get_node_id(),
                "started": self.started, "threads": B.get_num_threads(), "blas_threads": _blas_threads()}

    def simulate_delay(self, seconds):
        """Sleep `seconds` before each step from now on: a straggler, for experiments and tests."""
        self.delay = float(seconds)

    def _batch(self, epoch, step):
        """Batch `step` of `epoch`: this worker's shard in its epoch-`epoch` order."""
        self._batches += 1
        if self._batches == 2:  # a BLAS that the first step loaded (SciPy's OpenBLAS) gets the count too
            B.set_num_threads(self.threads)
        n = len(self.data[0])
        order = np.random.default_rng([self.seed, self.index, epoch]).permutation(n) if self.seed is not None \
            else np.arange(n)
        idx = order[step * self.batch_size:(step + 1) * self.batch_size]
        batch = [a[idx] for a in self.data]
        return batch[:self.n_inputs], batch[self.n_inputs:]

    def _stats(self, samples, loss_sum, logs_sum, compute, **extra):
        return {"worker": self.index, "samples": samples, "loss_sum": loss_sum,
                "logs_sum": logs_sum, "compute_s": compute, **extra}

    # -- parameter averaging ------------------------------------------------------------------------
    def local_steps(self, epoch, first_step, k, *shard_weights):
        """Load the shards' weights ((version, {name: array}) each), take `k` steps with the local
        optimiser, return one {name: array} per shard and the stats."""
        for _, arrays in shard_weights:
            replica.set_arrays(self.model, arrays)
        samples, loss_sum, logs_sum, start = 0, 0.0, {}, time.perf_counter()
        for step in range(first_step, first_step + k):
            if self.delay:
                time.sleep(self.delay)
            xs, ys = self._batch(epoch, step)
            if len(xs[0]) == 0:
                break
            out = self.model.train_on_batch(xs if len(xs) > 1 else xs[0], ys if len(ys) > 1 else ys[0])
            loss, metrics = (out[0], out[1:]) if isinstance(out, list) else (out, [])
            n = len(xs[0])
            samples, loss_sum = samples + n, loss_sum + loss * n
            for (_, m), v in zip(self.model.compiled_metrics, metrics):
                logs_sum[m.name] = logs_sum.get(m.name, 0.0) + v * n
        weights = replica.get_arrays(self.model)
        stats = self._stats(samples, loss_sum, logs_sum, time.perf_counter() - start)
        return (*[{name: weights[name] for name in names} for names in self.layout], stats)

    # -- asynchronous: the worker talks to the shards ---------------------------------------------
    def _retry(self, shard, method, *args):
        """Call `method` on shard `shard`, waiting for Ray to restart it if it dies meanwhile."""
        handle = self.shards[shard]
        for _ in range(3):
            try:
                return call(getattr(handle, method).remote(*args), self.call_timeout,
                            f"worker {self.index}: {method} on parameter-server shard {shard}")
            except Exception as e:  # noqa: BLE001 - only an actor failure is retried
                if not actor_failed(e):
                    raise
                wait_alive(handle, self.restart_timeout, f"parameter-server shard {shard}")
        raise RuntimeError(f"worker {self.index}: parameter-server shard {shard} failed three times in a row")

    def _fetch(self):
        start = time.perf_counter()
        try:
            answers = call([s.pull.remote() for s in self.shards], self.call_timeout,
                           f"worker {self.index}: fetching from the parameter servers")
        except Exception as e:  # noqa: BLE001 - only an actor failure is retried
            if not actor_failed(e):
                raise
            answers = [self._retry(i, "pull") for i in range(len(self.shards))]
        for _, arrays in answers:
            replica.set_arrays(self.model, arrays)
        self.fetched = [version for version, _ in answers]
        return time.perf_counter() - start

    def async_steps(self, epoch, first_step, n_steps, seq, n_fetch=1):
        """Take `n_steps` gradient steps (fetching the weights every `n_fetch` steps of this
        worker), then push the summed gradients to every shard under id (worker, seq)."""
        samples, loss_sum, logs_sum, compute, fetch_s = 0, 0.0, {}, 0.0, []
        total = None
        for step in range(first_step, first_step + n_steps):
            if self.fetched is None or self.steps_done % n_fetch == 0:
                fetch_s.append(self._fetch())
            if self.delay:
                time.sleep(self.delay)
            xs, ys = self._batch(epoch, step)
            if len(xs[0]) == 0:
                break
            start = time.perf_counter()
            loss, grads, logs = replica.loss_and_gradients(self.model, xs, ys)
            compute += time.perf_counter() - start
            total = grads if total is None else {k: total[k] + g for k, g in grads.items()}
            n = len(xs[0])
            samples, loss_sum = samples + n, loss_sum + loss * n
            for k, v in logs.items():
                logs_sum[k] = logs_sum.get(k, 0.0) + v * n
            self.steps_done += 1
        replies, push_s = [], []
        if total is not None:
            start = time.perf_counter()
            pushes = [shard.push.remote(self.index, seq, {k: total[k] for k in names}, version)
                      for shard, names, version in zip(self.shards, self.layout, self.fetched)]
            try:
                replies = call(pushes, self.call_timeout, f"worker {self.index}: pushing to the parameter servers")
            except Exception as e:  # noqa: BLE001
                if not actor_failed(e):
                    raise
                # Push again with the same id: a shard that had applied it answers "duplicate".
                replies = [self._retry(i, "push", self.index, seq, {k: total[k] for k in names}, version)
                           for i, (names, version) in enumerate(zip(self.layout, self.fetched))]
            push_s.append(time.perf_counter() - start)
        return self._stats(samples, loss_sum, logs_sum, compute, fetch_s=fetch_s, push_s=push_s, replies=replies)

    # -- all-reduce: a ring of workers ------------------------------------------------------------
    def gradients(self, epoch, step, n_chunks):
        """Gradients of batch `step`, flattened and cut into `n_chunks` pieces kept here for the ring."""
        if self.delay:
            time.sleep(self.delay)
        xs, ys = self._batch(epoch, step)
        start = time.perf_counter()
        loss, grads, logs = replica.loss_and_gradients(self.model, xs, ys)
        self._names = list(grads)
        self._shapes = [grads[k].shape for k in self._names]
        flat = np.concatenate([grads[k].ravel() for k in self._names]).astype(np.float64)
        self._chunks = np.array_split(flat, n_chunks)
        n = len(xs[0])
        return self._stats(n, loss * n, {k: v * n for k, v in logs.items()}, time.perf_counter() - start)

    def ring_send(self, chunk):
        """The chunk this worker passes to its right-hand neighbour."""
        return self._chunks[chunk]

    def ring_receive(self, chunk, values, reduce):
        """Add (reduce-scatter) or copy (all-gather) the neighbour's chunk into ours."""
        if reduce:
            self._chunks[chunk] = self._chunks[chunk] + values
        else:
            self._chunks[chunk] = values

    def apply_ring(self, n_workers):
        """Step the local optimiser with the ring's sum divided by the number of workers."""
        flat = np.concatenate(self._chunks) / n_workers
        weights = replica.named_weights(self.model)
        pairs, offset = [], 0
        for name, shape in zip(self._names, self._shapes):
            size = int(np.prod(shape))
            t = weights[name]
            pairs.append((flat[offset:offset + size].reshape(shape).astype(t.dtype), t))
            offset += size
        self.model.optimizer.apply_gradients(pairs)  # the capture link is inactive: the update happens
        with no_grad():
            self.model.apply_constraints()
        return True

    # -- weights ------------------------------------------------------------------------------------
    def get_weights(self, trainable=True):
        return replica.get_arrays(self.model, trainable)

    def set_weights(self, weights, trainable=True):
        replica.set_arrays(self.model, weights, trainable)
        return True
