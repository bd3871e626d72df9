"""Whole-sequence loops of the fused recurrent op, compiled, for when MKL does its GEMMs
(`cblas.py`): each step's product h_{t−1}·R (forward) or dU_t·Rᵀ (BPTT) is MKL's
`cblas_sgemm_compute` on a recurrent kernel packed once per sequence (`CBlas.pack_b`), called
from numba, followed by the step's elementwise kernel from `_rnn.py` — so the T steps of a row
block run without returning to Python and without the GIL.

Why: on the Intel machine of docs/performance.md one LSTM layer of W4 (batch 32, 256 units,
64 steps) took 15.2 ms forward as a Python loop over ctypes GEMMs and numba step kernels, and
7.3 ms so (`docs/data/bench_2026-12-03_q7/q7_nbext.py`): the packed product is 92 µs a step against
125 µs unpacked, and the ~30 µs a step of Python between them is gone. With the GIL released for
the whole sequence, row blocks on several threads run side by side (`rnn.py`, `over_rows`).

MKL's function is reached as an external symbol of a private name, registered with LLVM when this
module is imported (`llvmlite.binding.add_symbol`), so the compiled code is cached on disk like
the other kernels and finds the function in a later process; importing this module without MKL
raises ImportError (the loader then reports it missing and callers keep their Python loop).
Pointers are passed as integers (`arr.ctypes.data` plus an offset), which the x86-64 and AArch64
calling conventions pass exactly as pointers. float32 only; every array C-contiguous.
May import: numpy, numba, llvmlite, neurona.backend.kernels (cblas, _rnn).
"""
from __future__ import annotations

import llvmlite.binding as _llvm
import numpy as np
from numba import njit, types

from . import cblas
from ._rnn import gru_backward, gru_forward, lstm_backward, lstm_forward, simple_backward, simple_forward

_lib = cblas.mkl()
if _lib is None:
    raise ImportError(f"_rnn_seq needs MKL: {cblas.mkl_error()}")
_SYMBOL = "neurona_mkl_sgemm_compute"
_llvm.add_symbol(_SYMBOL, _lib.address("cblas_sgemm_compute"))
_i32, _ip = types.int32, types.intp
# void cblas_sgemm_compute(layout, transa, transb, m, n, k, a, lda, b, ldb, beta, c, ldc)
_compute = types.ExternalFunction(_SYMBOL, types.void(_i32, _i32, _i32, _i32, _i32, _i32, _ip, _i32, _ip, _i32,
                                                      types.float32, _ip, _i32))
_ROW_MAJOR, _NO_TRANS, _PACKED = 101, 111, 151
_ZERO = np.float32(0.0)
_F4 = 4  # bytes per float32


@njit(cache=True, nogil=True, inline="always")
def _product(a_ptr, lda, packed, rows, n, k, out_ptr, ldc):
    """out (rows, n) = a (rows, k) · B, B packed by `CBlas.pack_b`; leading dimensions in elements."""
    _compute(_ROW_MAJOR, _NO_TRANS, _PACKED, rows, n, k, a_ptr, lda, packed.ctypes.data, n, _ZERO, out_ptr, ldc)


@njit(cache=True, nogil=True)
def _states_in(hrs, h0, Y, rmask, use_rmask, t, n0, n1):
    """hrs[n, t] = h_{t−1} of rows n0 … n1 − 1 (h0 at t = 0; the first H of Y[n, t − 1] after),
    times the recurrent dropout mask rmask[n] when use_rmask: the left operand of step t's product."""
    H = hrs.shape[2]
    for n in range(n0, n1):
        src = h0[n] if t == 0 else Y[n, t - 1]
        dst = hrs[n, t]
        if use_rmask:
            rm = rmask[n]
            for j in range(H):
                dst[j] = src[j] * rm[j]
        else:
            for j in range(H):
                dst[j] = src[j]


@njit(cache=True, nogil=True)
def _after_product(dh, carry, rmask, use_rmask, add_carry, n0):
    """BPTT after dh = dU_t·Rᵀ: the recurrent dropout mask, then the part of h_{t−1}'s gradient
    that does not go through R."""
    rows, H = dh.shape
    for r in range(rows):
        d = dh[r]
        if use_rmask:
            rm = rmask[n0 + r]
            for j in range(H):
                d[j] *= rm[j]
        if add_carry:
            c = carry[r]
            for j in range(H):
                d[j] += c[j]


