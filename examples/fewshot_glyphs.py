"""Few-shot classification of Omniglot-like glyphs rendered from the Noto fonts (or of
Fashion-MNIST class splits): Prototypical Networks, MAML (second- or first-order) and a
fine-tuning baseline, 5-way 1-shot and 5-shot, with 95% confidence intervals over the test
episodes. Meta-train, meta-validation and meta-test classes are disjoint.

    python examples/fewshot_glyphs.py                         # quick: few training episodes
    python examples/fewshot_glyphs.py --train-episodes 2000 --test-episodes 600
    python examples/fewshot_glyphs.py --data fashion_mnist    # classes 0-5 train, 6-7 val, 8-9 test... (5-way
                                                              # needs 5 test classes: 5 train / 0 val / 5 test)
    python examples/fewshot_glyphs.py --methods protonet maml --first-order

Writes out/fewshot_<data>/results.json, a picture of sample episodes and the learning curves.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import neurona as nr
from neurona.layers import Activation, BatchNormalization, Conv2D, Flatten, MaxPooling2D
from neurona.meta import (MAML, EpisodeSampler, FineTuneBaseline, FunctionalConvNet, ProtoNet, mean_ci95,
                          split_classes)
from neurona.meta.glyphs import render_glyphs
from neurona.models import Sequential
from neurona.optimizers import Adam


def encoder(width=32, blocks=3):
    """Snell et al.'s embedding: blocks of Conv 3×3 + BatchNorm + ReLU + MaxPool 2 (28 → 3)."""
    layers = []
    for i in range(blocks):
        layers += [Conv2D(width, 3, padding="same", input_shape=(1, 28, 28)) if i == 0 else
                   Conv2D(width, 3, padding="same"), BatchNormalization(axis=1), Activation("relu"),
                   MaxPooling2D(2, rounding="floor")]
    return Sequential(layers + [Flatten()], name="encoder")


def load(data, seed):
    if data == "glyphs":
        x, y, names = render_glyphs(chars_per_script=8, samples_per_class=20, rotations=True, seed=seed)
        tr, va, te = split_classes(y, int(0.7 * y.max()), int(0.1 * y.max()), seed=seed)
        return x, y, names, (tr, va, te)
    (x, y), (xt, yt) = nr.datasets.fashion_mnist()
    x, y = np.concatenate([x, xt])[:, None], np.concatenate([y, yt]).astype(np.int64)
    names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
    tr, va, te = split_classes(y, 5, 0, 5, seed=seed)
    return x, y, names, (tr, va, te)


def preprocess(a):
    return np.asarray(a, dtype=np.float32) / 255.0


