"""Core layers: Dense, Activation, Flatten, Reshape, Embedding.
May import: numpy (for the ONNX export), neurona (Tensor, ops), neurona.nn (Layer, initializers,
regularizers, constraints, activations).
"""
from __future__ import annotations

import math

import numpy as np

from ... import backend as B, ops
from .. import activations, constraints, initializers, regularizers
from ..layer import Layer, register
from ...ops import ShapeError
from ...tensor import Tensor


@register
class Dense(Layer):
    """Fully connected layer: `activation(x @ kernel + bias)`, kernel (input_dim, units).

    Biases start at zero and, as the course advises, are not regularised: `bias_regularizer`
    exists for Keras compatibility but defaults to None and is best left so.

    >>> import neurona as nr
    >>> layer = Dense(4, activation="relu", input_dim=3)
    >>> layer(nr.ones((2, 3))).shape, layer.count_params()
    ((2, 4), 16)
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if int(units) <= 0:
            raise ValueError(f"Dense: units must be a positive integer, got {units}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ShapeError(f"{self.name}: the last axis of the input must be known, got shape {input_shape}")
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer,
                                      self.kernel_regularizer, self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer,
                                        self.bias_constraint)

    def call(self, x, training=None):
        if x.shape[-1] != self.kernel.shape[0]:
            raise ShapeError(f"{self.name}: input shape {x.shape} must end in {self.kernel.shape[0]} "
                             f"(kernel shape {self.kernel.shape})")
        y = ops.matmul(x, self.kernel)
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y)

    def _onnx(self, ctx, x):  # see neurona.saving.onnx_export
        y = ctx.op("MatMul", [x, ctx.const("kernel", self.kernel.numpy())])
        if self.bias is not None:
            y = ctx.op("Add", [y, ctx.const("bias", self.bias.numpy())])
        return ctx.activation(y, self.activation)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


@register
class Activation(Layer):
    """Apply an activation by name ('relu', 'softmax', ...) or callable.

    >>> import neurona as nr
    >>> Activation("relu")(nr.tensor([[-1.0, 2.0]])).tolist()
    [[0.0, 2.0]]
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, x, training=None):
        return self.activation(x)

    def _onnx(self, ctx, x):
        return ctx.activation(x, self.activation)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


@register
class Flatten(Layer):
    """Flatten every axis but the batch axis: (N, d1, d2, ...) → (N, d1·d2·...).

    >>> import neurona as nr
    >>> Flatten()(nr.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """

    def call(self, x, training=None):
        return x.reshape(x.shape[0], -1)

    def _onnx(self, ctx, x):
        return ctx.op("Flatten", [x], axis=1)

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape)[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))


@register
class Reshape(Layer):
    """Reshape each sample to `target_shape` (one entry may be -1); the batch axis stays.

    >>> import neurona as nr
    >>> Reshape((3, 4))(nr.zeros((2, 12))).shape
    (2, 3, 4)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(n) for n in target_shape)
        if sum(n == -1 for n in self.target_shape) > 1:
            raise ValueError(f"Reshape: at most one -1 in target_shape, got {self.target_shape}")

    def _resolve(self, sample_shape):
        size = math.prod(sample_shape)
        known = math.prod(n for n in self.target_shape if n != -1)
        if (-1 in self.target_shape and (known == 0 or size % known)) or (
                -1 not in self.target_shape and known != size):
            raise ShapeError(f"{self.name}: cannot reshape samples of shape {tuple(sample_shape)} "
                             f"({size} values) to {self.target_shape}")
        return tuple(size // known if n == -1 else n for n in self.target_shape)

    def call(self, x, training=None):
        return x.reshape((x.shape[0], *self._resolve(x.shape[1:])))

    def _onnx(self, ctx, x):  # 0: keep the batch axis
        return ctx.op("Reshape", [x, ctx.const("shape", np.array([0, *self.target_shape], np.int64))])

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape)[1:]
        if None in rest:
            return (input_shape[0], *(None if n == -1 else n for n in self.target_shape))
        return (input_shape[0], *self._resolve(rest))

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


@register
class Embedding(Layer):
    """Map integer ids in [0, input_dim) to learned vectors of size `output_dim`: input shape
    (N, ...) gives (N, ..., output_dim). Float inputs holding whole numbers are accepted (a
    model's input is float32 by default). `mask_zero=True` marks id 0 as padding: the recurrent
    layers that read the output skip those steps (id 0 is then reserved for padding).

    sparse=True: the table's gradient is a `RowSparse` (the batch's ids and their gradient rows)
    instead of a dense (input_dim, output_dim) array, and SGD, Adagrad and Adam update only
    those rows (PyTorch's `nn.Embedding(sparse=True)`); other optimisers refuse it. It pays
    when the vocabulary is much larger than the ids of a batch (word2vec).

    >>> import neurona as nr
    >>> Embedding(10, 4)(nr.tensor([[1, 2, 3]])).shape
    (1, 3, 4)
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, sparse=False, mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim, self.sparse = int(input_dim), int(output_dim), bool(sparse)
        self.mask_zero = bool(mask_zero)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer, self.embeddings_regularizer,
                                          self.embeddings_constraint)

    def call(self, x, training=None):
        ids = x if isinstance(x, Tensor) else Tensor(B.numpy.asarray(x))
        if ids.dtype.kind == "f":
            # an op, not an array method: a traced step (nr.jit) then reads each batch's ids live
            ids = ops.cast(ids, B.int64)
        out = ops.embedding(ids, self.embeddings, sparse=self.sparse)
        if self.mask_zero:
            from .recurrent import set_mask

            set_mask(out, ids.data != 0)
        return out

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape), self.output_dim)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "sparse": self.sparse, "mask_zero": self.mask_zero,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "embeddings_constraint": constraints.serialize(self.embeddings_constraint)}
