"""Fused dense optimiser updates for eager steps (SGD with or without (Nesterov) momentum, Adam
and AdamW): `neurona.optim`'s `update` calls these first and falls back to its Tensor-op formulas
when they answer False — inside a `nr.jit` trace (the caller checks), for arrays the kernels do
not take (CuPy, float16, non-contiguous, mixed dtypes), or with NEURONA_NO_NUMBA=1. The kernels
(`_optim.py`) do each formula's operations in the same order and dtype, so the result is
bit-identical to the Tensor ops; what they save is the passes over memory and the temporaries
(W1 at 1 thread went from 1.025 to 0.999 of PyTorch's step with them: docs/performance.md).
May import: numpy, neurona.backend.kernels (its loader).
"""
from __future__ import annotations

import numpy

from . import _compiled_module


def _flat(arrays, dtype, shape):
    """The arrays as 1-D views if they all suit one kernel call, else None."""
    out = []
    for a in arrays:
        if type(a) is not numpy.ndarray or a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous:
            return None
        out.append(a.reshape(-1))
    return out


def sgd(p, g, v, lr, momentum, nesterov) -> bool:
    """SGD's update of p (and its velocity v, None without momentum) in place; lr is a 0-d array
    of p's dtype. False: not handled, nothing changed."""
    k = _compiled_module(p, "_optim")
    if k is None or not p.flags.writeable:
        return False
    flat = _flat((p, g) if v is None else (p, g, v), p.dtype, p.shape)
    if flat is None:
        return False
    lr = p.dtype.type(lr)
    if v is None:
        k.sgd(flat[0], flat[1], lr)
    elif nesterov:
        k.sgd_nesterov(flat[0], flat[1], flat[2], lr, p.dtype.type(momentum))
    else:
        k.sgd_momentum(flat[0], flat[1], flat[2], lr, p.dtype.type(momentum))
    return True


def adam(p, g, m, v, lr, beta_1, beta_2, bias_1, bias_2, epsilon, weight_decay) -> bool:
    """Adam's (AdamW's with weight_decay) update of p, m and v in place; lr, bias_1 and bias_2 are
    0-d arrays of p's dtype. False: not handled, nothing changed."""
    k = _compiled_module(p, "_optim")
    if k is None or not p.flags.writeable:
        return False
    flat = _flat((p, g, m, v), p.dtype, p.shape)
    if flat is None:
        return False
    t = p.dtype.type
    lr = t(lr)
    # the Tensor ops take Python floats as scalars of the array's dtype (NumPy's weak scalars)
    lr_wd = lr * t(weight_decay) if weight_decay else t(0)
    k.adam(*flat, lr, t(beta_1), t(1 - beta_1), t(beta_2), t(1 - beta_2), t(bias_1), t(bias_2), t(epsilon), lr_wd)
    return True
