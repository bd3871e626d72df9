"""Model parallelism (course topic 9): `ModelParallel(stages, micro_batches)` cuts a Sequential
model into consecutive stages, one Ray actor (`Stage`) each, and runs every batch as a pipeline of
micro-batches (GPipe): all forward passes are queued first, activations flowing stage to stage as
Ray object references, so stage 1 works on micro-batch 1 while stage 2 works on micro-batch 0;
then the backward passes flow the other way, carrying the gradient of each stage's input. Each
stage sums its weights' gradients over the micro-batches and takes one optimiser step per batch:
the same update as one process on the whole batch.

Stages are balanced by parameter count (or given as a list of layer counts). Only the activations
at the cuts travel; no stage ever holds the whole model.
May import: numpy, json, os, time, neurona (Tensor), neurona.distributed (replica, strategies,
cluster), ray (lazily).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from ..tensor import Tensor
from . import replica
from .cluster import DistributedError, actor_failed, call
from .strategies import Strategy


def split_layers(param_counts, stages):
    """Cut points: consecutive groups of layers with nearly equal parameter counts, none empty.

    >>> split_layers([401920, 0, 262656, 0, 5130], 2)
    [1, 4]
    """
    n = len(param_counts)
    if not 1 <= stages <= n:
        raise ValueError(f"ModelParallel: {stages} stages for a model of {n} layers; use 1 to {n}")
    total, cuts, acc = sum(param_counts), [], 0
    for i, c in enumerate(param_counts):
        acc += c
        left = stages - 1 - len(cuts)  # cuts still to make
        if left and (acc >= total * (len(cuts) + 1) / stages or n - i - 1 == left):
            cuts.append(i + 1)
    return [b - a for a, b in zip([0, *cuts], [*cuts, n])]


class Stage:
    """Layers `specs` (their configs) of a Sequential model as one pipeline stage; the last stage
    also holds the loss. Weights keep their names in the whole model."""

    def __init__(self, index, spec, input_shape, weights, last):
        full = json.loads(spec)
        config = {"name": f"stage_{index}", "build_input_shape": list(input_shape), "layers": full["layers"]}
        self.index, self.last = index, last
        self.model = replica.rebuild(json.dumps({"class_name": "Sequential", "config": config,
                                                 "compile": full["compile"]}))
        replica.set_arrays(self.model, weights)
        self.saved = {}

    def ping(self):
        return {"pid": os.getpid(), "index": self.index}

    def forward(self, mb, x):
        """This stage's output for micro-batch `mb` (its input kept for the backward pass)."""
        inp = Tensor(x, requires_grad=self.index > 0)
        out = self.model(inp, training=True)
        self.saved[mb] = (inp, out)
        return out.numpy()

    def forward_loss(self, mb, x, y, weight):
        """Last stage: loss of micro-batch `mb` (× `weight`, its share of the batch), backward at
        once; returns (weighted loss, gradient of this stage's input)."""
        inp = Tensor(x, requires_grad=self.index > 0)
        pred = self.model(inp, training=True)
        loss = self.model.compute_loss(inp, y, pred)  # with the penalties: the weights sum to 1 over a batch
        (loss * weight).backward()
        grad = inp.grad.numpy() if self.index > 0 else None
        return float(loss.item()) * weight, grad

    def backward(self, mb, grad_out):
        """Push `grad_out` (d loss / d this stage's output) through the stage; returns d loss / d input."""
        inp, out = self.saved.pop(mb)
        out.backward(grad_out)
        return inp.grad.numpy() if self.index > 0 else None

    def step(self):
        """One optimiser step with the gradients summed over the batch's micro-batches."""
        if not self.last and self.model.losses:  # this stage's L1/L2 penalties, once per batch
            sum(self.model.losses[1:], self.model.losses[0]).backward()
        self.model.optimizer.step()
        self.model.optimizer.zero_grad()
        return True

    def get_weights(self, trainable=True):
        return replica.get_arrays(self.model, trainable)


