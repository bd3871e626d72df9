"""A small colour CNN on "emoji-9" (1,906 Google emoji, 9 categories; docs/datasets.md), with augmentation.

    python -m neurona.datasets get emoji9            # once: npm install of emoji-datasource-google@16.0.0
    python examples/emoji_cnn.py                     # the docs/results.md run
    python examples/emoji_cnn.py --no-augment        # the same network without augmentation
    python examples/emoji_cnn.py --epochs 1 --limit 200 --out /tmp/emoji   # a quick check
    python examples/emoji_cnn.py --model resnet --size 32 --epochs 15     # ResNet-20 (He et al.'s CIFAR net)

The images are RGB, transparency composited on white, NCHW (N, 3, size, size); the split is the
fixed stratified one of `neurona.datasets.emoji9` (80% of each category for training). Adam with
an exponentially decaying rate; augmentation through `fit(transform=..., num_workers=2)`: random
horizontal flips, pad-and-crop shifts (padded with white, the background) and brightness changes,
applied by the loader's threads.
Labels are emoji categories ("Smileys & Emotion", "Flags", ...): a hard task, since a category
mixes very different pictures. Writes under --out: the saved model, the training curves and a grid
of test images with their predicted and true categories.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import neurona as nr  # noqa: E402
from neurona.plots import plot_history  # noqa: E402
from neurona.data.transforms import Compose, RandomBrightness, RandomCrop, RandomHorizontalFlip  # noqa: E402
from neurona.datasets import emoji9  # noqa: E402
from neurona.layers import (BatchNormalization, Conv2D, Dense, Dropout, GlobalAveragePooling2D,  # noqa: E402
                            MaxPooling2D)
from neurona.models import Sequential  # noqa: E402
from neurona.optimizers import Adam, ExponentialDecay  # noqa: E402
from neurona.vision import resnet_cifar  # noqa: E402


def build_cnn(size, width=32, num_classes=9, dropout=0.3):
    """[CONV 3×3 → BN → ReLU → POOL 2] blocks with w, 2w, 4w (and 4w again for 64×64 inputs)
    filters, down to 4×4 (2×2 for 16×16 inputs), global average pool, FC 9."""
    widths = {16: (width, 2 * width, 4 * width), 32: (width, 2 * width, 4 * width),
              64: (width, 2 * width, 4 * width, 4 * width)}[size]
    layers = []
    for i, filters in enumerate(widths):
        extra = {"input_shape": (3, size, size)} if i == 0 else {}
        layers += [Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal", **extra),
                   BatchNormalization(axis=1), nr.layers.Activation("relu"), MaxPooling2D(2)]
    layers += [GlobalAveragePooling2D(), Dropout(dropout), Dense(num_classes, activation="softmax")]
    return Sequential(layers, name="emoji_cnn")


def plot_samples(images, labels, predictions, class_names, path, title, cols=8, rows=4, seed=0):
    """A grid of test images: predicted category (green when right, red when wrong) over the true one."""
    pick = np.random.default_rng(seed).choice(len(images), size=min(cols * rows, len(images)), replace=False)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.9))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), pick):
        ax.imshow(images[i].transpose(1, 2, 0))
        right = predictions[i] == labels[i]
        ax.set_title(f"{class_names[predictions[i]]}\n(true: {class_names[labels[i]]})", fontsize=7,
                     color="green" if right else "red")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, choices=[64, 32, 16], default=64, help="image side (block-averaged)")
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--width", type=int, default=32, help="filters of the first convolution")
    parser.add_argument("--model", choices=["cnn", "resnet"], default="cnn",
                        help="the small CNN, or resnet_cifar (16, 32, 64 channels; option-B projections)")
    parser.add_argument("--depth", type=int, default=20, help="ResNet depth, 6n + 2 (with --model resnet)")
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    parser.add_argument("--limit", type=int, default=None, help="use only N training images (a quick check)")
    parser.add_argument("--path", default=None, help="the npm prefix or package folder (default: the cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)

    nr.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test), class_names = emoji9(args.path, size=args.size)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    print(f"emoji-9: {len(x_train)} training and {len(x_test)} test images {x_train.shape[1:]}")
    print("per class (train / test): " + ", ".join(
        f"{c} {a}/{b}" for c, a, b in zip(class_names, np.bincount(y_train, minlength=9),
                                          np.bincount(y_test, minlength=9))))

    if args.model == "resnet":
        model = resnet_cifar(args.depth, num_classes=9, input_shape=(3, args.size, args.size))
    else:
        model = build_cnn(args.size, args.width)
    # the rate decays exponentially to 2% of its start by the last step: late epochs settle
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    schedule = ExponentialDecay(args.learning_rate, decay_steps=steps, decay_rate=0.02)
    model.compile(optimizer=Adam(learning_rate=schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()
    pad = max(1, args.size // 8)
    augment = Compose([RandomHorizontalFlip(), RandomCrop(padding=pad, fill=1.0),
                       RandomBrightness(0.15)]) if args.augment else None
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=(x_test, y_test), verbose=2, seed=args.seed,
                        transform=augment, num_workers=2 if augment else 0)
    train_time = time.perf_counter() - start

    probs = model.predict(x_test, batch_size=256)
    pred = probs.argmax(axis=1)
    test_acc = float((pred == y_test).mean())
    train_acc = float((model.predict(x_train, batch_size=256).argmax(axis=1) == y_train).mean())
    print(f"test accuracy: {test_acc:.4f}, train accuracy (no augmentation): {train_acc:.4f}, "
          f"{train_time:.0f}s of training for {len(history.epoch)} epochs "
          f"({train_time / len(history.epoch):.1f}s per epoch)")
    print("per-class test accuracy: " + ", ".join(
        f"{c} {np.mean(pred[y_test == k] == k):.2f}" for k, c in enumerate(class_names) if np.any(y_test == k)))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kind = "cnn" if args.model == "cnn" else f"resnet{args.depth}"
    stem = f"emoji9_{kind}{'' if args.augment else '_noaug'}"
    model.save(out / stem)
    plot_history(history, out / f"{stem}_curves.png", f"emoji-9 {model.name}: test accuracy {test_acc:.1%}",
                 train_label="train (augmented batches)", val_label="test", style="-", dpi=110)
    plot_samples(x_test, y_test, pred, class_names, out / f"{stem}_samples.png",
                 f"emoji-9 test images: predicted (true) — test accuracy {test_acc:.1%}")
    for name in (stem, f"{stem}_curves.png", f"{stem}_samples.png"):
        print(f"saved {out / name}")
    return test_acc


if __name__ == "__main__":
    main()
