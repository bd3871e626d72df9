"""Pooling, NCHW: max_pool2d (the gradient goes to the window's maximum, the first one on
ties, as in PyTorch) and avg_pool2d (padding counts in the average, PyTorch's default).
Each op's backward is a linear map whose own backward is the op again, so gradients of any
order work.
May import: neurona.backend, neurona.autograd, neurona.ops.
"""
from __future__ import annotations

from .. import backend as B
from ..autograd.function import Function
from ._base import ShapeError, as_tensor
from .conv import add_windows, crop, make_geometry, pad_input, windows


def _flat_windows(x, geo, fill):
    n, c = x.shape[:2]
    # (N, OH, OW, C, kh, kw) -> (N, C, OH, OW, kh·kw)
    w = windows(pad_input(x, geo, fill), geo).transpose(0, 3, 1, 2, 4, 5)
    return w.reshape(n, c, geo.oh, geo.ow, geo.kh * geo.kw)


def _spread(g, geo, n_c, weights):
    """Adjoint of window extraction: add g·weights[..., p] into window position p."""
    xp = B.array_module(g)
    hp, wp = geo.padded
    dxpad = xp.zeros(n_c + (hp, wp), dtype=g.dtype)
    cols = (g[..., None] * weights).reshape(g.shape + (geo.kh, geo.kw)).transpose(0, 2, 3, 1, 4, 5)
    add_windows(dxpad, cols, geo)
    return crop(dxpad, geo)


class MaxPool2d(Function):
    def forward(self, x, geo):
        self.geo = geo
        flat = _flat_windows(x, geo, float("-inf"))
        self.argmax = flat.argmax(axis=-1)[..., None]
        return B.array_module(x).take_along_axis(flat, self.argmax, axis=-1)[..., 0]

    def backward(self, g):
        return MaxPool2dGrad.apply(g, geo=self.geo, argmax=self.argmax, n_c=self.inputs[0].shape[:2])


class MaxPool2dGrad(Function):
    """Routes each pooled gradient to the position of its window's maximum."""

    def forward(self, g, geo, argmax, n_c):
        self.geo, self.argmax = geo, argmax
        xp = B.array_module(g)
        onehot = (argmax == xp.arange(geo.kh * geo.kw)).astype(g.dtype)
        return _spread(g, geo, n_c, onehot)

    def backward(self, gg):
        return MaxPoolSelect.apply(gg, geo=self.geo, argmax=self.argmax)


class MaxPoolSelect(Function):
    """Picks, from an input-shaped tensor, the element at each window's recorded maximum."""

    def forward(self, gg, geo, argmax):
        self.geo, self.argmax = geo, argmax
        flat = _flat_windows(gg, geo, 0.0)
        return B.array_module(gg).take_along_axis(flat, argmax, axis=-1)[..., 0]

    def backward(self, g):
        return MaxPool2dGrad.apply(g, geo=self.geo, argmax=self.argmax, n_c=self.inputs[0].shape[:2])


class AvgPool2d(Function):
    def forward(self, x, geo):
        self.geo = geo
        return _flat_windows(x, geo, 0.0).mean(axis=-1)

    def backward(self, g):
        return AvgPool2dGrad.apply(g, geo=self.geo, n_c=self.inputs[0].shape[:2])


class AvgPool2dGrad(Function):
    def forward(self, g, geo, n_c):
        self.geo = geo
        kk = geo.kh * geo.kw
        return _spread(g, geo, n_c, B.array_module(g).full(kk, 1.0 / kk, dtype=g.dtype))

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
