"""Keep freed memory in the process for reuse (Linux with glibc only).

NumPy allocates every temporary afresh and frees it when the last reference goes. glibc serves
blocks above its mmap threshold with a fresh mmap and returns them (and the free top of the heap)
to the OS on free, so the next training step touches brand-new pages again: a LeNet step (W2)
took thousands of page faults, and none with the settings below (figures in docs/performance.md). PyTorch avoids the same cost with its own caching
allocator; for NumPy arrays this is the equivalent: blocks up to 32 MiB come from the heap, and up
to 1 GiB of free heap is kept instead of being trimmed.

It changes the whole process's allocator, so importing neurona does not do it: the autograd
engine applies it at the first backward pass (the first training step: where it pays), once.
A process that never trains (a model server, a script that only predicts) keeps glibc's
defaults. Call `tune_malloc()` yourself to apply it earlier; set NEURONA_MALLOC_TUNING=0 to leave
the C allocator as it was.
May import: nothing from neurona.
"""
from __future__ import annotations

import ctypes
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 1024 * 1024 * 1024

applied = False
_tried = False


def tune_malloc() -> bool:
    """Apply the settings above once (later calls return at once); True if glibc accepted them."""
    global applied, _tried
    if _tried:
        return applied
    _tried = True
    if os.environ.get("NEURONA_MALLOC_TUNING") == "0":
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: other C libraries have other knobs
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return applied
