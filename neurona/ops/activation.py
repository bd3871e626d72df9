"""Activations (course topic 4): sigmoid, tanh, relu, leaky_relu, prelu, elu, softplus,
softmax, log_softmax, maxout.
May import: neurona.backend, neurona.autograd, neurona.ops.
"""
from __future__ import annotations

from .. import backend as B
from ..autograd.function import Function, literal
from ._base import ShapeError, as_tensor, const, normalize_axes
from .elementwise import exp, where
from .reduce import max as reduce_max, sum as reduce_sum


class Sigmoid(Function):
    elementwise = "(1.0 / (1.0 + math.exp(-{0})) if {0} >= 0 else math.exp({0}) / (1.0 + math.exp({0})))"

    def forward(self, a):
        xp = B.array_module(a)
        # exp of a negative number only: no overflow for large |a|.
        e = xp.exp(-xp.abs(a))
        return xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)

    def backward(self, g):
        y = self.output()
        return g * y * (1 - y)


class Tanh(Function):
    elementwise = "math.tanh({0})"
    ufunc = "tanh"

    def forward(self, a):
        return B.array_module(a).tanh(a)

    def backward(self, g):
        y = self.output()
        return g * (1 - y * y)


class LeakyReLU(Function):
    """max(x, slope·x); relu is slope 0. The gradient at 0 is `slope` (0 for relu)."""

    @classmethod
    def elementwise(cls, dtype, slope):  # the output, and the 0/1 (or slope) scale saved for backward
        s = literal(slope, dtype)
        return f"({{0}} if {{0}} > 0 else {{0}} * {s})", f"({literal(1, dtype)} if {{0}} > 0 else {s})"

    def forward(self, a, slope):
        self.slope = slope  # read by the graph pictures (viz), which label the slope
        positive = a > 0
        if slope == 0:
            self.scale = positive.astype(a.dtype)
            return a * self.scale
        self.scale = B.array_module(a).where(positive, 1, slope).astype(a.dtype)
        return a * self.scale

    def backward(self, g):
        return g * const(self.scale)


class Softplus(Function):
    def forward(self, a):
        xp = B.array_module(a)
        return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))

    def backward(self, g):
        return g * sigmoid(self.inputs[0])


class Softmax(Function):
    def forward(self, a, axis):
        xp = B.array_module(a)
        self.axis = axis
        e = xp.exp(a - a.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def backward(self, g):
        y = self.output()
        return y * (g - reduce_sum(g * y, self.axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, a, axis):
        xp = B.array_module(a)
        self.axis = axis
        shifted = a - a.max(axis=axis, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(self, g):
        return g - exp(self.output()) * reduce_sum(g, self.axis, keepdims=True)


def sigmoid(x):
    """σ(x) = 1 / (1 + e^−x); its derivative is σ(1 − σ)."""
    return Sigmoid.apply(as_tensor(x))


def tanh(x):
    """Hyperbolic tangent; its derivative is 1 − tanh²."""
    return Tanh.apply(as_tensor(x))


def relu(x):
    """max(0, x); the gradient at 0 is 0."""
    return LeakyReLU.apply(as_tensor(x), slope=0.0)


def leaky_relu(x, negative_slope=0.01):
    """max(x, 0.01·x) by default: dead units still get a small gradient."""
    return LeakyReLU.apply(as_tensor(x), slope=float(negative_slope))


def prelu(x, alpha):
    """Leaky ReLU with a learnable slope `alpha` (broadcast against x, e.g. one per channel)."""
    x, alpha = as_tensor(x), as_tensor(alpha)
    return where(x.data > 0, x, alpha * x)


def elu(x, alpha=1.0):
    """x for x > 0, alpha·(e^x − 1) otherwise."""
    x = as_tensor(x)
    positive = x.data > 0
    # exp sees only the non-positive part (no overflow); `where`, not `minimum`, so that the
    # slope at 0 is alpha as in PyTorch (minimum would split a tie's gradient in half).
    return where(positive, x, alpha * (exp(where(positive, 0.0, x)) - 1))


def softplus(x):
    """log(1 + e^x), computed stably; its derivative is σ(x)."""
    return Softplus.apply(as_tensor(x))


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis` (the maximum is subtracted first, for stability)."""
    x = as_tensor(x)
    return Softmax.apply(x, axis=normalize_axes(axis, x.ndim, "softmax")[0])


def log_softmax(x, axis=-1):
    """x − logsumexp(x) along `axis`."""
    x = as_tensor(x)
    return LogSoftmax.apply(x, axis=normalize_axes(axis, x.ndim, "log_softmax")[0])


def maxout(x, pieces, axis=-1):
    """Maxout (Goodfellow et al.): split `axis` into groups of `pieces` and keep each group's max.
    An input of size k·pieces along `axis` gives k outputs."""
    x = as_tensor(x)
    axis = axis % x.ndim
    n = x.shape[axis]
    if n % pieces:
        raise ShapeError(f"maxout: axis {axis} of length {n} is not a multiple of pieces={pieces}")
    shape = x.shape[:axis] + (n // pieces, pieces) + x.shape[axis + 1:]
    return reduce_max(x.reshape(shape), axis=axis + 1)

