"""W1, W2 and W3 on one GPU: neurona on CuPy against PyTorch CUDA, side by side.

`python3 -m benchmarks.gpu [--only W1,W2,W3] [--reps N]` prints one JSON line describing the
device, then one line per workload in benchmarks/run.py's format (plus "device"); a workload
that fails prints its error instead, and the others still run. Each timed step ends with its
side's device synchronisation (`cupy.cuda.Device().synchronize()`,
`torch.cuda.synchronize()`), so a step's time covers all of its GPU work, not only the launches.

The steps are W1–W3 of benchmarks/workloads.py, built there on device "cuda" (the same seeds,
modules, data, initial weights and optimisers as on the CPU).
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

from .harness import compare, report
from .workloads import build_w1, build_w2, build_w3

DEVICE = "cuda"


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
            ours, peer = build(DEVICE)

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