@njit(cache=True, nogil=True)
def lstm_sequence(Z, zi, b, packed, h0, c0, m, use_mask, rmask, use_rmask, gates, tc, Y, hrs, a, n0, n1):
    """The LSTM forward over all steps for rows n0 … n1 − 1: per step the packed product into a
    (n1 − n0, 4H), then `_rnn.lstm_forward` (arguments as there); hrs (N, T, H) receives each
    step's left operand, which dR needs."""
    T, H = hrs.shape[1], hrs.shape[2]
    rows = n1 - n0
    for t in range(T):
        _states_in(hrs, h0, Y, rmask, use_rmask, t, n0, n1)
        _product(hrs.ctypes.data + ((n0 * T + t) * H) * _F4, T * H, packed, rows, 4 * H, H, a.ctypes.data, 4 * H)
        lstm_forward(Z, zi, b, a, t, h0, c0, m, use_mask, gates, tc, Y, n0)


@njit(cache=True, nogil=True)
def lstm_sequence_backward(gy, dh, dc, gates, tc, Y, c0, m, use_mask, rmask, use_rmask, dZ, carry, db, packed, n0):
    """BPTT of `lstm_sequence` for the rows of dh (n0 …): per step `_rnn.lstm_backward`, then dh =
    dZ[:, t]·Rᵀ with Rᵀ packed, the dropout mask and a masked step's skip."""
    rows, H = dh.shape
    T = dZ.shape[1]
    for t in range(T - 1, -1, -1):
        lstm_backward(gy, t, dh, dc, gates, tc, Y, c0, m, use_mask, dZ, carry, db, n0)
        _product(dZ.ctypes.data + ((n0 * T + t) * 4 * H) * _F4, T * 4 * H, packed, rows, H, 4 * H, dh.ctypes.data, H)
        _after_product(dh, carry, rmask, use_rmask, use_mask, n0)


@njit(cache=True, nogil=True)
def gru_sequence(Z, zi, rb, packed, h0, m, use_mask, rmask, use_rmask, zrs, ns, uhs, Y, hrs, a, n0, n1):
    """The GRU (reset_after) forward over all steps for rows n0 … n1 − 1 (`_rnn.gru_forward`)."""
    T, H = hrs.shape[1], hrs.shape[2]
    rows = n1 - n0
    for t in range(T):
        _states_in(hrs, h0, Y, rmask, use_rmask, t, n0, n1)
        _product(hrs.ctypes.data + ((n0 * T + t) * H) * _F4, T * H, packed, rows, 3 * H, H, a.ctypes.data, 3 * H)
        gru_forward(Z, zi, a, rb, t, h0, m, use_mask, zrs, ns, uhs, Y, n0)


@njit(cache=True, nogil=True)
def gru_sequence_backward(gy, dh, carry, zrs, ns, uhs, Y, h0, m, use_mask, rmask, use_rmask, dZ, dU, packed, n0):
    """BPTT of `gru_sequence` (`_rnn.gru_backward`, then dh = dU[:, t]·Rᵀ + carry)."""
    rows, H = dh.shape
    T = dU.shape[1]
    for t in range(T - 1, -1, -1):
        gru_backward(gy, t, dh, carry, zrs, ns, uhs, Y, h0, m, use_mask, dZ, dU, n0)
        _product(dU.ctypes.data + ((n0 * T + t) * 3 * H) * _F4, T * 3 * H, packed, rows, H, 3 * H, dh.ctypes.data, H)
        _after_product(dh, carry, rmask, use_rmask, True, n0)


@njit(cache=True, nogil=True)
def simple_sequence(Z, zi, packed, h0, m, use_mask, rmask, use_rmask, acts, Y, hrs, a, n0, n1):
    """The SimpleRNN forward over all steps for rows n0 … n1 − 1 (`_rnn.simple_forward`)."""
    T, H = hrs.shape[1], hrs.shape[2]
    rows = n1 - n0
    for t in range(T):
        _states_in(hrs, h0, Y, rmask, use_rmask, t, n0, n1)
        _product(hrs.ctypes.data + ((n0 * T + t) * H) * _F4, T * H, packed, rows, H, H, a.ctypes.data, H)
        simple_forward(Z, zi, a, t, h0, m, use_mask, acts, Y, n0)


@njit(cache=True, nogil=True)
def simple_sequence_backward(gy, dh, acts, m, use_mask, rmask, use_rmask, dZ, carry, packed, n0):
    """BPTT of `simple_sequence` (`_rnn.simple_backward`, then dh = dZ[:, t]·Rᵀ)."""
    rows, H = dh.shape
    T = dZ.shape[1]
    for t in range(T - 1, -1, -1):
        simple_backward(gy, t, dh, acts, m, use_mask, dZ, carry, n0)
        _product(dZ.ctypes.data + ((n0 * T + t) * H) * _F4, T * H, packed, rows, H, H, dh.ctypes.data, H)
        _after_product(dh, carry, rmask, use_rmask, use_mask, n0)
