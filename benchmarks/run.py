"""Run the benchmarks: `python -m benchmarks.run [--only W1,W2] [--threads 1|all|1,all] [--reps N]`.

Prints one JSON line describing the machine, then one JSON line per workload and thread count.
Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to pin old OpenBLAS builds to a safe
kernel; that also pins a current NumPy to AVX2 kernels at half the GEMM speed. Unless
--keep-blas-env is given, this script re-runs itself once with both unset (for the benchmark
process only) and the machine line says which kernel the BLAS then picked.
At each thread count n the BLAS and torch get n threads; neurona's own kernels keep the library's
default (`neurona.backend.kernel_threads`: the available CPUs), capped at n, unless
--neurona-threads is given, which calls `nr.set_num_threads(n)` at each count, as
`torch.set_num_threads(n)` is called for the peer.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os

from ._blasenv import rerun_unpinned

rerun_unpinned("benchmarks.run")

import numba  # noqa: E402  (after the re-run above: the BLAS reads its variables on load)
import numpy  # noqa: E402
import torch  # noqa: E402

import neurona  # noqa: E402
from neurona.backend import kernels  # noqa: E402
from neurona.backend.kernels import malloc  # noqa: E402

from . import harness  # noqa: E402
from .harness import blas_info, cpu_model, set_threads  # noqa: E402
from .w4_w6_text import w4, w6  # noqa: E402
from .w5_dqn import w5  # noqa: E402
from .w8_graph import w8  # noqa: E402
from .workloads import WORKLOADS  # noqa: E402

# W8 (graph mode, torch.compile builds for seconds) and W4/W6 (text: seconds per step, minutes
# of word2vec training; W6 needs gensim and the Shakespeare data) run when asked: --only W4,W6,W8;
# so does W5 (the DQN learner of neurona.rl, which needs gymnasium: the `rl` extra)
ALL_WORKLOADS = {**WORKLOADS, "W4": w4, "W5": w5, "W6": w6, "W8": w8}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workload ids")
    ap.add_argument("--threads", default="1,all", help="'1', 'all' or both, comma-separated")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions (scaled per workload)")
    ap.add_argument("--settle", type=float, default=None,
                    help="seconds slept before each timed turn at >1 thread (default 0.25; see benchmarks.harness)")
    ap.add_argument("--neurona-threads", action="store_true",
                    help="nr.set_num_threads(n) at each count n (neurona's kernels too, not only the BLAS)")
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE as set")
    args = ap.parse_args(argv)
    wanted = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in ALL_WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; choose from {list(ALL_WORKLOADS)}")
    counts = [neurona.backend.available_cpus() if t.strip() == "all" else int(t) for t in args.threads.split(",")]

    print(json.dumps({
        "machine": cpu_model(), "cores": os.cpu_count(), "cpus_available": neurona.backend.available_cpus(),
        "blas": blas_info(),
        "numpy": numpy.__version__, "numba": numba.__version__, "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "numba_kernels": kernels.numba_active(), "malloc_tuned": malloc.applied,
        "openblas_thread_timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
        "neurona_kernel_threads": "n (--neurona-threads)" if args.neurona_threads else neurona.backend.kernel_threads(),
        "settle_s": harness.DEFAULT_SETTLE_S if args.settle is None else args.settle, "settle_warm_s": harness.SETTLE_WARM_S,
    }), flush=True)
    for n in counts:
        set_threads(n)
        if args.neurona_threads:
            neurona.set_num_threads(n)
        harness.settle_for(n, args.settle if n > 1 else None)
        for w in wanted:
            ALL_WORKLOADS[w](n, args.reps)


if __name__ == "__main__":
    main()
