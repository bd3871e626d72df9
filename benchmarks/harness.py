"""Timing harness shared by the workloads: warm-up, then the two sides alternate, the median wins.

Each side is a zero-argument callable that does one unit of work (one training step, one GEMM,
a batch of W7 iterations). Alternating the sides inside one loop makes both see the same machine
load, which on a shared 2-core box matters more than anything else.

At more than one thread the sides also *settle* before each timed turn: the harness sleeps
`SETTLE_S` seconds (0.25 s by default; `BENCH_SETTLE_S` or `--settle` to change, 0 turns it
off), then runs the side about to be timed untimed for a moment. Both libraries keep their worker threads spinning after parallel work — NumPy's OpenBLAS
for up to 2^28 cycles (~0.1 s here, `OPENBLAS_THREAD_TIMEOUT`), PyTorch's OpenMP pool for a
while too — and on a 2-core machine those spinning threads take the cores the *other* side's
next step needs. Without settling, each side is timed while the other's idle pool burns the
cores (docs/performance.md, "How to run", has the figures). Settling times each side as it runs
in a training loop of its own, and the sleep lets no work of either side overlap the other.
After the sleep the side to be timed runs untimed for `SETTLE_WARM_S` (0.1 s, at least one
call; `BENCH_SETTLE_WARM_S` to change): on this 2-core VM, neurona's W2 step with its kernels at 2
threads took 16.9 ms right after a 0.25 s sleep and one untimed call, 14.2 ms after 0.05 s of
untimed calls and 11.8-12.0 ms after 0.1-0.2 s, as back to back (11.7 ms); at 1 thread the sleep
cost nothing. The kernel pool's hand-offs wake an idle CPU several times a step, and after a long
idle that takes a while to get fast again; PyTorch's OpenMP threads spin between parallel regions
and do not see it (docs/performance.md, issue 11, "Threads that run at the same time").
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time

DEFAULT_SETTLE_S = float(os.environ.get("BENCH_SETTLE_S", "0.25"))
SETTLE_WARM_S = float(os.environ.get("BENCH_SETTLE_WARM_S", "0.1"))
SETTLE_S = 0.0  # seconds slept before each timed turn; set by set_threads/settle_for


def settle_for(n: int, seconds: float | None = None) -> float:
    """Set the pause before each timed turn for `n` threads: DEFAULT_SETTLE_S when n > 1, none at
    1 thread (no pools spin then); `seconds` overrides. Returns the value in force."""
    global SETTLE_S
    SETTLE_S = (DEFAULT_SETTLE_S if n > 1 else 0.0) if seconds is None else float(seconds)
    return SETTLE_S


def settle(fn=None) -> None:
    """Wait out the other side's spinning threads (see the module's docstring), then call `fn`
    untimed for SETTLE_WARM_S (at least once), so the timed call finds its own threads and CPUs
    awake and its caches as a training loop leaves them (one call straight after a sleep measured
    slower for both sides)."""
    if SETTLE_S > 0:
        time.sleep(SETTLE_S)
        if fn is not None:
            t0 = time.perf_counter()
            fn()
            while time.perf_counter() - t0 < SETTLE_WARM_S:
                fn()


def median_s(fn, reps: int) -> float:
    """One untimed call of `fn`, then the median of `reps` timed calls, in seconds (one side
    alone; `compare` alternates two)."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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

    from neurona.backend.kernels import cblas  # noqa: PLC0415

    second = cblas.name()  # loads MKL when neurona will use it, so threadpoolctl sees it below
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    numpy_blas = [i for i in infos if i["internal_api"] != "mkl"] or infos
    if not numpy_blas:
        return "unknown"
    info = numpy_blas[0]
    text = f"{info['internal_api']} {info.get('version')} ({info.get('architecture')})"
    if second == "mkl":
        version = next((i.get("version") for i in infos if i["internal_api"] == "mkl"), "?")
        text += f"; MKL {version} for GEMMs of >= 2 M multiply-adds, OpenBLAS held at 1 thread (NEURONA_BLAS={cblas.setting()})"
    return text


def set_threads(n: int) -> None:
    """Use `n` threads in NumPy's BLAS and in torch. neurona's own kernels keep the library's
    default (NEURONA_NUM_THREADS, else the available CPUs: see `neurona.backend.kernel_threads`)
    capped at n (`nr.set_num_threads(min(n, default))`, so a 1-thread figure is one thread on
    both sides): the figures are those of the library as it comes; NEURONA_NUM_THREADS=n gives
    what `nr.set_num_threads(n)` gives."""
    import torch  # noqa: PLC0415

    import neurona  # noqa: PLC0415

    from neurona.backend import threads  # noqa: PLC0415

    env = os.environ.get("NEURONA_NUM_THREADS", "").strip()  # checked as `import neurona` checks it
    default = threads._check_env(env) if env else neurona.backend.available_cpus()
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        pass
    else:
        threadpool_limits(limits=n, user_api="blas")  # stays in force until the next call
    neurona.set_num_threads(min(n, default))  # after: NumPy's BLAS as neurona sets it
    torch.set_num_threads(n)
    settle_for(n)


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
            settle(fn)
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
