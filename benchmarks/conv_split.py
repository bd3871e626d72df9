"""conv2d's three ops split over the batch at 2 threads, and what they would take on free cores:
`python -m benchmarks.conv_split [--reps 30] [--layers 128x1x6x28x5,...]`.

Each op (forward, input gradient, filter gradient) of each layer runs with
`nr.set_num_threads(1)`, then with `nr.set_num_threads(2)`; the batch ranges are traced (start,
duration and thread CPU time of each range). Besides the wall times (median and min), each line
gives the op's **critical path on two free cores**: the process CPU time of the op minus the
ranges' CPU time (the serial part: dispatch, allocation, the pieces outside the ranges), plus the
longest range's CPU time. CPU time is what a thread computes, not how long it waits for a core,
so this estimate holds on a loaded machine, where the wall time at 2 threads says only that the
second core was busy (a range that waits shows a duration of twice its CPU time). It ignores
what two threads cost each other in shared caches and memory bandwidth, which only a quiet
machine's wall time shows. glibc's allocator is tuned first, as a training step's first backward
pass does (`kernels.tune_malloc`). Layer `NxCxKxMAPxk`: batch N, C→K channels, MAP×MAP input, k×k
kernel, padding k // 2 unless the name ends in `v` (valid, LeNet's second layer); `s2` after it
sets stride 2 (`32x16x32x28x3s2`).
May import: numpy, neurona.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from ._blasenv import rerun_unpinned

rerun_unpinned("benchmarks.conv_split")

import numpy as np  # noqa: E402

import neurona as nr  # noqa: E402
from neurona.backend import kernels  # noqa: E402
from neurona.ops import conv  # noqa: E402

# W2's two layers (LeNet: the direct kernel, then im2col), then Winograd 3×3 and 5×5 on 16 channels
LAYERS = "128x1x6x28x5,128x6x16x14x5v,32x16x32x14x3,32x16x32x28x5"


def _layer(spec, rng):
    valid = spec.endswith("v")
    body, _, stride = spec.rstrip("v").partition("s")
    n, c, k, m, ks = (int(v) for v in body.split("x"))
    x = rng.standard_normal((n, c, m, m), dtype=np.float32)
    w = rng.standard_normal((k, c, ks, ks), dtype=np.float32)
    geo = conv.make_geometry("conv_split", x.shape, (ks, ks), int(stride or 1), 0 if valid else ks // 2, 1, "floor")
    gy = rng.standard_normal((n, k, geo.oh, geo.ow), dtype=np.float32)
    return {"forward": lambda: kernels.conv_by_batch(conv.conv_forward, x, w, geo),
            "input_grad": lambda: kernels.conv_input_grad_by_batch(conv.conv_input_grad, gy, w, geo, n),
            "weight_grad": lambda: kernels.conv_weight_grad_by_batch(conv.conv_weight_grad, x, gy, geo, None)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--layers", default=LAYERS)
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE as set")
    args = ap.parse_args(argv)
    ranges_log = []
    real = kernels.over_batch

    def traced(ranges, task):
        def timed(i, b0, b1):
            wall, cpu = time.perf_counter(), time.thread_time()
            out = task(i, b0, b1)
            ranges_log.append((i, time.perf_counter() - wall, time.thread_time() - cpu))
            return out
        return real(ranges, timed)

    kernels.over_batch = traced
    kernels.tune_malloc()  # as the first backward pass of a training step does
    print(json.dumps({"loadavg": open("/proc/loadavg").read().split()[:3], "reps": args.reps}), flush=True)
    rng = np.random.default_rng(0)
    for spec in args.layers.split(","):
        for op, fn in _layer(spec, rng).items():
            line = {"layer": spec, "op": op}
            for threads in (1, 2):
                nr.set_num_threads(threads)
                for _ in range(3):
                    fn()
                walls, cpus, paths, durations = [], [], [], []
                for _ in range(args.reps):
                    ranges_log.clear()
                    wall, cpu = time.perf_counter(), time.process_time()
                    fn()
                    walls.append(time.perf_counter() - wall)
                    cpus.append(time.process_time() - cpu)
                    if len(ranges_log) > 1:
                        range_cpu = [r[2] for r in ranges_log]
                        paths.append(cpus[-1] - sum(range_cpu) + max(range_cpu))
                        durations.append(max(r[1] for r in ranges_log) / max(range_cpu))
                line[f"ms_{threads}t"] = round(statistics.median(walls) * 1e3, 3)
                line[f"min_ms_{threads}t"] = round(min(walls) * 1e3, 3)
                line[f"cpu_ms_{threads}t"] = round(statistics.median(cpus) * 1e3, 3)
                if paths:
                    line["critical_path_ms_2t"] = round(statistics.median(paths) * 1e3, 3)
                    line["longest_range_wall_over_cpu"] = round(statistics.median(durations), 2)
            if "critical_path_ms_2t" in line:
                line["critical_path_over_1t"] = round(line["critical_path_ms_2t"] / line["cpu_ms_1t"], 2)
            print(json.dumps(line), flush=True)
    print(json.dumps({"loadavg_end": open("/proc/loadavg").read().split()[:3]}))


if __name__ == "__main__":
    main()
