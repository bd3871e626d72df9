"""fit(transform=..., num_workers=...): augmentation of the training batches only, applied in the
DataLoader's threads, the same batches for any number of workers, also under fit(jit=True)."""
import threading

import numpy as np
import pytest

from neurona.data.transforms import RandomHorizontalFlip
from neurona.layers import Dense, Flatten
from neurona.models import Sequential


class Recorder:
    """A transform that negates the inputs and records every batch it is given (thread-safe)."""

    def __init__(self):
        self.lock, self.seen = threading.Lock(), []

    def __call__(self, batch, rng):
        x, y = batch
        with self.lock:
            self.seen.append(len(x))
        return (-x, y)


def _model(seed=0):
    model = Sequential([Flatten(input_shape=(1, 2, 3)), Dense(4, kernel_initializer="glorot_uniform"),
                        Dense(3, activation="softmax")])
    model.build((None, 1, 2, 3))
    rng = np.random.default_rng(seed)
    for w in model.weights:  # identical starting weights for every run
        w.data[...] = rng.normal(0.0, 0.5, w.shape).astype(w.data.dtype)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, 2, 3)).astype(np.float32), rng.integers(0, 3, n)


@pytest.mark.parametrize("jit", [False, True])
def test_transform_is_applied_to_training_batches_only(jit):
    x, y = _data()
    rec = Recorder()
    model = _model()
    model.fit(x, y, batch_size=16, epochs=2, validation_data=_data(12, seed=2), transform=rec,
              verbose=0, seed=0, jit=jit)
    assert sorted(rec.seen) == sorted([16, 16, 8] * 2)  # 2 epochs of 3 training batches, no validation
    # negating every input is the same as training on -x without a transform
    plain = _model()
    plain.fit(-x, y, batch_size=16, epochs=2, verbose=0, seed=0, jit=jit)
    for a, b in zip(model.weights, plain.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


def test_transform_changes_training_but_not_evaluation():
    x, y = _data()
    with_t, without = _model(), _model()
    with_t.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=0, transform=Recorder())
    without.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=0)
    assert not np.allclose(with_t.weights[0].numpy(), without.weights[0].numpy())


@pytest.mark.parametrize("jit", [False, True])
def test_same_results_for_0_and_2_workers(jit):
    x, y = _data(64)
    flip = RandomHorizontalFlip(seed=3)
    runs = []
    for workers in (0, 2):
        model = _model()
        hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=7, transform=flip,
                         num_workers=workers, jit=jit)
        runs.append(([w.numpy().copy() for w in model.weights], hist.history["loss"]))
    (w0, l0), (w2, l2) = runs
    assert l0 == l2
    for a, b in zip(w0, w2):
        np.testing.assert_array_equal(a, b)
    # and the random flips did change something compared with no augmentation
    model = _model()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=7, jit=jit)
    assert not np.allclose(model.weights[0].numpy(), w0[0])


def test_bad_num_workers_is_a_clear_error():
    x, y = _data()
    with pytest.raises(ValueError, match="num_workers"):
        _model().fit(x, y, num_workers=-1, verbose=0)
