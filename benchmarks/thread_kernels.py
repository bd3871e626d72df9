"""neurona's thread-split kernels at 1 and at n threads: `python -m benchmarks.thread_kernels
[--threads 2] [--reps 15]`.

Each kernel (col2im, 2×2 max pooling, its scatter, a Winograd conv forward, the fused batch
norm's forward + backward) runs on the same
arrays with `nr.set_num_threads(1)` and `nr.set_num_threads(n)` alternately (the harness's
`compare`: median of alternating runs); prints one JSON line per kernel and shape with the time at
1 thread, at n threads, their ratio (n/1: below 1 means the threads pay) and the load average.
May import: numpy, neurona, benchmarks.harness.
"""
from __future__ import annotations

import argparse
import json
import os

from ._blasenv import rerun_unpinned

rerun_unpinned("benchmarks.thread_kernels")

import numpy as np  # noqa: E402

import neurona as nr  # noqa: E402
from neurona.backend import kernels  # noqa: E402

from .harness import blas_info, compare, cpu_model  # noqa: E402

# (N, C, H, W): CIFAR-sized layers (W3-like: batch 32 and 64), a wider smaller map, a bigger batch
SHAPES = [(32, 32, 32, 32), (64, 64, 16, 16), (128, 16, 28, 28), (64, 64, 32, 32)]


def _cases(x):
    shape = x.shape
    g3 = nr.ops.conv.make_geometry("bench", shape, (3, 3), (1, 1), (1, 1), (1, 1), "floor").ints
    g2 = nr.ops.conv.make_geometry("bench", shape, (2, 2), (2, 2), (0, 0), (1, 1), "floor").ints
    cols = kernels.im2col(x, g3)
    pooled, arg = kernels.max_pool(x, g2)
    w = np.random.default_rng(1).standard_normal((shape[1], shape[1], 3, 3)).astype(x.dtype)
    os.environ["NEURONA_CONV_ALGO"] = "winograd"
    gamma = nr.ones(shape[1], requires_grad=True)
    beta = nr.zeros(shape[1], requires_grad=True)
    gy = nr.tensor(np.random.default_rng(2).standard_normal(shape).astype(x.dtype))

    def batch_norm():
        y = nr.functional.batch_norm(nr.tensor(x, requires_grad=True), gamma, beta)
        y.backward(gy)

    return {"col2im 3x3": lambda: kernels.col2im(cols, shape, g3),
            "batch_norm fwd+bwd": batch_norm,
            "max_pool 2x2": lambda: kernels.max_pool(x, g2),
            "max_pool_scatter 2x2": lambda: kernels.max_pool_scatter(pooled, arg, shape, g2),
            "winograd conv 3x3": lambda: kernels.winograd_conv(x, w, g3)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=nr.backend.available_cpus())
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--keep-blas-env", action="store_true")
    args = ap.parse_args(argv)
    print(json.dumps({"cpu": cpu_model(), "cpus_available": nr.backend.available_cpus(), "blas": blas_info(),
                      "threads": args.threads, "loadavg": [round(v, 2) for v in os.getloadavg()]}), flush=True)
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        for name, fn in _cases(x).items():
            def one():
                nr.set_num_threads(1)
                fn()

            def many():
                nr.set_num_threads(args.threads)
                fn()
            t = compare(many, one, reps=args.reps, warmup=2)
            print(json.dumps({"kernel": name, "shape": list(shape), "t1_ms": round(t["peer_s"] * 1e3, 3),
                              f"t{args.threads}_ms": round(t["neurona_s"] * 1e3, 3),
                              "ratio": round(t["neurona_s"] / t["peer_s"], 3),
                              "ratio_of_min": round(t["neurona_min_s"] / t["peer_min_s"], 3),
                              "loadavg_1m": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
