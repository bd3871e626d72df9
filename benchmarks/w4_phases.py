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
`--gemms` instead times the step's GEMM shapes one by one, NumPy (its BLAS) against `torch.mm`
(NumPy alone at more than one thread), and the per-step GEMMs with strided rows (as the op passes them) against contiguous ones.
`--ab N` instead runs N rounds of neurona's step alternating four variants: the first layer's
inputs projected from the looked-up rows (as before the fold), from the table with the rows
gathered, from the table read by id (the default; `_input_projection` swapped in place), and the
last with the LSTM ops returning [h c] instead of h alone (`h_only=False`, as before).
Like benchmarks.run, it re-runs itself without OPENBLAS_CORETYPE/L2_SIZE.
May import: numpy, torch, neurona, benchmarks.harness, benchmarks.w4_w6_text.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import time

from ._blasenv import rerun_unpinned

rerun_unpinned("benchmarks.w4_phases")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from neurona.autograd.function import Function  # noqa: E402

from .harness import median_s, set_threads  # noqa: E402
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


def _best_ms(fn, reps):
    return round(median_s(fn, reps) * 1e3, 4)


def gemms(threads, reps=200):
    """The W4 step's GEMM shapes, NumPy against torch.mm (median ms of `reps` calls); at more than
    one thread NumPy alone (the two libraries' idle pools would spin against each other)."""
    rng = np.random.default_rng(0)
    shapes = {  # name: (a's shape, b's shape, a transposed, b transposed)
        "layer-2 projection x·W": ((2048, 256), (256, 1024), False, False),
        "its input gradient ∂Z·Wᵀ": ((2048, 1024), (256, 1024), False, True),
        "its kernel gradient xᵀ·∂Z (and ∂R = hᵀ·∂Z)": ((2048, 256), (2048, 1024), True, False),
        "layer-1 projection x·W (before the fold)": ((2048, 64), (64, 1024), False, False),
        "Dense x·W": ((2048, 256), (256, 65), False, False),
        "step h·R": ((32, 256), (256, 1024), False, False),
        "step ∂z·Rᵀ": ((32, 1024), (256, 1024), False, True),
        "step h·R, 16 rows (a block of the row split)": ((16, 256), (256, 1024), False, False),
        "step ∂z·Rᵀ, 16 rows": ((16, 1024), (256, 1024), False, True),
    }
    for name, (sa, sb, ta, tb) in shapes.items():
        a, b = rng.standard_normal(sa, dtype=np.float32), rng.standard_normal(sb, dtype=np.float32)
        A, B = (a.T if ta else a), (b.T if tb else b)
        At, Bt = torch.from_numpy(a), torch.from_numpy(b)
        At, Bt = (At.T if ta else At), (Bt.T if tb else Bt)
        out = np.empty((A.shape[0], B.shape[1]), np.float32)
        n = _best_ms(lambda: np.matmul(A, B, out=out), reps)
        if threads > 1:
            print(json.dumps({"gemm": name, "numpy_ms": n, "threads": threads}, ensure_ascii=False))
            continue
        t = _best_ms(lambda: torch.mm(At, Bt), reps)
        print(json.dumps({"gemm": name, "numpy_ms": n, "torch_ms": t, "ratio": round(n / t, 2)}, ensure_ascii=False))
    # the op's per-step operands are rows of (N, T, ·) arrays (stride T·width); time-major would
    # make them contiguous
    R = np.asfortranarray(rng.standard_normal((256, 1024), dtype=np.float32))
    Rt = np.ascontiguousarray(R.T)
    hs, dz = rng.standard_normal((32, 64, 256), dtype=np.float32), rng.standard_normal((32, 64, 1024), dtype=np.float32)
    hs_t, dz_t = np.ascontiguousarray(hs.transpose(1, 0, 2)), np.ascontiguousarray(dz.transpose(1, 0, 2))
    a, dh = np.empty((32, 1024), np.float32), np.empty((32, 256), np.float32)
    for name, fn in [("step h·R, rows strided", lambda: [np.matmul(hs[:, t], R, out=a) for t in range(64)]),
                     ("step h·R, rows contiguous", lambda: [np.matmul(hs_t[t], R, out=a) for t in range(64)]),
                     ("step ∂z·Rᵀ, rows strided", lambda: [np.matmul(dz[:, t], Rt, out=dh) for t in range(64)]),
                     ("step ∂z·Rᵀ, rows contiguous", lambda: [np.matmul(dz_t[t], Rt, out=dh) for t in range(64)])]:
        per_step = round(_best_ms(fn, reps // 10) / 64, 4)
        print(json.dumps({"gemm": name, "numpy_ms_per_step": per_step}, ensure_ascii=False))


def variants_ab(rounds):
    """neurona's step in four variants (see the module's docstring), alternating."""
    from neurona import ops  # noqa: PLC0415
    from neurona.nn.layers import recurrent  # noqa: PLC0415

    by_id, apply = recurrent._input_projection, recurrent.RecurrentSequence.apply
    seq = recurrent.RecurrentSequence

    def gathered(x, kernel):
        z, ids = by_id(x, kernel)
        return (z, None) if ids is None else (ops.index(z, ids), None)

    def looked_up_rows(x, kernel):
        n, t, d = x.shape
        return (x.reshape(n * t, d) @ kernel).reshape(n, t, -1), None

    def with_cells(*args, **kwargs):
        return apply(*args, **{**kwargs, "h_only": False})

    variants = {"first layer from the looked-up rows": (looked_up_rows, None),
                "from the table, rows gathered": (gathered, None),
                "from the table, rows by id": (by_id, None),
                "rows by id, the ops returning [h c]": (by_id, with_cells)}
    _, _, ours, _ = build_w4()
    times = {name: [] for name in variants}
    try:
        for _ in range(rounds):
            for name, (projection, sequence) in variants.items():
                recurrent._input_projection = projection
                if sequence is not None:
                    seq.apply = sequence  # a plain function on the class: called as is
                elif "apply" in seq.__dict__:
                    del seq.apply  # Function.apply again
                ours()  # the first step after a switch is not timed
                t0 = time.perf_counter()
                ours()
                times[name].append(time.perf_counter() - t0)
    finally:
        recurrent._input_projection = by_id
        if "apply" in seq.__dict__:
            del seq.apply
    for name, ts in times.items():
        print(json.dumps({"variant": name, "min_ms": round(min(ts) * 1e3, 1),
                          "median_ms": round(float(np.median(ts)) * 1e3, 1), "rounds": rounds,
                          "loadavg_1m": round(os.getloadavg()[0], 2)}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--gemms", action="store_true", help="time the step's GEMM shapes instead")
    ap.add_argument("--ab", type=int, default=0, metavar="N", help="N rounds of the variants' A/B instead")
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE as set")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    if args.gemms:
        return gemms(args.threads)
    if args.ab:
        return variants_ab(args.ab)
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
        print(json.dumps({"side": "torch", "op": e.key, "self_ms_per_step": ms,
                          "calls_per_step": e.count // args.steps}))


if __name__ == "__main__":
    main()
