"""Winograd convolution F(2×2, 3×3) for 3×3, stride-1 layers with many channels.

Each 2×2 block of outputs of a 3×3 convolution is computed from the 4×4 input tile under it as
    Y = Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A
(Lavin & Gray 2015): 16 multiplications per output block instead of 36. Summed over input
channels, the 16 elementwise products become 16 GEMMs
    M[ξ] = U[ξ] (K, C) @ V[ξ] (C, P),   U = G·g·Gᵀ (filters), V = Bᵀ·d·B (input tiles),
with P = N·th·tw tiles, so the BLAS does 2.25× fewer multiplications than im2col + GEMM.
The map is linear in the filters and in the input, so its adjoints are exact:
    input gradient:  dM = A·dY·Aᵀ, dV[ξ] = U[ξ]ᵀ @ dM[ξ], dx = Σ_tiles B·dV·Bᵀ
    filter gradient: dU[ξ] = dM[ξ] @ V[ξ]ᵀ, dg = Gᵀ·dU·G
and they give the same gradients as im2col's (to rounding; tests compare with PyTorch).
The tile transforms are numba kernels (`_numba.py`); the filter transforms are one small GEMM
with the 16×9 matrix G⊗G. NumPy arrays only (float32/float64); other arrays use im2col.
May import: numpy, neurona.backend.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import numpy
from numpy.lib.stride_tricks import as_strided

_G = numpy.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_GG = numpy.kron(_G, _G)  # (16, 9): vec(G·g·Gᵀ) = (G⊗G)·vec(g)
_GG_T = {numpy.dtype(numpy.float32): numpy.ascontiguousarray(_GG.astype(numpy.float32)),
         numpy.dtype(numpy.float64): numpy.ascontiguousarray(_GG)}

# Winograd pays where the GEMM dominates its tile transforms, i.e. with many channels. Measured
# at batch 64, 1 thread, forward + both gradients (ms, im2col → Winograd): 3→64 on 32×32
# 9.6 → 48, 32→64 on 32×32 77 → 85, 64→64 on 32×32 142 → 128, 64→128 on 16×16 54 → 54,
# 128→128 on 16×16 105 → 85, 256→256 on 8×8 87 → 63, 512→512 on 4×4 79 → 61.
MIN_IN_CHANNELS = 64
MIN_OUT_CHANNELS = 64


def _algo_setting():
    return os.environ.get("NEURONA_CONV_ALGO", "auto")


def suits(c, k, geo, groups, fast) -> bool:
    """Whether conv2d with c input channels, k filters and window layout geo should use
    Winograd: 3×3, stride 1, no dilation, one group, float32/float64 NumPy arrays with numba
    (`fast`), and enough channels (NEURONA_CONV_ALGO=winograd|im2col overrides the channel rule)."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geo
    if not (kh == kw == 3 and sh == sw == dh == dw == 1 and groups == 1 and fast):
        return False
    algo = _algo_setting()
    if algo == "im2col":
        return False
    if algo == "winograd":
        return True
    return c >= MIN_IN_CHANNELS and k >= MIN_OUT_CHANNELS


def _tiles(geo):
    oh, ow = geo[8], geo[9]
    return (oh + 1) // 2, (ow + 1) // 2


def _planes(c, p, dtype):
    """A flat buffer holding 16 planes (c, p), a (16, c, p) view of it, and the plane stride.

    The planes are 64 bytes more than c·p apart: with c·p a power of two they would otherwise
    share cache sets, and the kernels read or write all 16 at once."""
    item = numpy.dtype(dtype).itemsize
    s = c * p + 64 // item
    flat = numpy.empty(16 * s, dtype=dtype)
    return flat, as_strided(flat, (16, c, p), (s * item, p * item, item)), s


def filter_transform(w):
    """U (16, K, C) = G·g·Gᵀ of every 3×3 filter g of w (K, C, 3, 3)."""
    k, c = w.shape[:2]
    return (_GG_T[w.dtype] @ w.reshape(k * c, 9).T).reshape(16, k, c)


def filter_adjoint(du):
    """dg (K, C, 3, 3) = Gᵀ·dU·G for dU (16, K, C): the adjoint of filter_transform."""
    k, c = du.shape[1:]
    return numpy.ascontiguousarray((_GG_T[du.dtype].T @ du.reshape(16, k * c)).T).reshape(k, c, 3, 3)


def input_transform(mod, x, geo):
    """V (16, C, P) of input x: a strided view over a padded flat buffer."""
    th, tw = _tiles(geo)
    n, c = x.shape[:2]
    flat, v, s = _planes(c, n * th * tw, x.dtype)
    mod.winograd_input(numpy.ascontiguousarray(x), geo[4], geo[5], th, tw, flat, s)
    return v


def forward(mod, x, w, geo):
    """(y, V): conv2d(x, w) (N, K, OH, OW) and the transformed input, kept for the filter gradient."""
    n = x.shape[0]
    k = w.shape[0]
    th, tw = _tiles(geo)
    v = input_transform(mod, x, geo)
    mflat, m, s = _planes(k, n * th * tw, x.dtype)
    numpy.matmul(filter_transform(w), v, out=m)
    return mod.winograd_output(mflat, s, k, n, th, tw, geo[8], geo[9]), v


_shared = threading.local()


@contextmanager
def sharing_output_adjoint():
    """Within this block, the input and filter gradients of one convolution transform their
    common output gradient once (the second call reuses the first's dM). conv2d's backward opens
    it around its two gradient ops; graph-mode replays run without it and transform twice."""
    _shared.slot = None
    _shared.active = True
    try:
        yield
    finally:
        _shared.active = False
        _shared.slot = None


def _output_adjoint(mod, gy, geo):
    if getattr(_shared, "active", False):
        slot = _shared.slot
        if slot is not None and slot[0] is gy and slot[1] == geo:
            return slot[2]
    th, tw = _tiles(geo)
    n, k = gy.shape[:2]
    flat, dm, s = _planes(k, n * th * tw, gy.dtype)
    mod.winograd_output_adjoint(numpy.ascontiguousarray(gy), th, tw, flat, s)
    if getattr(_shared, "active", False):
        _shared.slot = (gy, geo, dm)
    return dm


def input_grad(mod, gy, w, geo, x_shape):
    """dx (N, C, H, W): the gradient of forward() with respect to x for output gradient gy."""
    th, tw = _tiles(geo)
    n, c, h, wd = x_shape
    dm = _output_adjoint(mod, gy, geo)
    vflat, dv, s = _planes(c, n * th * tw, gy.dtype)
    numpy.matmul(filter_transform(w).transpose(0, 2, 1), dm, out=dv)
    return mod.winograd_input_adjoint(vflat, s, c, n, h, wd, geo[4], geo[5], th, tw)


def weight_grad(mod, x, gy, geo, v=None):
    """dw (K, C, 3, 3): the gradient of forward() with respect to w; v is forward's V if kept."""
    if v is None:
        v = input_transform(mod, x, geo)
    dm = _output_adjoint(mod, gy, geo)
    return filter_adjoint(dm @ v.transpose(0, 2, 1))
