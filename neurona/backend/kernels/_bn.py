"""numba kernels of batch normalisation (contract in `__init__.py`, "batch norm" section): one
pass each for the batch statistics, the normalised output, the two per-channel sums of the
backward pass and the input gradient.

Every kernel takes x as (A, C, L): A the axes before the channel axis, C the channels, L the
axes after it (NCHW is (N, C, H·W), (N, C) and channels-last are (N·..., C, 1)). With L > 1 the
loops run per (a, c) plane, a zero-based loop over a 1-D row view that LLVM vectorises; with L = 1
they run per row of C channels, vectorised across channels. Sums are kept in float64 across
planes (within a plane too), after subtracting a per-channel shift (the channel's first
element), so that a large mean does not cancel the variance away. The L > 1 loops are also
`*_planes` kernels over a channel range that release the GIL: `kernels/__init__.py` splits the
channels over `kernel_threads()` threads when there is work enough (each channel's sums keep
their order, so any split gives the same bits). Compiled per dtype on first use, cached on disk.
May import: numpy, numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, fastmath=True)
def stats(x):
    """(2, C) float64: the shifted sums [Σ(x − s), Σ(x − s)²] per channel, s = x[0, c, 0]."""
    a_n, c_n, l_n = x.shape
    out = np.zeros((2, c_n))
    s1, s2 = out[0], out[1]
    if l_n == 1:
        x2 = x.reshape(a_n, c_n)
        shift = x2[0].astype(np.float64)
        for a in range(a_n):
            row = x2[a]
            for c in range(c_n):
                d = row[c] - shift[c]
                s1[c] += d
                s2[c] += d * d
        return out
    stats_planes(x, out, 0, c_n)
    return out


@njit(cache=True, fastmath=True, nogil=True)
def stats_planes(x, out, c0, c1):
    """`stats` for L > 1 on channels [c0, c1) into out (2, C): the same loops whatever the
    range, so a split over threads gives the same bits."""
    a_n, l_n = x.shape[0], x.shape[2]
    s1, s2 = out[0], out[1]
    for a in range(a_n):
        for c in range(c0, c1):
            row = x[a, c]
            sh = np.float64(x[0, c, 0])
            t1 = 0.0
            t2 = 0.0
            for i in range(l_n):
                d = row[i] - sh
                t1 += d
                t2 += d * d
            s1[c] += t1
            s2[c] += t2


@njit(cache=True, nogil=True, fastmath=True)
def normalize(x, mean, scale, shift):
    """(x − mean[c])·scale[c] + shift[c]; the per-channel arrays have x's dtype."""
    a_n, c_n, l_n = x.shape
    y = np.empty_like(x)
    if l_n == 1:
        x2 = x.reshape(a_n, c_n)
        y2 = y.reshape(a_n, c_n)
        for a in range(a_n):
            row, out = x2[a], y2[a]
            for c in range(c_n):
                out[c] = (row[c] - mean[c]) * scale[c] + shift[c]
        return y
    normalize_planes(x, mean, scale, shift, y, 0, c_n)
    return y


@njit(cache=True, fastmath=True, nogil=True)
def normalize_planes(x, mean, scale, shift, y, c0, c1):
    """`normalize` for L > 1 on channels [c0, c1), into y."""
    a_n, l_n = x.shape[0], x.shape[2]
    for a in range(a_n):
        for c in range(c0, c1):
            row, out = x[a, c], y[a, c]
            m, k, b = mean[c], scale[c], shift[c]
            for i in range(l_n):
                out[i] = (row[i] - m) * k + b


@njit(cache=True, nogil=True, fastmath=True)
def grad_sums(g, x, mean):
    """(2, C) float64: [Σ g, Σ g·(x − mean[c])] per channel."""
    a_n, c_n, l_n = x.shape
    out = np.zeros((2, c_n))
    s1, s2 = out[0], out[1]
    if l_n == 1:
        g2 = g.reshape(a_n, c_n)
        x2 = x.reshape(a_n, c_n)
        m64 = mean.astype(np.float64)
        for a in range(a_n):
            grow, xrow = g2[a], x2[a]
            for c in range(c_n):
                gv = np.float64(grow[c])
                s1[c] += gv
                s2[c] += gv * (xrow[c] - m64[c])
        return out
    grad_sums_planes(g, x, mean, out, 0, c_n)
    return out


@njit(cache=True, fastmath=True, nogil=True)
def grad_sums_planes(g, x, mean, out, c0, c1):
    """`grad_sums` for L > 1 on channels [c0, c1) into out (2, C)."""
    a_n, l_n = x.shape[0], x.shape[2]
    s1, s2 = out[0], out[1]
    for a in range(a_n):
        for c in range(c0, c1):
            grow, xrow = g[a, c], x[a, c]
            m = mean[c]
            t1 = 0.0
            t2 = 0.0
            for i in range(l_n):
                gv = grow[i]
                t1 += gv
                t2 += gv * (xrow[i] - m)
            s1[c] += t1
            s2[c] += t2


@njit(cache=True, nogil=True, fastmath=True)
def grad_input(g, x, mean, k1, k2, k3):
    """k1[c]·g + k2[c]·(x − mean[c]) + k3[c]; the per-channel arrays have x's dtype."""
    a_n, c_n, l_n = x.shape
    dx = np.empty_like(x)
    if l_n == 1:
        g2 = g.reshape(a_n, c_n)
        x2 = x.reshape(a_n, c_n)
        d2 = dx.reshape(a_n, c_n)
        for a in range(a_n):
            grow, xrow, out = g2[a], x2[a], d2[a]
            for c in range(c_n):
                out[c] = k1[c] * grow[c] + k2[c] * (xrow[c] - mean[c]) + k3[c]
        return dx
    grad_input_planes(g, x, mean, k1, k2, k3, dx, 0, c_n)
    return dx


@njit(cache=True, fastmath=True, nogil=True)
def grad_input_planes(g, x, mean, k1, k2, k3, dx, c0, c1):
    """`grad_input` for L > 1 on channels [c0, c1), into dx."""
    a_n, l_n = x.shape[0], x.shape[2]
    for a in range(a_n):
        for c in range(c0, c1):
            grow, xrow, out = g[a, c], x[a, c], dx[a, c]
            m, c1_, c2_, c3_ = mean[c], k1[c], k2[c], k3[c]
            for i in range(l_n):
                out[i] = c1_ * grow[i] + c2_ * (xrow[i] - m) + c3_
