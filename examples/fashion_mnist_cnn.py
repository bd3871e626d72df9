"""A convolutional network on Fashion-MNIST (or MNIST): Conv2D, MaxPooling2D and Dense layers
trained with `fit`, evaluated on the test set, saved for `image_retrieval.py`.

    python examples/fashion_mnist_cnn.py                          # 2 quick epochs
    python examples/fashion_mnist_cnn.py --epochs 15              # the full run: 91.7% measured
    python examples/fashion_mnist_cnn.py --dataset mnist --epochs 8   # 99.0% measured
    python examples/fashion_mnist_cnn.py --model lenet5           # the zoo's LeNet-5 instead
    python examples/fashion_mnist_cnn.py --limit 2000 --epochs 40 [--augment]   # the ablation

--augment passes `fit(transform=..., num_workers=2)` random flips, pad-and-crop shifts and small
rotations (`neurona.data.transforms`): the loader's worker threads augment the next batches while
the model trains on the current one (the validation images stay as they are). With --limit the
report also gives the train/test accuracy gap.

Images are NCHW: (N, 1, 28, 28). Writes under --out (default out/): the saved model and the
training curves (PNG), and prints the test accuracy and the training time.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np  # noqa: E402

import neurona as nr  # noqa: E402
from neurona.plots import plot_history  # noqa: E402
from neurona import datasets  # noqa: E402
from neurona.data.transforms import Compose, RandomCrop, RandomHorizontalFlip, RandomRotation  # noqa: E402
from neurona.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D  # noqa: E402
from neurona.models import Sequential  # noqa: E402
from neurona.optimizers import Adam  # noqa: E402
from neurona.vision import lenet5  # noqa: E402


def build_cnn(width=16, dense=128, dropout=0.3, num_classes=10):
    """CONV w@3×3 same → POOL 2 → CONV 2w@3×3 same → POOL 2 → FC `dense` → FC 10.

    28×28×1 → 28×28×w → 14×14×w → 14×14×2w → 7×7×2w, flattened into the classifier."""
    return Sequential([
        Conv2D(width, 3, padding="same", activation="relu", kernel_initializer="he_normal", input_shape=(1, 28, 28)),
        MaxPooling2D(2),
        Conv2D(2 * width, 3, padding="same", activation="relu", kernel_initializer="he_normal"),
        MaxPooling2D(2),
        Flatten(),
        Dropout(dropout),
        Dense(dense, activation="relu", kernel_initializer="he_normal"),
        Dropout(dropout),
        Dense(num_classes, activation="softmax"),
    ], name="fashion_cnn")


def load(dataset, limit=None):
    """((x_train, y_train), (x_test, y_test)) as float32 NCHW in [0, 1] and int64 labels."""
    (x_train, y_train), (x_test, y_test) = getattr(datasets, dataset)()
    x_train = x_train[:limit, None].astype(np.float32) / 255.0
    x_test = x_test[:, None].astype(np.float32) / 255.0
    return (x_train, y_train[:limit].astype(np.int64)), (x_test, y_test.astype(np.int64))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["fashion_mnist", "mnist"], default="fashion_mnist")
    parser.add_argument("--model", choices=["cnn", "lenet5"], default="cnn")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--test-limit", type=int, default=None, help="test on the first N test images only")
    parser.add_argument("--augment", action="store_true", help="random flips, crops and rotations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)

    nr.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load(args.dataset, args.limit)
    x_test, y_test = x_test[:args.test_limit], y_test[:args.test_limit]
    print(f"{args.dataset}: {len(x_train)} training images {x_train.shape[1:]}, {len(x_test)} test images")
    model = build_cnn() if args.model == "cnn" else lenet5()
    model.compile(optimizer=Adam(learning_rate=args.learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()

    augment = Compose([RandomHorizontalFlip(), RandomCrop(padding=2), RandomRotation(10)]) if args.augment else None
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, validation_split=1 / 12,
                        verbose=2, seed=args.seed, transform=augment, num_workers=2 if augment else 0)
    train_time = time.perf_counter() - start
    test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=500)
    print(f"test accuracy: {test_acc:.4f} (loss {test_loss:.4f}) after {len(history.epoch)} epochs, "
          f"{train_time:.0f}s of training ({train_time / len(history.epoch):.1f}s per epoch)")
    if args.limit:  # the overfitting gap, measured on the training images without augmentation
        cut = len(x_train) - int(np.ceil(len(x_train) / 12))  # the images trained on, validation left out
        _, train_acc = model.evaluate(x_train[:cut], y_train[:cut], batch_size=500)
        print(f"train accuracy: {train_acc:.4f}, train − test gap: {train_acc - test_acc:.4f}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.dataset}_{args.model}{'_augmented' if args.augment else ''}"
    model.save(out / stem)
    plot_history(history, out / f"{stem}_curves.png",
                f"{args.dataset} {args.model}: test accuracy {test_acc:.2%} after {len(history.epoch)} epochs")
    print(f"saved {out / stem}")
    print(f"saved {out / f'{stem}_curves.png'}")
    return test_acc


if __name__ == "__main__":
    main()
