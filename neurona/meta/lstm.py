"""A small LSTM cell written with neurona ops (one matmul for the four gates), used by the learned
optimiser (one cell shared by every coordinate) and by the architecture-search controller.
May import: numpy, neurona.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..tensor import Tensor


class LSTMCell:
    """h, c = cell(x, (h, c)) for x (n, input_size); weights: `self.weights` (leaf tensors).

    Gates i, f, g, o = split(x·W_x + h·W_h + b); c' = σ(f)·c + σ(i)·tanh(g); h' = σ(o)·tanh(c').
    The forget-gate bias starts at 1 (Jozefowicz et al. 2015) so memory is kept at first.

    >>> import neurona as nr
    >>> cell = LSTMCell(3, 5)
    >>> h, c = cell(nr.zeros((2, 3)), cell.zero_state(2))
    >>> h.shape, c.shape
    ((2, 5), (2, 5))
    """

    def __init__(self, input_size, hidden_size, seed=0, dtype="float32"):
        rng = np.random.default_rng(seed)
        self.input_size, self.hidden_size, self.dtype = int(input_size), int(hidden_size), dtype
        scale = 1.0 / np.sqrt(hidden_size)
        w = rng.uniform(-scale, scale, (input_size + hidden_size, 4 * hidden_size))
        b = np.zeros(4 * hidden_size)
        b[hidden_size:2 * hidden_size] = 1.0
        self.w = Tensor(w.astype(dtype), requires_grad=True)
        self.b = Tensor(b.astype(dtype), requires_grad=True)
        self.weights = [self.w, self.b]

    def zero_state(self, n):
        z = np.zeros((n, self.hidden_size), self.dtype)
        return Tensor(z), Tensor(z.copy())

    def __call__(self, x, state):
        h, c = state
        gates = ops.matmul(ops.concatenate([x, h], axis=1), self.w) + self.b
        i, f, g, o = ops.split(gates, 4, axis=1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        return ops.sigmoid(o) * ops.tanh(c), c
