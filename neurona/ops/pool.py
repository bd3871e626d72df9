"""Pooling, NCHW: max_pool2d (the gradient goes to the window's maximum, the first one on
ties, as in PyTorch) and avg_pool2d (padding counts in the average, PyTorch's default).
Each op's backward is a linear map whose own backward is the op again, so gradients of any
order work. The window work (argmax routing included) is done by the backend's kernels.
May import: neurona.backend, neurona.autograd, neurona.ops.
"""
from __future__ import annotations

from ..autograd.function import Function
from ..backend import kernels
from ._base import ShapeError, as_tensor
from .conv import make_geometry


class MaxPool2d(Function):
    def forward(self, x, geo):
        self.geo = geo
        y, self.argmax = kernels.max_pool(x, geo.ints)
        return y

    def backward(self, g):
        return MaxPool2dGrad.apply(g, geo=self.geo, argmax=self.argmax, x_shape=self.inputs[0].shape)


class MaxPool2dGrad(Function):
    """Routes each pooled gradient to the position of its window's maximum."""

    def forward(self, g, geo, argmax, x_shape):
        self.geo, self.argmax = geo, argmax
        return kernels.max_pool_scatter(g, argmax, x_shape, geo.ints)

    def backward(self, gg):
        return MaxPoolSelect.apply(gg, geo=self.geo, argmax=self.argmax)


class MaxPoolSelect(Function):
    """Picks, from an input-shaped tensor, the element at each window's recorded maximum."""

    def forward(self, gg, geo, argmax):
        self.geo, self.argmax = geo, argmax
        return kernels.max_pool_select(gg, argmax, geo.ints)

    def backward(self, g):
        return MaxPool2dGrad.apply(g, geo=self.geo, argmax=self.argmax, x_shape=self.inputs[0].shape)


class AvgPool2d(Function):
    def forward(self, x, geo):
        self.geo = geo
        return kernels.avg_pool(x, geo.ints)

    def backward(self, g):
        return AvgPool2dGrad.apply(g, geo=self.geo, x_shape=self.inputs[0].shape)


class AvgPool2dGrad(Function):
    def forward(self, g, geo, x_shape):
        self.geo = geo
        return kernels.avg_pool_scatter(g, x_shape, geo.ints)

    def backward(self, gg):
        return AvgPool2d.apply(gg, geo=self.geo)


def _geometry(op, x, kernel_size, stride, padding, rounding):
    if x.ndim != 4:
        raise ShapeError(f"{op}: x must be (N, C, H, W), got shape {x.shape}")
    stride = kernel_size if stride is None else stride
    geo = make_geometry(op, x.shape, kernel_size, stride, padding, 1, rounding)
    if geo.ph * 2 > geo.kh or geo.pw * 2 > geo.kw:
        raise ValueError(f"{op}: padding ({geo.ph}, {geo.pw}) must be at most half the kernel ({geo.kh}, {geo.kw})")
    return geo


def max_pool2d(x, kernel_size, stride=None, padding=0, rounding="exact"):
    """Max over kh×kw windows (stride defaults to the kernel size). Padding is −∞.

    rounding='exact' refuses sizes that do not divide; 'floor' drops the last partial window,
    'ceil' keeps it (PyTorch's ceil_mode=True).

    >>> import neurona as nr
    >>> nr.F.max_pool2d(nr.zeros((1, 1, 4, 4)), 2).shape
    (1, 1, 2, 2)
    """
    x = as_tensor(x)
    return MaxPool2d.apply(x, geo=_geometry("max_pool2d", x, kernel_size, stride, padding, rounding))


def avg_pool2d(x, kernel_size, stride=None, padding=0, rounding="exact"):
    """Mean over kh×kw windows; zero padding counts in the mean (count_include_pad)."""
    x = as_tensor(x)
    if rounding == "ceil":
        raise ValueError("avg_pool2d: rounding='ceil' is not supported; use 'exact' or 'floor'")
    return AvgPool2d.apply(x, geo=_geometry("avg_pool2d", x, kernel_size, stride, padding, rounding))
