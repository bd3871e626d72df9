"""The fused LSTM step kernels (`_rnn.py`) for `neurona.nn`'s recurrent sequence op and
`RecurrentStep`: `lstm_kernels(a)` is the compiled module when array `a` should go through it —
a float32 NumPy array, numba importable, NEURONA_NO_NUMBA unset — else None, and the caller runs
its NumPy formulas (float64, which gradcheck uses, CuPy, float16). The kernel's tanh is a
rational approximation (max abs error 3.4e-7, see `_rnn.py`), so the float32 results differ from
the NumPy formulas' by a few units in the last place; tests/test_rnn_kernels.py bounds it.
May import: numpy, neurona.backend.kernels (its loader).
"""
from __future__ import annotations

import numpy

from . import _compiled_module

_F32 = numpy.dtype(numpy.float32)


def lstm_kernels(a):
    """The `_rnn` module if float32 array `a` should use it, else None."""
    if type(a) is not numpy.ndarray or a.dtype != _F32:
        return None
    return _compiled_module(a, "_rnn")
