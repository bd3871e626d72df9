"""BatchNormalization (course topic 4, Ioffe & Szegedy's algorithm), on the fused `ops.batch_norm`.
May import: numpy (for the ONNX export), neurona (ops), neurona.nn (Layer, initializers, regularizers,
constraints).
"""
from __future__ import annotations

import numpy as np

from ... import ops
from .. import constraints, initializers, regularizers
from ..layer import Layer, register


@register
class BatchNormalization(Layer):
    """Normalise each feature (axis 1: the F of (N, F), the C of NCHW (N, C, H, W)).

    Training: x̂ = (x − μ_B) / sqrt(σ²_B + ε) with the batch mean and (biased) variance over
    every axis but `axis`, then y = γ·x̂ + β with learnable γ (`scale`) and β (`center`).
    The moving averages are updated as m ← momentum·m + (1 − momentum)·batch statistic (Keras'
    convention: momentum 0.99 here is PyTorch's momentum 0.01); the moving variance takes the
    unbiased batch variance, as the paper's inference rule and PyTorch do. Inference
    (training False or None) uses the moving averages instead of the batch statistics.

    >>> import neurona as nr
    >>> bn = BatchNormalization()
    >>> y = bn(nr.randn(64, 3) * 5 + 2, training=True)
    >>> [round(v, 4) for v in y.mean(axis=0).tolist()], bn.count_params(), len(bn.trainable_weights)
    ([0.0, 0.0, 0.0], 12, 2)
    """

    def __init__(self, axis=1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)

    def build(self, input_shape):
        ndim = len(input_shape)
        axis = self.axis % ndim
        if axis == 0:
            raise ValueError(f"{self.name}: axis {self.axis} is the batch axis of input shape {tuple(input_shape)}")
        n = input_shape[axis]
        self._bshape = tuple(n if i == axis else 1 for i in range(ndim))
        self.gamma = (self.add_weight("gamma", (n,), self.gamma_initializer, self.gamma_regularizer,
                                      self.gamma_constraint) if self.scale else None)
        self.beta = (self.add_weight("beta", (n,), self.beta_initializer, self.beta_regularizer,
                                     self.beta_constraint) if self.center else None)
        self.moving_mean = self.add_weight("moving_mean", (n,), self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (n,), self.moving_variance_initializer,
                                               trainable=False)

    def call(self, x, training=None):
        if x.ndim != len(self._bshape) or x.shape[self.axis % x.ndim] != self._bshape[self.axis % x.ndim]:
            raise ops.ShapeError(f"{self.name}: built for inputs like (N, ...) with {self._bshape} features "
                                 f"layout, got shape {x.shape}")
        # A frozen layer (trainable = False) runs in inference mode even while the model trains, as
        # in Keras: fine-tuning a network whose batch norm was frozen must not move its statistics.
        training = bool(training) and self.trainable
        # one fused op; PyTorch's momentum (the weight of the new batch) is 1 − Keras' momentum
        return ops.batch_norm(x, self.gamma, self.beta, self.moving_mean, self.moving_variance,
                              training=training, momentum=1 - self.momentum, eps=self.epsilon,
                              axis=self.axis)

    def _onnx(self, ctx, x):  # see neurona.saving.onnx_export: one scale and shift at inference
        var = self.moving_variance.numpy().astype(np.float64)
        mean = self.moving_mean.numpy().astype(np.float64)
        scale = (1.0 if self.gamma is None else self.gamma.numpy()) / np.sqrt(var + self.epsilon)
        shift = (0.0 if self.beta is None else self.beta.numpy()) - mean * scale
        shape = self._bshape[1:]  # broadcast over the batch axis and every non-feature axis
        y = ctx.op("Mul", [x, ctx.const("scale", scale.reshape(shape).astype(np.float32))])
        return ctx.op("Add", [y, ctx.const("shift", shift.reshape(shape).astype(np.float32))])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint)}