def run(args, k_shot, x, y, splits, log):
    tr, va, te = splits
    n_query = args.query
    results = {}
    test = EpisodeSampler(x, y, classes=te, n_way=args.way, k_shot=k_shot, n_query=n_query, seed=1000 + k_shot)
    test_eps = [test.sample() for _ in range(args.test_episodes)]
    for method in args.methods:
        nr.manual_seed(args.seed)
        train = EpisodeSampler(x, y, classes=tr, n_way=args.way, k_shot=k_shot, n_query=n_query, seed=args.seed)
        start = time.perf_counter()
        curve = []
        if method == "protonet":
            learner = ProtoNet(encoder(args.width), Adam(1e-3), preprocess=preprocess)
            for i, ep in enumerate(train.episodes(args.train_episodes)):
                curve.append(learner.train_step(ep)["accuracy"])
            train_time = time.perf_counter() - start
            accs = learner.evaluate(test_eps)
        elif method == "maml":
            net = FunctionalConvNet(1, (args.width,) * 3, args.way, image_size=28)
            learner = MAML(net, inner_lr=args.inner_lr, inner_steps=1, first_order=args.first_order,
                           meta_optimizer=Adam(1e-3), seed=args.seed)
            for i in range(args.train_episodes // args.meta_batch):
                tasks = [((preprocess(ep.support_x), ep.support_y), (preprocess(ep.query_x), ep.query_y))
                         for ep in train.episodes(args.meta_batch)]
                curve.append(learner.meta_step(tasks))
            train_time = time.perf_counter() - start
            accs = [float((learner.predict((preprocess(ep.support_x), ep.support_y), preprocess(ep.query_x),
                                           steps=args.test_inner_steps).argmax(1) == ep.query_y).mean())
                    for ep in test_eps]
        else:
            learner = FineTuneBaseline(encoder(args.width), preprocess=preprocess)
            n_images = args.train_episodes * args.way * (k_shot + n_query)  # the same number of images seen
            keep = np.flatnonzero(np.isin(y, tr))
            pick = np.random.default_rng(args.seed).choice(keep, size=min(n_images, len(keep)), replace=False)
            hist = learner.pretrain(x[pick], y[pick], tr, epochs=1, batch_size=64, seed=args.seed)
            curve = hist.history["accuracy"]
            train_time = time.perf_counter() - start
            accs = learner.evaluate(test_eps)
        mean, ci = mean_ci95(accs)
        results[method] = {"accuracy": mean, "ci95": ci, "train_seconds": round(train_time, 1),
                           "test_episodes": len(accs), "curve": curve}
        log(f"{args.way}-way {k_shot}-shot {method}: {100 * mean:.1f}% ± {100 * ci:.1f} "
            f"({len(accs)} test episodes; trained {train_time:.0f} s)")
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=("glyphs", "fashion_mnist"), default="glyphs")
    p.add_argument("--methods", nargs="+", default=["protonet", "maml", "finetune"],
                   choices=("protonet", "maml", "finetune"))
    p.add_argument("--shots", nargs="+", type=int, default=[1, 5])
    p.add_argument("--way", type=int, default=5)
    p.add_argument("--query", type=int, default=5)
    p.add_argument("--train-episodes", type=int, default=200)
    p.add_argument("--test-episodes", type=int, default=600)
    p.add_argument("--meta-batch", type=int, default=4)
    p.add_argument("--inner-lr", type=float, default=0.4)
    p.add_argument("--test-inner-steps", type=int, default=3)
    p.add_argument("--first-order", action="store_true")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out")
    args = p.parse_args(argv)
    out = Path(args.out) / f"fewshot_{args.data}"
    out.mkdir(parents=True, exist_ok=True)
    x, y, names, splits = load(args.data, args.seed)
    print(f"{args.data}: {len(x)} images, {y.max() + 1} classes; meta-train/val/test classes "
          f"{len(splits[0])}/{len(splits[1])}/{len(splits[2])}")
    from neurona.generative import save_image_grid  # noqa: F401 - a picture helper (see docs)

    ep = EpisodeSampler(x, y, classes=splits[2], n_way=args.way, k_shot=5, n_query=0, seed=0).sample()
    _save_grid(ep.support_x, out / "test_episode.png", args.way)
    lines = []

    def log(line):
        print(line, flush=True)
        lines.append(line)

    all_results = {f"{k}-shot": run(args, k, x, y, splits, log) for k in args.shots}
    result = {"command": "python examples/fewshot_glyphs.py " + " ".join(argv or __import__("sys").argv[1:]),
              "data": args.data, "classes": [len(s) for s in splits], "load_avg": os.getloadavg(),
              "results": all_results, "summary": lines}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    print(f"results in {out}/results.json")
    return result


def _save_grid(images, path, nrow):
    from PIL import Image

    x = np.asarray(images)[:, 0]
    n, h, w = x.shape
    rows = int(np.ceil(n / nrow))
    grid = np.full((rows * (h + 2) + 2, nrow * (w + 2) + 2), 255, np.uint8)
    for i in range(n):
        r, c = i % nrow, i // nrow  # one column per class
        grid[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + c * (w + 2):2 + c * (w + 2) + w] = 255 - x[i]
    Image.fromarray(np.kron(grid, np.ones((3, 3), np.uint8))).save(path)


if __name__ == "__main__":
    main()
