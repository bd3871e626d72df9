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


def test_save_weights_and_load_weights_on_the_model(tmp_path):
    a, b = _classifier(), _classifier()
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    a.save_weights(tmp_path / "w.safetensors")
    b.load_weights(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    with pytest.raises(ValueError, match="must end in .safetensors"):
        a.save_weights(tmp_path / "w.h5")
    with pytest.raises(ValueError, match="Keras file format"):
        a.save(tmp_path / "model.h5")


@pytest.mark.parametrize("name, ref", [
    ("selu", lambda t: __import__("torch").nn.functional.selu(t)),
    ("swish", lambda t: __import__("torch").nn.functional.silu(t)),
    ("silu", lambda t: __import__("torch").nn.functional.silu(t)),
    ("gelu", lambda t: __import__("torch").nn.functional.gelu(t, approximate="tanh")),
    ("softplus", lambda t: __import__("torch").nn.functional.softplus(t)),
])
def test_more_activations_by_name_match_torch(name, ref):
    import torch
    from neurona.layers import Activation

    x = np.linspace(-3, 3, 13)
    ours = nr.tensor(x, requires_grad=True)
    out = Activation(name)(ours)
    out.sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    ref(theirs).sum().backward()
    np.testing.assert_allclose(out.numpy(), ref(torch.tensor(x)).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=1e-7)
    assert nr.gradcheck(lambda t: Activation(name)(t), [nr.tensor(x + 0.01, requires_grad=True)])


def test_keras_simple_mnist_convnet_with_one_line_of_rounding():
    from neurona.layers import Conv2D, Flatten, MaxPooling2D, set_default_rounding

    def convnet():
        return Sequential([Conv2D(32, 3, activation="relu", input_shape=(1, 28, 28)), MaxPooling2D(2),
                           Conv2D(64, 3, activation="relu"), MaxPooling2D(2), Flatten(), Dense(10)])
    with pytest.raises(ValueError, match="11"):  # the course's formula: 11 -> 5.5 does not fit
        convnet()
    set_default_rounding("floor")
    try:
        model = convnet()
        assert model.output_shape == (None, 10) and model.layers[3].rounding == "floor"
    finally:
        set_default_rounding("exact")
    with pytest.raises(ValueError, match="'exact' or 'floor'"):
        set_default_rounding("ceil")


def test_sample_weight_and_class_weight_weigh_the_loss():
    import torch

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=16)
    w = rng.uniform(0.5, 2.0, size=16).astype(np.float32)
    model = _classifier()
    net = [t.numpy().copy() for t in model.weights]
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, sample_weight=w)
    # the same step in torch: sum(w_i * loss_i) / N, then SGD(0.01)
    k1, b1, k2, b2 = [torch.tensor(a, requires_grad=True) for a in net]
    p = torch.softmax(torch.relu(torch.tensor(x) @ k1 + b1) @ k2 + b2, dim=1)
    loss = (-(torch.log(p.clamp(1e-7, 1 - 1e-7))[torch.arange(16), torch.tensor(y)]) * torch.tensor(w)).sum() / 16
    loss.backward()
    for t, ref in zip(model.weights, (k1, b1, k2, b2)):
        np.testing.assert_allclose(t.numpy(), (ref - 0.01 * ref.grad).detach().numpy(), rtol=1e-5, atol=1e-6)
    a, b = _classifier(), _classifier()
    b.set_weights(a.get_weights())
    a.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, class_weight={0: 3.0, 1: 0.5})
    b.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
          sample_weight=np.where(y == 0, 3.0, np.where(y == 1, 0.5, 1.0)))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)
    with pytest.raises(ValueError, match="3 values for 16 samples"):
        _classifier().fit(x, y, verbose=0, sample_weight=w[:3])


def test_a_model_built_inside_a_jit_trace_is_an_error_not_a_frozen_model():
    from neurona.optimizers import SGD

    model = Sequential([Dense(4, activation="relu"), Dense(1)])  # no input_dim: built on first call
    opt = SGD(0.1)

    @nr.jit
    def step(x, y):
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    x, y = nr.ones((8, 3)), nr.zeros((8, 1))
    with pytest.raises(RuntimeError, match="Build it before tracing"):
        step(x, y)
    model(x[:1])  # built eagerly: the same step now trains
    opt.bind(model.trainable_weights)
    losses = [step(x, y).item() for _ in range(5)]
    assert losses[-1] < losses[0]


def test_a_pytorch_style_function_is_explained():
    with pytest.raises(TypeError, match="ordinary method.*no ctx.save_for_backward"):
        class Square(nr.Function):  # noqa: F841 - defining it is the test
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, g):
                return 2 * g


def test_layers_accept_python_lists_of_numbers():
    layer = Dense(2)
    out = layer([[1.0, 2.0, 3.0]])
    assert out.shape == (1, 2) and out.dtype == np.float32
