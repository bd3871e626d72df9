"""Timing harness shared by the workloads: warm-up, then the two sides alternate, the median wins.

Each side is a zero-argument callable that does one unit of work (one training step, one GEMM,
a batch of W7 iterations). Alternating the sides inside one loop makes both see the same machine
load, which on a shared 2-core box matters more than anything else.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415 - optional, benchmark only
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    import numpy  # noqa: F401,PLC0415 - load the BLAS so threadpoolctl can see it

    for info in threadpool_info():
        if info.get("user_api") == "blas":
            return f"{info['internal_api']} {info.get('version')} ({info.get('architecture')})"
    return "unknown"


def set_threads(n: int) -> None:
    """Use `n` threads in NumPy's BLAS and in torch. neurona's own kernels keep their setting
    (NEURONA_NUM_THREADS, default 1: see `neurona.backend.kernel_threads`), so the figures are
    those of the library as it comes; NEURONA_NUM_THREADS=n gives what `nr.set_num_threads(n)`
    gives."""
    import torch  # noqa: PLC0415

    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        return
    threadpool_limits(limits=n, user_api="blas")  # stays in force until the next call


def compare(ours, peer, reps: int, warmup: int = 2, inner: int = 1, scale: float = 1.0):
    """Time `ours` and `peer`, run alternately `reps` times after `warmup` calls of each.

    `inner` calls are timed together (for work so short that the clock's resolution matters).
    Returns seconds per call (times `scale`, e.g. 1e6 for µs): the medians, which are what the
    ratio uses, and the minima, which on a loaded machine show what each side does undisturbed.
    """
    for _ in range(warmup):
        ours()
        peer()
    a, b = [], []
    for r in range(reps):
        # alternate which side goes first so neither always runs on a warmer cache
        order = ((ours, a), (peer, b)) if r % 2 == 0 else ((peer, b), (ours, a))
        for fn, out in order:
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            out.append((time.perf_counter() - t0) / inner * scale)
    return {"neurona_s": statistics.median(a), "peer_s": statistics.median(b),
            "neurona_min_s": min(a), "peer_min_s": min(b)}


def report(workload: str, times: dict, unit: str, peer: str, threads: int, **extra):
    """Print one JSON line for a workload, with the load average measured right after it."""
    row = {"workload": workload, "neurona_s": round(times["neurona_s"], 7), "peer_s": round(times["peer_s"], 7),
           "ratio": round(times["neurona_s"] / times["peer_s"], 3), "unit": unit, "peer": peer,
           "threads": threads, "loadavg_1m": round(os.getloadavg()[0], 2),
           "neurona_min_s": round(times["neurona_min_s"], 7), "peer_min_s": round(times["peer_min_s"], 7),
           "ratio_of_min": round(times["neurona_min_s"] / times["peer_min_s"], 3)}
    row.update(extra)
    print(json.dumps(row), flush=True)
    return row
