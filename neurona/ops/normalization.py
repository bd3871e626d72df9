"""Batch normalisation (Ioffe & Szegedy), fused: `batch_norm`, with PyTorch's F.batch_norm rules.

Training runs two ops, each one pass over x: `BatchNormStats` (each channel's mean and biased
variance; no gradient of its own) and `BatchNormTrain` (y = (x − μ)·γ/√(σ² + ε) + β). Since the
statistics are a function of x, BatchNormTrain's backward gives the whole gradient with respect to
x, the paths through μ and σ² included (x̂ = (x − μ)/√(σ² + ε), means over the M values of a channel):
    dx = a·(g − mean(g) − x̂·mean(g·x̂)),  a = γ/√(σ² + ε);   dγ = Σ g·x̂;   dβ = Σ g.
Without create_graph that is two more passes (`BatchNormGradSums`: Σ g and Σ g·x̂, which are dβ and
dγ; `BatchNormGradInput`: dx = k1·g + k2·(x − μ) + k3 with per-channel k); with create_graph the
same formula is written with differentiable ops from a mean and variance recomputed from x, so
gradients of gradients are right. Every step is a Function, so graph mode records and replays it.
The passes are the backend's batch-norm kernels, which see x as (A, C, L): any channel axis works.
May import: neurona.backend, neurona.autograd, neurona.ops.
"""
from __future__ import annotations

from math import prod

from .. import backend as B
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..backend import kernels
from ._base import ShapeError, as_tensor, const
from .elementwise import cast, sqrt
from .movement import stack


def _view3(a, axis):
    """`a` as a contiguous (A, C, L) array, C the channels along `axis`."""
    s = a.shape
    return B.array_module(a).ascontiguousarray(a).reshape(prod(s[:axis]), s[axis], prod(s[axis + 1:]))


def _rstd(var, eps):
    """1/√(σ² + ε) per channel, in float64."""
    xp = B.array_module(var)
    return 1.0 / xp.sqrt(var.astype(xp.float64) + eps)


def _layout(x, axis):
    """The axes a channel's statistics reduce over, and the broadcast shape of a (C,) array."""
    axes = tuple(i for i in range(x.ndim) if i != axis)
    return axes, tuple(n if i == axis else 1 for i, n in enumerate(x.shape))


class BatchNormStats(Function):
    """(2, C): [mean, biased variance] of each channel. `batch_norm` calls it under no_grad: the
    gradient through the statistics is part of BatchNormTrain's backward."""

    def forward(self, x, axis):
        return kernels.bn_stats(_view3(x, axis))


class BatchNormTrain(Function):
    """(x − stats[0])·γ/√(stats[1] + ε) + β, the statistics being x's own batch statistics."""

    def forward(self, x, gamma, beta, stats, eps, axis):
        self.eps, self.axis = eps, axis
        scale = (gamma * _rstd(stats[1], eps)).astype(x.dtype)
        return kernels.bn_normalize(_view3(x, axis), stats[0], scale, beta).reshape(x.shape)

    def backward(self, g):
        x, gamma, _, stats = self.inputs
        eps, axis = self.eps, self.axis
        if is_grad_enabled():  # create_graph: differentiable ops all the way
            axes, bshape = _layout(x, axis)
            xc = x - x.mean(axis=axes, keepdims=True)
            rstd = 1.0 / sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)
            xhat = xc * rstd
            gx = g * xhat
            dx = (gamma.reshape(bshape) * rstd) * (g - g.mean(axis=axes, keepdims=True)
                                                   - xhat * gx.mean(axis=axes, keepdims=True))
            return dx, gx.sum(axis=axes), g.sum(axis=axes), None
        sums = BatchNormGradSums.apply(g, x, stats, eps=eps, axis=axis)
        dx = BatchNormGradInput.apply(g, x, stats, sums, gamma, eps=eps, axis=axis) if self.needs_grad(0) else None
        return (dx, sums[1] if self.needs_grad(1) else None, sums[0] if self.needs_grad(2) else None, None)


class BatchNormInference(BatchNormTrain):
    """The same output with given (running) statistics, which are constants here: dx = a·g."""

    def backward(self, g):
        x, gamma, _, stats = self.inputs
        axes, bshape = _layout(x, self.axis)
        rstd = 1.0 / sqrt(stats[1] + self.eps)
        dx = g * (gamma * rstd).reshape(bshape) if self.needs_grad(0) else None
        dgamma = (g * (x - stats[0].reshape(bshape))).sum(axis=axes) * rstd if self.needs_grad(1) else None
        return dx, dgamma, g.sum(axis=axes) if self.needs_grad(2) else None, None


