"""Image retrieval with a trained CNN (course topic 5): represent each image by the activations of
the network's penultimate layer and answer a query with its nearest neighbours in that space.

    python examples/fashion_mnist_cnn.py --epochs 15 --out out      # train and save a CNN first
    python examples/image_retrieval.py --model out/fashion_mnist_cnn
    python examples/image_retrieval.py                               # no model: trains one quickly

The gallery is the 10,000 test images (--gallery N: the first N); neighbours by cosine similarity, the query itself left
out. Prints precision@5 (the share of the 5 neighbours with the query's class) over every test
image, for the CNN features and for raw pixels, and saves a picture of 8 queries and their 5
nearest images (green title: same class, red: another).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import neurona as nr  # noqa: E402
from neurona.models import load_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fashion_mnist_cnn import build_cnn, load  # noqa: E402

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def penultimate_features(model, x, batch_size=500):
    """The output of the layer before the last (what the classifier sees), for every image."""
    chunks = []
    with nr.no_grad():
        for i in range(0, len(x), batch_size):
            trace = model.layer_outputs(nr.tensor(x[i:i + batch_size]), training=False)
            chunks.append(trace[-2][1][0].numpy().reshape(len(x[i:i + batch_size]), -1))
    return np.concatenate(chunks)


def nearest(features, k=5, queries=None, chunk=1000):
    """Indices (len(queries), k) of each query's k most cosine-similar gallery rows, itself excluded."""
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    queries = np.arange(len(f)) if queries is None else np.asarray(queries)
    out = []
    for i in range(0, len(queries), chunk):
        q = queries[i:i + chunk]
        sim = f[q] @ f.T
        sim[np.arange(len(q)), q] = -np.inf
        top = np.argpartition(-sim, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, top, axis=1), axis=1)
        out.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(out)


def precision_at_k(neighbours, labels):
    return float((labels[neighbours] == labels[:, None]).mean())


def plot(x, y, queries, neighbours, path):
    k = neighbours.shape[1]
    fig, axes = plt.subplots(len(queries), k + 1, figsize=(1.6 * (k + 1), 1.8 * len(queries)))
    for row, (q, nb) in enumerate(zip(queries, neighbours)):
        for col, idx in enumerate([q, *nb]):
            ax = axes[row, col]
            ax.imshow(x[idx, 0], cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
            colour = "black" if col == 0 else ("green" if y[idx] == y[q] else "red")
            ax.set_title(("query: " if col == 0 else "") + CLASSES[y[idx]], fontsize=7, color=colour)
    fig.suptitle("Nearest neighbours in the CNN's penultimate-layer features")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a model saved by fashion_mnist_cnn.py")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the quick model when --model is absent")
    parser.add_argument("--limit", type=int, default=None, help="train the quick model on the first N images only")
    parser.add_argument("--gallery", type=int, default=None, help="search the first N test images only")
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)

    nr.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load("fashion_mnist", args.limit)
    x_test, y_test = x_test[:args.gallery], y_test[:args.gallery]
    if args.model and Path(args.model).exists():
        model = load_model(args.model)
        print(f"loaded {args.model}")
    else:
        model = build_cnn()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        start = time.perf_counter()
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=128, verbose=2, seed=args.seed)
        print(f"trained a CNN for {args.epochs} epoch(s) in {time.perf_counter() - start:.0f}s")

    start = time.perf_counter()
    feats = penultimate_features(model, x_test)
    cnn_nb = nearest(feats)
    pixel_nb = nearest(x_test.reshape(len(x_test), -1))
    print(f"features: {feats.shape[1]} per image (layer {model.layers[-2].name}), "
          f"search over {len(x_test)} images in {time.perf_counter() - start:.1f}s")
    print(f"precision@5, CNN features: {precision_at_k(cnn_nb, y_test):.4f}")
    print(f"precision@5, raw pixels:   {precision_at_k(pixel_nb, y_test):.4f}")

    queries = np.random.default_rng(args.seed).choice(len(x_test), args.queries, replace=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "image_retrieval.png"
    plot(x_test, y_test, queries, cnn_nb[queries], path)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
