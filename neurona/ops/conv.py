"""2-D convolution, NCHW (as PyTorch, ONNX and cuDNN): conv2d and its two adjoints.

Convolution is a trilinear form T(x, w, g) = Σ g[n,k,q]·w[k,c,i]·x[n,c,q·s + i·d − p], and the
three ops here are its three partial derivatives:
  conv2d(x, w)            = ∂T/∂g   (the forward pass)
  conv_transpose2d(g, w)  = ∂T/∂x   (the gradient with respect to the input)
  conv2d_weight(x, g)     = ∂T/∂w   (the gradient with respect to the filters)
so the backward of each is written with the other two, and gradients of every order follow.
The kernels are im2col + one GEMM (the BLAS does the work); col2im adds back kh·kw shifted slices.
May import: neurona.backend, neurona.autograd, neurona.ops._base.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import backend as B
from ..autograd.function import Function
from ._base import ShapeError, as_tensor


def _pair(v, name, op):
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(u) for u in v)
    if len(v) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair, got {v}")
    return v


def output_size(op, axis_name, size, kernel, stride, padding, dilation=1, rounding="exact"):
    """The course's formula (W − F + 2P)/S + 1, with F the dilated kernel size.

    rounding='exact' (the default) refuses sizes that do not divide; 'floor' drops the last
    partial window (PyTorch's default), 'ceil' keeps it (pooling's ceil_mode).
    """
    eff = dilation * (kernel - 1) + 1
    span = size + 2 * padding - eff
    if span < 0:
        raise ShapeError(
            f"{op}: kernel {eff} is larger than the padded input {size} + 2·{padding} along {axis_name}"
        )
    q, r = divmod(span, stride)
    if r and rounding == "exact":
        raise ShapeError(
            f"{op}: output {axis_name} = ({size} − {eff} + 2·{padding})/{stride} + 1 = "
            f"{span / stride + 1:.2f} is not an integer; change padding or stride, or pass "
            f"rounding='floor' (or 'ceil')"
        )
    if r and rounding == "ceil" and q * stride < size + padding:
        q += 1
    elif rounding not in ("exact", "floor", "ceil"):
        raise ValueError(f"{op}: rounding must be 'exact', 'floor' or 'ceil', not {rounding!r}")
    return q + 1


@dataclass(frozen=True)
class Geometry:
    """Everything about one convolution/pooling window layout."""

    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    H: int
    W: int
    oh: int
    ow: int
    groups: int = 1

    @property
    def padded(self):
        # ceil mode may need room past the right/bottom padding
        hp = max(self.H + 2 * self.ph, (self.oh - 1) * self.sh + self.dh * (self.kh - 1) + 1)
        wp = max(self.W + 2 * self.pw, (self.ow - 1) * self.sw + self.dw * (self.kw - 1) + 1)
        return hp, wp


def make_geometry(op, x_shape, kernel, stride, padding, dilation, rounding, groups=1):
    kh, kw = _pair(kernel, "kernel_size", op)
    sh, sw = _pair(stride, "stride", op)
    ph, pw = _pair(padding, "padding", op)
    dh, dw = _pair(dilation, "dilation", op)
    if min(sh, sw, dh, dw, kh, kw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{op}: kernel, stride and dilation must be ≥ 1 and padding ≥ 0")
    H, W = x_shape[-2:]
    oh = output_size(op, "height", H, kh, sh, ph, dh, rounding)
    ow = output_size(op, "width", W, kw, sw, pw, dw, rounding)
    return Geometry(kh, kw, sh, sw, ph, pw, dh, dw, H, W, oh, ow, groups)


def pad_input(x, geo: Geometry, value=0.0):
    hp, wp = geo.padded
    if hp == geo.H and wp == geo.W:
        return x
    xp = B.array_module(x)
    out = xp.full(x.shape[:2] + (hp, wp), value, dtype=x.dtype)
    out[:, :, geo.ph:geo.ph + geo.H, geo.pw:geo.pw + geo.W] = x
    return out


def crop(xpad, geo: Geometry):
    return xpad[:, :, geo.ph:geo.ph + geo.H, geo.pw:geo.pw + geo.W]


def windows(xpad, geo: Geometry):
    """A strided view (N, OH, OW, C, kh, kw) of every window of the padded input."""
    n, c = xpad.shape[:2]
    sn, sc, sy, sx = xpad.strides
    shape = (n, geo.oh, geo.ow, c, geo.kh, geo.kw)
    strides = (sn, sy * geo.sh, sx * geo.sw, sc, sy * geo.dh, sx * geo.dw)
    return B.array_module(xpad).lib.stride_tricks.as_strided(xpad, shape, strides, writeable=False)


def add_windows(dxpad, cols, geo: Geometry):
    """col2im: add cols (N, OH, OW, C, kh, kw) back into the padded input it came from."""
    ys, xs = geo.sh * (geo.oh - 1) + 1, geo.sw * (geo.ow - 1) + 1
    for i in range(geo.kh):
        for j in range(geo.kw):
            y0, x0 = i * geo.dh, j * geo.dw
            dxpad[:, :, y0:y0 + ys:geo.sh, x0:x0 + xs:geo.sw] += cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)


def _im2col(x, geo):
    cols = windows(pad_input(x, geo), geo)
    n = x.shape[0]
    return cols.reshape(n * geo.oh * geo.ow, geo.groups, -1)


def _grouped_matmul(a, b):
    """(M, G, p) × (G, p, q) → (M, G, q), one GEMM when G == 1."""
    if a.shape[1] == 1:
        return (a[:, 0, :] @ b[0])[:, None, :]
    return (a.transpose(1, 0, 2) @ b).transpose(1, 0, 2)


def conv_forward(x, w, geo, cols=None):
    k = w.shape[0]
    g = geo.groups
    if cols is None:
        cols = _im2col(x, geo)
    w3 = w.reshape(g, k // g, -1).transpose(0, 2, 1)
    out = _grouped_matmul(cols, w3).reshape(x.shape[0], geo.oh, geo.ow, k)
    return out.transpose(0, 3, 1, 2), cols


def conv_input_grad(gy, w, geo, n):
    k, cg = w.shape[:2]
    g = geo.groups
    gy3 = gy.transpose(0, 2, 3, 1).reshape(-1, g, k // g)
    dcols = _grouped_matmul(gy3, w.reshape(g, k // g, -1))
    dcols = dcols.reshape(n, geo.oh, geo.ow, cg * g, geo.kh, geo.kw)
    hp, wp = geo.padded
    dxpad = B.array_module(gy).zeros((n, cg * g, hp, wp), dtype=gy.dtype)
    add_windows(dxpad, dcols, geo)
    return crop(dxpad, geo)


def conv_weight_grad(x, gy, geo, cols=None):
    k = gy.shape[1]
    g = geo.groups
    if cols is None:
        cols = _im2col(x, geo)
    gy3 = gy.transpose(0, 2, 3, 1).reshape(-1, g, k // g)
    dw = gy3.transpose(1, 2, 0) @ cols.transpose(1, 0, 2)  # (G, K/G, C/G·kh·kw)
    return dw.reshape(k, x.shape[1] // g, geo.kh, geo.kw)


class Conv2d(Function):
    def forward(self, x, w, geo):
        self.geo = geo
        y, self.cols = conv_forward(x, w, geo)
        return y

    def backward(self, gy):
        x, w = self.inputs
        gx = ConvTranspose2d.apply(gy, w, geo=self.geo, n=x.shape[0]) if x.requires_grad else None
        gw = Conv2dWeight.apply(x, gy, geo=self.geo, cols=self.cols) if w.requires_grad else None
        return gx, gw


class ConvTranspose2d(Function):
    """conv2d's gradient with respect to its input: ∂T/∂x."""

    def forward(self, gy, w, geo, n):
        self.geo = geo
        return conv_input_grad(gy, w, geo, n)

    def backward(self, gx):
        gy, w = self.inputs
        d_gy = Conv2d.apply(gx, w, geo=self.geo) if gy.requires_grad else None
        d_w = Conv2dWeight.apply(gx, gy, geo=self.geo, cols=None) if w.requires_grad else None
        return d_gy, d_w


