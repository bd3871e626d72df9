"""One thread setting for the whole library: neurona's kernels and NumPy's BLAS.

`set_num_threads(n)` works like `torch.set_num_threads(n)`: it sets the threads of neurona's own
kernels (the batch split of conv2d's ops, Winograd's tile transforms, col2im,
2×2 max pooling and its scatter, batch norm's passes, the LSTM's rows) AND of the BLAS that
NumPy calls for every GEMM (through threadpoolctl, process-wide). `available_cpus()` counts the
CPUs this process may use: its CPU affinity (`os.sched_getaffinity`) capped by the cgroup CPU quota (`/sys/fs/cgroup/cpu.max`),
not `os.cpu_count()`, which counts the whole machine. The environment variable
NEURONA_NUM_THREADS sets the count for both when neurona is imported (as set_num_threads would);
a bad value is refused with a message naming it.
Until a count is chosen, neurona's kernels use `available_cpus()` threads (counted once, on
first use) and the BLAS keeps its own default; `get_num_threads() == kernel_threads()` says
which count is in force. With several kernel threads the batch-split convolutions run their
GEMMs on one BLAS thread each, side by side in the kernel pool (kernels.over_batch), and MatMul's
small GEMMs run on one BLAS thread (kernels.matmul): OpenBLAS's threads, which spin for ~0.1 s
after each GEMM they share, are not woken to take the cores the pool needs; large GEMMs keep the
BLAS's threads (docs/performance.md, "One thread setting").

Worker threads (DataLoader workers, serving threads) read a thread-local count: inside
`thread_limit(n)` the calling thread's kernels use n threads without touching the others. The
BLAS limit cannot be per thread (OpenBLAS has one process-wide setting), so it is left alone there.
May import: os, threading, threadpoolctl (lazily). Nothing else in neurona.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import threading

_num_threads = None  # set by set_num_threads; None: the default (environment or CPUs available)
_default_threads = None  # available_cpus(), counted on first use (a system call and a file read)
_local = threading.local()  # .n: a per-thread limit set by thread_limit
_blas_limiter = None  # threadpoolctl's limiter object, kept so the limit stays in force


def _cgroup_cpus(path="/sys/fs/cgroup/cpu.max"):
    """CPUs allowed by a cgroup v2 quota ('max 100000' or '150000 100000'), rounded up; None if
    there is no quota or no such file."""
    try:
        with open(path) as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, capped by the cgroup CPU quota.

    >>> available_cpus() >= 1
    True
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        n = os.cpu_count() or 1
    quota = _cgroup_cpus()
    return max(1, min(n, quota) if quota else n)


def _check(n, what):
    """n (an integer, NumPy's too, not a bool, a float or a string) as an int >= 1, else a
    ValueError naming `what`, the setting."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"{what} must be a positive integer (threads), got {n!r}")
    return int(n)


def _check_env(env):
    """NEURONA_NUM_THREADS's value as an int >= 1, else a ValueError naming the variable."""
    text = env.strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"NEURONA_NUM_THREADS must be a positive integer (threads for neurona's kernels and "
                         f"the BLAS), got {env!r}; unset it for the default")
    return int(text)


_numpy_blas_held = False  # True once MKL does neurona's GEMMs: NumPy's BLAS then stays at one thread


def hold_numpy_blas() -> None:
    """Keep NumPy's BLAS (OpenBLAS) at one thread from now on, set_num_threads included: called
    when MKL becomes the BLAS of neurona's GEMMs (`kernels.cblas.chosen`), which then runs them on
    neurona's own threads. OpenBLAS's threads, once woken by a threaded call, spin for ~0.1 s and
    take the cores neurona's kernel pool needs (W4's step at 2 threads: 58–73 ms with them awake,
    41–44 ms held; docs/performance.md, "Whole sequences compiled")."""
    global _numpy_blas_held
    _numpy_blas_held = True
    _apply_blas(1)


def _apply_blas(n: int) -> None:
    global _blas_limiter
    if _numpy_blas_held:
        n = 1
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 - loads the BLAS info lazily
    except ImportError:  # pragma: no cover - a core dependency
        return
    import numpy  # noqa: F401,PLC0415 - NumPy's BLAS must be loaded for threadpoolctl to see it

    _blas_limiter = threadpool_limits(limits=n, user_api="blas")


_blas_libs = None  # threadpoolctl's controllers of the BLAS libraries, found once (a scan takes ms)


@contextlib.contextmanager
def blas_threads(n: int):
    """Within the block the BLAS runs on n threads, then goes back to its count (process-wide, as
    OpenBLAS's setting is: other Python threads' GEMMs get n too meanwhile). Each switch is a
    ctypes call of about a microsecond, cheap enough to wrap single operations: the batch-split
    convolutions (kernels.over_batch) run their GEMMs at 1 thread each, side by side."""
    global _blas_libs
    if _blas_libs is None:
        try:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415 - loads the BLAS info lazily
        except ImportError:  # pragma: no cover - a core dependency
            _blas_libs = []
        else:
            import numpy  # noqa: F401,PLC0415 - NumPy's BLAS must be loaded for threadpoolctl to see it

            _blas_libs = ThreadpoolController().select(user_api="blas").lib_controllers
    old = [lib.get_num_threads() for lib in _blas_libs]
    for lib in _blas_libs:
        lib.set_num_threads(n)
    try:
        yield
    finally:
        for lib, k in zip(_blas_libs, old):
            lib.set_num_threads(k)


def set_num_threads(n: int) -> None:
    """Use `n` threads in neurona's kernels and in NumPy's BLAS (like `torch.set_num_threads`).

    >>> import neurona as nr
    >>> nr.set_num_threads(1); nr.get_num_threads()
    1
    """
    global _num_threads
    _num_threads = _check(n, "set_num_threads: n")
    _apply_blas(_num_threads)


def kernel_threads() -> int:
    """The threads neurona's own kernels split their work over in the calling thread.

    get_num_threads() once the user chose a count (set_num_threads, NEURONA_NUM_THREADS,
    thread_limit); until then `available_cpus()`, counted on the first call (a process whose
    affinity or quota changes later calls set_num_threads). Each split kernel still runs small
    work on one thread (kernels/__init__.py: the thresholds per kernel).
    """
    global _default_threads
    local = getattr(_local, "n", None)
    if local is not None:
        return local
    if _num_threads is not None:
        return _num_threads
    env = os.environ.get("NEURONA_NUM_THREADS")
    if env is not None and env.strip():
        return _check_env(env)
    if _default_threads is None:
        _default_threads = available_cpus()
    return _default_threads


def get_num_threads() -> int:
    """The threads in force for the calling thread (see kernel_threads): `available_cpus()` until
    a count is set with set_num_threads or NEURONA_NUM_THREADS.

    >>> import neurona as nr
    >>> nr.get_num_threads() >= 1
    True
    """
    return kernel_threads()


@contextlib.contextmanager
def thread_limit(n: int):
    """Within the block, the calling thread's kernels use at most n threads (others unchanged).
    DataLoader workers run their batches under thread_limit(1), so k workers add k threads, not
    k × cores."""
    n = _check(n, "thread_limit: n")
    old = getattr(_local, "n", None)
    _local.n = n
    try:
        yield
    finally:
        _local.n = old



def apply_environment() -> None:
    """set_num_threads(NEURONA_NUM_THREADS) when the variable is set (called on `import neurona`;
    threadpoolctl is imported only then)."""
    env = os.environ.get("NEURONA_NUM_THREADS")
    if env is not None and env.strip():
        set_num_threads(_check_env(env))
