"""Learning to learn by gradient descent by gradient descent: a coordinate-wise LSTM optimiser
meta-trained on random 10-D quadratics and on a small MLP (64-20-10, sigmoid) on the 8×8 digits,
then compared with SGD, RMSprop and Adam (learning rates picked from a small grid on training
problems) on held-out problems, and on a larger learner it never saw (two hidden layers of 40).

    python examples/learned_optimizer.py                    # quick
    python examples/learned_optimizer.py --problems 40      # longer meta-training

Writes out/learned_optimizer/curves.png (one panel per task) and results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from neurona.meta.learned_optimizer import (LSTMOptimizer, MLPProblem, QuadraticProblem, meta_train,
                                            run_baseline, run_learned)
from neurona.optim import SGD, Adam, RMSprop

GRID = {"SGD": (SGD, [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]), "RMSprop": (RMSprop, [0.001, 0.003, 0.01, 0.03, 0.1]),
        "Adam": (Adam, [0.003, 0.01, 0.03, 0.1, 0.3])}


def best_rate(cls, rates, make, steps):
    """The rate with the lowest mean final loss on three training problems (seeds 0-2)."""
    scores = [np.mean([run_baseline(cls, make(s), steps, learning_rate=lr)[-1] for s in range(3)]) for lr in rates]
    scores = [s if np.isfinite(s) else np.inf for s in scores]
    return rates[int(np.argmin(scores))]


def compare(name, opt, make, steps, held_out):
    curves = {"LSTM (learned)": np.mean([run_learned(opt, make(s), steps) for s in held_out], axis=0)}
    rates = {}
    for label, (cls, grid) in GRID.items():
        rates[label] = lr = best_rate(cls, grid, make, steps)
        curves[f"{label} (lr={lr})"] = np.mean([run_baseline(cls, make(s), steps, learning_rate=lr)
                                                for s in held_out], axis=0)
    return {k: v.tolist() for k, v in curves.items()}


def plot(results, path):
    """One panel per task, log scale; the y-axis stops at 10x the starting loss so that a
    diverging baseline leaves the top of its panel instead of squashing the others."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    for ax, (task, curves) in zip(axes[0], results.items()):
        start = max(c[0] for c in curves.values())
        low = min(min(v for v in c if np.isfinite(v)) for c in curves.values())
        for label, c in curves.items():
            diverged = not np.isfinite(c[-1]) or c[-1] > 10 * c[0]
            ax.plot(c, lw=2.5 if label.startswith("LSTM") else 1.2,
                    label=label + (" - diverges (off the top)" if diverged else ""))
        ax.set_yscale("log")
        ax.set_ylim(low / 2, 10 * start)
        ax.set_title(task)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (mean of held-out problems)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--problems", type=int, default=12, help="meta-training problems per task")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--unroll", type=int, default=20)
    p.add_argument("--held-out", type=int, default=5)
    p.add_argument("--out", default="out")
    args = p.parse_args(argv)
    out = Path(args.out) / "learned_optimizer"
    out.mkdir(parents=True, exist_ok=True)
    held = range(10_000, 10_000 + args.held_out)
    results, times = {}, {}
    tasks = {"quadratic": lambda s: QuadraticProblem(seed=s), "mlp": lambda s: MLPProblem(seed=s)}
    trained = {}
    for task, make in tasks.items():
        opt = LSTMOptimizer(hidden=20, seed=0)
        start = time.perf_counter()
        meta_train(opt, make, n_problems=args.problems, steps=args.steps, unroll_steps=args.unroll,
                   learning_rate=1e-2, log=print)
        times[task] = round(time.perf_counter() - start, 1)
        trained[task] = opt
        results[task] = compare(task, opt, make, args.steps, held)
    # generalisation: the MLP-trained optimiser on a bigger learner
    big = lambda s: MLPProblem(hidden=40, layers=2, seed=s)  # noqa: E731
    results["mlp 2x40 (unseen)"] = compare("big", trained["mlp"], big, args.steps, held)
    plot(results, out / "curves.png")
    summary = {task: {k: round(v[-1], 4) for k, v in c.items()} for task, c in results.items()}
    record = {"command": "python examples/learned_optimizer.py " + " ".join(argv or __import__("sys").argv[1:]),
              "meta_train_seconds": times, "load_avg": os.getloadavg(), "final_losses": summary, "curves": results}
    (out / "results.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"curves in {out}/curves.png")


if __name__ == "__main__":
    main()
