"""Regularisation layers: Dropout (course topic 4).
May import: neurona (ops), neurona.nn.layer.
"""
from __future__ import annotations

from ... import ops
from ..layer import Layer, register


@register
class Dropout(Layer):
    """Inverted dropout: in training, zero each input with probability `rate` and scale the rest
    by 1/(1 − rate); at inference (training False or None) the input passes unchanged.

    >>> import neurona as nr
    >>> Dropout(0.5)(nr.ones((2, 3))).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def call(self, x, training=None):
        return ops.dropout(x, self.rate, training=bool(training))

    def _onnx(self, ctx, x):  # the identity at inference
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}
