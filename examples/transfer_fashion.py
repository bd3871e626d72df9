"""Transfer learning on Fashion-MNIST (course topic 5): learn features on five classes, reuse them
for the other five with only 100 labelled images per class, and compare with training the same
network from scratch on those 500 images.

    python examples/transfer_fashion.py             # quick: 1 epoch on 6,000 task-A images, 1 repeat
    python examples/transfer_fashion.py --full      # all ~30,000 task-A images, 3 epochs, 3 repeats
    python examples/transfer_fashion.py --split halves   # task A = labels 0-4, task B = 5-9

Splits: 'mixed' (default) gives each task tops, trousers-or-dresses and footwear, so what task A
teaches is relevant to task B: A = T-shirt/top, Pullover, Sandal, Bag, Ankle boot; B = Trouser,
Dress, Coat, Shirt, Sneaker. 'halves': A = labels 0-4 (all clothing), B = 5-9 (mostly footwear).
The network: CONV 16@3×3 → POOL → CONV 32@3×3 → POOL → FC 128 → FC 5 (dropout before each FC).
On task B, with the 100 images per class drawn anew for each repeat (seeded), four ways to train,
all evaluated on task B's 5,000 test images:
  scratch          every layer from random weights (1.5 × --epochs-b epochs);
  frozen conv      task A's convolutions frozen (`layer.trainable = False`) under a new FC 128
                   and FC 5 (--epochs-b epochs);
  frozen features  task A's convolutions and FC 128 frozen: only a new FC 5 learns;
  fine-tune        the frozen-conv model, then every layer unfrozen and trained on with a 10×
                   lower learning rate (--epochs-b / 2 more epochs).
Prints a Markdown table (mean ± standard deviation over the repeats) and the time taken.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import neurona as nr
from neurona import datasets
from neurona.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from neurona.models import Sequential
from neurona.optimizers import Adam

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SPLITS = {"mixed": ([0, 2, 5, 8, 9], [1, 3, 4, 6, 7]), "halves": ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])}


def conv_layers(width=16):
    """CONV w@3×3 → POOL → CONV 2w@3×3 → POOL → flatten (7×7×2w values)."""
    return [Conv2D(width, 3, padding="same", activation="relu", kernel_initializer="he_normal",
                   input_shape=(1, 28, 28)),
            MaxPooling2D(2),
            Conv2D(2 * width, 3, padding="same", activation="relu", kernel_initializer="he_normal"),
            MaxPooling2D(2), Flatten()]


def dense_layers(dense=128):
    return [Dropout(0.3), Dense(dense, activation="relu", kernel_initializer="he_normal")]


def head(num_classes=5):
    return [Dropout(0.3), Dense(num_classes, activation="softmax")]


def compile_model(model, lr):
    model.compile(optimizer=Adam(learning_rate=lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def transferred(layers, weights):
    """Give built `layers` task A's `weights` and freeze them."""
    for layer, w in zip(layers, weights):
        layer.set_weights(w)
        layer.trainable = False


def n_trainable(model):
    return sum(t.size for t in model.trainable_weights)


def accuracy(model, x, y):
    return float((model.predict(x, batch_size=500).argmax(axis=1) == y).mean())


def select(x, y, classes):
    """The samples of `classes`, relabelled 0..len(classes)-1 in that order."""
    keep = np.isin(y, classes)
    relabel = np.zeros(10, dtype=np.int64)
    relabel[classes] = np.arange(len(classes))
    return x[keep], relabel[y[keep]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="all task-A images, 3 epochs, 3 repeats")
    parser.add_argument("--split", choices=sorted(SPLITS), default="mixed")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--epochs-b", type=int, default=30, help="epochs on the task-B images")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    base_limit, base_epochs, repeats = (None, 3, 3) if args.full else (6000, 1, 1)
    classes_a, classes_b = SPLITS[args.split]

    nr.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = datasets.fashion_mnist()
    x_train, x_test = x_train[:, None].astype(np.float32) / 255.0, x_test[:, None].astype(np.float32) / 255.0
    xa, ya = select(x_train, y_train, classes_a)
    xa, ya = xa[:base_limit], ya[:base_limit]
    xa_test, ya_test = select(x_test, y_test, classes_a)
    xb_pool, yb_pool = select(x_train, y_train, classes_b)
    xb_test, yb_test = select(x_test, y_test, classes_b)

    start = time.perf_counter()
    base = compile_model(Sequential([*conv_layers(), *dense_layers(), *head()], name="task_a"), args.lr)
    base.fit(xa, ya, epochs=base_epochs, batch_size=128, verbose=2, seed=args.seed)
    print(f"task A ({', '.join(CLASSES[c] for c in classes_a)}): {len(xa)} images, {base_epochs} epoch(s) in "
          f"{time.perf_counter() - start:.0f}s, test accuracy {accuracy(base, xa_test, ya_test):.4f}")
    n_conv = len(conv_layers())
    conv_w = [layer.get_weights() for layer in base.layers[:n_conv]]
    dense_w = [layer.get_weights() for layer in base.layers[n_conv:n_conv + 2]]

    results = {name: [] for name in ("scratch", "frozen conv", "frozen features", "fine-tune")}
    counts = {}

    def train(name, model, lr, epochs, xb, yb, r):
        compile_model(model, lr)
        counts[name] = n_trainable(model)
        model.fit(xb, yb, epochs=epochs, batch_size=32, verbose=0, seed=r)
        results[name].append(accuracy(model, xb_test, yb_test))

    for r in range(repeats):
        rng = np.random.default_rng([args.seed, r])
        pick = np.concatenate([rng.choice(np.flatnonzero(yb_pool == c), args.per_class, replace=False)
                               for c in range(5)])
        xb, yb = xb_pool[pick], yb_pool[pick]
        # scratch trains as many epochs as the fine-tuned model gets in its two phases together
        scratch = Sequential([*conv_layers(), *dense_layers(), *head()], name="scratch")
        train("scratch", scratch, args.lr, args.epochs_b + args.epochs_b // 2, xb, yb, r)
        convs, dense = conv_layers(), dense_layers()
        features = Sequential([*convs, *dense, *head()], name="frozen_features")
        transferred(convs + dense, conv_w + dense_w)
        train("frozen features", features, args.lr, args.epochs_b, xb, yb, r)
        convs = conv_layers()
        model = Sequential([*convs, *dense_layers(), *head()], name="frozen_conv")
        transferred(convs, conv_w)
        train("frozen conv", model, args.lr, args.epochs_b, xb, yb, r)
        for layer in convs:
            layer.trainable = True
        train("fine-tune", model, args.lr / 10, args.epochs_b // 2, xb, yb, r)
        print(f"repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in results.items()))

    total = time.perf_counter() - start
    print(f"\ntask B ({', '.join(CLASSES[c] for c in classes_b)}): {5 * args.per_class} training images, "
          f"test on {len(xb_test)}; {repeats} repeat(s), {total:.0f}s in all\n")
    print("| training on task B | trainable weights | test accuracy (task B) |")
    print("|---|---|---|")
    for name, accs in results.items():
        spread = f" ± {np.std(accs):.1%}" if len(accs) > 1 else ""
        print(f"| {name} | {counts[name]:,} | {np.mean(accs):.1%}{spread} |")
    return results


if __name__ == "__main__":
    main()
