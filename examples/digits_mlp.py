"""`make demo`: an MLP trained on scikit-learn's 8×8 digits with a hand-written SGD loop.

Nothing but tensors, `F` ops and autograd: the forward pass builds the graph, `loss.backward()`
fills each parameter's `.grad`, and the update `p -= lr * p.grad` runs under `nr.no_grad()`.
It prints progress, reaches ≥ 95% test accuracy in a few seconds, and saves the training
curves plus the course's two circuit pictures (see course_circuits.py), printing where.

    python examples/digits_mlp.py [--epochs 20] [--out out/]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import course_circuits  # noqa: E402  (this directory is on sys.path when run as a script)
import neurona as nr  # noqa: E402
from neurona import functional as F  # noqa: E402


def load(seed):
    """Digits split 75/25 (every class in both parts), standardised with the training split's
    statistics; pixels that never light up in training stay 0."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y.astype(np.int64), test_size=0.25,
                                                        random_state=seed, stratify=y)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    x_train, x_test = (((a - mean) / std).astype(np.float32) for a in (x_train, x_test))
    return x_train, x_test, y_train, y_test


def init_mlp(sizes):
    """He-initialised weights (for ReLU) and zero biases, one pair per layer."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = nr.randn(fan_in, fan_out) * np.sqrt(2.0 / fan_in)
        params += [w.requires_grad_(), nr.zeros(fan_out, requires_grad=True)]
    return params


def forward(params, x):
    """Logits of the MLP: (affine → ReLU) for each hidden layer, then affine."""
    h = x
    for i in range(0, len(params) - 2, 2):
        h = F.relu(h @ params[i] + params[i + 1])
    return h @ params[-2] + params[-1]


def accuracy(params, x, y):
    with nr.no_grad():
        return float((forward(params, nr.tensor(x)).argmax(axis=1).numpy() == y).mean())


def train(epochs=20, hidden=128, lr=0.1, batch_size=32, seed=0, log=print):
    """Train; returns the parameters and a history of (epoch, train loss, test accuracy)."""
    nr.manual_seed(seed)
    x_train, x_test, y_train, y_test = load(seed)
    params = init_mlp([x_train.shape[1], hidden, 10])
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(forward(params, nr.tensor(x_train[idx])), y_train[idx])
            loss.backward()
            with nr.no_grad():
                for p in params:
                    p -= lr * p.grad
                    p.grad = None
            total += loss.item() * len(idx)
        history.append((epoch, total / len(x_train), accuracy(params, x_test, y_test)))
        log(f"epoch {epoch:3d}  train loss {history[-1][1]:.4f}  test accuracy {history[-1][2]:.4f}")
    return params, history


def plot(history, path):
    epochs, losses, accs = zip(*history)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, losses, color="tab:blue")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train cross-entropy", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(epochs, accs, color="tab:red")
    ax2.set_ylabel("test accuracy", color="tab:red")
    ax.set_title("MLP on digits 8×8, hand-written SGD")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train an MLP on digits with a hand-written SGD loop.")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out", help="directory for the pictures (default: out/)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    _, history = train(args.epochs, args.hidden, args.lr, args.batch_size, args.seed)
    print(f"test accuracy: {history[-1][2]:.4f} after {args.epochs} epochs "
          f"({time.perf_counter() - t0:.1f} s)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(history, out / "digits_training.png")
    print(f"saved {out / 'digits_training.png'}")
    for path in course_circuits.draw(out):
        print(f"saved {path}")


if __name__ == "__main__":
    main()
