"""Small networks written as functions of an explicit list of weight tensors, `net(weights, x)`,
so that MAML's inner loop can run them on adapted ("fast") weights that are themselves
differentiable functions of the initial weights. `init(seed)` gives fresh weights (leaf
tensors that require grad). These stand in for `Layer.stateless_call` until it lands.
May import: numpy, neurona.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..tensor import Tensor


class FunctionalMLP:
    """Dense layers with ReLU between them: sizes = (in, hidden..., out).

    >>> import neurona as nr
    >>> net = FunctionalMLP((1, 40, 40, 1))
    >>> w = net.init(0)
    >>> net(w, nr.zeros((5, 1))).shape, len(w)
    ((5, 1), 6)
    """

    def __init__(self, sizes, dtype="float32"):
        self.sizes, self.dtype = tuple(int(s) for s in sizes), dtype

    def init(self, seed=0):
        rng = np.random.default_rng(seed)
        weights = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)  # He: ReLU layers
            weights += [Tensor(w.astype(self.dtype), requires_grad=True),
                        Tensor(np.zeros(fan_out, self.dtype), requires_grad=True)]
        return weights

    def features(self, weights, x):
        """The last hidden layer's activations."""
        h = x.reshape(x.shape[0], -1)
        for i in range(0, len(weights) - 2, 2):
            h = ops.relu(ops.matmul(h, weights[i]) + weights[i + 1])
        return h

    def __call__(self, weights, x):
        return ops.matmul(self.features(weights, x), weights[-2]) + weights[-1]


class FunctionalConvNet:
    """`len(widths)` blocks of 3×3 convolution with stride 2 and ReLU, then a linear layer on the
    flattened map (strided convolutions instead of MAML's max-pooling: the same down-sampling,
    and every op in the inner loop has exact higher-order gradients).

    >>> import neurona as nr
    >>> net = FunctionalConvNet(1, (8, 8), 5, image_size=28)
    >>> net(net.init(0), nr.zeros((2, 1, 28, 28))).shape
    (2, 5)
    """

    def __init__(self, in_channels, widths, n_out, image_size, dtype="float32"):
        self.in_channels, self.widths, self.n_out = int(in_channels), tuple(widths), int(n_out)
        self.dtype, size = dtype, int(image_size)
        for _ in self.widths:
            size = (size + 2 - 3) // 2 + 1
        self.map_size = size

    def init(self, seed=0):
        rng = np.random.default_rng(seed)
        weights, c = [], self.in_channels
        for k in self.widths:
            w = rng.standard_normal((k, c, 3, 3)) * np.sqrt(2.0 / (9 * c))
            weights += [Tensor(w.astype(self.dtype), requires_grad=True),
                        Tensor(np.zeros(k, self.dtype), requires_grad=True)]
            c = k
        fan_in = c * self.map_size ** 2
        w = rng.standard_normal((fan_in, self.n_out)) * np.sqrt(1.0 / fan_in)
        return weights + [Tensor(w.astype(self.dtype), requires_grad=True),
                          Tensor(np.zeros(self.n_out, self.dtype), requires_grad=True)]

    def features(self, weights, x):
        h = x
        for i in range(0, len(weights) - 2, 2):
            h = ops.relu(ops.conv2d(h, weights[i], weights[i + 1], stride=2, padding=1, rounding="floor"))
        return h.reshape(h.shape[0], -1)

    def __call__(self, weights, x):
        return ops.matmul(self.features(weights, x), weights[-2]) + weights[-1]
