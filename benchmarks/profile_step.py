"""Where one neurona training step of a workload spends its time, by op.

`python -m benchmarks.profile_step [--workload W3] [--steps 5]` times every `Function.apply`
(forward of each op, inclusive of the ops it calls) over a few steps of the workload's neurona
side at 1 thread, after two warm-up steps, and prints one JSON line per op class (ms per step and
share of the step), largest first. The "where the time goes" figures of docs/performance.md come
from it. Like benchmarks.run, it re-runs itself without OPENBLAS_CORETYPE/L2_SIZE.
May import: threadpoolctl, torch, neurona, benchmarks.workloads.
"""
from __future__ import annotations

import argparse
import collections
import json
import time

from ._blasenv import rerun_unpinned

rerun_unpinned("benchmarks.profile_step")

import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import neurona as nr  # noqa: E402
from neurona.autograd import function  # noqa: E402

from . import workloads  # noqa: E402

BUILDERS = {"W1": workloads.build_w1, "W2": workloads.build_w2, "W3": workloads.build_w3}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="W3", choices=sorted(BUILDERS))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE as set")
    args = ap.parse_args(argv)
    threadpool_limits(1)
    torch.set_num_threads(1)
    nr.set_num_threads(1)
    ours, _ = BUILDERS[args.workload]()
    spent: dict = collections.defaultdict(float)
    apply = function.Function.apply.__func__

    def timed(cls, *inputs, **params):
        t0 = time.perf_counter()
        out = apply(cls, *inputs, **params)
        spent[cls.__name__] += time.perf_counter() - t0
        return out

    function.Function.apply = classmethod(timed)
    try:
        ours()
        ours()
        spent.clear()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            ours()
        step = (time.perf_counter() - t0) / args.steps
    finally:
        function.Function.apply = classmethod(apply)
    print(json.dumps({"workload": args.workload, "step_ms": round(step * 1e3, 1)}), flush=True)
    for name, total in sorted(spent.items(), key=lambda kv: -kv[1]):
        ms = total / args.steps * 1e3
        if ms >= 0.05:
            print(json.dumps({"op": name, "ms_per_step": round(ms, 1), "share": round(ms / (step * 1e3), 3)}))


if __name__ == "__main__":
    main()
