"""Cost curves: training throughput (samples/s) against batch size and against width, W1 (MLP) and
W3 (small VGG with batch norm), neurona and PyTorch eager, at 1 thread and at all CPUs:
`python -m benchmarks.cost_curves [--quick] [--threads 1,all] [--png out/cost_curves.png]`.

W1 is 784-w-w-10 (w = 512 in the workload), W3 the VGG of benchmarks.workloads with every channel
count times w/64 (w = 64 in the workload). Each point alternates the two libraries
(benchmarks.harness.compare, median of reps); one JSON line per point, then a PNG with one panel
per (workload, axis): solid lines neurona, dashed PyTorch, one colour per thread count.
May import: numpy, torch, matplotlib, neurona, benchmarks.harness, benchmarks.workloads.
"""
from __future__ import annotations

import argparse
import json
import os

from ._blasenv import rerun_unpinned

rerun_unpinned("benchmarks.cost_curves")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import neurona as nr  # noqa: E402
from neurona import functional as F  # noqa: E402

from .harness import blas_info, compare, cpu_model, settle_for  # noqa: E402
from .workloads import SGDMomentum, _data, _nr, _torch_step  # noqa: E402


def build_mlp(batch, width):
    torch.manual_seed(0)
    layers = [torch.nn.Linear(784, width), torch.nn.Linear(width, width), torch.nn.Linear(width, 10)]
    model = torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(), layers[2])
    x, y = torch.randn(batch, 784), torch.randint(0, 10, (batch,))
    params = []
    for lin in layers:
        params += [_nr(lin.weight, transpose=True), _nr(lin.bias)]
    w1, b1, w2, b2, w3, b3 = params
    sgd = SGDMomentum(params)
    nx, ny = _data(x, y)

    def ours():
        h = F.relu(nx @ w1 + b1)
        h = F.relu(h @ w2 + b2)
        F.cross_entropy(h @ w3 + b3, ny).backward()
        sgd.step()

    return ours, _torch_step(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), x, y)


def build_vgg(batch, width):
    torch.manual_seed(0)
    m = width / 64
    chans = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256)]
    chans = [(ci if i == 0 else max(1, round(ci * m)), max(1, round(co * m))) for i, (ci, co) in enumerate(chans)]
    mods, convs = [], []
    for i, (ci, co) in enumerate(chans):
        conv = torch.nn.Conv2d(ci, co, 3, padding=1, bias=False)
        convs.append(conv)
        mods += [conv, torch.nn.BatchNorm2d(co), torch.nn.ReLU()]
        if i % 2:
            mods.append(torch.nn.MaxPool2d(2))
    last = chans[-1][1]
    fa, fb = torch.nn.Linear(last * 16, 256), torch.nn.Linear(256, 10)
    model = torch.nn.Sequential(*mods, torch.nn.Flatten(), fa, torch.nn.ReLU(), fb)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    ws = [_nr(c.weight) for c in convs]
    bns = [(nr.ones(co, requires_grad=True), nr.zeros(co, requires_grad=True), nr.zeros(co), nr.ones(co))
           for _, co in chans]
    (wa, ba), (wb, bb) = [(_nr(f.weight, transpose=True), _nr(f.bias)) for f in (fa, fb)]
    sgd = SGDMomentum(ws + [p for bn in bns for p in bn[:2]] + [wa, ba, wb, bb])
    nx, ny = _data(x, y)

    def ours():
        h = nx
        for i, (w, bn) in enumerate(zip(ws, bns)):
            h = F.relu(F.batch_norm(F.conv2d(h, w, padding=1), *bn))
            if i % 2:
                h = F.max_pool2d(h, 2)
        h = F.relu(h.reshape(h.shape[0], -1) @ wa + ba)
        F.cross_entropy(h @ wb + bb, ny).backward()
        sgd.step()

    return ours, _torch_step(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), x, y)


def points(quick):
    """(workload, builder, axis, batch, width) for every point of the curves."""
    if quick:
        w1b, w1w, w3b, w3w = (1, 8, 64, 512), (128, 512, 2048), (1, 8, 64), (16, 32, 64)
    else:
        w1b, w1w = (1, 4, 16, 64, 128, 256, 512), (64, 128, 256, 512, 1024, 2048)
        w3b, w3w = (1, 4, 16, 64, 128, 256, 512), (16, 32, 64, 96, 128)
    out = [("W1", build_mlp, "batch", b, 512) for b in w1b] + [("W1", build_mlp, "width", 128, w) for w in w1w]
    out += [("W3", build_vgg, "batch", b, 64) for b in w3b] + [("W3", build_vgg, "width", 64, w) for w in w3w]
    return out


def plot(rows, path):
    import matplotlib  # noqa: PLC0415 - only for the picture
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    for ax, (wl, axis) in zip(axes.ravel(), [("W1", "batch"), ("W1", "width"), ("W3", "batch"), ("W3", "width")]):
        for k, n in enumerate(sorted({r["threads"] for r in rows})):
            sel = [r for r in rows if r["workload"] == wl and r["axis"] == axis and r["threads"] == n]
            xs = [r[axis] for r in sel]
            ax.plot(xs, [r["neurona_samples_s"] for r in sel], "-o", color=f"C{k}", label=f"neurona, {n} thr")
            ax.plot(xs, [r["torch_samples_s"] for r in sel], "--s", color=f"C{k}", label=f"PyTorch, {n} thr")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(axis + (" (batch 128)" if wl == "W1" and axis == "width" else
                              " (batch 64)" if axis == "width" else ""))
        ax.set_ylabel("training samples / s")
        ax.set_title(f"{wl}: throughput against {axis}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    load = max(r["loadavg_1m"] for r in rows)
    fig.suptitle(f"neurona vs PyTorch eager, {cpu_model()}, {nr.backend.available_cpus()} CPUs, "
                 f"load average up to {load:.1f}")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=90)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer points (minutes on 2 quiet cores)")
    ap.add_argument("--threads", default="1,all", help="'1', 'all' or both, comma-separated")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--png", default="out/cost_curves.png")
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE as set")
    args = ap.parse_args(argv)
    counts = [nr.backend.available_cpus() if t.strip() == "all" else int(t) for t in args.threads.split(",")]
    print(json.dumps({"machine": cpu_model(), "cores": os.cpu_count(), "cpus_available": nr.backend.available_cpus(),
                      "blas": blas_info(), "torch": torch.__version__,
                      "loadavg": [round(v, 2) for v in os.getloadavg()]}), flush=True)
    rows = []
    for n in counts:
        nr.set_num_threads(n)
        torch.set_num_threads(n)
        settle_for(n)
        for wl, build, axis, batch, width in points(args.quick):
            t = compare(*build(batch, width), reps=args.reps, warmup=1)
            row = {"workload": wl, "axis": axis, "batch": batch, "width": width, "threads": n,
                   "neurona_samples_s": round(batch / t["neurona_s"], 1), "torch_samples_s": round(batch / t["peer_s"], 1),
                   "ratio": round(t["neurona_s"] / t["peer_s"], 3), "loadavg_1m": round(os.getloadavg()[0], 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    plot(rows, args.png)
    print(json.dumps({"png": args.png}), flush=True)


if __name__ == "__main__":
    main()
