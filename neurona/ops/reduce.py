"""Reductions: sum, mean, var, std, max/min (the course's "max gate"), argmax/argmin, logsumexp,
prod, norm, and the running sum cumsum.
May import: neurona.backend, neurona.autograd, neurona.ops._base, neurona.ops.elementwise.
"""
from __future__ import annotations

import builtins

from .. import backend as B
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ._base import ShapeError, as_tensor, const, normalize_axes
from .elementwise import where


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    reduction = "add"  # a.sum is np.add.reduce: the same pairwise sums

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
    `amax` rule), so the gradient sums to the upstream one whatever the ties. `share=False`
    (what `max`/`min` pass when no gradient can flow: grad mode off or an input without
    requires_grad) skips the tie mask, which costs several array passes (a traced graph records
    the parameter, so its replays skip it too)."""

    @classmethod
    def reduction(cls, axes, keepdims, take_max, share=True):
        """Without the tie mask, forward is NumPy's max/min reduction."""
        return None if share else ("maximum" if take_max else "minimum")

    def forward(self, a, axes, keepdims, take_max, share=True):
        self.axes, self.keepdims = axes, keepdims
        if a.size == 0:
            raise ValueError(f"{'max' if take_max else 'min'}: cannot reduce an empty tensor")
        if not share:
            return a.max(axis=axes, keepdims=keepdims) if take_max else a.min(axis=axes, keepdims=keepdims)
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


def _unkept(out, shape, axes, keepdims):
    return out if keepdims else out.reshape([n for i, n in enumerate(shape) if i not in axes])


class Prod(Function):
    def forward(self, a, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims
        return _unkept(a.prod(axis=axes, keepdims=True), a.shape, axes, keepdims)

    def backward(self, g):
        (a,) = self.inputs
        kept = _kept_shape(a.shape, self.axes)
        g, out = g.reshape(kept), self.output().reshape(kept)
        if not (a.data == 0).any():
            return g * out / a
        # With zeros out/a is 0/0: the gradient is the product of the *other* elements (PyTorch's
        # rule: nonzero only at a slice's single zero). Row i of an n×n copy has a 1 in place of
        # element i; its product, itself a Prod, keeps higher-order gradients.
        rest = [i for i in range(a.ndim) if i not in self.axes]
        perm = rest + list(self.axes)
        moved = a.transpose(perm)
        n = 1
        for i in self.axes:
            n *= a.shape[i]
        flat = moved.reshape(moved.shape[:len(rest)] + (n,)).expand_dims(-2)
        eye = B.array_module(a.data).eye(n, dtype=bool)
        others = prod(where(eye, 1.0, flat), -1).reshape(moved.shape)
        return g * others.transpose([perm.index(i) for i in range(a.ndim)])


class Cumsum(Function):
    def forward(self, a, axis):
        self.axis = axis
        return a.cumsum(axis=axis)

    def backward(self, g):
        # the reversed running sum: everything from position i on
        return g.sum(self.axis, keepdims=True) - cumsum(g, self.axis) + g


class Norm2(Function):
    """The 2-norm over `axes`; its gradient a/‖a‖ is defined as 0 where ‖a‖ = 0 (PyTorch's subgradient)."""

    def forward(self, a, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims
        xp = B.array_module(a)
        return _unkept(xp.sqrt((a * a).sum(axis=axes, keepdims=True)), a.shape, axes, keepdims)

    def backward(self, g):
        (a,) = self.inputs
        kept = _kept_shape(a.shape, self.axes)
        g, out = g.reshape(kept), self.output().reshape(kept)
        return g * a / where(out.data == 0, 1.0, out)


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


def std(a, axis=None, keepdims=False, ddof=0):
    """Standard deviation, sqrt(var(a, axis, keepdims, ddof)): ddof=0 (NumPy's default, as `var`)
    divides by n; PyTorch's default is ddof=1 (`correction=1`). The gradient is infinite where
    the std is 0.

    >>> import neurona as nr
    >>> nr.std(nr.tensor([1.0, 3.0])).item(), nr.std(nr.tensor([1.0, 3.0]), ddof=1).item()
    (1.0, 1.4142135381698608)
    """
    a = as_tensor(a)
    return var(a, normalize_axes(axis, a.ndim, "std"), keepdims, ddof).sqrt()


def prod(a, axis=None, keepdims=False):
    """Product over `axis`; zeros get PyTorch's gradient (the product of the other elements).

    >>> import neurona as nr
    >>> x = nr.tensor([2.0, 0.0, 4.0], requires_grad=True)
    >>> nr.prod(x).backward(); x.grad.tolist()
    [0.0, 8.0, 0.0]
    """
    a = as_tensor(a)
    return Prod.apply(a, axes=normalize_axes(axis, a.ndim, "prod"), keepdims=keepdims)


def cumsum(a, axis=None):
    """Running sum along `axis` (None: over the flattened tensor, as NumPy)."""
    a = as_tensor(a)
    if axis is None:
        a, axis = a.reshape(-1), 0
    return Cumsum.apply(a, axis=normalize_axes(axis, a.ndim, "cumsum")[0])


def norm(a, ord=None, axis=None, keepdims=False):  # noqa: A002 - NumPy's name
    """Vector norm over `axis` (None: all elements): ord None/2 (Euclidean, the Frobenius norm
    over two axes, ord='fro'), 1 (sum of |a|), inf / -inf (max / min of |a|). The gradient at 0
    is 0. Matrix norms other than Frobenius (ord=1, 2, inf over two axes) are not implemented.

    >>> import neurona as nr
    >>> nr.norm(nr.tensor([3.0, -4.0])).item(), nr.norm(nr.tensor([3.0, -4.0]), 1).item()
    (5.0, 7.0)
    """
    a = as_tensor(a)
    axes = normalize_axes(axis, a.ndim, "norm")
    two = axis is not None and len(axes) == 2 or axis is None and a.ndim == 2
    if ord == "fro" and not two:
        raise ShapeError(f"norm: ord='fro' needs two axes, got axis={axis} for shape {a.shape}")
    if ord in (None, 2, "fro") and not (ord == 2 and two):
        return Norm2.apply(a, axes=axes, keepdims=keepdims)
    if ord not in (1, float("inf"), float("-inf"), 2):
        raise ValueError(f"norm: ord={ord!r} is not supported (None, 2, 'fro', 1, inf, -inf)")
    if len(axes) > 1:
        raise ValueError(f"norm: ord={ord!r} over axes {axes} would be a matrix norm, which neurona "
                         "does not implement; give one axis, or use ord=None/'fro'")
    if ord == 1:
        return sum(a.abs(), axes, keepdims)
    return (max if ord > 0 else min)(a.abs(), axes, keepdims)


def max(a, axis=None, keepdims=False):  # noqa: A001 - NumPy's name
    """Maximum over `axis`; the gradient goes to the maximum (split evenly on ties)."""
    a = as_tensor(a)
    return Max.apply(a, axes=normalize_axes(axis, a.ndim, "max"), keepdims=keepdims, take_max=True,
                     share=a.requires_grad and is_grad_enabled())


def min(a, axis=None, keepdims=False):  # noqa: A001 - NumPy's name
    """Minimum over `axis`; the gradient goes to the minimum (split evenly on ties)."""
    a = as_tensor(a)
    return Max.apply(a, axes=normalize_axes(axis, a.ndim, "min"), keepdims=keepdims, take_max=False,
                     share=a.requires_grad and is_grad_enabled())


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
