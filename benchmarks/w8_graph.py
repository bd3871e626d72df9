"""W8: graph mode. W1 (MLP 784-512-512-10, SGD momentum, batch 128) and W5 (DQN learner
4-128-128-2, target network, Huber, Adam, batch 32) training steps, traced with `nr.jit`,
against the same steps in neurona eager, PyTorch eager and `torch.compile` (when it works
offline here), timed alternately in one loop; plus the peak memory of the traced and eager W1
step (tracemalloc, and the memory planner's own accounting).

`python -m benchmarks.w8_graph [--threads 1,all] [--reps N] [--no-compile]` prints JSON lines.
Like `benchmarks.run`, it re-runs itself once without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (pins
that hold NumPy's GEMM to slower kernels) unless --keep-blas-env is given.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import tracemalloc

_BLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if (__name__ == "__main__" and "--keep-blas-env" not in sys.argv
        and any(v in os.environ for v in _BLAS_PINS)):
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_PINS}
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.w8_graph", *sys.argv[1:]], env)

import numpy as np
import torch

import neurona as nr
from neurona import functional as F

from .harness import blas_info, cpu_model, set_threads, settle
from .workloads import _nr, torch_w1

TORCH = f"torch {torch.__version__.split('+')[0]} eager"


def report(workload, ours_s, peer_s, unit, peer, threads, **extra):
    """Print one JSON line in the shape of the other workloads' (ratio = neurona / peer)."""
    row = {"workload": workload, "neurona_s": round(ours_s, 7), "peer_s": round(peer_s, 7),
           "ratio": round(ours_s / peer_s, 3), "unit": unit, "peer": peer, "threads": threads,
           "loadavg_1m": round(os.getloadavg()[0], 2)}
    row.update(extra)
    print(json.dumps(row), flush=True)
    return row


def time_sides(sides: dict, reps: int, warmup: int = 3) -> dict:
    """Median seconds per call of each side, the sides taking turns in a new random order each
    round: a fixed rotation would always run the same side right after PyTorch, whose OpenMP
    threads keep spinning for a while after each op and slow whoever comes next."""
    for _ in range(warmup):
        for fn in sides.values():
            fn()
    names = list(sides)
    times = {n: [] for n in names}
    rng = random.Random(0)
    for _ in range(reps):
        order = rng.sample(names, len(names))
        for n in order:
            settle(sides[n])
            t0 = time.perf_counter()
            sides[n]()
            times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(v) for n, v in times.items()}


def _maybe_compile(fn, use_compile):
    """torch.compile(fn) and one call to build it, or (None, why not)."""
    if not use_compile:
        return None, "skipped (--no-compile)"
    try:
        compiled = torch.compile(fn)
        t0 = time.perf_counter()
        compiled()
        compiled()
        return compiled, f"compiled in {time.perf_counter() - t0:.1f} s"
    except Exception as e:  # noqa: BLE001 - report whatever stops it on this machine
        return None, f"unavailable: {type(e).__name__}: {str(e).splitlines()[0][:160]}"


# -- W1 -------------------------------------------------------------------------------------
def w1_sides():
    layers, x, y, torch_step = torch_w1()

    def make_step():
        params = []
        for lin in layers:
            params += [_nr(lin.weight, transpose=True), _nr(lin.bias)]
        vel = [nr.zeros_like(p) for p in params]

        def step(nx, ny):
            w1, b1, w2, b2, w3, b3 = params
            h = F.relu(nx @ w1 + b1)
            h = F.relu(h @ w2 + b2)
            loss = F.cross_entropy(h @ w3 + b3, ny)
            loss.backward()
            with nr.no_grad():
                for p, v in zip(params, vel):
                    v *= 0.9
                    v += p.grad
                    p -= 0.01 * v
                    p.grad = None
            return loss

        return step

    nx, ny = nr.tensor(x.numpy()), nr.tensor(y.numpy())
    eager, traced = make_step(), nr.jit(make_step())
    return torch_step, (lambda: eager(nx, ny)), (lambda: traced(nx, ny)), traced


