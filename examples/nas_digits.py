"""Neural architecture search on the 8×8 digits: an LSTM controller trained with REINFORCE
(moving-average baseline) against random search with the same budget of child networks, then the
best architecture of each and a hand-designed CNN trained fully and scored on the test set.

    python examples/nas_digits.py                         # budget 20 children, 3 epochs each
    python examples/nas_digits.py --budget 40 --child-epochs 5

Writes out/nas_digits/search.png (validation accuracy of each child, and the running best)
and results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from neurona.datasets import digits
from neurona.meta.nas import SearchSpace, search, train_child


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=int, default=20)
    p.add_argument("--child-epochs", type=int, default=3)
    p.add_argument("--final-epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out")
    args = p.parse_args(argv)
    out = Path(args.out) / "nas_digits"
    out.mkdir(parents=True, exist_ok=True)
    (x, y), (xt, yt) = digits()
    x, xt = x[:, None] / 16.0, xt[:, None] / 16.0
    cut = int(0.8 * len(x))  # validation split of the training images: the controller's reward
    data = ((x[:cut], y[:cut]), (x[cut:], y[cut:]))
    space = SearchSpace(input_size=8, n_layers=2)
    runs, times = {}, {}
    for name, random in (("controller", False), ("random", True)):
        start = time.perf_counter()
        runs[name] = search(space, data, budget=args.budget, child_epochs=args.child_epochs, seed=args.seed,
                            random=random, log=print)
        times[name] = round(time.perf_counter() - start, 1)
    hand = [16, 3, 0, 32, 3, 1]  # conv16@3 → conv32@3 → pool → dense
    final = {}
    for name, arch in (("controller best", max(runs["controller"], key=lambda t: t[1])[0]),
                       ("random best", max(runs["random"], key=lambda t: t[1])[0]), ("hand-designed", hand)):
        acc = train_child(space, arch, ((x, y), (xt, yt)), epochs=args.final_epochs, seed=args.seed)
        final[name] = {"architecture": space.describe(arch), "test_accuracy": acc}
        print(f"{name}: {space.describe(arch)}  test acc {acc:.3f}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, hist in runs.items():
        r = [t[1] for t in hist]
        ax.plot(range(1, len(r) + 1), r, "o", alpha=0.5, label=f"{name}: each child")
        ax.plot(range(1, len(r) + 1), np.maximum.accumulate(r), "-", label=f"{name}: best so far")
    ax.set_xlabel("child network")
    ax.set_ylabel("validation accuracy")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "search.png", dpi=110)
    record = {"command": "python examples/nas_digits.py " + " ".join(argv or __import__("sys").argv[1:]),
              "search_seconds": times, "load_avg": os.getloadavg(), "final": final,
              "history": {k: [(space.describe(a), r) for a, r in v] for k, v in runs.items()}}
    (out / "results.json").write_text(json.dumps(record, indent=1))
    print(f"search curve in {out}/search.png")


if __name__ == "__main__":
    main()
