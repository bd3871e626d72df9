"""One GEMM split over threads inside numba's parallel runtime: `prange` over row (or column)
blocks of the result, each block MKL's sequential `cblas_sgemm`/`cblas_dgemm` on its part of the
operands, in place (`kernels.gemm` at several kernel threads, when MKL is neurona's BLAS).

Why: on the 2-core Intel VM of docs/performance.md a thread of neurona's pool takes 55–200 µs to
wake, so splitting a 128 × 784 × 512 product over the pool (0.5 ms split against 0.6 on one
thread) did not pay, and OpenBLAS's threads, which do (0.40 ms), spin for ~0.1 s afterwards on the
cores the pool needs. numba's OpenMP (or TBB) runtime keeps its workers spinning only briefly
(GOMP_SPINCOUNT) and starts them at once: the same product in two blocks took 0.28 ms
(`docs/data/bench_2026-12-03_q7/q7_prange.py`). Used only where that runtime is safe to enter
from several Python threads (OpenMP or TBB: `kernels.numba_parallel_ok()`); the workqueue layer is not.

MKL's functions are external symbols of private names registered with LLVM (as in `_rnn_seq.py`),
so the compiled split is cached on disk. Pointers are passed as integers.
May import: numpy, numba, llvmlite, neurona.backend.kernels (cblas).
"""
from __future__ import annotations

import llvmlite.binding as _llvm
import numba
import numpy as np
from numba import njit, prange, types

from . import cblas

_lib = cblas.mkl()
if _lib is None:
    raise ImportError(f"_gemm_par needs MKL: {cblas.mkl_error()}")
_i32, _ip = types.int32, types.intp
_SIGNATURES = {}
for _name, _real in (("cblas_sgemm", types.float32), ("cblas_dgemm", types.float64)):
    _llvm.add_symbol(f"neurona_mkl_{_name}", _lib.address(_name))
    # void cblas_?gemm(layout, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    _SIGNATURES[_name] = types.ExternalFunction(
        f"neurona_mkl_{_name}", types.void(_i32, _i32, _i32, _i32, _i32, _i32, _real, _ip, _i32, _ip, _i32, _real, _ip, _i32))
_sgemm, _dgemm = _SIGNATURES["cblas_sgemm"], _SIGNATURES["cblas_dgemm"]
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@njit(cache=True, nogil=True, inline="always")
def _offsets(p, parts, m, n, by_rows, ta, tb, lda, ldb, ldc):
    """Block p's result rows/columns [i0, i1) and its operands' and result's element offsets."""
    size = m if by_rows else n
    i0 = size * p // parts
    i1 = size * (p + 1) // parts
    if by_rows:  # rows i0:i1 of op(A), all of B
        return i0, i1, (i0 if ta else i0 * lda), 0, i0 * ldc
    return i0, i1, 0, (i0 * ldb if tb else i0), i0  # all of A, columns i0:i1 of op(B)


@njit(cache=True, nogil=True, parallel=True)
def split_sgemm(a, b, c, m, n, k, ta, tb, lda, ldb, ldc, by_rows, parts):
    """c (m, n) = op(a) · op(b), float32, in `parts` blocks of rows (by_rows) or columns of c."""
    for p in prange(parts):
        i0, i1, oa, ob, oc = _offsets(p, parts, m, n, by_rows, ta, tb, lda, ldb, ldc)
        rows, cols = (i1 - i0, n) if by_rows else (m, i1 - i0)
        _sgemm(_ROW_MAJOR, _TRANS if ta else _NO_TRANS, _TRANS if tb else _NO_TRANS, rows, cols, k, np.float32(1.0),
               a.ctypes.data + oa * 4, lda, b.ctypes.data + ob * 4, ldb, np.float32(0.0), c.ctypes.data + oc * 4, ldc)


@njit(cache=True, nogil=True, parallel=True)
def split_dgemm(a, b, c, m, n, k, ta, tb, lda, ldb, ldc, by_rows, parts):
    """`split_sgemm` for float64."""
    for p in prange(parts):
        i0, i1, oa, ob, oc = _offsets(p, parts, m, n, by_rows, ta, tb, lda, ldb, ldc)
        rows, cols = (i1 - i0, n) if by_rows else (m, i1 - i0)
        _dgemm(_ROW_MAJOR, _TRANS if ta else _NO_TRANS, _TRANS if tb else _NO_TRANS, rows, cols, k, 1.0,
               a.ctypes.data + oa * 8, lda, b.ctypes.data + ob * 8, ldb, 0.0, c.ctypes.data + oc * 8, ldc)


def gemm(a, b, out, parts):
    """out = a @ b (2-D, one float dtype, `CBlas.takes(a, b, out)`) in `parts` blocks on numba's
    threads. out must be C-contiguous or have rows contiguous."""
    m, k = a.shape
    n = b.shape[1]
    a, ta, lda = cblas.CBlas._operand(a)
    b, tb, ldb = cblas.CBlas._operand(b)
    ldc = max(1, out.strides[0] // out.itemsize, n)
    parts = min(parts, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(parts)
    split = split_sgemm if a.dtype == np.float32 else split_dgemm
    split(a, b, out, m, n, k, ta, tb, lda, ldb, ldc, m >= n, parts)
    return out
