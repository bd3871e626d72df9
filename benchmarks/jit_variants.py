"""The training step of `examples/fashion_mnist_mlp.py` (784-512-256-10 with batch norm and
dropout, Adam, batch 128) in eager mode and traced four ways: `nr.jit`, `nr.jit(fuse=False)` and
`nr.jit(plan_memory=False)`, to see what each pass of graph mode buys (the table in
docs/graph-mode.md, "Training with fit(jit=True)").

    python -m benchmarks.jit_variants [--steps 40] [--rounds 5] [--threads 1]

Each round runs `--steps` steps of every variant, the variants taking turns in a new random
order each round; the figure is the median over the rounds of the milliseconds per step. All
variants train the same model (the data is random: the step's cost does not depend on it).
Prints the machine, then one JSON line per variant with the load average.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import time
from pathlib import Path

import numpy as np

import neurona as nr
from neurona import losses
from neurona.optimizers import Adam

from .harness import blas_info, cpu_model, set_threads

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fashion_mnist_mlp.py"


def example_model():
    """`build_model()` of the example, loaded from its file (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("fashion_mnist_mlp", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_model()


def variants(model):
    """The step as the trainer runs it (forward in training mode, loss, backward, update), eager
    and traced three ways."""
    loss_fn = losses.get("sparse_categorical_crossentropy")
    opt = model.optimizer

    def step(x, y):
        loss = loss_fn(y, model(x, training=True))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return {"eager": step, "jit": nr.jit(step), "jit(fuse=False)": nr.jit(step, fuse=False),
            "jit(plan_memory=False)": nr.jit(step, plan_memory=False)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="steps per variant per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    print(json.dumps({"machine": cpu_model(), "cores": os.cpu_count(), "blas": blas_info(),
                      "numpy": np.__version__, "threads": args.threads}), flush=True)

    nr.manual_seed(0)
    model = example_model()
    model.compile(optimizer=Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = nr.tensor(rng.random((args.batch_size, 28, 28), dtype=np.float32))
    y = nr.tensor(rng.integers(0, 10, args.batch_size))
    steps = variants(model)
    for fn in steps.values():  # trace and compile, then warm up
        for _ in range(3):
            fn(x, y)
    times = {name: [] for name in steps}
    order = random.Random(0)
    for _ in range(args.rounds):
        for name in order.sample(list(steps), len(steps)):
            t0 = time.perf_counter()
            for _ in range(args.steps):
                steps[name](x, y)
            times[name].append((time.perf_counter() - t0) / args.steps)
    eager = statistics.median(times["eager"])
    for name, ts in times.items():
        ms = 1e3 * statistics.median(ts)
        print(json.dumps({"variant": name, "ms_per_step": round(ms, 3), "vs_eager": round(ms / (1e3 * eager), 3),
                          "rounds": args.rounds, "steps": args.steps, "loadavg_1m": round(os.getloadavg()[0], 2)}),
              flush=True)


if __name__ == "__main__":
    main()
