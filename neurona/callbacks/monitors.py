"""Two monitors the course asks students to keep an eye on:

- `DeadUnitMonitor`: the share of ReLU units that output 0 for every sample of a batch ("dead"
  units never recover, since their gradient is 0 too).
- `GradientFlowMonitor`: each layer's gradient norm, flagging vanishing and exploding gradients.

Both add their numbers to the epoch logs, so History, CSVLogger and TensorBoard record them.
May import: numpy, neurona (no_grad, Tensor).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from .base import Callback


def _is_relu_layer(layer) -> bool:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", None) == "relu" or type(layer).__name__ == "ReLU"


class DeadUnitMonitor(Callback):
    """At the end of each epoch, run the model on `x` (default: the last training batch) in
    inference mode and log `dead_units/<layer>`: the share of each ReLU layer's units that are 0
    for every sample. Warns when a share exceeds `warn_above`.

    `self.history[layer_name]` keeps the per-epoch shares.
    """

    def __init__(self, x=None, warn_above=0.5, max_samples=512):
        super().__init__()
        self.x, self.warn_above, self.max_samples = x, float(warn_above), int(max_samples)
        self.history: dict[str, list[float]] = {}

    def dead_shares(self, x) -> dict[str, float]:
        """{layer name: share of dead units} for the ReLU layers of the model on inputs `x`."""
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        xs = [Tensor(np.asarray(a, dtype=np.float32 if np.asarray(a).dtype == np.float64 else None)[:self.max_samples])
              for a in xs]
        with no_grad():
            trace = self.model.layer_outputs(xs if len(xs) > 1 else xs[0], training=False)
        shares = {}
        for layer, outs in trace:
            if _is_relu_layer(layer):
                fired = (outs[0].numpy() > 0).reshape(outs[0].shape[0], -1).any(axis=0)
                shares[layer.name] = float(1.0 - fired.mean())
        return shares

    def on_epoch_end(self, epoch, logs=None):
        x = self.x if self.x is not None else getattr(self.model, "_last_inputs", None)
        if x is None:
            return
        for name, share in self.dead_shares(x).items():
            self.history.setdefault(name, []).append(share)
            if logs is not None:
                logs[f"dead_units/{name}"] = share
            if share > self.warn_above:
                warnings.warn(f"epoch {epoch + 1}: {share:.0%} of the ReLUs in {name} never fire "
                              "(lower the learning rate, or try He initialisation / leaky ReLU)", stacklevel=2)


class GradientFlowMonitor(Callback):
    """Per-layer L2 norm of the gradients of each layer's trainable weights, averaged over the
    epoch's batches and logged as `grad_norm/<layer>`. A layer whose mean norm is below `vanish`
    or above `explode` is flagged: `self.flags` lists (epoch, layer, 'vanishing' | 'exploding'),
    and a warning names it.
    """

    def __init__(self, vanish=1e-6, explode=1e3, warn=True):
        super().__init__()
        self.vanish, self.explode, self.warn = float(vanish), float(explode), warn
        self.history: dict[str, list[float]] = {}
        self.flags: list[tuple[int, str, str]] = []

    def _layers(self):
        return [la for la in self.model.layers if la.trainable_weights]

    def on_epoch_begin(self, epoch, logs=None):
        self._sums = {la.name: 0.0 for la in self._layers()}
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        # The trainer clears gradients before each backward, so after the step they are this batch's.
        for layer in self._layers():
            sq = sum(float((t.grad.numpy().astype(np.float64) ** 2).sum())
                     for t in layer.trainable_weights if t.grad is not None)
            self._sums[layer.name] = self._sums.get(layer.name, 0.0) + math.sqrt(sq)
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        if not self._batches:
            return
        for name, total in self._sums.items():
            norm = total / self._batches
            self.history.setdefault(name, []).append(norm)
            if logs is not None:
                logs[f"grad_norm/{name}"] = norm
            kind = "vanishing" if norm < self.vanish else "exploding" if norm > self.explode else None
            if kind:
                self.flags.append((epoch, name, kind))
                if self.warn:
                    warnings.warn(f"epoch {epoch + 1}: {kind} gradients in {name} (mean norm {norm:.3g})", stacklevel=2)
