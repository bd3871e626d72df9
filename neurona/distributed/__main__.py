"""Command line: train a saved model on a named dataset with a distributed strategy, locally or
on a Ray cluster.

    python -m neurona.distributed train --model-config out/mlp --dataset fashion_mnist \\
        --strategy downpour --workers 4 --shards 2 --n-fetch 5 --n-push 5 --epochs 2 \\
        [--address HEAD_IP:6379] [--out out/mlp-trained] [--log-dir out/tb]

--model-config: a model folder written by `model.save(...)` (its weights are the starting point)
or a config.json alone (fresh weights); the model must have been compiled before saving.
May import: argparse, json, os, numpy, neurona.saving, neurona.datasets, neurona.distributed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

STRATEGIES = ("averaging", "async", "downpour", "allreduce", "pipeline")


def _load_model(path):
    from ..saving import load_model
    from . import replica

    if os.path.isdir(path):
        return load_model(path)
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    if not saved.get("compile"):
        raise SystemExit(f"{path}: no compile settings in this config; compile the model before saving it")
    return replica.rebuild(json.dumps({k: saved[k] for k in ("class_name", "config", "compile")}))


def _dataset(name, model):
    from .. import datasets

    loaders = {"fashion_mnist": datasets.fashion_mnist, "mnist": datasets.mnist, "digits": datasets.digits}
    if name not in loaders:
        raise SystemExit(f"--dataset: unknown {name!r}; choose from {sorted(loaders)}")
    (x, y), (xt, yt) = loaders[name]()
    scale = 16.0 if name == "digits" else 255.0
    shape = tuple(model.input_shape[1:])
    x, xt = (a.astype(np.float32).reshape(len(a), *shape) / scale for a in (x, xt))
    return (x, y.astype(np.int64)), (xt, yt.astype(np.int64))


def _strategy(args):
    from . import AllReduce, AsyncSGD, Downpour, ModelParallel, ParameterAveraging

    common = dict(call_timeout=args.call_timeout)
    if args.strategy == "averaging":
        return ParameterAveraging(args.workers, period=args.period, **common)
    if args.strategy == "async":
        return AsyncSGD(args.workers, staleness=args.staleness, max_staleness=args.max_staleness, **common)
    if args.strategy == "downpour":
        return Downpour(args.workers, shards=args.shards, n_fetch=args.n_fetch, n_push=args.n_push,
                        staleness=args.staleness, max_staleness=args.max_staleness, **common)
    if args.strategy == "allreduce":
        return AllReduce(args.workers, **common)
    return ModelParallel(stages=args.workers, micro_batches=args.micro_batches, **common)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m neurona.distributed")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a saved model on a dataset with a distributed strategy")
    t.add_argument("--model-config", required=True, help="model folder (model.save) or its config.json")
    t.add_argument("--dataset", required=True, help="fashion_mnist, mnist or digits")
    t.add_argument("--strategy", choices=STRATEGIES, default="averaging")
    t.add_argument("--workers", type=int, default=2, help="workers (stages for --strategy pipeline)")
    t.add_argument("--period", type=int, default=1, help="averaging: local steps between averagings")
    t.add_argument("--shards", type=int, default=2, help="downpour: parameter-server shards")
    t.add_argument("--n-fetch", type=int, default=1)
    t.add_argument("--n-push", type=int, default=1)
    t.add_argument("--staleness", choices=("drop", "scale"), default=None)
    t.add_argument("--max-staleness", type=int, default=None)
    t.add_argument("--micro-batches", type=int, default=4)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--batch-size", type=int, default=64, help="samples per step of one worker")
    t.add_argument("--samples", type=int, default=None, help="train on the first N samples only")
    t.add_argument("--address", default=None, help="Ray cluster 'host:port' (default: local, or RAY_ADDRESS)")
    t.add_argument("--call-timeout", type=float, default=60.0)
    t.add_argument("--log-dir", default=None, help="TensorBoard event files")
    t.add_argument("--out", default=None, help="save the trained model to this folder")
    args = parser.parse_args(argv)

    from . import fit

    model = _load_model(args.model_config)
    (x, y), (xt, yt) = _dataset(args.dataset, model)
    if args.samples:
        x, y = x[:args.samples], y[:args.samples]
    strategy = _strategy(args)
    fit(model, x, y, strategy=strategy, epochs=args.epochs, batch_size=args.batch_size, verbose=2,
        log_dir=args.log_dir, address=args.address)
    result = model.evaluate(xt, yt, return_dict=True)
    print(json.dumps({"strategy": repr(strategy), "test": result, "events": strategy.metrics.events,
                      "staleness_histogram": dict(sorted(strategy.metrics.histogram.items()))}))
    if args.out:
        model.save(args.out)
        print(f"saved to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
