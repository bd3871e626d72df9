"""`fit(model, x, y, strategy=...)`: the driver of a distributed run, with the progress line,
callbacks and History of single-process `fit`.

The driver splits the training set into one equal shard per worker (a remainder of fewer than
`workers` samples is left out, so that every worker takes the same number of steps), starts Ray
when it is not running (and stops it at the end), lets the strategy create its actors and run
each epoch, then copies the trained weights back into `model` after every epoch, so callbacks
(ModelCheckpoint, EarlyStopping) and `validation_data` see the current model.

`batch_size` is the batch of ONE worker's step: a synchronous step of W workers covers
W × batch_size samples (the "global batch"). For `ModelParallel` it is the whole batch, which the
pipeline cuts into micro-batches.
May import: numpy, tempfile, shutil, neurona (Tensor), neurona.optim, neurona.data, neurona.callbacks,
neurona.distributed (cluster, replica, metrics, sharding, strategies), ray (lazily).
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np

from . import cluster, replica
from .metrics import RunMetrics
from .sharding import balance


@dataclass
class Job:
    """What the strategy needs to know about a run."""

    model: object
    spec: str
    weights: dict
    frozen: dict
    optimizer: dict
    n_inputs: int
    batch_size: int
    shard_size: int
    seed: object
    checkpoint_dir: str
    layout: list
    data: tuple = ()
    data_refs: list = field(default_factory=list)


def _arrays(model, x, y):
    """(inputs, targets) as lists of NumPy arrays from arrays, a Dataset or a DataLoader."""
    from ..data import DataLoader, Dataset

    if isinstance(x, DataLoader):
        x = x.dataset
    if isinstance(x, Dataset):
        if y is not None:
            raise ValueError("neurona.distributed.fit: y must be None when x is a Dataset (it holds the targets)")
        fields = [np.asarray(a) for a in x.get_batch(np.arange(len(x)))]
        n_in = len(getattr(model, "inputs", None) or [None]) if getattr(model, "_graph", False) else 1
        return fields[:n_in], fields[n_in:]
    if y is None:
        raise ValueError("neurona.distributed.fit: give y (the targets) with array inputs")

    def host(a):
        a = a.numpy() if hasattr(a, "numpy") and not isinstance(a, np.ndarray) else np.asarray(a)
        return a.astype(np.float32) if a.dtype == np.float64 else a
    xs = [host(a) for a in (x if isinstance(x, (list, tuple)) else [x])]
    ys = [host(a) for a in (y if isinstance(y, (list, tuple)) else [y])]
    n = len(xs[0])
    if any(len(a) != n for a in xs + ys):
        raise ValueError(f"neurona.distributed.fit: x and y must have the same number of samples; got "
                         f"{[len(a) for a in xs]} and {[len(a) for a in ys]}")
    return xs, ys


def fit(model, x, y=None, strategy=None, epochs=1, batch_size=32, verbose=1, callbacks=None,
        validation_data=None, shuffle=True, seed=0, initial_epoch=0, log_dir=None, address=None):
    """Train `model` (built and compiled) on (x, y) with `strategy` on Ray; returns a History.

    x, y: arrays (or lists of arrays), or x a Dataset/DataLoader of (inputs, targets); batch_size:
    samples per step of ONE worker; shuffle: each worker reshuffles its shard every epoch (from
    `seed`); log_dir: TensorBoard event files (scalars, samples/s per worker, staleness
    histogram); address: a Ray cluster to join (default: a local Ray, or `RAY_ADDRESS`).
    The History also holds `samples_per_s` and, for asynchronous strategies, the mean `staleness`
    and fetch/push latencies per epoch; `strategy.metrics` keeps the run's staleness histogram
    and the faults survived (`events`).
    """
    from .. import optim
    from ..callbacks import CallbackList, History, ProgbarLogger
    from .strategies import ParameterAveraging

    strategy = strategy or ParameterAveraging(2)
    xs, ys = _arrays(model, x, y)
    n, workers = len(xs[0]), strategy.workers
    if workers > n:
        raise ValueError(f"neurona.distributed.fit: {workers} workers for {n} samples; every worker needs at "
                         f"least one sample (use at most {n} workers)")
    if int(batch_size) < 1:
        raise ValueError(f"neurona.distributed.fit: batch_size must be >= 1, got {batch_size}")
    if not model.built:
        from ..tensor import Tensor

        model(Tensor(xs[0][:1]) if len(xs) == 1 else [Tensor(a[:1]) for a in xs], training=False)
    spec = replica.describe(model)
    sizes = {name: int(t.size) for name, t in replica.named_weights(model).items()}
    try:
        layout = balance(sizes, strategy.n_shards) if strategy.uses_server else []
    except ValueError as e:
        raise ValueError(f"{strategy!r}: {e} of {model.name}") from None
    replica.rebuild(spec)  # fail here, with the model's name, rather than on every worker
    model._bind_optimizer()
    shard = n // workers
    data = tuple(xs + ys)
    started = cluster.init(address=address)
    import ray

    own_checkpoints = strategy.checkpoint_dir is None
    checkpoint_dir = tempfile.mkdtemp(prefix="neurona-ps-") if own_checkpoints else strategy.checkpoint_dir
    strategy.metrics = metrics = RunMetrics(log_dir)
    try:
        job = Job(model=model, spec=spec, weights=replica.get_arrays(model), frozen=replica.get_arrays(model, False),
                  optimizer=optim.serialize(model.optimizer), n_inputs=len(xs), batch_size=int(batch_size),
                  shard_size=shard, seed=seed if shuffle else None, checkpoint_dir=checkpoint_dir, layout=layout)
        if strategy.shards_data:
            job.data_refs = [ray.put(tuple(a[i * shard:(i + 1) * shard] for a in data)) for i in range(workers)]
        else:
            job.data = data
        strategy.start(job)
        cbs = list(callbacks or [])
        if verbose:
            cbs.insert(0, ProgbarLogger(verbose=verbose))
        model.history = History()
        cbs.append(model.history)
        params = {"epochs": epochs, "steps": strategy.progress_steps(job), "batch_size": batch_size,
                  "samples": shard * workers if strategy.shards_data else n, "verbose": verbose,
                  "metrics": ["loss", *[m.name for _, m in model.compiled_metrics]], "strategy": repr(strategy)}
        callback_list = CallbackList(cbs, model=model, params=params)

        def on_batch(step, stats):  # the strategy calls it after each step (or round) of its workers
            callback_list.on_train_batch_begin(step)
            for s in stats:
                metrics.add(s)
            callback_list.on_train_batch_end(step, metrics.logs())
        model.stop_training = False
        callback_list.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            metrics.start_epoch()
            callback_list.on_epoch_begin(epoch)
            strategy.run_epoch(job, epoch, on_batch)
            replica.set_arrays(model, strategy.weights())
            replica.set_arrays(model, strategy.frozen_weights(), trainable=False)
            logs = {**metrics.logs(), **{f"worker{w}_samples_per_s": r for w, r in metrics.worker_rates().items()}}
            if validation_data is not None:
                val = model.evaluate(validation_data[0], validation_data[1], verbose=0, return_dict=True)
                logs.update({"val_" + k: v for k, v in val.items()})
            metrics.write(epoch, logs)
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        if strategy.uses_server:
            strategy.final_server_stats = strategy.server_stats()
        callback_list.on_train_end()
        return model.history
    finally:
        metrics.close()
        if ray.is_initialized():
            strategy.stop()
        if started:
            cluster.shutdown()
        if own_checkpoints:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
