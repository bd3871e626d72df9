"""Inputs that used to give wrong results without a word (issue 10, item 1): each now raises,
warns or does what Keras does."""
import warnings

import numpy as np
import pytest

import neurona as nr
from neurona import functional as F
from neurona.callbacks import TerminateOnNaN
from neurona.layers import BatchNormalization, Dense
from neurona.models import Sequential


def _classifier():
    model = Sequential([Dense(8, activation="relu", input_dim=4), Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_frozen_batch_norm_keeps_its_statistics_in_fit():
    model = Sequential([Dense(6, input_dim=4), BatchNormalization(), Dense(1)])
    model.compile("sgd", "mse")
    bn = model.layers[1]
    bn.trainable = False
    before = [bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()]
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 4)).astype(np.float32)
    model.fit(x, np.ones((64, 1), np.float32), epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before[0])
    np.testing.assert_array_equal(bn.moving_variance.numpy(), before[1])
    bn.trainable = True
    model.fit(x, np.ones((64, 1), np.float32), epochs=1, batch_size=16, verbose=0)
    assert not np.allclose(bn.moving_mean.numpy(), before[0])


def test_a_nan_loss_warns_once_and_terminate_on_nan_stops():
    x = np.ones((64, 4), np.float32)
    x[5, 2] = np.nan
    y = np.zeros(64, np.int64)
    model = _classifier()
    with pytest.warns(UserWarning, match="the loss became") as record:
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    assert sum("the loss became" in str(w.message) for w in record) == 1
    model = _classifier()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False, callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) == 1  # stopped in the first epoch


def test_check_finite_names_the_batch_and_input():
    x = np.ones((32, 4), np.float32)
    x[20, 1] = np.inf
    with pytest.raises(ValueError, match=r"batch 2 of epoch 1 holds NaN or inf in x \(first at index \[4, 1\]\)"):
        _classifier().fit(x, np.zeros(32, np.int64), batch_size=8, verbose=0, shuffle=False, check_finite=True)


def test_evaluate_and_predict_on_no_samples_raise():
    model = _classifier()
    with pytest.raises(ValueError, match="no samples"):
        model.evaluate(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="no samples"):
        model.predict(np.zeros((0, 4), np.float32))


def test_fractional_labels_are_refused_not_truncated():
    model = _classifier()
    with pytest.raises(ValueError, match=r"whole class numbers, got \[2.9"):
        model.fit(np.ones((8, 4), np.float32), np.full(8, 2.9), verbose=0)
    from neurona.nn.metrics import sparse_categorical_accuracy
    with pytest.raises(ValueError, match="whole class numbers"):
        sparse_categorical_accuracy(np.array([0.5, 1.0]), np.ones((2, 3)))


def test_string_labels_get_a_clear_error():
    from neurona.nn.metrics import sparse_categorical_accuracy
    with pytest.raises(ValueError, match="string labels|numbers"):
        sparse_categorical_accuracy(np.array(["cat", "dog"]), np.ones((2, 3)))


@pytest.mark.parametrize("fn", [F.binary_cross_entropy, F.binary_cross_entropy_with_logits])
def test_binary_targets_outside_the_unit_interval_are_refused(fn):
    with pytest.raises(ValueError, match=r"target values must lie in \[0, 1\]"):
        fn(nr.tensor([0.2, 0.7]), nr.tensor([1.0, 2.0]))
    assert np.isfinite(fn(nr.tensor([0.2, 0.7]), nr.tensor([1.0, 0.0])).item())


def test_float64_inputs_are_cast_to_the_layer_dtype():
    layer = Dense(2)
    x = nr.tensor(np.ones((3, 4), np.float64))
    out = layer(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert layer.kernel.grad.dtype == np.float32
    double = Dense(2, dtype="float64")
    assert double(nr.tensor(np.ones((3, 4), np.float32))).dtype == np.float64