class BatchNormGradSums(Function):
    """(2, C): [Σ g, Σ g·x̂] per channel, which are dβ and dγ (run by a backward without
    create_graph only, so it needs no backward itself)."""

    def forward(self, g, x, stats, eps, axis):
        sums = kernels.bn_grad_sums(_view3(g, axis), _view3(x, axis), stats[0])
        sums[1] *= _rstd(stats[1], eps)
        return sums.astype(x.dtype)


class BatchNormGradInput(Function):
    """dx = a·g + k2·(x − μ) + k3, a = γ/√(σ² + ε), k2 = −a·Σ(g·x̂)/(M·√(σ² + ε)), k3 = −a·Σg/M:
    the formula of BatchNormTrain's docstring with x̂ expanded (backward without create_graph)."""

    def forward(self, g, x, stats, sums, gamma, eps, axis):
        rstd = _rstd(stats[1], eps)
        a = gamma * rstd
        m = x.size // x.shape[axis]
        k2, k3 = -a * rstd * sums[1] / m, -a * sums[0] / m
        dt = x.dtype
        dx = kernels.bn_grad_input(_view3(g, axis), _view3(x, axis), stats[0], a.astype(dt), k2.astype(dt),
                                   k3.astype(dt))
        return dx.reshape(x.shape)


def batch_norm(x, gamma=None, beta=None, running_mean=None, running_var=None, training=True, momentum=0.1,
               eps=1e-5, axis=1):
    """Batch normalisation over every axis but `axis` (the channels: C of (N, C) and NCHW).

    training=True: y = (x − μ_B)/√(σ²_B + ε)·γ + β with the batch mean and biased variance, and
    running_mean/running_var (if given) updated in place, not recorded, as PyTorch does:
    r ← (1 − momentum)·r + momentum·s, with the unbiased batch variance for running_var.
    training=False: the running statistics replace the batch ones (they get no gradient).
    gamma and beta are (C,) tensors, or None for 1 and 0.

    >>> import neurona as nr
    >>> nr.manual_seed(0)
    >>> x = nr.randn(64, 3) * 5 + 2
    >>> rm, rv = nr.zeros(3), nr.ones(3)
    >>> y = batch_norm(x, running_mean=rm, running_var=rv)
    >>> [round(v, 4) for v in y.mean(axis=0).tolist()], bool((rm.numpy() > 0.1).all())
    ([0.0, 0.0, 0.0], True)
    """
    x = as_tensor(x)
    if x.ndim < 2 or not -x.ndim <= axis < x.ndim:
        raise ShapeError(f"batch_norm: axis {axis} must be a channel axis of x, got x.shape={x.shape}")
    if not B.is_floating(x.dtype):
        raise TypeError(f"batch_norm: x must be floating point, not {x.dtype}")
    axis %= x.ndim
    c = x.shape[axis]
    named = {"gamma": gamma, "beta": beta, "running_mean": running_mean, "running_var": running_var}
    for name, t in named.items():
        if t is not None and tuple(t.shape) != (c,):
            raise ShapeError(f"batch_norm: {name}.shape {tuple(t.shape)} must be ({c},), the channels of "
                             f"x.shape={x.shape} along axis {axis}")
    xp = B.array_module(x.data)
    gamma = const(xp.ones(c, x.dtype)) if gamma is None else cast(as_tensor(gamma), x.dtype)
    beta = const(xp.zeros(c, x.dtype)) if beta is None else cast(as_tensor(beta), x.dtype)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: training=False needs running_mean and running_var")
        with no_grad():
            stats = cast(stack([running_mean, running_var]), x.dtype)
        return BatchNormInference.apply(x, gamma, beta, stats, eps=float(eps), axis=axis)
    m = x.size // c
    if m == 0:
        raise ShapeError(f"batch_norm: no values to normalise, x.shape={x.shape}")
    with no_grad():
        stats = BatchNormStats.apply(x, axis=axis)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * stats[0]
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += (momentum * m / max(m - 1, 1)) * stats[1]
    return BatchNormTrain.apply(x, gamma, beta, stats, eps=float(eps), axis=axis)
