"""`LocalResponseNormalization`: AlexNet's NORM layers (Krizhevsky et al. 2012), which divide each
activation by the energy of the same position in the n neighbouring channels.
May import: numpy (for the ONNX export), neurona (ops), neurona.nn (Layer, conv layer helpers).
"""
from __future__ import annotations

import numpy as np

from ... import ops
from ...ops import ShapeError
from ..layer import Layer, register
from .conv import check_format


@register
class LocalResponseNormalization(Layer):
    """b[c] = a[c] / (k + α/n · Σ a[j]²)^β, the sum over the `size` = n channels j centred on c
    (n//2 before, (n−1)//2 after, channels outside the image count as zero).

    This is the convention of `torch.nn.LocalResponseNorm` and Caffe (α is divided by n). The
    AlexNet paper writes k + α'·Σ a² with α' = 1e-4, k = 2, n = 5, β = 0.75: its α' equals this
    layer's α/n, i.e. alpha = 5e-4 here. TensorFlow's `local_response_normalization` also uses
    α without /n (with depth_radius = n//2).

    >>> import neurona as nr
    >>> lrn = LocalResponseNormalization(size=1, alpha=1.0, beta=1.0, k=0.0)   # b = a / a² = 1/a
    >>> lrn(nr.tensor([[[[2.0]], [[4.0]]]])).reshape(-1).tolist()
    [0.5, 0.25]
    """

    def __init__(self, size=5, alpha=5e-4, beta=0.75, k=2.0, data_format="channels_first", **kwargs):
        super().__init__(**kwargs)
        if int(size) < 1:
            raise ValueError(f"LocalResponseNormalization {self.name}: size must be ≥ 1, got {size}")
        self.size, self.alpha, self.beta, self.k = int(size), float(alpha), float(beta), float(k)
        self.data_format = check_format(data_format, f"LocalResponseNormalization {self.name}")

    def call(self, x, training=None):
        if x.ndim < 2:
            raise ShapeError(f"{self.name}: expects inputs with a channel axis, got shape {x.shape}")
        axis = 1 if self.data_format == "channels_first" else x.ndim - 1
        c, n = x.shape[axis], self.size
        width = [(0, 0)] * x.ndim
        width[axis] = (n // 2, (n - 1) // 2)
        sq = ops.pad(x * x, tuple(width))
        # the window sum as n shifted slices: n is small (5 in AlexNet), each slice a view
        window = None
        for j in range(n):
            key = tuple(slice(j, j + c) if a == axis else slice(None) for a in range(x.ndim))
            window = sq[key] if window is None else window + sq[key]
        return x / (self.k + (self.alpha / n) * window) ** self.beta

    def _onnx(self, ctx, x):  # see neurona.saving.onnx_export
        size, alpha, beta, k = self.size, self.alpha, self.beta, self.k

        def emit(x):
            if size % 2:
                # ONNX's LRN divides alpha by size like this layer (and torch); its window is centred for odd sizes
                return ctx.op("LRN", [x], size=size, alpha=alpha, beta=beta, bias=k)
            # An even window: ONNX puts the extra channel after c, this layer (and torch) before it.
            # Average the squares over the layer's window instead: a (size, 1, 1) average pool over a
            # new axis whose zero padding counts, so alpha/size · Σ a² = alpha · mean.
            axis = ctx.const("axis", np.array([1], np.int64))
            sq = ctx.op("Unsqueeze", [ctx.op("Mul", [x, x]), axis])  # (N, 1, C, H, W)
            mean = ctx.op("AveragePool", [sq], kernel_shape=[size, 1, 1], count_include_pad=1,
                          pads=[size // 2, 0, 0, (size - 1) // 2, 0, 0])
            scaled = ctx.op("Add", [ctx.op("Mul", [ctx.op("Squeeze", [mean, axis]), ctx.const("alpha", np.float32(alpha))]),
                                    ctx.const("k", np.float32(k))])
            return ctx.op("Div", [x, ctx.op("Pow", [scaled, ctx.const("beta", np.float32(beta))])])

        return ctx.nchw(x, self.data_format, emit)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k,
                "data_format": self.data_format}
