"""MAML's sinusoid regression (Finn et al. 2017, §5.1): a 1-40-40-1 ReLU MLP meta-trained with
second-order MAML (one inner step, α = 0.01, K = 10) against a "pretrained" baseline: the same
network trained on the same tasks to fit the query points with no adaptation (joint training),
then fine-tuned on the K support points at test time with the step size (from 0.01, 0.003, 0.001)
that gives the lowest error after 10 steps on 50 training tasks (α = 0.01 makes its fine-tuning
diverge on some tasks).

    python examples/maml_sinusoid.py                      # 2,000 meta-steps of 10 tasks
    python examples/maml_sinusoid.py --meta-steps 200     # a quick look

Writes out/maml_sinusoid/sinusoid.png (plot_sinusoid_fit: one new task, 0, 1 and 10 steps) and
results.json (mean squared error on held-out tasks after 0, 1 and 10 gradient steps).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import neurona as nr
from neurona.meta import MAML, FunctionalMLP, SinusoidTasks, mean_ci95, mse, plot_sinusoid_fit


FINE_TUNE_RATES = (0.01, 0.003, 0.001)


def evaluate(model, tasks, steps):
    """Mean (and 95% half-width) over `tasks` of the query MSE after `steps` inner steps."""
    with np.errstate(all="ignore"):  # a diverging fine-tune is reported as inf/nan, not warned about
        return mean_ci95([float(np.mean((model.predict(s, q[0], steps=steps) - q[1]) ** 2)) for s, q in tasks])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--meta-steps", type=int, default=2000)
    p.add_argument("--meta-batch", type=int, default=10)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--inner-lr", type=float, default=0.01)
    p.add_argument("--test-tasks", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out")
    args = p.parse_args(argv)
    out = Path(args.out) / "maml_sinusoid"
    out.mkdir(parents=True, exist_ok=True)
    test = SinusoidTasks(seed=10_000 + args.seed).batch(args.test_tasks, k=args.k)
    models, times, curves = {}, {}, {}
    # inner_steps=0 in training: the plain regression loss on the query points = joint pretraining
    for name, inner in (("MAML", 1), ("pretrained", 0)):
        nr.manual_seed(args.seed)
        tasks = SinusoidTasks(seed=args.seed)
        model = MAML(FunctionalMLP((1, 40, 40, 1)), loss=mse, inner_lr=args.inner_lr, inner_steps=inner,
                     meta_optimizer=nr.optim.Adam(learning_rate=1e-3), seed=args.seed)
        start = time.perf_counter()
        curve = []
        for i in range(args.meta_steps):
            curve.append(model.meta_step(tasks.batch(args.meta_batch, k=args.k)))
            if (i + 1) % max(1, args.meta_steps // 10) == 0:
                print(f"{name} {i + 1}/{args.meta_steps}: meta-loss (mean of last 50) "
                      f"{np.mean(curve[-50:]):.3f}", flush=True)
        times[name] = round(time.perf_counter() - start, 1)
        models[name], curves[name] = model, curve
    # the baseline's fine-tuning rate, chosen on training tasks (never the test tasks)
    pick = SinusoidTasks(seed=20_000 + args.seed).batch(50, k=args.k)
    scores = {}
    for lr in FINE_TUNE_RATES:
        models["pretrained"].inner_lr = lr
        mean, _ = evaluate(models["pretrained"], pick, 10)
        scores[lr] = mean if np.isfinite(mean) else np.inf
    models["pretrained"].inner_lr = min(scores, key=scores.get)
    print(f"pretrained: fine-tuning rate {models['pretrained'].inner_lr} (10-step MSE on training tasks "
          f"{ {k: round(v, 3) for k, v in scores.items()} })")
    results = {}
    for name, model in models.items():
        results[name] = {}
        for steps in (0, 1, 10):
            mean, ci = evaluate(model, test, steps)
            results[name][f"{steps} steps"] = {"mse": round(mean, 4), "ci95": round(ci, 4)}
            print(f"{name}, {steps} step(s): query MSE {mean:.3f} ± {ci:.3f} ({len(test)} tasks)")
    plot_sinusoid_fit(models["MAML"], out / "sinusoid.png", k=args.k, baseline=models["pretrained"],
                      title=f"sinusoid regression, K = {args.k}, {args.meta_steps} meta-steps")
    record = {"command": "python examples/maml_sinusoid.py " + " ".join(argv or __import__("sys").argv[1:]),
              "train_seconds": times, "fine_tune_rate": models["pretrained"].inner_lr, "load_avg": os.getloadavg(), "test_tasks": len(test), "results": results,
              "curves": curves}
    (out / "results.json").write_text(json.dumps(record, indent=1))
    print(f"picture in {out}/sinusoid.png")
    return record


if __name__ == "__main__":
    main()