# -- W5 -------------------------------------------------------------------------------------
def w5_sides():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                              torch.nn.ReLU(), torch.nn.Linear(128, 2))
    tgt = torch.nn.Sequential(torch.nn.Linear(4, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                              torch.nn.ReLU(), torch.nn.Linear(128, 2))
    tgt.load_state_dict(net.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    s, s2 = torch.randn(32, 4, generator=g), torch.randn(32, 4, generator=g)
    a = torch.randint(0, 2, (32,), generator=g)
    r = torch.randn(32, generator=g)
    done = (torch.rand(32, generator=g) < 0.1).float()
    gamma = 0.99

    def torch_step():
        q = net(s).gather(1, a[:, None]).squeeze(1)
        with torch.no_grad():
            target = r + gamma * tgt(s2).max(1).values * (1 - done)
        loss = torch.nn.functional.huber_loss(q, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    lins = [m for m in net if isinstance(m, torch.nn.Linear)]
    tlins = [m for m in tgt if isinstance(m, torch.nn.Linear)]

    def make_step():
        params, tparams = [], []
        for lin, tl in zip(lins, tlins):
            params += [_nr(lin.weight, transpose=True), _nr(lin.bias)]
            tparams += [_nr(tl.weight, transpose=True).detach(), _nr(tl.bias).detach()]
        m = [nr.zeros_like(p) for p in params]
        v = [nr.zeros_like(p) for p in params]
        count = nr.zeros(())
        b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-8

        def mlp(x, ps):
            w1, c1, w2, c2, w3, c3 = ps
            return F.relu(F.relu(x @ w1 + c1) @ w2 + c2) @ w3 + c3

        def step(ns, na, nr_, ns2, ndone):
            q = nr.gather(mlp(ns, params), na.reshape(-1, 1), axis=1).reshape(-1)
            with nr.no_grad():
                target = nr_ + gamma * mlp(ns2, tparams).max(axis=1) * (1 - ndone)
            loss = F.huber_loss(q, target)
            loss.backward()
            with nr.no_grad():
                t = count
                t += 1  # the step count is a tensor, so bias correction is in the graph
                k1, k2 = 1 - b1 ** t, 1 - b2 ** t
                for p, mm, vv in zip(params, m, v):
                    mm *= b1
                    mm += (1 - b1) * p.grad
                    vv *= b2
                    vv += (1 - b2) * (p.grad * p.grad)
                    p -= lr * (mm / k1) / ((vv / k2).sqrt() + eps)
                    p.grad = None
            return loss

        return step

    args = [nr.tensor(t.numpy()) for t in (s, a, r, s2, done)]
    eager, traced = make_step(), nr.jit(make_step())
    return torch_step, (lambda: eager(*args)), (lambda: traced(*args)), traced


def peak_memory(fn, calls=3) -> int:
    """Peak bytes tracemalloc sees allocated during `calls` calls of `fn` (after a warm-up)."""
    fn()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(calls):
        fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def run(workload, make, threads, reps, use_compile):
    torch_step, eager, traced_call, traced = make()
    compiled, compile_note = _maybe_compile(torch_step, use_compile)
    t0 = time.perf_counter()
    traced_call()  # trace + compile (numba kernels) once, outside the timing
    trace_s = time.perf_counter() - t0
    sides = {"jit": traced_call, "eager": eager, "torch": torch_step}
    if compiled is not None:
        sides["torch_compile"] = compiled
    t = time_sides(sides, reps)
    extra = {"neurona_eager_s": round(t["eager"], 7), "jit_speedup_vs_eager": round(t["eager"] / t["jit"], 2),
             "trace_and_compile_s": round(trace_s, 2), "torch_compile": compile_note}
    if "torch_compile" in t:
        extra["torch_compile_s"] = round(t["torch_compile"], 7)
        extra["ratio_vs_torch_compile"] = round(t["jit"] / t["torch_compile"], 3)
    if workload == "W1":
        plan = traced.memory_stats()
        extra.update(peak_bytes_eager_tracemalloc=peak_memory(eager),
                     peak_bytes_jit_tracemalloc=peak_memory(traced_call),
                     jit_arena_bytes=plan["arena_bytes"], jit_planned_peak_bytes=plan["peak_bytes"],
                     jit_planned_peak_no_reuse_bytes=plan["peak_bytes_no_reuse"])
    return report(f"W8-{workload}", t["jit"], t["torch"], "s/step", TORCH, threads, **extra)


def w8(threads, reps):
    """Both W8 rows at the thread count already set: the signature of `benchmarks.workloads`,
    so `benchmarks.run` can list it as `"W8": w8` (reps 5 gives 40 W1 and 160 W5 steps)."""
    return [run("W1", w1_sides, threads, reps * 8, True), run("W5", w5_sides, threads, reps * 32, True)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,all")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE as set")
    args = ap.parse_args(argv)
    print(json.dumps({"machine": cpu_model(), "cores": os.cpu_count(), "blas": blas_info(),
                      "torch": torch.__version__, "numpy": np.__version__,
                      "loadavg": [round(x, 2) for x in os.getloadavg()]}), flush=True)
    for n in [os.cpu_count() if t == "all" else int(t) for t in args.threads.split(",")]:
        limits = set_threads(n)
        run("W1", w1_sides, n, args.reps, not args.no_compile)
        run("W5", w5_sides, n, args.reps * 4, not args.no_compile)
        del limits


if __name__ == "__main__":
    main()
