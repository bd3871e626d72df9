"""GEMMs through a second BLAS, called with ctypes: Intel MKL from the `mkl` wheel (in a checkout,
`pip install -e '.[mkl]'`), where it is faster than NumPy's OpenBLAS.

NumPy's wheels bundle OpenBLAS; PyTorch's bundle MKL. On Intel CPUs with AVX-512 MKL's SGEMM is
1.1–1.6× faster than OpenBLAS's on the shapes of small nets (a batch of 32 rows against a 256 ×
1024 recurrent kernel: 157 against 104 GFLOP/s on one thread; docs/performance.md, "A second
BLAS"). This module finds MKL's single dynamic library (`libmkl_rt`) in the environment, loads it
privately (RTLD_LOCAL: its OpenMP runtime does not replace another library's), and calls
`cblas_sgemm` / `cblas_dgemm` on NumPy arrays without copying them when their layout is one CBLAS
takes: rows or columns contiguous, with a leading stride (slices of larger arrays, transposed
views).

Which BLAS `kernels.gemm` uses is a setting, `NEURONA_BLAS`:
    auto   (default) MKL when the `mkl` package is installed and a one-time measurement on this
           machine (`calibrate.blas_rules`, cached beside the convolution break-evens) found it
           faster than NumPy's BLAS on the probe shapes; NumPy's BLAS otherwise
    numpy  always NumPy's BLAS (`a @ b`)
    mkl    always MKL (an error naming the setting if it cannot be loaded)

Threads: MKL runs sequentially (its SEQUENTIAL threading layer: no OpenMP runtime is loaded), on
the thread that calls it. Once `chosen()` picks MKL, `kernels.gemm` gives it every product of at
least 2 M multiply-adds, on the calling thread or, at several kernel threads, split in blocks
(an MKL call per block) over numba's parallel runtime from 8 M multiply-adds (`_gemm_par.py`) and
over neurona's kernel pool from 128 M; and NumPy's OpenBLAS is held at one thread
for the process (`threads.hold_numpy_blas`): its idle threads spin after each threaded call and
took the cores neurona's pool needed (docs/performance.md, "Whole sequences compiled"). MKL's
OpenMP threads were tried for the large products on the 2-core VM where this was measured:
faster for an MLP step alone, but beside PyTorch's threads and neurona's kernel pool they made
the MLP, LeNet and char-LSTM steps 1.2–2.6× slower (docs/performance.md, "A second BLAS").
`pack_b` lays a right-hand operand out once for MKL's packed products, which the compiled
recurrent loops (`_rnn_seq.py`) call from numba.
May import: numpy, ctypes, neurona.backend.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
import threading

import numpy

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_B_MATRIX = 162  # CBLAS_IDENTIFIER of cblas_?gemm_pack: pack the right-hand operand
_ALIGN = 64
_THREADING_SEQUENTIAL = 1
_SETTINGS = ("auto", "numpy", "mkl")


class BlasError(RuntimeError):
    """A BLAS setting that cannot be honoured (NEURONA_BLAS=mkl without MKL, a bad value)."""


def setting() -> str:
    """NEURONA_BLAS, checked: auto (default), numpy or mkl."""
    value = os.environ.get("NEURONA_BLAS", "auto").strip().lower() or "auto"
    if value not in _SETTINGS:
        raise BlasError(f"NEURONA_BLAS={value!r}: expected one of {', '.join(_SETTINGS)}")
    return value


def find_mkl() -> str | None:
    """The path of libmkl_rt in this environment (the `mkl` wheel puts it in <prefix>/lib), or None."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, os.environ.get("CONDA_PREFIX") or sys.prefix)):
        hits = sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")))
        if hits:
            return hits[0]
    return None


