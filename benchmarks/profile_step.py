"""Where one neurona training step of a workload spends its time, by op.

`python -m benchmarks.profile_step [--workload W3] [--steps 5] [--threads 1]` times every
`Function.apply` (forward of each op, inclusive of the ops it calls) and the optimiser's `step`
over a few steps of the workload's neurona side, after two warm-up steps, and prints one JSON line
per op class (ms per step and share of the step; with --steps ≥ 3 also the median over steps,
which a loaded machine disturbs less than the mean), largest first; "(rest)" is the step minus
the timed parts (the autograd engine, the ops' Python glue). `--threads n` runs it as
`nr.set_num_threads(n)` does (neurona's kernels and the BLAS), so `--threads 1` and `--threads 2`
side by side show which parts gain from a second thread. At several threads the step line also
gives the step's **critical path**: its process CPU time, minus the CPU time of the tasks handed
to the kernel pool, plus the longest task of each hand-out (`winograd.run_side_by_side`, which
every split goes through): what the step would take on free cores, an estimate that a loaded
machine does not inflate (CPU time is computing, not waiting for a core); it ignores what the
threads cost each other in caches and memory bandwidth, and counts OpenBLAS's own threads, if any
run, as serial work. Each op's line gives the same estimate for the op
(`critical_path_median_ms`), and `--kernel-threads k` runs neurona's kernels at k threads while
the BLAS keeps `--threads` (thread_limit), so each path's cost at 1 and 2 kernel threads can be
compared op by op. The "where the time goes" figures of
docs/performance.md come from it. Like benchmarks.run, it re-runs itself without
OPENBLAS_CORETYPE/L2_SIZE.
May import: threadpoolctl, torch, neurona, benchmarks.workloads.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import statistics
import time

from ._blasenv import rerun_unpinned

rerun_unpinned("benchmarks.profile_step")

import torch  # noqa: E402

import neurona as nr  # noqa: E402
from neurona.autograd import function  # noqa: E402
from neurona.backend.kernels import winograd  # noqa: E402
from neurona.optim import optimizer  # noqa: E402

from . import workloads  # noqa: E402

BUILDERS = {"W1": workloads.build_w1, "W2": workloads.build_w2, "W3": workloads.build_w3}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="W3", choices=sorted(BUILDERS))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="nr.set_num_threads(n) (kernels and BLAS)")
    ap.add_argument("--kernel-threads", type=int, default=None,
                    help="neurona's kernels at this count instead (thread_limit; the BLAS keeps --threads)")
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE as set")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    nr.set_num_threads(args.threads)
    ours, _ = BUILDERS[args.workload]()
    spent: dict = collections.defaultdict(float)
    apply = function.Function.apply.__func__
    opt_step = optimizer.Optimizer.step

    paths_by_op: dict = collections.defaultdict(float)  # each op's critical path, as the step's

    def timed(cls, *inputs, **params):
        h0, c0, t0 = len(handouts), time.process_time(), time.perf_counter()
        out = apply(cls, *inputs, **params)
        spent[cls.__name__] += time.perf_counter() - t0
        mine = handouts[h0:]
        paths_by_op[cls.__name__] += (time.process_time() - c0 - sum(h[0] for h in mine)
                                      + sum(h[1] for h in mine))
        return out

    def timed_step(self):
        t0 = time.perf_counter()
        out = opt_step(self)
        spent[f"{type(self).__name__}.step"] += time.perf_counter() - t0
        return out

    side_by_side = winograd.run_side_by_side
    handouts = []  # (Σ task CPU, longest task CPU) of each hand-out to the kernel pool

    def traced(tasks):
        cpu = [0.0] * len(tasks)

        def timed_task(i, task):
            def run():
                t0 = time.thread_time()
                try:
                    return task()
                finally:
                    cpu[i] = time.thread_time() - t0
            return run

        out = side_by_side([timed_task(i, t) for i, t in enumerate(tasks)])
        handouts.append((sum(cpu), max(cpu)))
        return out

    function.Function.apply = classmethod(timed)
    optimizer.Optimizer.step = timed_step
    winograd.run_side_by_side = traced
    per_step = collections.defaultdict(list)
    per_step_path = collections.defaultdict(list)
    steps, paths = [], []
    limit = nr.backend.thread_limit(args.kernel_threads) if args.kernel_threads else contextlib.nullcontext()
    try:
        with limit:
            ours()
            ours()
            for _ in range(args.steps):
                spent.clear()
                paths_by_op.clear()
                handouts.clear()
                t0, c0 = time.perf_counter(), time.process_time()
                ours()
                steps.append(time.perf_counter() - t0)
                cpu = time.process_time() - c0
                paths.append(cpu - sum(h[0] for h in handouts) + sum(h[1] for h in handouts))
                spent["(rest)"] = steps[-1] - sum(spent.values())
                for name, total in spent.items():
                    per_step[name].append(total)
                for name, total in paths_by_op.items():
                    per_step_path[name].append(total)
    finally:
        function.Function.apply = classmethod(apply)
        optimizer.Optimizer.step = opt_step
        winograd.run_side_by_side = side_by_side
    step = sum(steps) / len(steps)
    with open("/proc/loadavg") if os.path.exists("/proc/loadavg") else open(os.devnull) as f:
        load = f.read().split()[:3]
    print(json.dumps({"workload": args.workload, "threads": args.threads,
                      "kernel_threads": args.kernel_threads or args.threads, "step_ms": round(step * 1e3, 2),
                      "step_median_ms": round(statistics.median(steps) * 1e3, 2),
                      "step_min_ms": round(min(steps) * 1e3, 2),
                      "step_cpu_or_critical_path_ms": round(statistics.median(paths) * 1e3, 2),
                      "loadavg": load}), flush=True)
    for name, times in sorted(per_step.items(), key=lambda kv: -sum(kv[1])):
        ms = sum(times) / args.steps * 1e3
        if ms >= 0.05:
            line = {"op": name, "ms_per_step": round(ms, 2), "share": round(ms / (step * 1e3), 3)}
            if args.steps >= 3:
                line["median_ms"] = round(statistics.median(times) * 1e3, 2)
            if name in per_step_path:
                line["critical_path_median_ms"] = round(statistics.median(per_step_path[name]) * 1e3, 2)
            print(json.dumps(line))


if __name__ == "__main__":
    main()
