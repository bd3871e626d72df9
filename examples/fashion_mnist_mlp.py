"""An MLP with batch normalisation and dropout on Fashion-MNIST (or MNIST), trained with the
Keras-style API: `Sequential`, `compile`, `fit` with callbacks, `evaluate`, `save`.

    python examples/fashion_mnist_mlp.py                     # 2 quick epochs (make demo)
    python examples/fashion_mnist_mlp.py --epochs 30         # the full run: >= 89% test accuracy
    python examples/fashion_mnist_mlp.py --dataset mnist --epochs 20   # >= 98%
    python examples/fashion_mnist_mlp.py --jit               # each step a traced nr.jit graph
    python examples/fashion_mnist_mlp.py --epochs 30 --verify-saved   # + reload and ONNX checks

Fashion-MNIST comes from the Debian package `dataset-fashion-mnist`; MNIST from
`python -m neurona.datasets get mnist`. Writes under --out (default out/): the saved model, the
training curves (PNG), a CSV log and TensorBoard event files, and prints where each went.
--verify-saved then reloads the saved folder with `load_model` and exports the model to ONNX
(needs onnx and onnxruntime: `pip install -e ".[onnx]"`), and prints the reloaded model's test
accuracy, the largest difference between onnxruntime's outputs and `predict`'s, and the ONNX
model's test accuracy.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np  # noqa: E402

import neurona as nr  # noqa: E402
from neurona.plots import plot_history  # noqa: E402
from neurona import datasets  # noqa: E402
from neurona.callbacks import Callback, CSVLogger, ReduceLROnPlateau, TensorBoard  # noqa: E402
from neurona.layers import Activation, BatchNormalization, Dense, Dropout, Flatten  # noqa: E402
from neurona.models import Sequential  # noqa: E402
from neurona.optimizers import Adam  # noqa: E402


def build_model(hidden=(512, 256), dropout=0.3):
    """Flatten, then (Dense -> BatchNorm -> ReLU -> Dropout) per hidden layer, then softmax.

    The Dense layers before batch norm have no bias: BN's beta plays that role."""
    model = Sequential([Flatten(input_shape=(28, 28))])
    for units in hidden:
        model.add(Dense(units, use_bias=False, kernel_initializer="he_normal"))
        model.add(BatchNormalization())
        model.add(Activation("relu"))
        model.add(Dropout(dropout))
    model.add(Dense(10, activation="softmax"))
    return model


class EpochTimer(Callback):
    """Wall-clock seconds of each epoch (training and validation)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)

    def on_train_begin(self, logs=None):
        self.times = []


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["fashion_mnist", "mnist"], default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out")
    parser.add_argument("--jit", action="store_true",
                        help="trace the training/evaluation steps with nr.jit (compile(jit=True))")
    parser.add_argument("--verify-saved", action="store_true",
                        help="reload the saved model and export it to ONNX; compare both with the trained model")
    args = parser.parse_args(argv)

    nr.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = getattr(datasets, args.dataset)()
    x_train, x_test = x_train.astype(np.float32) / 255.0, x_test.astype(np.float32) / 255.0
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    print(f"{args.dataset}: {len(x_train)} training images, {len(x_test)} test images")

    model = build_model()
    model.compile(optimizer=Adam(learning_rate=args.learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit=args.jit)
    model.summary()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.dataset}_mlp"
    epoch_times = EpochTimer()
    callbacks = [epoch_times, ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, verbose=1),
                 CSVLogger(out / f"{stem}_log.csv"),
                 TensorBoard(out / "tb" / stem, histogram_freq=5)]
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_split=1 / 12, callbacks=callbacks, verbose=2, seed=args.seed)
    train_time = time.perf_counter() - start
    test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=512)
    print(f"test accuracy {test_acc:.4f} (loss {test_loss:.4f}) after {len(history.epoch)} epochs, "
          f"{train_time:.0f}s of training ({train_time / len(history.epoch):.1f}s per epoch"
          f"{', traced with nr.jit' if args.jit else ''}; each epoch, validation included: "
          f"{', '.join(f'{t:.1f}s' for t in epoch_times.times)})")

    model.save(out / stem)
    plot_history(history, out / f"{stem}_curves.png",
                f"{args.dataset} MLP: test accuracy {test_acc:.2%} after {len(history.epoch)} epochs")
    print(f"saved the model to {out / stem}/ (load it with neurona.models.load_model)")
    print(f"saved the training curves to {out / f'{stem}_curves.png'}")
    print(f"saved the CSV log to {out / f'{stem}_log.csv'}")
    print(f"saved TensorBoard logs to {out / 'tb' / stem} (tensorboard --logdir {out / 'tb'})")
    if args.verify_saved:
        verify_saved(model, out / stem, x_test, y_test)
    return test_acc


def verify_saved(model, folder, x_test, y_test):
    """Reload `folder`, export the model to ONNX and run it in onnxruntime; print how both agree
    with the trained model on the test set."""
    import onnxruntime as ort

    from neurona.models import load_model

    start = time.perf_counter()
    reloaded = load_model(folder)
    load_ms = 1e3 * (time.perf_counter() - start)
    size_mb = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
    _, reloaded_acc = reloaded.evaluate(x_test, y_test, batch_size=512)
    print(f"reloaded {folder} in {load_ms:.0f} ms ({size_mb:.1f} MB): test accuracy {reloaded_acc:.4f}")
    onnx_path = model.export_onnx(folder.with_suffix(".onnx"))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    onnx_out = np.concatenate([session.run(None, {name: x_test[i:i + 1000]})[0] for i in range(0, len(x_test), 1000)])
    ours = model.predict(x_test, batch_size=512)
    onnx_acc = float((onnx_out.argmax(1) == y_test).mean())
    print(f"ONNX (onnxruntime {ort.__version__}): largest difference from predict "
          f"{np.abs(onnx_out - ours).max():.2g}, test accuracy {onnx_acc:.4f}")
    print(f"saved {onnx_path}")


if __name__ == "__main__":
    main()
