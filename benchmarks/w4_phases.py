"""Where one W4 training step (char-LSTM, benchmarks/w4_w6_text.py) spends its time, neurona
beside PyTorch, phase by phase.

`python -m benchmarks.w4_phases [--threads 1] [--steps 10]` runs neurona's step with every op's
`forward` and `backward` timed (exclusive of the ops each calls, so the rows add up to the step;
the remainder is the optimiser, clipping and Python) and prints one JSON line per op class and
pass, largest first; then PyTorch's step under `torch.profiler`, one JSON line per aten op (self
CPU time). For W4 the rows that matter are `RecurrentSequence` (forward: the per-step GEMMs and
gate kernels of both LSTM layers; backward: BPTT and the recurrent kernels' gradient GEMMs),
`MatMul` (the input projections, the Dense layer and their gradient GEMMs) and, on PyTorch's
side, `mkldnn_rnn_layer` (forward, input projections included) and its backward.
Like benchmarks.run, it re-runs itself without OPENBLAS_CORETYPE/L2_SIZE.
May import: torch, neurona, benchmarks.harness, benchmarks.w4_w6_text.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import time

from ._blasenv import rerun_unpinned

rerun_unpinned("benchmarks.w4_phases")

import torch  # noqa: E402

from neurona.autograd.function import Function  # noqa: E402

from .harness import set_threads  # noqa: E402
from .w4_w6_text import build_w4  # noqa: E402


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _timed(acc, counts, stack, cls, name):
    """cls.<name> wrapped: its time less that of the timed calls it makes, added to acc."""
    inner = cls.__dict__[name]
    key = f"{cls.__name__}.{name}"

    def wrapper(self, *args, **kwargs):
        t0 = time.perf_counter()
        stack.append(0.0)
        try:
            return inner(self, *args, **kwargs)
        finally:
            dt = time.perf_counter() - t0
            acc[key] += dt - stack.pop()
            counts[key] += 1
            if stack:
                stack[-1] += dt
    return wrapper


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE as set")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    _, _, ours, peer = build_w4()
    for _ in range(3):
        ours()
        peer()

    acc, counts, stack = collections.defaultdict(float), collections.Counter(), []
    originals = []
    for cls in set(_subclasses(Function)):
        for name in ("forward", "backward"):
            if name in cls.__dict__:
                originals.append((cls, name, cls.__dict__[name]))
                setattr(cls, name, _timed(acc, counts, stack, cls, name))
    t0 = time.perf_counter()
    for _ in range(args.steps):
        ours()
    step = (time.perf_counter() - t0) / args.steps
    for cls, name, fn in originals:
        setattr(cls, name, fn)
    meta = {"threads": args.threads, "steps": args.steps, "loadavg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps({"side": "neurona", "step_ms": round(step * 1e3, 2), **meta}))
    for key, total in sorted(acc.items(), key=lambda kv: -kv[1]):
        print(json.dumps({"side": "neurona", "op": key, "ms_per_step": round(total / args.steps * 1e3, 2),
                          "calls_per_step": counts[key] // args.steps}))
    print(json.dumps({"side": "neurona", "op": "(optimiser, clipping, Python)",
                      "ms_per_step": round((step - sum(acc.values()) / args.steps) * 1e3, 2)}))

    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            peer()
    step = (time.perf_counter() - t0) / args.steps
    print(json.dumps({"side": "torch", "step_ms_under_profiler": round(step * 1e3, 2), **meta}))
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    for e in events[:12]:
        ms = round(e.self_cpu_time_total / 1e3 / args.steps, 2)
        print(json.dumps({"side": "torch", "op": e.key, "self_ms_per_step": ms, "calls_per_step": e.count // args.steps}))


if __name__ == "__main__":
    main()
