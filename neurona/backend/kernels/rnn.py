"""The fused recurrent step kernels (`_rnn.py`: LSTM, GRU, SimpleRNN) for `neurona.nn`'s sequence op and
`RecurrentStep`, and the whole-sequence loops that call MKL (`_rnn_seq.py`, `rnn_sequences(a)`):
`rnn_kernels(a)` is the compiled module when array `a` should go through it —
a float32 NumPy array, numba importable, NEURONA_NO_NUMBA unset — else None, and the caller runs
its NumPy formulas (float64, which gradcheck uses, CuPy, float16). The kernel's tanh is a
rational approximation (max abs error 3.4e-7, see `_rnn.py`), so the float32 results differ from
the NumPy formulas' by a few units in the last place; tests/test_rnn_kernels.py bounds it.
May import: os, numpy, neurona.backend (threads), neurona.backend.kernels (its loader, cblas).
"""
from __future__ import annotations

import os

import numpy

from .. import kernel_threads
from . import _compiled_module, over_batch
from . import cblas as _cblas

_F32 = numpy.dtype(numpy.float32)


def rnn_kernels(a):
    """The `_rnn` module if float32 array `a` should use it, else None."""
    if type(a) is not numpy.ndarray or a.dtype != _F32:
        return None
    return _compiled_module(a, "_rnn")


def rnn_sequences(a):
    """The `_rnn_seq` module (whole sequences in compiled loops, MKL's packed products) if float32
    array `a` should use it: `rnn_kernels(a)` would, and MKL is the BLAS `kernels.gemm` chose
    (`cblas.chosen()`, NEURONA_BLAS). Else None: the caller's Python loop over steps."""
    if rnn_kernels(a) is None or _cblas.chosen() is None:
        return None
    return _compiled_module(a, "_rnn_seq")


# rows of the batch per thread below which a split does not pay (the per-step GEMMs shrink)
MIN_ROWS_PER_THREAD = 8


def over_rows(task, n, compiled=False):
    """task(n0, n1) over row blocks covering [0, n) — the rows of an LSTM batch, independent
    through the whole sequence — on kernel_threads() threads (at most n // MIN_ROWS_PER_THREAD),
    each running its GEMMs on one BLAS thread (kernels.over_batch, as the batch-split
    convolutions): OpenBLAS itself hardly splits a (32×256)·(256×1024) GEMM over threads.
    Returns the tasks' results in row order.

    Only when OPENBLAS_THREAD_TIMEOUT is set (OpenBLAS reads it at load; 4 = short spinning):
    otherwise OpenBLAS's idle threads spin for a while after every multi-threaded GEMM (the input
    projections) and take the cores the row blocks need — W4's step at 2 threads took 139 ms
    split against 103–115 ms left to the BLAS (docs/performance.md, "W4 after the fused recurrent
    kernels"). With the variable set the split has not been shown to pay either (108 against 100
    ms in one run): it stays opt-in until a quiet many-core machine says otherwise.

    `compiled`: the task runs its whole sequence in one compiled call without the GIL and with
    MKL's sequential products (`_rnn_seq.py`): then the blocks always split (docs/performance.md,
    "Whole sequences compiled")."""
    if not compiled and not os.environ.get("OPENBLAS_THREAD_TIMEOUT"):
        return [task(0, n)]
    threads = min(kernel_threads(), n // MIN_ROWS_PER_THREAD)
    if threads <= 1:
        return [task(0, n)]
    ranges = [(n * i // threads, n * (i + 1) // threads) for i in range(threads)]
    return over_batch(ranges, lambda i, n0, n1: task(n0, n1))