class ModelParallel(Strategy):
    """`stages`: how many stages (balanced by parameters) or a list of layer counts;
    `micro_batches`: pieces each batch is cut into for the pipeline."""

    uses_server = False
    shards_data = False  # the driver feeds stage 0 with every batch

    def __init__(self, stages=2, micro_batches=4, **kwargs):
        counts = list(stages) if isinstance(stages, (list, tuple)) else None
        super().__init__(len(counts) if counts else stages, **kwargs)
        self.layer_counts, self.micro_batches = counts, int(micro_batches)
        if self.micro_batches < 1:
            raise ValueError(f"ModelParallel: micro_batches must be >= 1, got {micro_batches}")

    def __repr__(self):
        return f"ModelParallel(stages={self.layer_counts or self.workers}, micro_batches={self.micro_batches})"

    def start(self, job):
        import ray

        model = job.model
        if type(model).__name__ != "Sequential":
            raise ValueError(f"ModelParallel: needs a Sequential model (a chain of layers), got {type(model).__name__}")
        layers = model.layers
        counts = self.layer_counts or split_layers([la.count_params() for la in layers], self.workers)
        if sum(counts) != len(layers) or min(counts) < 1:
            raise ValueError(f"ModelParallel: stages {counts} must be positive and add up to the {len(layers)} layers")
        spec = json.loads(job.spec)
        shapes = [model.input_shape] + [s for s in model._shapes]
        self.actors, start = [], 0
        remote = ray.remote(Stage)
        for i, count in enumerate(counts):
            part = layers[start:start + count]
            names = {w.name for la in part for w in la.trainable_weights}
            stage_spec = json.dumps({"layers": spec["config"]["layers"][start:start + count],
                                     "compile": spec["compile"]})
            # no restarts: a stage restarted with its first weights would silently train a different model
            self.actors.append(remote.options(**{**self._options(i), "max_restarts": 0}).remote(
                i, stage_spec, shapes[start], {k: v for k, v in job.weights.items() if k in names},
                i == len(counts) - 1))
            start += count
        self.alive = list(range(len(counts)))
        for i, actor in enumerate(self.actors):
            self.pids[i] = call(actor.ping.remote(), self.call_timeout, f"starting stage {i}")["pid"]
        self.data = job.data

    def steps_per_epoch(self, job):
        return -(-len(self.data[0]) // job.batch_size)

    def run_epoch(self, job, epoch, on_batch):
        x, y = self.data[0], self.data[-1]
        n = len(x)
        order = np.random.default_rng([job.seed, epoch]).permutation(n) if job.seed is not None else np.arange(n)
        for step in range(self.steps_per_epoch(job)):
            try:
                samples, loss, seconds = self._step(x, y, order[step * job.batch_size:(step + 1) * job.batch_size])
            except Exception as e:  # noqa: BLE001
                if not actor_failed(e):
                    raise
                raise DistributedError(f"ModelParallel: a stage died at step {step} of epoch {epoch + 1}; a pipeline "
                                       f"cannot go on without one of its stages ({type(e).__name__})") from None
            on_batch(step, [{"worker": 0, "samples": samples, "loss_sum": loss * samples, "logs_sum": {},
                             "compute_s": seconds}])
            if job.model.stop_training:
                return

    def _step(self, x, y, idx):
        """One batch through the pipeline; returns (samples, loss, seconds)."""
        stages = self.actors
        start = time.perf_counter()
        pieces = [p for p in np.array_split(idx, self.micro_batches) if len(p)]
        losses, grads = [], []
        for mb, p in enumerate(pieces):  # every forward first: the stages overlap on micro-batches
            act = x[p]
            for stage in stages[:-1]:
                act = stage.forward.remote(mb, act)
            loss, grad = stages[-1].forward_loss.options(num_returns=2).remote(mb, act, y[p], len(p) / len(idx))
            losses.append(loss)
            grads.append(grad)
        for mb, grad in enumerate(grads):  # then the backward passes, last stage to first
            for stage in reversed(stages[:-1]):
                grad = stage.backward.remote(mb, grad)
            grads[mb] = grad
        loss = sum(call(losses, self.call_timeout, "ModelParallel: forward"))
        call(grads, self.call_timeout, "ModelParallel: backward")
        call([s.step.remote() for s in stages], self.call_timeout, "ModelParallel: step")
        return len(idx), loss, time.perf_counter() - start

    def weights(self):
        out = {}
        for i, s in enumerate(self.actors):
            out.update(call(s.get_weights.remote(), self.call_timeout, f"weights of stage {i}"))
        return out

    def frozen_weights(self):
        out = {}
        for i, s in enumerate(self.actors):
            out.update(call(s.get_weights.remote(False), self.call_timeout, f"weights of stage {i}"))
        return out
