"""Convolution sweep, neurona vs PyTorch eager in one run: `python -m benchmarks.conv_sweep
[--quick] [--threads 1,all] [--reps 3]`.

Each shape is one conv2d layer (padding k // 2) forward, then backward to both gradients (input
and filter), on float32; neurona and PyTorch alternate (benchmarks.harness.compare, median of
reps). For each thread count, both libraries get it the way a user gives it:
`nr.set_num_threads(n)` (kernels + BLAS) and `torch.set_num_threads(n)`. Prints the machine line,
one JSON line per shape (ratio = neurona / PyTorch time, below 1 means neurona is faster), then a
summary line per thread count with the median and worst ratio.

The full grid (issue 11) is batch 1, 8, 32, 128 × channels 3→16, 16→32, 32→64, 64→128, 128→256 ×
map 7, 14, 24, 28, 32, 56 × kernel 1, 3, 5 × stride 1, 2 (1440 shapes: hours on 2 cores);
--quick takes a subset of 24 that runs in minutes on a quiet 2-core machine.
May import: numpy, torch, neurona, benchmarks.harness.
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import statistics

from ._blasenv import rerun_unpinned

rerun_unpinned("benchmarks.conv_sweep")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import neurona as nr  # noqa: E402
from neurona.backend import kernels  # noqa: E402

from .harness import DEFAULT_SETTLE_S, SETTLE_WARM_S, blas_info, compare, cpu_model, settle_for  # noqa: E402

BATCHES = (1, 8, 32, 128)
CHANNELS = ((3, 16), (16, 32), (32, 64), (64, 128), (128, 256))
MAPS = (7, 14, 24, 28, 32, 56)
KERNELS = (1, 3, 5)
STRIDES = (1, 2)


def grid(quick: bool):
    if quick:
        return [(32, c, k_out, m, k, s) for (c, k_out), m, (k, s) in
                itertools.product(((3, 16), (16, 32), (64, 128)), (14, 28), ((3, 1), (3, 2), (1, 1), (5, 1)))]
    return [(b, c, k_out, m, k, s) for b, (c, k_out), m, k, s in itertools.product(BATCHES, CHANNELS, MAPS, KERNELS, STRIDES)]


def _sides(b, c, k_out, m, k, s):
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((b, c, m, m)).astype(np.float32)
    w0 = (rng.standard_normal((k_out, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
    pad = k // 2
    g0 = None

    def ours():
        x, w = nr.tensor(x0, requires_grad=True), nr.tensor(w0, requires_grad=True)
        y = nr.conv2d(x, w, stride=s, padding=pad, rounding="floor")  # as PyTorch
        y.backward(nr.tensor(g0))

    def peer():
        x, w = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
        y = torch.nn.functional.conv2d(x, w, stride=s, padding=pad)
        y.backward(torch.from_numpy(g0))

    oh = (m + 2 * pad - k) // s + 1
    g0 = rng.standard_normal((b, k_out, oh, oh)).astype(np.float32)
    return ours, peer


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="24 shapes instead of the full 1440")
    ap.add_argument("--threads", default="1,all", help="'1', 'all' or both, comma-separated")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--kernel", type=int, action="append", help="only shapes with this kernel size (repeatable)")
    ap.add_argument("--in-channels", type=int, action="append", help="only shapes with this many input channels (repeatable)")
    ap.add_argument("--map", type=int, action="append", help="only shapes with this map size (repeatable)")
    ap.add_argument("--stride", type=int, action="append", help="only shapes with this stride (repeatable)")
    ap.add_argument("--no-batch-split", action="store_true",
                    help="at several threads split each GEMM and transform (before issue 11's batch split)")
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE as set")
    ap.add_argument("--settle", type=float, default=None,
                    help="seconds slept before each timed turn at >1 thread (default 0.25; see benchmarks.harness)")
    args = ap.parse_args(argv)
    counts = [nr.backend.available_cpus() if t.strip() == "all" else int(t) for t in args.threads.split(",")]
    print(json.dumps({
        "machine": cpu_model(), "cores": os.cpu_count(), "cpus_available": nr.backend.available_cpus(),
        "blas": blas_info(), "torch": torch.__version__, "numba_kernels": kernels.numba_active(),
        "openblas_thread_timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "loadavg": [round(v, 2) for v in os.getloadavg()], "quick": args.quick,
        "conv_algo": os.environ.get("NEURONA_CONV_ALGO", "auto"), "batch_split": not args.no_batch_split,
        "settle_s": DEFAULT_SETTLE_S if args.settle is None else args.settle, "settle_warm_s": SETTLE_WARM_S}),
        flush=True)
    if args.no_batch_split:
        kernels.batch_ranges = lambda a, n, work=None: None
    shapes = [sh for sh in grid(args.quick)
              if all(not keep or sh[i] in keep for i, keep in ((1, args.in_channels), (3, args.map),
                                                                (4, args.kernel), (5, args.stride)))]
    for n in counts:
        nr.set_num_threads(n)
        torch.set_num_threads(n)
        settle_for(n, args.settle if n > 1 else None)
        ratios = []
        for shape in shapes:
            ours, peer = _sides(*shape)
            t = compare(ours, peer, reps=args.reps, warmup=1)
            ratio = t["neurona_s"] / t["peer_s"]
            ratios.append((ratio, shape))
            b, c, k_out, m, k, s = shape
            print(json.dumps({"threads": n, "batch": b, "in": c, "out": k_out, "map": m, "kernel": k, "stride": s,
                              "neurona_ms": round(t["neurona_s"] * 1e3, 3), "torch_ms": round(t["peer_s"] * 1e3, 3),
                              "ratio": round(ratio, 3), "ratio_of_min": round(t["neurona_min_s"] / t["peer_min_s"], 3),
                              "loadavg_1m": round(os.getloadavg()[0], 2)}), flush=True)
        worst = max(ratios)
        print(json.dumps({"summary": True, "threads": n, "shapes": len(ratios),
                          "median_ratio": round(statistics.median(r for r, _ in ratios), 3),
                          "worst_ratio": round(worst[0], 3), "worst_shape": list(worst[1]),
                          "above_1.3": sum(r > 1.3 for r, _ in ratios),
                          "loadavg": [round(v, 2) for v in os.getloadavg()]}), flush=True)


if __name__ == "__main__":
    main()
