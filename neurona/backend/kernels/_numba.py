"""numba versions of the window kernels where NumPy does badly (contract in `__init__.py`):
col2im's overlapping adds and max-pooling's argmax routing. im2col itself stays in NumPy, whose
strided copy measured 3-4× faster than a numba loop here. Compiled per dtype on first use and
cached on disk (`cache=True`). Loops are serial: the GEMM that follows im2col is
where threads pay, and serial kernels stay safe to call from several Python threads at once.
Padding is never materialised: out-of-range reads are the pad value, out-of-range writes are
skipped.
May import: numpy, numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _valid(o_count, start, stride, size):
    """The range [lo, hi) of outputs o with 0 <= o·stride + start < size."""
    lo = 0
    if start < 0:
        lo = (-start + stride - 1) // stride
    hi = o_count
    last = size - 1 - start  # o·stride <= last
    if last < 0:
        hi = 0
    elif last // stride + 1 < hi:
        hi = last // stride + 1
    if hi < lo:
        hi = lo
    return lo, hi


@njit(cache=True)
def col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    dx = np.zeros((n, c, h, w), dtype=cols.dtype)
    for ni in range(n):
        for ci in range(c):
            for i in range(kh):
                ylo, yhi = _valid(oh, i * dh - ph, sh, h)
                for j in range(kw):
                    r = (ci * kh + i) * kw + j
                    xlo, xhi = _valid(ow, j * dw - pw, sw, w)
                    x0 = j * dw - pw
                    for oy in range(ylo, yhi):
                        y = oy * sh + i * dh - ph
                        base = (ni * oh + oy) * ow
                        for ox in range(xlo, xhi):
                            dx[ni, ci, y, ox * sw + x0] += cols[r, base + ox]
    return dx


@njit(cache=True)
def max_pool(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c, h, w = x.shape
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    arg = np.empty((n, c, oh, ow), dtype=np.int32)
    neg_inf = -np.inf
    for ni in range(n):
        for ci in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    best = neg_inf
                    at = 0
                    done = False
                    for i in range(kh):
                        y = oy * sh + i * dh - ph
                        for j in range(kw):
                            xx = ox * sw + j * dw - pw
                            if 0 <= y < h and 0 <= xx < w:
                                v = x[ni, ci, y, xx]
                            else:
                                v = neg_inf
                            if v > best or v != v:
                                best = v
                                at = i * kw + j
                                if v != v:  # NaN propagates, as in NumPy's argmax
                                    done = True
                                    break
                        if done:
                            break
                    out[ni, ci, oy, ox] = best
                    arg[ni, ci, oy, ox] = at
    return out, arg


@njit(cache=True)
def max_pool_dense(x, kh, kw, sh, sw, dh, dw, oh, ow):
    """max_pool for windows that lie inside x and data without NaN: no bounds or NaN tests in
    the inner loop, which measured 3× faster than `max_pool` on LeNet's first pooling."""
    n, c = x.shape[0], x.shape[1]
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    arg = np.empty((n, c, oh, ow), dtype=np.int32)
    for ni in range(n):
        for ci in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    y0, x0 = oy * sh, ox * sw
                    best = x[ni, ci, y0, x0]
                    at = 0
                    for i in range(kh):
                        for j in range(kw):
                            v = x[ni, ci, y0 + i * dh, x0 + j * dw]
                            if v > best:
                                best = v
                                at = i * kw + j
                    out[ni, ci, oy, ox] = best
                    arg[ni, ci, oy, ox] = at
    return out, arg


@njit(cache=True)
def max_pool_scatter(g, arg, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c = g.shape[0], g.shape[1]
    dx = np.zeros((n, c, h, w), dtype=g.dtype)
    for ni in range(n):
        for ci in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    a = arg[ni, ci, oy, ox]
                    y = oy * sh + (a // kw) * dh - ph
                    xx = ox * sw + (a % kw) * dw - pw
                    if 0 <= y < h and 0 <= xx < w:
                        dx[ni, ci, y, xx] += g[ni, ci, oy, ox]
    return dx


@njit(cache=True)
def max_pool_select(x, arg, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for ni in range(n):
        for ci in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    a = arg[ni, ci, oy, ox]
                    y = oy * sh + (a // kw) * dh - ph
                    xx = ox * sw + (a % kw) * dw - pw
                    if 0 <= y < h and 0 <= xx < w:
                        out[ni, ci, oy, ox] = x[ni, ci, y, xx]
    return out
