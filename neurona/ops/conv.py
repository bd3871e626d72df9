"""2-D convolution, NCHW (as PyTorch, ONNX and cuDNN): conv2d and its two adjoints.

Convolution is a trilinear form T(x, w, g) = Σ g[n,k,q]·w[k,c,i]·x[n,c,q·s + i·d − p], and the
three ops here are its three partial derivatives:
  conv2d(x, w)            = ∂T/∂g   (the forward pass)
  conv_transpose2d(g, w)  = ∂T/∂x   (the gradient with respect to the input)
  conv2d_weight(x, g)     = ∂T/∂w   (the gradient with respect to the filters)
so the backward of each is written with the other two, and gradients of every order follow.
Each is one GEMM (the BLAS does the work) around the backend's window kernels: im2col builds a
(C·kh·kw, N·OH·OW) matrix of the input's windows, col2im adds such a matrix back into an input.
Layers with very few channels (LeNet's 1→6) skip im2col: the backend's direct kernels compute the
forward pass and the filter gradient without it. 1×1 layers without padding skip it too: they are
a GEMM per image (W (K, C) @ x[n] (C, H·W), batched by matmul, the output already NCHW), a stride
first subsamples the input; 3×3 stride-1 layers with many channels go through Winograd; other
stride-1 layers with C·kh·kw ≤ 80 (3→16) use im2col per image (kernels.conv_image_cols: a GEMM per
image, the output already NCHW, no transposed copies of the output gradient).
NEURONA_CONV_ALGO=im2col|winograd|1x1 forces one algorithm wherever it applies (im2col elsewhere).
With several kernel threads, each of the three ops runs once per batch range, side by side
(kernels.conv_by_batch and its two siblings), rather than splitting each GEMM and transform.
May import: neurona.backend, neurona.autograd, neurona.ops._base.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import backend as B
from ..backend import kernels
from ..autograd.function import Function
from ..autograd.tracing import is_tracing
from ._base import ShapeError, as_tensor


def _hw(v, name, op):
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
    if r and rounding == "ceil" and (q + 1) * stride < size + padding:
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
    def ints(self):
        """The layout as the backend's window kernels take it."""
        return (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw, self.oh, self.ow)


