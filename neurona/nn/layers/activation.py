"""Activation layers with hyperparameters or weights (course topic 4): LeakyReLU, PReLU, ELU,
Maxout, Softmax. Plain activations by name go through `Activation`.
May import: neurona (ops), neurona.nn (Layer, initializers, regularizers, constraints).
"""
from __future__ import annotations

from ... import ops
from .. import constraints, initializers, regularizers
from ..layer import Layer, register


class _Elementwise(Layer):
    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@register
class LeakyReLU(_Elementwise):
    """max(x, alpha·x). Two defaults, on purpose: this layer's alpha=0.3 is Keras' `LeakyReLU`
    layer default, so Keras code gives the same network; the name `activation="leaky_relu"`
    (and `F.leaky_relu`) uses 0.01, the course's formula and PyTorch's default (Keras 3's function
    uses 0.2). For another slope, use this layer with it. `negative_slope=` (Keras 3's name for
    alpha) is accepted too.

    >>> import neurona as nr
    >>> LeakyReLU(0.1)(nr.tensor([-2.0, 3.0])).tolist()
    [-0.20000000298023224, 3.0]
    >>> LeakyReLU(negative_slope=0.01).alpha
    0.01
    """

    def __init__(self, alpha=0.3, negative_slope=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha if negative_slope is None else negative_slope)

    def call(self, x, training=None):
        return ops.leaky_relu(x, self.alpha)

    def _onnx(self, ctx, x):  # see neurona.saving.onnx_export
        return ctx.op("LeakyRelu", [x], alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@register
class PReLU(_Elementwise):
    """Leaky ReLU whose slope is learned: one alpha per input element (all axes but the batch),
    or shared along `shared_axes` (e.g. shared_axes=(2, 3) for one slope per NCHW channel).

    The slopes start at zero, Keras' default (the unit starts as a ReLU); PyTorch's `nn.PReLU`
    starts them at 0.25, as He et al. (2015) did: pass `alpha_initializer=0.25` (a number means
    a constant) for that.

    >>> import neurona as nr
    >>> layer = PReLU(shared_axes=(2, 3))
    >>> layer(nr.zeros((1, 3, 4, 4))).shape, layer.count_params()
    ((1, 3, 4, 4), 3)
    >>> torch_like = PReLU(alpha_initializer=0.25)
    >>> torch_like(nr.tensor([[-4.0, 2.0]])).tolist()
    [[-1.0, 2.0]]
    """

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha_initializer, (int, float)) and not isinstance(alpha_initializer, bool):
            alpha_initializer = initializers.Constant(float(alpha_initializer))
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is not None and isinstance(shared_axes, int):
            shared_axes = (shared_axes,)
        self.shared_axes = None if shared_axes is None else tuple(int(a) for a in shared_axes)

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            shape[axis - 1] = 1
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer, self.alpha_regularizer,
                                     self.alpha_constraint)

    def call(self, x, training=None):
        return ops.prelu(x, self.alpha)

    def _onnx(self, ctx, x):
        return ctx.op("PRelu", [x, ctx.const("alpha", self.alpha.numpy())])

    def get_config(self):
        return {**super().get_config(), "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": None if self.shared_axes is None else list(self.shared_axes)}


@register
class ELU(_Elementwise):
    """x for x > 0, alpha·(eˣ − 1) otherwise: negative outputs push the mean activation to 0."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, x, training=None):
        return ops.elu(x, self.alpha)

    def _onnx(self, ctx, x):
        return ctx.op("Elu", [x], alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@register
class Maxout(Layer):
    """Maxout: the maximum of each group of `pieces` consecutive features along `axis`.
    `Dense(k·pieces)` followed by `Maxout(pieces)` is the course's maxout unit
    max(w₁ᵀx + b₁, w₂ᵀx + b₂) (pieces=2) with k outputs.

    >>> import neurona as nr
    >>> Maxout(2)(nr.tensor([[1.0, 5.0, -1.0, -3.0]])).tolist()
    [[5.0, -1.0]]
    """

    def __init__(self, pieces=2, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.pieces, self.axis = int(pieces), int(axis)

    def call(self, x, training=None):
        return ops.maxout(x, self.pieces, self.axis)

    def get_config(self):
        return {**super().get_config(), "pieces": self.pieces, "axis": self.axis}


@register
class Softmax(_Elementwise):
    """Softmax along `axis` (the last axis by default)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, x, training=None):
        return ops.softmax(x, self.axis)

    def _onnx(self, ctx, x):
        return ctx.op("Softmax", [x], axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
