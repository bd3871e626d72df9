"""Reductions: sum, mean, var, max/min (the course's "max gate"), argmax/argmin, logsumexp.
May import: neurona.backend, neurona.autograd, neurona.ops._base.
"""
from __future__ import annotations

import builtins

from .. import backend as B
from ..autograd.function import Function
from ._base import as_tensor, const, normalize_axes


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    def forward(self, a, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims
        return a.sum(axis=axes, keepdims=keepdims)

    def backward(self, g):
        shape = self.inputs[0].shape
        if not self.keepdims and g.ndim:  # a 0-d gradient broadcasts as it is
            g = g.reshape(_kept_shape(shape, self.axes))
        return g.broadcast_to(shape)


class Max(Function):
    """max/min over axes. Ties split the gradient evenly among the tied elements (PyTorch's
    `amax` rule), so the gradient sums to the upstream one whatever the ties."""

    def forward(self, a, axes, keepdims, take_max):
        self.axes, self.keepdims = axes, keepdims
        if a.size == 0:
            raise ValueError(f"{'max' if take_max else 'min'}: cannot reduce an empty tensor")
        out = a.max(axis=axes, keepdims=True) if take_max else a.min(axis=axes, keepdims=True)
        mask = (a == out).astype(a.dtype)
        self.share = mask / mask.sum(axis=axes, keepdims=True)
        return out if keepdims else out.reshape([n for i, n in enumerate(a.shape) if i not in axes])

    def backward(self, g):
        if not self.keepdims:
            g = g.reshape(_kept_shape(self.inputs[0].shape, self.axes))
        return g * const(self.share)


class LogSumExp(Function):
    def forward(self, a, axes, keepdims):
        xp = B.array_module(a)
        self.axes, self.keepdims = axes, keepdims
        m = a.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        out = xp.log(xp.exp(a - m).sum(axis=axes, keepdims=True)) + m
        return out if keepdims else out.reshape([n for i, n in enumerate(a.shape) if i not in axes])

    def backward(self, g):
        (a,) = self.inputs
        out = self.output()
        if not self.keepdims:
            kept = _kept_shape(a.shape, self.axes)
            g, out = g.reshape(kept), out.reshape(kept)
        return g * (a - out).exp()


def sum(a, axis=None, keepdims=False):  # noqa: A001 - NumPy's name
    """Sum over `axis` (None: all)."""
    a = as_tensor(a)
    return Sum.apply(a, axes=normalize_axes(axis, a.ndim, "sum"), keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    """Arithmetic mean over `axis`."""
    a = as_tensor(a)
    axes = normalize_axes(axis, a.ndim, "mean")
    n = 1
    for i in axes:
        n *= a.shape[i]
    return Sum.apply(a, axes=axes, keepdims=keepdims) * (1.0 / n)


def var(a, axis=None, keepdims=False, ddof=0):
    """Variance over `axis`, dividing by n - ddof (ddof=0: the population variance used by
    batch normalisation)."""
    a = as_tensor(a)
    axes = normalize_axes(axis, a.ndim, "var")
    n = 1
    for i in axes:
        n *= a.shape[i]
    d = a - mean(a, axes, keepdims=True)
    return sum(d * d, axes, keepdims) * (1.0 / builtins.max(n - ddof, 1))


def max(a, axis=None, keepdims=False):  # noqa: A001 - NumPy's name
    """Maximum over `axis`; the gradient goes to the maximum (split evenly on ties)."""
    a = as_tensor(a)
    return Max.apply(a, axes=normalize_axes(axis, a.ndim, "max"), keepdims=keepdims, take_max=True)


def min(a, axis=None, keepdims=False):  # noqa: A001 - NumPy's name
    """Minimum over `axis`; the gradient goes to the minimum (split evenly on ties)."""
    a = as_tensor(a)
    return Max.apply(a, axes=normalize_axes(axis, a.ndim, "min"), keepdims=keepdims, take_max=False)


def argmax(a, axis=None, keepdims=False):
    """Index of the maximum (int64, no gradient); the first one on ties."""
    a = as_tensor(a)
    return const(a.data.argmax(axis=axis, keepdims=keepdims))


def argmin(a, axis=None, keepdims=False):
    """Index of the minimum (int64, no gradient); the first one on ties."""
    a = as_tensor(a)
    return const(a.data.argmin(axis=axis, keepdims=keepdims))


def logsumexp(a, axis=None, keepdims=False):
    """log(sum(exp(a))) computed stably (the maximum is subtracted first)."""
    a = as_tensor(a)
    return LogSumExp.apply(a, axes=normalize_axes(axis, a.ndim, "logsumexp"), keepdims=keepdims)
