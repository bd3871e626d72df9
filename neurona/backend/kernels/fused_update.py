"""Fused dense optimiser updates for eager steps (SGD with or without (Nesterov) momentum, Adam
and AdamW): `neurona.optim`'s `update` calls these first and falls back to its Tensor-op formulas
when they answer False — inside a `nr.jit` trace (the caller checks), for arrays the kernels do
not take (CuPy, float16, non-contiguous, mixed dtypes), or with NEURONA_NO_NUMBA=1. The kernels
(`_optim.py`) do each formula's operations in the same order and dtype, so the result is
bit-identical to the Tensor ops; what they save is the passes over memory and the temporaries
(W1 at 1 thread went from 1.025 to 0.999 of PyTorch's step with them: docs/performance.md).
Large parameters (at least MIN_PARALLEL_ELEMENTS) at several kernel threads are updated in
blocks on numba's threads where its parallel runtime is usable (`kernels.numba_parallel_ok`):
the same bits, as each element's arithmetic is unchanged.
May import: numpy, neurona.backend (threads), neurona.backend.kernels (its loader).
"""
from __future__ import annotations

import numpy

from .. import kernel_threads
from . import _compiled_module, numba_parallel_ok, numba_threads

# elements of a parameter from which its update splits over numba's threads at several kernel
# threads: W1's 784 × 512 kernel (401 K, 1.6 MB an array) is memory-bound; docs/performance.md
MIN_PARALLEL_ELEMENTS = 1 << 18


def _parts(p):
    """Blocks for p's update: 1, or the threads numba will use for a large p."""
    if p.size < MIN_PARALLEL_ELEMENTS or kernel_threads() <= 1 or not numba_parallel_ok():
        return 1
    return numba_threads(kernel_threads())


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
    lr, parts = p.dtype.type(lr), _parts(p)
    if v is None:
        kernel, args = (k.sgd, k.sgd_blocks), (flat[0], flat[1], lr)
    else:
        kernel = (k.sgd_nesterov, k.sgd_nesterov_blocks) if nesterov else (k.sgd_momentum, k.sgd_momentum_blocks)
        args = (flat[0], flat[1], flat[2], lr, p.dtype.type(momentum))
    if parts == 1:
        kernel[0](*args)
    else:
        kernel[1](*args, parts)
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
    args = (*flat, lr, t(beta_1), t(1 - beta_1), t(beta_2), t(1 - beta_2), t(bias_1), t(bias_2), t(epsilon), lr_wd)
    parts = _parts(p)
    if parts == 1:
        k.adam(*args)
    else:
        k.adam_blocks(*args, parts)
    return True