class CBlas:
    """cblas_sgemm / cblas_dgemm of one shared library, on NumPy arrays."""

    def __init__(self, path: str):
        self.path = path
        self.lib = lib = ctypes.CDLL(path)  # RTLD_LOCAL: its symbols stay its own
        args = [ctypes.c_int] * 6
        for name, real in (("cblas_sgemm", ctypes.c_float), ("cblas_dgemm", ctypes.c_double)):
            f = getattr(lib, name)
            f.restype = None
            f.argtypes = args + [real, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, real,
                                 ctypes.c_void_p, ctypes.c_int]
        self._gemm = {numpy.dtype(numpy.float32): lib.cblas_sgemm, numpy.dtype(numpy.float64): lib.cblas_dgemm}
        self._pack = None  # cblas_sgemm_pack and its size query, set up on first use (MKL only)

    def address(self, name: str) -> int:
        """The address of the library's function `name` (for compiled callers: `_rnn_seq.py`)."""
        return ctypes.cast(getattr(self.lib, name), ctypes.c_void_p).value

    def pack_b(self, b, m: int):
        """MKL's packed form of the right-hand operand b (k, n), float32, for products with
        m-row left operands (`cblas_sgemm_pack`): a loop that multiplies by the same b many times
        (the recurrent kernel, once per step) lays it out once instead of on every call, which
        took a 32 × 256 × 1024 product from 125 to 92 µs (docs/performance.md). Returns a uint8
        array, 64-byte aligned, for `cblas_sgemm_compute` with CblasPacked (151) as transb. b in
        any layout `_operand` reads (a transposed view packs without a copy)."""
        if self._pack is None:
            size, pack = self.lib.cblas_sgemm_pack_get_size, self.lib.cblas_sgemm_pack
            size.restype, size.argtypes = ctypes.c_size_t, [ctypes.c_int] * 4
            pack.restype = None
            pack.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
            self._pack = size, pack
        if b.dtype != numpy.float32 or b.ndim != 2:
            raise TypeError(f"pack_b: a 2-D float32 operand, got {b.dtype} {b.shape}")
        size, pack = self._pack
        k, n = b.shape
        raw = numpy.empty(size(_B_MATRIX, max(1, m), n, k) + _ALIGN, dtype=numpy.uint8)
        start = -raw.ctypes.data % _ALIGN
        dest = raw[start:start + raw.size - _ALIGN]
        b, tb, ldb = self._operand(b)
        pack(_ROW_MAJOR, _B_MATRIX, _TRANS if tb else _NO_TRANS, max(1, m), n, k, 1.0, b.ctypes.data, ldb,
             dest.ctypes.data)
        return dest

    @staticmethod
    def _operand(a):
        """(array, transposed?, leading dimension) for a 2-D operand CBLAS can read in place, after
        copying it when it cannot (neither rows nor columns contiguous)."""
        item = a.itemsize
        s0, s1 = a.strides
        rows, cols = a.shape
        if (s1 == item or cols <= 1) and s0 % item == 0 and s0 // item >= max(1, cols):
            return a, False, max(1, s0 // item, cols)
        if (s0 == item or rows <= 1) and s1 % item == 0 and s1 // item >= max(1, rows):
            return a, True, max(1, s1 // item, rows)
        a = numpy.ascontiguousarray(a)
        return a, False, max(1, cols)

    def takes(self, a, b, out=None) -> bool:
        """Whether gemm(a, b, out) runs here: 2-D NumPy operands of one float dtype (float32 or
        float64) that agree, and an `out` of that dtype whose rows are contiguous."""
        if not (type(a) is numpy.ndarray and type(b) is numpy.ndarray and a.ndim == 2 and b.ndim == 2
                and a.dtype == b.dtype and a.dtype in self._gemm and a.shape[1] == b.shape[0]):
            return False
        if out is not None:
            return (type(out) is numpy.ndarray and out.dtype == a.dtype and out.shape == (a.shape[0], b.shape[1])
                    and (out.strides[1] == out.itemsize or out.shape[1] <= 1) and out.strides[0] % out.itemsize == 0
                    and out.strides[0] // out.itemsize >= out.shape[1])
        return True

    def gemm(self, a, b, out=None):
        """a @ b (into `out` when given) for operands `takes` accepts, on the calling thread."""
        m, k = a.shape
        n = b.shape[1]
        if out is None:
            out = numpy.empty((m, n), dtype=a.dtype)
        if m == 0 or n == 0:
            return out
        if k == 0:
            out[...] = 0
            return out
        a, ta, lda = self._operand(a)
        b, tb, ldb = self._operand(b)
        ldc = max(1, out.strides[0] // out.itemsize, n)
        self._gemm[a.dtype](_ROW_MAJOR, _TRANS if ta else _NO_TRANS, _TRANS if tb else _NO_TRANS, m, n, k, 1.0,
                            a.ctypes.data, lda, b.ctypes.data, ldb, 0.0, out.ctypes.data, ldc)
        return out


_lock = threading.Lock()
_mkl: CBlas | None = None
_mkl_error: str | None = None


def mkl() -> CBlas | None:
    """MKL, loaded on first use (None when the `mkl` package is not installed or does not load)."""
    global _mkl, _mkl_error
    if _mkl is not None or _mkl_error is not None:
        return _mkl
    with _lock:
        if _mkl is None and _mkl_error is None:
            path = find_mkl()
            if path is None:
                _mkl_error = "the mkl package is not installed (pip install -e '.[mkl]')"
                return None
            try:
                lib = CBlas(path)
                lib.lib.MKL_Set_Threading_Layer(_THREADING_SEQUENTIAL)
                _mkl = lib
            except (OSError, AttributeError) as e:
                _mkl_error = f"{path} did not load: {e}"
    return _mkl


def mkl_error() -> str | None:
    """Why mkl() is None (after a call), or None."""
    return _mkl_error


_chosen: CBlas | None | bool = False  # False: not decided yet; None: NumPy's BLAS


def chosen() -> CBlas | None:
    """The BLAS that kernels.gemm uses for the arrays it takes: a CBlas, or None for NumPy's."""
    global _chosen
    if _chosen is not False:
        return _chosen
    value = setting()
    if value == "numpy":
        _chosen = None
    elif value == "mkl":
        lib = mkl()
        if lib is None:
            raise BlasError(f"NEURONA_BLAS=mkl: {mkl_error()}")
        _chosen = lib
    else:
        lib = mkl()
        if lib is None:
            _chosen = None
        else:
            from . import calibrate  # noqa: PLC0415 - imports numpy-heavy probes only when needed

            rules = calibrate.blas_rules(lib)
            _chosen = lib if rules is not None and rules["use"] == "mkl" else None
    if _chosen is not None:
        from .. import threads  # noqa: PLC0415 - a sibling module of the backend package

        threads.hold_numpy_blas()
    return _chosen


def name() -> str:
    """'mkl' or 'numpy': the BLAS kernels.gemm uses now."""
    return "numpy" if chosen() is None else "mkl"