class Conv2dWeight(Function):
    """conv2d's gradient with respect to its filters: ∂T/∂w."""

    def forward(self, x, gy, geo, cols):
        self.geo = geo
        return conv_weight_grad(x, gy, geo, cols)

    def backward(self, gw):
        x, gy = self.inputs
        d_x = ConvTranspose2d.apply(gy, gw, geo=self.geo, n=x.shape[0]) if x.requires_grad else None
        d_gy = Conv2d.apply(x, gw, geo=self.geo) if gy.requires_grad else None
        return d_x, d_gy


def _same_padding(op, kernel, dilation, stride):
    pads = []
    for k, d, s in zip(_pair(kernel, "kernel_size", op), _pair(dilation, "dilation", op), _pair(stride, "stride", op)):
        total = d * (k - 1)
        if s != 1 or total % 2:
            raise ValueError(f"{op}: padding='same' needs stride 1 and an odd (dilated) kernel")
        pads.append(total // 2)
    return tuple(pads)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, rounding="exact"):
    """2-D cross-correlation of x (N, C, H, W) with filters w (K, C/groups, kh, kw), plus bias b (K,).

    The output size per axis is the course's (W − F + 2P)/S + 1; by default a size that does not
    divide is an error (pass rounding='floor' for PyTorch's behaviour). padding may be an int, a
    pair, 'valid' (0) or 'same' (stride 1, odd kernels).

    >>> import neurona as nr
    >>> nr.F.conv2d(nr.zeros((1, 3, 32, 32)), nr.zeros((6, 3, 5, 5))).shape
    (1, 6, 28, 28)
    """
    x, w = as_tensor(x), as_tensor(w)
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(f"conv2d: x must be (N, C, H, W) and w (K, C/groups, kh, kw); x.shape={x.shape}, w.shape={w.shape}")
    if x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
        raise ShapeError(
            f"conv2d: x.shape[1] ({x.shape[1]}) must equal w.shape[1] ({w.shape[1]}) × groups ({groups}) "
            f"and w.shape[0] must divide by groups; x.shape={x.shape}, w.shape={w.shape}"
        )
    if padding == "valid":
        padding = 0
    elif padding == "same":
        padding = _same_padding("conv2d", w.shape[2:], dilation, stride)
    geo = make_geometry("conv2d", x.shape, w.shape[2:], stride, padding, dilation, rounding, groups)
    y = Conv2d.apply(x, w, geo=geo)
    if b is not None:
        b = as_tensor(b)
        if b.shape != (w.shape[0],):
            raise ShapeError(f"conv2d: bias shape {b.shape} must be ({w.shape[0]},) for w.shape={w.shape}")
        y = y + b.reshape(1, -1, 1, 1)
    return y
