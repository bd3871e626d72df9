"""numba kernels of the optimisers' dense updates (contract in `fused_update.py`): one pass over
a parameter and its slots instead of one array pass (and one temporary) per Tensor op. Every
operation is the one the Tensor-op update does, in the same order and in the arrays' dtype (no
fastmath, so LLVM does not contract a·b + c into an FMA): the results are bit-identical.
NumPy's error model (a division by zero gives inf/nan, as the Tensor ops do, instead of raising):
Python's adds a zero check per division that keeps LLVM from vectorising the loop (the eager
learner step of `benchmarks.w5_dqn` and W4's Adam run through these loops).
Arrays come flattened (1-D, contiguous); scalars come in the arrays' dtype.
May import: numpy, numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, error_model="numpy")
def sgd(p, g, lr):
    """x −= lr·dx"""
    for i in range(p.size):
        p[i] -= lr * g[i]


@njit(cache=True, error_model="numpy")
def sgd_momentum(p, g, v, lr, mu):
    """v = μ·v − lr·dx; x += v"""
    for i in range(p.size):
        vi = v[i] * mu
        vi = vi - lr * g[i]
        v[i] = vi
        p[i] += vi


@njit(cache=True, error_model="numpy")
def sgd_nesterov(p, g, v, lr, mu):
    """v = μ·v − lr·dx; x += μ·v − lr·dx"""
    for i in range(p.size):
        step = lr * g[i]
        vi = v[i] * mu
        vi = vi - step
        v[i] = vi
        p[i] += mu * vi - step


@njit(cache=True, error_model="numpy")
def adam(p, g, m, v, lr, b1, one_minus_b1, b2, one_minus_b2, bias_1, bias_2, eps, lr_wd):
    """[x −= (lr·wd)·x;] m = β₁·m + (1 − β₁)·dx; v = β₂·v + ((1 − β₂)·dx)·dx;
    x −= (lr·(m / bias₁)) / (√(v / bias₂) + ε)"""
    for i in range(p.size):
        x = p[i]
        if lr_wd != 0:
            x = x - lr_wd * x
        gi = g[i]
        mi = m[i] * b1
        mi = mi + one_minus_b1 * gi
        vi = v[i] * b2
        vi = vi + (one_minus_b2 * gi) * gi
        m[i] = mi
        v[i] = vi
        p[i] = x - (lr * (mi / bias_1)) / (np.sqrt(vi / bias_2) + eps)


# The same updates over `parts` blocks of the arrays on numba's threads (`fused_update.py` uses
# them for large parameters at several kernel threads): elementwise, so the bits of one thread.

@njit(cache=True, parallel=True, error_model="numpy")
def sgd_blocks(p, g, lr, parts):
    n = p.size
    for b in prange(parts):
        i0, i1 = n * b // parts, n * (b + 1) // parts
        sgd(p[i0:i1], g[i0:i1], lr)


@njit(cache=True, parallel=True, error_model="numpy")
def sgd_momentum_blocks(p, g, v, lr, mu, parts):
    n = p.size
    for b in prange(parts):
        i0, i1 = n * b // parts, n * (b + 1) // parts
        sgd_momentum(p[i0:i1], g[i0:i1], v[i0:i1], lr, mu)


@njit(cache=True, parallel=True, error_model="numpy")
def sgd_nesterov_blocks(p, g, v, lr, mu, parts):
    n = p.size
    for b in prange(parts):
        i0, i1 = n * b // parts, n * (b + 1) // parts
        sgd_nesterov(p[i0:i1], g[i0:i1], v[i0:i1], lr, mu)


@njit(cache=True, parallel=True, error_model="numpy")
def adam_blocks(p, g, m, v, lr, b1, one_minus_b1, b2, one_minus_b2, bias_1, bias_2, eps, lr_wd, parts):
    n = p.size
    for b in prange(parts):
        i0, i1 = n * b // parts, n * (b + 1) // parts
        adam(p[i0:i1], g[i0:i1], m[i0:i1], v[i0:i1], lr, b1, one_minus_b1, b2, one_minus_b2, bias_1, bias_2, eps,
             lr_wd)
