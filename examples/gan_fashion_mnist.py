"""A GAN on Fashion-MNIST (or MNIST): the MLP pair of Goodfellow et al. (2014) or a DCGAN, trained
by Algorithm 1 (`neurona.generative.GAN`), judged by a classifier trained on the real images.

    python examples/gan_fashion_mnist.py                            # MLP GAN, 2 quick epochs
    python examples/gan_fashion_mnist.py --model dcgan --epochs 5 --limit 20000
    python examples/gan_fashion_mnist.py --dataset mnist            # after `python -m neurona.datasets get mnist`
    python examples/gan_fashion_mnist.py --k 2 --loss minimax --label-smoothing 0.1 --tensorboard

Writes under --out (default out/gan_<model>_<dataset>/): a grid of samples from the same fixed
noise after every epoch (epoch_NNN.png) and their GIF (epochs.gif), latent interpolations
(interpolation.png), the loss curves (losses.png) and results.json with the evaluation: the
Fréchet distance between a real-data classifier's penultimate features of real and generated
images (FCD, our name: not the Inception-based FID), the classifier score (exp E KL, Inception-
score-like, not IS), and the share of generated images in each class (mode collapse shows as
empty classes). The classifier (an MLP, saved in out/gan_classifier_<dataset>/) is trained once.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import neurona as nr
from neurona import datasets
from neurona.callbacks import TensorBoard
from neurona.generative import (GAN, SampleGrid, dcgan_discriminator, dcgan_generator, evaluate_samples,
                                interpolation_grid, mlp_discriminator, mlp_generator, save_image_grid)
from neurona.layers import Dense, Dropout, Flatten
from neurona.models import Sequential
from neurona.optimizers import Adam


def load(dataset, limit=None):
    """Images as float32 (N, 1, 28, 28) in [−1, 1] (the tanh generator's range) and labels."""
    (x, y), (xt, yt) = getattr(datasets, dataset)()
    scale = lambda a: (a[:, None].astype(np.float32) / 127.5 - 1.0)  # noqa: E731
    return (scale(x[:limit]), y[:limit].astype(np.int64)), (scale(xt), yt.astype(np.int64))


def classifier(dataset, x, y, out):
    """An MLP classifier of the real images (the judge of the samples), trained once and reused."""
    from neurona.saving import load_model

    path = Path(out) / f"gan_classifier_{dataset}"
    if (path / "config.json").exists():
        return load_model(path)
    clf = Sequential([Flatten(input_shape=(1, 28, 28)), Dense(256, activation="relu"), Dropout(0.2),
                      Dense(128, activation="relu"), Dense(10, activation="softmax")], name="judge")
    clf.compile(optimizer=Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    clf.fit(x, y, epochs=3, batch_size=128, verbose=0, seed=0)
    clf.save(path)
    return clf


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("mlp", "dcgan"), default="mlp")
    p.add_argument("--dataset", choices=("fashion_mnist", "mnist"), default="fashion_mnist")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--width", type=int, default=32, help="DCGAN channels (D's first layer, G's last hidden)")
    p.add_argument("--k", type=int, default=1, help="discriminator steps per generator step")
    p.add_argument("--loss", choices=("non_saturating", "minimax"), default="non_saturating")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--eval-samples", type=int, default=2000)
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out")
    args = p.parse_args(argv)
    nr.manual_seed(args.seed)
    (x, y), (xt, yt) = load(args.dataset, args.limit)
    if args.model == "mlp":
        g, d = mlp_generator(args.latent), mlp_discriminator()
    else:
        g, d = dcgan_generator(args.latent, width=args.width), dcgan_discriminator(width=args.width)
    gan = GAN(g, d, latent_dim=args.latent, k=args.k, generator_loss=args.loss,
              label_smoothing=args.label_smoothing, seed=args.seed)
    gan.compile(d_optimizer=Adam(2e-4, beta_1=0.5), g_optimizer=Adam(2e-4, beta_1=0.5))
    out = Path(args.out) / f"gan_{args.model}_{args.dataset}"
    callbacks = [SampleGrid(out, n=64, seed=1)]
    if args.tensorboard:
        callbacks.append(TensorBoard(out / "logs"))
    start = time.perf_counter()
    history = gan.fit(x, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, callbacks=callbacks,
                      verbose=2)
    train_time = time.perf_counter() - start
    save_image_grid(interpolation_grid(gan, rows=6, steps=10, seed=2), out / "interpolation.png", nrow=10)
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in ("d_loss", "g_loss"):
        ax.plot(range(1, len(history.epoch) + 1), history.history[key], "o-", label=key)
    ax.set_xlabel("epoch")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "losses.png", dpi=110)
    plt.close(fig)
    clf = classifier(args.dataset, x if args.limit is None else load(args.dataset)[0][0],
                     y if args.limit is None else load(args.dataset)[0][1], args.out)
    acc = float((clf.predict(xt).argmax(1) == yt).mean())
    n = args.eval_samples
    scores = evaluate_samples(clf, xt[:n], gan.generate(n))
    # a yardstick: the same figures for real held-out images against the real test images
    train_real = load(args.dataset)[0][0]
    reference = evaluate_samples(clf, xt[:n], train_real[:n])
    result = {"command": "python examples/gan_fashion_mnist.py " + " ".join(argv or __import__("sys").argv[1:]),
              "model": args.model, "dataset": args.dataset, "epochs": args.epochs,
              "train_images": len(x), "train_seconds": round(train_time, 1), "load_avg": os.getloadavg(),
              "classifier_test_accuracy": acc, "generated": scores, "real_train_vs_test": reference,
              "last_epoch": {k: v[-1] for k, v in history.history.items()}}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "real_train_vs_test"}, indent=1))
    print(f"real vs real: FCD {reference['frechet_classifier_distance']:.2f}, "
          f"classifier score {reference['classifier_score']:.2f}")
    print(f"pictures and results.json in {out}/")
    return result


if __name__ == "__main__":
    main()
