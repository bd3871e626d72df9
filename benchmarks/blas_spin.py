"""CPU time of each kind of thread in one training step at several threads: the main thread,
neurona's kernel pool, and the rest (OpenBLAS's own threads, which busy-wait for ~0.1 s after
every GEMM that woke them), for MatMul's two rules at several kernel threads: "blas" (the
default: a GEMM of at least MIN_GEMM_THREADS_WORK multiply-adds on the BLAS's threads) and
"split" (`kernels.SPLIT_LARGE_GEMMS`: split over the kernel pool, one BLAS thread each),
alternating step by step in one process, each timed step after a 0.2 s
pause (the other rule's spinners stop) and 0.1 s of untimed steps (as `harness.settle`: a VM's
idle second CPU wakes slowly for a while after a pause).

`python -m benchmarks.blas_spin [--workload W3] [--threads 2] [--reps 3]`. Per-thread CPU comes
from /proc/self/task/*/schedstat (Linux): time on a CPU, which other processes' load does not
inflate, so the "OpenBLAS" column (time its threads spent spinning or working) is a figure a
loaded machine can give.
May import: torch, numpy, neurona, benchmarks.workloads.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time

from ._blasenv import rerun_unpinned

rerun_unpinned("benchmarks.blas_spin")

import torch  # noqa: E402

import neurona as nr  # noqa: E402
from neurona.backend import kernels  # noqa: E402

from . import harness, workloads  # noqa: E402

BUILDERS = {"W1": workloads.build_w1, "W2": workloads.build_w2, "W3": workloads.build_w3}


def cpu_ms_by_thread():
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                out[int(tid)] = int(f.read().split()[0]) / 1e6
        except OSError:  # the thread ended meanwhile
            pass
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="W3", choices=sorted(BUILDERS))
    ap.add_argument("--threads", type=int, default=2, help="nr.set_num_threads(n)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    nr.set_num_threads(args.threads)
    ours, _ = BUILDERS[args.workload]()
    rules = {"blas": False, "split": True}  # kernels.SPLIT_LARGE_GEMMS
    default = kernels.SPLIT_LARGE_GEMMS
    rows = {name: [] for name in rules}
    main_id = threading.main_thread().native_id
    try:
        for _ in range(args.reps):
            for name, rule in rules.items():
                kernels.SPLIT_LARGE_GEMMS = rule
                time.sleep(0.2)  # the other rule's spinning BLAS threads stop (~0.1 s)
                t0 = time.perf_counter()
                ours()  # untimed for 0.1 s (harness.settle): this rule's threads and CPUs awake
                while time.perf_counter() - t0 < harness.SETTLE_WARM_S:
                    ours()
                c0, t0 = cpu_ms_by_thread(), time.perf_counter()
                ours()
                wall = (time.perf_counter() - t0) * 1e3
                c1 = cpu_ms_by_thread()
                python_ids = {t.native_id for t in threading.enumerate()}
                d = {tid: c1[tid] - c0.get(tid, 0.0) for tid in c1}
                rows[name].append((wall, d.get(main_id, 0.0),
                                   sum(v for t, v in d.items() if t in python_ids and t != main_id),
                                   sum(v for t, v in d.items() if t not in python_ids)))
    finally:
        kernels.SPLIT_LARGE_GEMMS = default
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    for name, got in rows.items():
        wall, main_cpu, pool, other = (statistics.median(x) for x in zip(*got))
        print(json.dumps({"workload": args.workload, "threads": args.threads, "matmul_rule": name,
                          "step_ms": round(wall, 1), "cpu_ms_main": round(main_cpu, 1),
                          "cpu_ms_kernel_pool": round(pool, 1), "cpu_ms_other_threads": round(other, 1),
                          "loadavg": load}))


if __name__ == "__main__":
    main()
