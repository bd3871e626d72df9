"""`ParameterServer`: one shard of the parameters (course topic 9), run by Ray as an actor.

A shard holds its slice of the weights and of the optimiser's state, and a version counter that
counts the updates it has applied. Workers `pull()` the slice with its version and `push()`
gradients computed at some earlier version; the difference is the gradient's staleness, recorded
in a histogram and handled by the staleness policy (`"drop"` pushes older than `max_staleness`,
or `"scale"` each by 1/(1 + staleness)). Synchronous strategies call `average()` with the
workers' weights instead (parameter averaging).

A push carries an id (worker, seq): a worker that retries a push after a timeout or a restart
sends the same id, and the shard applies it at most once (`last_seq` per worker).

Every `checkpoint_every` updates the shard writes one safetensors file (weights, optimiser state,
and the version, last_seq and histogram as JSON metadata) to a temporary name and renames it into
place. When Ray restarts a killed shard it runs `__init__` again with the original arguments,
which finds that file and resumes from it: at most `checkpoint_every` updates are lost, and
`restored_from` tells how far back it went.
May import: numpy, json, safetensors, neurona (Tensor), neurona.optim.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import uuid

import numpy as np

from ..tensor import Tensor

CHECKPOINT = "shard-{index}.safetensors"


class ParameterServer:
    """One shard. `arrays`: {name: initial weights}; `optimizer`: an optimiser config
    (`neurona.optim.serialize(...)`) used to apply pushed gradients, or None for a shard that
    only averages; `staleness`: None, "drop" or "scale" (see the module docstring)."""

    def __init__(self, index, arrays, optimizer=None, checkpoint_dir=None, checkpoint_every=0,
                 staleness=None, max_staleness=None):
        from .. import optim

        if staleness not in (None, "drop", "scale"):
            raise ValueError(f"ParameterServer: staleness must be None, 'drop' or 'scale', got {staleness!r}")
        if staleness == "drop" and max_staleness is None:
            raise ValueError("ParameterServer: staleness='drop' needs max_staleness")
        self.index, self.staleness_policy, self.max_staleness = int(index), staleness, max_staleness
        self.params = {name: Tensor(np.array(a, copy=True), requires_grad=True, name=name)
                       for name, a in arrays.items()}
        self.optimizer = None
        if optimizer is not None:
            self.optimizer = optim.get(optimizer)
            self.optimizer.bind(list(self.params.values()))
        self.version, self.last_seq = 0, {}
        self.histogram, self.dropped, self.duplicates = {}, 0, 0
        self.incarnation, self.started = uuid.uuid4().hex[:8], time.time()
        self.checkpoint_every = int(checkpoint_every or 0)
        self.path = (os.path.join(checkpoint_dir, CHECKPOINT.format(index=self.index))
                     if checkpoint_dir else None)
        self.restored_from = None
        if self.path and os.path.exists(self.path):
            self._restore()
        elif self.path:
            self.checkpoint()  # version 0: a shard killed before its first checkpoint restarts from here

    def ping(self):
        return {"pid": os.getpid(), "index": self.index, "incarnation": self.incarnation,
                "version": self.version, "restored_from": self.restored_from}

    # -- workers' side ------------------------------------------------------------------------
    def pull(self):
        """(version, {name: weights}) of this shard."""
        return self.version, {name: p.numpy() for name, p in self.params.items()}

    def push(self, worker, seq, grads, fetched_version):
        """Apply the gradients `grads` ({name: array}, computed on weights of `fetched_version`)
        once per id (worker, seq); returns what happened."""
        if seq <= self.last_seq.get(worker, -1):
            self.duplicates += 1
            return self._reply(duplicate=True)
        self.last_seq[worker] = seq
        staleness = max(0, self.version - int(fetched_version))
        self.histogram[staleness] = self.histogram.get(staleness, 0) + 1
        if self.staleness_policy == "drop" and staleness > self.max_staleness:
            self.dropped += 1
            return self._reply(staleness=staleness, applied=False)
        factor = 1.0 / (1.0 + staleness) if self.staleness_policy == "scale" else 1.0
        for name, g in grads.items():
            p = self.params[name]
            if tuple(g.shape) != p.shape:
                raise ValueError(f"ParameterServer {self.index}: gradient of {name} has shape {tuple(g.shape)}, "
                                 f"the weight has {p.shape}")
            p.grad = Tensor((g * factor).astype(p.dtype, copy=False))
        self.optimizer.step()
        self.optimizer.zero_grad()
        self._updated()
        return self._reply(staleness=staleness, applied=True)

    def average(self, round_id, *weights):
        """Parameter averaging: set each weight to the mean of the workers' `weights` ({name:
        array} each); `round_id` makes a retried round count once."""
        if round_id <= self.last_seq.get("average", -1):
            self.duplicates += 1
            return self._reply(duplicate=True)
        self.last_seq["average"] = round_id
        for name, p in self.params.items():
            p.data[...] = np.mean([w[name] for w in weights], axis=0, dtype=np.float64).astype(p.dtype)
        self._updated()
        return self._reply(applied=True)

    def _reply(self, staleness=0, applied=False, duplicate=False):
        return {"shard": self.index, "version": self.version, "staleness": staleness, "applied": applied,
                "duplicate": duplicate, "incarnation": self.incarnation, "restored_from": self.restored_from}

    def _updated(self):
        self.version += 1
        if self.path and self.checkpoint_every and self.version % self.checkpoint_every == 0:
            self.checkpoint()

    def stats(self):
        return {"shard": self.index, "version": self.version, "histogram": dict(self.histogram),
                "dropped": self.dropped, "duplicates": self.duplicates, "incarnation": self.incarnation,
                "restored_from": self.restored_from, "size": int(sum(p.size for p in self.params.values()))}

    # -- checkpoints ------------------------------------------------------------------------------
    def checkpoint(self):
        """Write this shard's state to `checkpoint_dir` atomically; returns the version saved."""
        from safetensors.numpy import save_file

        if not self.path:
            raise ValueError(f"ParameterServer {self.index}: no checkpoint_dir was given")
        arrays = {f"param/{name}": np.ascontiguousarray(p.numpy()) for name, p in self.params.items()}
        if self.optimizer is not None:
            arrays.update({f"optimizer/{k}": np.asarray(v, order="C")
                           for k, v in self.optimizer.state_dict().items()})
        meta = {"version": self.version, "last_seq": {str(k): v for k, v in self.last_seq.items()},
                "histogram": {str(k): v for k, v in self.histogram.items()}, "dropped": self.dropped}
        folder = os.path.dirname(self.path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".shard.", suffix=".tmp", dir=folder)
        os.close(fd)
        try:
            save_file(arrays, tmp, metadata={"neurona.shard": json.dumps(meta)})
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise
        return self.version

    def _restore(self):
        from safetensors import safe_open

        with safe_open(self.path, framework="numpy") as f:
            meta = json.loads(f.metadata()["neurona.shard"])
            arrays = {k: f.get_tensor(k) for k in f.keys()}
        for name, p in self.params.items():
            p.data[...] = arrays[f"param/{name}"]
        if self.optimizer is not None:
            self.optimizer.load_state_dict({k.split("/", 1)[1]: v for k, v in arrays.items()
                                            if k.startswith("optimizer/")})
        self.version = self.restored_from = int(meta["version"])
        self.last_seq = {(k if k == "average" else int(k)): v for k, v in meta["last_seq"].items()}
        self.histogram = {int(k): v for k, v in meta["histogram"].items()}
        self.dropped = int(meta["dropped"])
