"""im2col against Winograd (or the 1×1 path), layer by layer: one conv2d's forward + both gradients.

`python -m benchmarks.conv_algos [--batch 64] [--threads 1] [--layers 64x64x32,128x128x16]
[--kernel 3|5|1] [--stride 1] [--torch] [--algos auto,im2col] [--input-grad]`
prints one JSON line per layer (C→K on an H×W map, k×k, padding k // 2) with the median time of each
algorithm (NEURONA_CONV_ALGO forced to each in turn, alternating; for --kernel 1 the algorithms
are im2col and 1x1) and `winograd_used`, what the default rule
(`neurona.backend.kernels.winograd.suits`) picks for that layer; --torch adds PyTorch's time. The break-even
points quoted in winograd.py and docs/performance.md come from this script.
Like benchmarks.run, it re-runs itself without OPENBLAS_CORETYPE/L2_SIZE (--keep-blas-env keeps them).
`--transforms` also times Winograd's four tile-transform kernels alone, the written-out F(4×4)
ones against the generic coefficient loops, on the same layers.
May import: numpy, threadpoolctl, neurona.
"""
from __future__ import annotations

import argparse
import json
import os

from ._blasenv import rerun_unpinned

rerun_unpinned("benchmarks.conv_algos")

import numpy as np  # noqa: E402  (after the re-run: the BLAS reads its variables on load)

import neurona as nr  # noqa: E402
from neurona import functional as F  # noqa: E402
from neurona.backend import kernels  # noqa: E402
from neurona.backend.kernels import winograd  # noqa: E402

from .harness import median_s  # noqa: E402

DEFAULT_LAYERS = "3x64x32,16x16x32,32x32x32,64x64x32,64x128x16,128x128x16,128x256x8,256x256x8,512x512x4"


def _median_ms(fn, reps):
    return median_s(fn, reps) * 1e3


def layer_times(n, c, k, size, reps, kernel=3, stride=1, algos=("im2col", "winograd"), peer=False, input_grad=None):
    rng = np.random.default_rng(0)
    pad = kernel // 2
    oh = (size + 2 * pad - kernel) // stride + 1
    input_grad = c > 3 if input_grad is None else input_grad
    x = nr.tensor(rng.standard_normal((n, c, size, size), dtype=np.float32), requires_grad=input_grad)
    w = nr.tensor(rng.standard_normal((k, c, kernel, kernel), dtype=np.float32), requires_grad=True)
    g = nr.tensor(rng.standard_normal((n, k, oh, oh), dtype=np.float32))

    def step():
        x.grad = w.grad = None
        F.conv2d(x, w, padding=pad, stride=stride, rounding="floor").backward(g)

    runs = {algo: step for algo in algos}
    if peer:
        import torch  # noqa: PLC0415 - optional peer

        torch.set_num_threads(1)
        tx = torch.tensor(x.numpy(), requires_grad=input_grad)
        tw = torch.tensor(w.numpy(), requires_grad=True)
        tg = torch.tensor(g.numpy())

        def torch_step():
            tx.grad = tw.grad = None
            torch.nn.functional.conv2d(tx, tw, padding=pad, stride=stride).backward(tg)
        runs["torch"] = torch_step
    out, before = {}, os.environ.get("NEURONA_CONV_ALGO")
    try:
        for _ in range(2):  # alternate, keep the faster median of each
            for algo, fn in runs.items():
                os.environ["NEURONA_CONV_ALGO"] = algo if algo != "torch" else "auto"
                t = _median_ms(fn, reps)
                out[algo] = min(out.get(algo, t), t)
    finally:
        if before is None:
            os.environ.pop("NEURONA_CONV_ALGO", None)
        else:
            os.environ["NEURONA_CONV_ALGO"] = before
    geo = nr.ops.conv.make_geometry("conv_algos", x.shape, kernel, stride, pad, 1, "floor").ints
    used = winograd.suits(n, c, k, geo, 1, kernels.numba_active())
    return out, used


