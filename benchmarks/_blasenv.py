"""Unpin OpenBLAS's kernel for a benchmark process (imports nothing heavy: it must run before
NumPy loads its BLAS).

Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to pin old OpenBLAS builds to a safe
kernel; that also pins a current NumPy to AVX2 kernels at half the GEMM speed. Unless the command
line has --keep-blas-env, `rerun_unpinned(module)` re-runs `python -m module` once with both unset.
May import: os, sys.
"""
from __future__ import annotations

import os
import sys

BLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def rerun_unpinned(module: str) -> None:
    """Replace this process by `python -m module <same args>` without the BLAS pins, if any are set."""
    if "--keep-blas-env" not in sys.argv and any(v in os.environ for v in BLAS_PINS):
        env = {k: v for k, v in os.environ.items() if k not in BLAS_PINS}
        os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], env)
