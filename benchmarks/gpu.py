"""W1, W2 and W3 on one GPU: neurona on CuPy against PyTorch CUDA, side by side.

`python3 -m benchmarks.gpu [--only W1,W2,W3] [--reps N]` prints one JSON line describing the
device, then one line per workload in benchmarks/run.py's format (plus "device"); a workload
that fails prints its error instead, and the others still run. Each timed step ends with its
side's device synchronisation (`cupy.cuda.Device().synchronize()`,
`torch.cuda.synchronize()`), so a step's time covers all of its GPU work, not only the launches.

The models, data and initial weights are W1–W3 of benchmarks/workloads.py (the same seeds, the
torch modules built in the same order; the optimisers and W1's torch builder are imported from
there); each neurona tensor is copied from the torch module before that module moves to the GPU.
TF32 is off on the torch side (cuDNN turns it on for convolutions by default) because CuPy's GEMMs
run in full float32: both sides do the same arithmetic. Takes about a minute on an H100/H200.
May import: numpy, torch, cupy, neurona, benchmarks.workloads, benchmarks.harness.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

import neurona as nr
from neurona import functional as F

from .harness import compare, report
from .workloads import Adam, SGDMomentum, _nr, torch_w1

DEVICE = "cuda"


def _gpu(t: torch.Tensor, transpose=False) -> nr.Tensor:
    """A neurona leaf on the GPU holding torch tensor `t` (copied before the module moves)."""
    return nr.tensor(_nr(t, transpose).data, device=DEVICE, requires_grad=True)


def _data(x: torch.Tensor, y: torch.Tensor):
    return nr.tensor(x.numpy(), device=DEVICE), nr.tensor(y.numpy(), device=DEVICE)


def _torch_step(model, opt, x, y):
    x, y = x.to(DEVICE), y.to(DEVICE)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def build_w1():
    layers, x, y, _ = torch_w1()  # the CPU step it returns is not used: its tensors stay on the host
    params = []
    for lin in layers:
        params += [_gpu(lin.weight, transpose=True), _gpu(lin.bias)]
    W1, b1, W2, b2, W3, b3 = params
    sgd = SGDMomentum(params, lr=0.01, momentum=0.9)
    nx, ny = _data(x, y)

    def ours():
        h = F.relu(nx @ W1 + b1)
        h = F.relu(h @ W2 + b2)
        F.cross_entropy(h @ W3 + b3, ny).backward()
        sgd.step()

    model = torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(), layers[2]).to(DEVICE)
    peer = _torch_step(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), x, y)
    return ours, peer


def build_w2():
    torch.manual_seed(0)  # as workloads.w2: the same modules in the same order, so the same weights
    c1, c2 = torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.Conv2d(6, 16, 5)
    f1, f2, f3 = torch.nn.Linear(400, 120), torch.nn.Linear(120, 84), torch.nn.Linear(84, 10)
    relu, pool = torch.nn.ReLU(), torch.nn.MaxPool2d(2)
    model = torch.nn.Sequential(c1, relu, pool, c2, relu, pool, torch.nn.Flatten(), f1, relu, f2, relu, f3)
    x = torch.randn(128, 1, 28, 28)
    y = torch.randint(0, 10, (128,))
    cw1, cb1, cw2, cb2 = _gpu(c1.weight), _gpu(c1.bias), _gpu(c2.weight), _gpu(c2.bias)
    fc = [(_gpu(f.weight, transpose=True), _gpu(f.bias)) for f in (f1, f2, f3)]
    adam = Adam([cw1, cb1, cw2, cb2] + [p for pair in fc for p in pair], lr=1e-3)
    nx, ny = _data(x, y)

    def ours():
        h = F.max_pool2d(F.relu(F.conv2d(nx, cw1, cb1, padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, cw2, cb2)), 2)
        h = h.reshape(h.shape[0], -1)
        h = F.relu(h @ fc[0][0] + fc[0][1])
        h = F.relu(h @ fc[1][0] + fc[1][1])
        F.cross_entropy(h @ fc[2][0] + fc[2][1], ny).backward()
        adam.step()

    model.to(DEVICE)
    return ours, _torch_step(model, torch.optim.Adam(model.parameters(), lr=1e-3), x, y)


def build_w3():
    torch.manual_seed(0)  # as workloads.w3
    chans = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256)]
    mods, convs = [], []
    for i, (ci, co) in enumerate(chans):
        conv = torch.nn.Conv2d(ci, co, 3, padding=1, bias=False)
        convs.append(conv)
        mods += [conv, torch.nn.BatchNorm2d(co), torch.nn.ReLU()]
        if i % 2:
            mods.append(torch.nn.MaxPool2d(2))
    fa, fb = torch.nn.Linear(256 * 4 * 4, 256), torch.nn.Linear(256, 10)
    model = torch.nn.Sequential(*mods, torch.nn.Flatten(), fa, torch.nn.ReLU(), fb)
    x = torch.randn(64, 3, 32, 32)
    y = torch.randint(0, 10, (64,))
    ws = [_gpu(c.weight) for c in convs]
    # (γ, β, running mean, running variance) of each layer, BatchNorm2d's initial values
    bns = [(nr.ones(co, requires_grad=True, device=DEVICE), nr.zeros(co, requires_grad=True, device=DEVICE),
            nr.zeros(co, device=DEVICE), nr.ones(co, device=DEVICE)) for _, co in chans]
    (wa, ba), (wb, bb) = [(_gpu(f.weight, transpose=True), _gpu(f.bias)) for f in (fa, fb)]
    sgd = SGDMomentum(ws + [p for bn in bns for p in bn[:2]] + [wa, ba, wb, bb], lr=0.01, momentum=0.9)
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

    model.to(DEVICE)
    return ours, _torch_step(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), x, y)


BUILDERS = {"W1": (build_w1, 30), "W2": (build_w2, 20), "W3": (build_w3, 10)}  # reps per --reps 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(BUILDERS), help="comma-separated workload ids")
    ap.add_argument("--reps", type=int, default=1, help="multiplies each workload's timed repetitions")
    args = ap.parse_args(argv)
    wanted = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in BUILDERS]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; choose from {list(BUILDERS)}")
    import cupy  # noqa: PLC0415 - only this script needs it, and only on a GPU machine

    if not torch.cuda.is_available():
        sys.exit("benchmarks.gpu: torch does not see a CUDA device; this benchmark compares on one GPU")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    print(json.dumps({"device": name, "cupy": cupy.__version__, "torch": torch.__version__,
                      "numpy": np.__version__, "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
                      "tf32": False}), flush=True)
    cupy_sync, torch_sync = cupy.cuda.Device().synchronize, torch.cuda.synchronize
    for w in wanted:
        build, reps = BUILDERS[w]
        try:
            ours, peer = build()

            def ours_synced(step=ours):
                step()
                cupy_sync()

            def peer_synced(step=peer):
                step()
                torch_sync()

            # 3 warm-up steps: CuPy compiles each new elementwise kernel on first use
            times = compare(ours_synced, peer_synced, reps=reps * args.reps, warmup=3)
            report(w, times, "s/step", f"torch {torch.__version__.split('+')[0]} eager CUDA", None, device=name)
        except Exception as e:  # noqa: BLE001 - one failing workload must not hide the others' numbers
            print(json.dumps({"workload": w, "device": name, "error": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    main()