def transform_times(n, c, size, reps):
    """Each F(4×4) tile transform alone: (generic coefficient loops, written out), ms."""
    mod = kernels._fast(np.zeros(1, np.float32))
    rng = np.random.default_rng(0)
    m, th = 4, size // 4
    bt, _, at = winograd._mats(m, np.float32)
    xt = rng.standard_normal((c, m * th + 2, m * th + 2, n)).astype(np.float32)
    gt = rng.standard_normal((c, m * th, m * th, n)).astype(np.float32)
    flat, _, s = winograd._planes(36, c, th * th * n, np.float32)
    flat[...] = rng.standard_normal(flat.shape).astype(np.float32)
    dm = winograd._planes(36, c, th * th * n, np.float32)[0]
    yt = np.empty((c, m * th, m * th, n), np.float32)
    dxt = np.zeros((c, m * th + 2, m * th + 2, n), np.float32)
    pairs = {
        "input": (lambda: mod.winograd_input(xt, bt, m, th, th, dm, s, 0, c),
                  lambda: mod.winograd43_input(xt, th, th, dm, s, 0, c)),
        "output": (lambda: mod.winograd_output(flat, s, at, th, th, yt, 0, c),
                   lambda: mod.winograd43_output(flat, s, th, th, yt, 0, c)),
        "output_adjoint": (lambda: mod.winograd_output_adjoint(gt, at, th, th, dm, s, 0, c),
                           lambda: mod.winograd43_output_adjoint(gt, th, th, dm, s, 0, c)),
        "input_adjoint": (lambda: mod.winograd_input_adjoint(flat, s, bt, m, th, th, dxt, 0, c),
                          lambda: mod.winograd43_input_adjoint(flat, s, th, th, dxt, 0, c)),
    }
    return {name: [round(_median_ms(f, reps), 2) for f in fs] for name, fs in pairs.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads and neurona's kernel threads")
    ap.add_argument("--layers", default=DEFAULT_LAYERS, help="comma-separated CxKxSIZE")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--kernel", type=int, default=3, help="kernel size (3, 5 or 1)")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--torch", action="store_true", help="also time PyTorch (1 thread)")
    ap.add_argument("--tile", type=int, choices=(2, 4), default=4, help="Winograd's output tile for 3×3 (F(m×m, 3×3))")
    ap.add_argument("--tile5", type=int, choices=(2, 4), default=None,
                    help="Winograd's output tile for 5×5 (default: 4 where 4×4 tiles cover the map, else 2)")
    ap.add_argument("--transforms", action="store_true", help="also time the tile transforms alone")
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE as set")
    ap.add_argument("--algos", default=None,
                    help="NEURONA_CONV_ALGO values to alternate, e.g. auto,im2col (default im2col and winograd, or 1x1)")
    ap.add_argument("--input-grad", action="store_true",
                    help="always compute the input gradient (as benchmarks.conv_sweep; default: only for C > 3)")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 - a test dependency

    winograd.TILE = args.tile
    winograd.TILE5 = args.tile5
    threadpool_limits(args.threads)
    nr.set_num_threads(args.threads)
    print(json.dumps({"batch": args.batch, "threads": args.threads, "kernel": args.kernel, "stride": args.stride,
                      "loadavg": os.getloadavg()[0]}), flush=True)
    algos = ("im2col", "1x1") if args.kernel == 1 else ("im2col", "winograd")
    if args.algos:
        algos = tuple(a.strip() for a in args.algos.split(","))
    other = next((a for a in algos if a != "im2col"), "im2col")
    for spec in args.layers.split(","):
        c, k, size = (int(v) for v in spec.lower().split("x"))
        times, used = layer_times(args.batch, c, k, size, args.reps, args.kernel, args.stride, algos, args.torch,
                                  True if args.input_grad else None)
        line = {"layer": f"{c}->{k} on {size}x{size}", **{f"{a}_ms": round(t, 2) for a, t in times.items()},
                "ratio": round(times[other] / times["im2col"], 2), "winograd_used": used,
                "loadavg_1m": round(os.getloadavg()[0], 2)}
        if args.transforms and size % 4 == 0 and args.kernel == 3:
            line["transforms_generic_vs_written_out_ms"] = transform_times(args.batch, c, size, args.reps)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