def make_geometry(op, x_shape, kernel, stride, padding, dilation, rounding, groups=1):
    kh, kw = _hw(kernel, "kernel_size", op)
    sh, sw = _hw(stride, "stride", op)
    ph, pw = _hw(padding, "padding", op)
    dh, dw = _hw(dilation, "dilation", op)
    if min(sh, sw, dh, dw, kh, kw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{op}: kernel, stride and dilation must be ≥ 1 and padding ≥ 0")
    H, W = x_shape[-2:]
    oh = output_size(op, "height", H, kh, sh, ph, dh, rounding)
    ow = output_size(op, "width", W, kw, sw, pw, dw, rounding)
    return Geometry(kh, kw, sh, sw, ph, pw, dh, dw, H, W, oh, ow, groups)


# The three kernels below share one layout: cols (C·kh·kw, N·OH·OW) from the backend's im2col,
# filters as (G, K/G, C/G·kh·kw) and gradients of the output as (G, K/G, N·OH·OW), so each is one
# (batched over groups) GEMM. Rows of cols are channel-major, so a group is a block of rows.

def _grouped_matmul(a, b):
    """(G, p, q) × (G, q, r) → (G, p, r), one plain GEMM when G == 1 (through kernels.gemm: MKL
    where it was chosen, NumPy's BLAS otherwise)."""
    if a.shape[0] == 1:
        return kernels.gemm(a[0], b[0])[None]
    return a @ b


def _gy_rows(gy, g):
    """gy (N, K, OH, OW) → (G, K/G, N·OH·OW), one row per output channel."""
    k = gy.shape[1]
    return gy.transpose(1, 0, 2, 3).reshape(g, k // g, -1)


# == 1×1 layers without padding: a GEMM per image, no im2col ====================================
# x (N, C, H, W) is (N, G, C/G, H·W) as it lies in memory, so W (G, K/G, C/G) @ x is one batched
# matmul whose result (N, G, K/G, OH·OW) is the NCHW output; both gradients are batched matmuls
# too (the filter gradient sums N per-image products: measured faster than one GEMM over N·H·W,
# which needs two transposing copies; docs/performance.md). A stride subsamples x first (a copy
# of the pixels the windows read); the input gradient is scattered back onto those pixels.

def one_by_one_suits(geo):
    """Whether the 1×1 path computes this layer: 1×1 kernel, no padding (any stride and group;
    dilation does not matter for 1×1), unless NEURONA_CONV_ALGO forces another algorithm."""
    if not (geo.kh == geo.kw == 1 and geo.ph == geo.pw == 0):
        return False
    return kernels.conv_algo_setting() in ("auto", "1x1")


def _read_pixels(geo):
    """The index of the pixels 1×1 windows read: [:, :, ::sh, ::sw] cut to (OH, OW)."""
    return (slice(None), slice(None), slice(None, (geo.oh - 1) * geo.sh + 1, geo.sh),
            slice(None, (geo.ow - 1) * geo.sw + 1, geo.sw))


def _subsample(x, geo):
    """Those pixels, contiguous (no copy at stride 1 over a contiguous x: the view already is)."""
    return B.array_module(x).ascontiguousarray(x[_read_pixels(geo)])


def _planes4(a, g):
    """(N, C, h, w) contiguous → (N, G, C/G, h·w) view."""
    n, c = a.shape[:2]
    return a.reshape(n, g, c // g, -1)


def _one_by_one_forward(x, w, geo):
    g = geo.groups
    xs = _subsample(x, geo)
    k = w.shape[0]
    y = w.reshape(g, k // g, -1) @ _planes4(xs, g)
    return y.reshape(x.shape[0], k, geo.oh, geo.ow), xs


def _one_by_one_input_grad(gy, w, geo, n):
    g = geo.groups
    k, cg = w.shape[:2]
    xp = B.array_module(gy)
    gy = xp.ascontiguousarray(gy)
    dxs = (w.reshape(g, k // g, cg).transpose(0, 2, 1) @ _planes4(gy, g)).reshape(n, cg * g, geo.oh, geo.ow)
    if (geo.oh, geo.ow) == (geo.H, geo.W):
        return dxs
    dx = xp.zeros((n, cg * g, geo.H, geo.W), dtype=gy.dtype)
    dx[_read_pixels(geo)] = dxs
    return dx


def _one_by_one_weight_grad(x, gy, geo, xs=None):
    g = geo.groups
    if xs is None:
        xs = _subsample(x, geo)
    gy = B.array_module(gy).ascontiguousarray(gy)
    k = gy.shape[1]
    dw = (_planes4(gy, g) @ _planes4(xs, g).transpose(0, 1, 3, 2)).sum(axis=0)  # (G, K/G, C/G)
    return dw.reshape(k, x.shape[1] // g, 1, 1)


def conv_forward(x, w, geo, cols=None):
    """(y, saved): the convolution and what the filter gradient can reuse (im2col's matrix, 2-D;
    Winograd's transformed input V, 3-D; the 1×1 path's subsampled input, 4-D), None for the
    direct kernel."""
    n, k, g = x.shape[0], w.shape[0], geo.groups
    if cols is None and one_by_one_suits(geo):
        return _one_by_one_forward(x, w, geo)
    if cols is None and kernels.direct_conv_suits(x, k, geo.ints, g):
        return kernels.conv_direct(x, w, geo.ints), None
    if cols is None and kernels.winograd_suits(x, x.shape[1], k, geo.ints, g):
        return kernels.winograd_conv(x, w, geo.ints)
    if cols is None and kernels.image_cols_suits(x, x.shape[1], k, geo.ints, g):
        return kernels.conv_image_cols(x, w, geo.ints)
    if cols is None:
        cols = kernels.im2col(x, geo.ints)
    out = _grouped_matmul(w.reshape(g, k // g, -1), cols.reshape(g, -1, cols.shape[1]))
    # (K, N, OH, OW) → contiguous NCHW, so the ops that follow run on dense memory
    y = out.reshape(k, n, geo.oh, geo.ow).transpose(1, 0, 2, 3)
    return B.array_module(y).ascontiguousarray(y), cols


def conv_input_grad(gy, w, geo, n):
    k, cg = w.shape[:2]
    g = geo.groups
    if one_by_one_suits(geo):
        return _one_by_one_input_grad(gy, w, geo, n)
    if kernels.winograd_suits(gy, cg * g, k, geo.ints, g):
        return kernels.winograd_input_grad(gy, w, geo.ints, (n, cg * g, geo.H, geo.W))
    if kernels.image_cols_suits(gy, cg * g, k, geo.ints, g):
        return kernels.conv_input_grad_image_cols(gy, w, geo.ints, (n, cg * g, geo.H, geo.W))
    w3 = w.reshape(g, k // g, -1)
    dcols = _grouped_matmul(w3.transpose(0, 2, 1), _gy_rows(gy, g))
    return kernels.col2im(dcols.reshape(-1, dcols.shape[-1]), (n, cg * g, geo.H, geo.W), geo.ints)


def conv_weight_grad(x, gy, geo, cols=None):
    k, g = gy.shape[1], geo.groups
    if isinstance(cols, kernels.ImageCols) or (cols is None and kernels.image_cols_suits(x, x.shape[1], k, geo.ints, g)):
        return kernels.conv_weight_grad_image_cols(x, gy, geo.ints, cols)
    if (cols is None or cols.ndim == 4) and one_by_one_suits(geo):
        return _one_by_one_weight_grad(x, gy, geo, cols)
    if cols is not None and cols.ndim == 4:  # the 1×1 path's input, but the setting changed since
        cols = None
    if cols is None and kernels.direct_conv_suits(x, k, geo.ints, g):
        return kernels.conv_weight_direct(x, gy, geo.ints)
    if cols is not None and cols.ndim == 3:  # Winograd's V, kept by the forward pass
        return kernels.winograd_weight_grad(x, gy, geo.ints, cols)
    if cols is None and kernels.winograd_suits(x, x.shape[1], k, geo.ints, g):
        return kernels.winograd_weight_grad(x, gy, geo.ints)
    if cols is None:
        cols = kernels.im2col(x, geo.ints)
    cols3 = cols.reshape(g, -1, cols.shape[1])
    # (cols @ gyᵀ)ᵀ rather than gy @ colsᵀ: the same product, measured 1.2-2× faster in OpenBLAS
    # for this shape (a long reduction axis N·OH·OW and a small output)
    dw = _grouped_matmul(cols3, _gy_rows(gy, g).transpose(0, 2, 1)).transpose(0, 2, 1)
    return dw.reshape(k, x.shape[1] // g, geo.kh, geo.kw)


class Conv2d(Function):
    def forward(self, x, w, geo):
        self.geo = geo
        y, cols = kernels.conv_by_batch(conv_forward, x, w, geo)
        # per-range matrices are no array graph mode can hand on to a replay (it would replay the
        # traced run's): while tracing, the filter gradient recomputes them
        self.cols = None if isinstance(cols, tuple) and is_tracing() else cols
        return y

    def backward(self, gy):
        x, w = self.inputs
        # both gradients start from the same transform of gy under Winograd: done once
        with kernels.winograd_sharing():
            gx = ConvTranspose2d.apply(gy, w, geo=self.geo, n=x.shape[0]) if x.requires_grad else None
            gw = Conv2dWeight.apply(x, gy, geo=self.geo, cols=self.cols) if w.requires_grad else None
        return gx, gw


class ConvTranspose2d(Function):
    """conv2d's gradient with respect to its input: ∂T/∂x."""

    def forward(self, gy, w, geo, n):
        self.geo = geo
        return kernels.conv_input_grad_by_batch(conv_input_grad, gy, w, geo, n)

    def backward(self, gx):
        gy, w = self.inputs
        d_gy = Conv2d.apply(gx, w, geo=self.geo) if gy.requires_grad else None
        d_w = Conv2dWeight.apply(gx, gy, geo=self.geo, cols=None) if w.requires_grad else None
        return d_gy, d_w


class Conv2dWeight(Function):
    """conv2d's gradient with respect to its filters: ∂T/∂w."""

    def forward(self, x, gy, geo, cols):
        self.geo = geo
        return kernels.conv_weight_grad_by_batch(conv_weight_grad, x, gy, geo, cols)

    def backward(self, gw):
        x, gy = self.inputs
        d_x = ConvTranspose2d.apply(gy, gw, geo=self.geo, n=x.shape[0]) if x.requires_grad else None
        d_gy = Conv2d.apply(x, gw, geo=self.geo) if gy.requires_grad else None
        return d_x, d_gy


def _same_padding(op, kernel, dilation, stride):
    pads = []
    for k, d, s in zip(_hw(kernel, "kernel_size", op), _hw(dilation, "dilation", op), _hw(stride, "stride", op)):
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
