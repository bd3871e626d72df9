"""neurona.models: Sequential and functional models, compile/fit/evaluate/predict, the course's
Keras example, digits to >= 95%, and the training loop checked step by step against PyTorch."""
import time

import numpy as np
import pytest
import torch

import neurona as nr
from neurona.layers import BatchNormalization, Dense, Dropout, Layer
from neurona.models import Input, Model, Sequential
from neurona.optimizers import SGD
from neurona.nn.layer import register
from neurona.utils import to_categorical


@register
class Concat(Layer):
    """Joins a list of inputs along the last axis (a test layer taking several inputs)."""

    def call(self, xs, training=None):
        return nr.concatenate(list(xs), axis=-1)


def test_course_keras_example_runs_with_neurona_imports():
    # Course topic 3, with `from neurona...` in place of `from keras...` (randint(1000, 20) is a typo
    # in the course for random((1000, 20))).
    x_train = np.random.random((1000, 20))
    y_train = to_categorical(np.random.randint(10, size=(1000, 1)), num_classes=10)
    x_test = np.random.random((100, 20))
    y_test = to_categorical(np.random.randint(10, size=(100, 1)), num_classes=10)

    model = Sequential()
    model.add(Dense(64, activation="relu", input_dim=20))
    model.add(Dropout(0.5))
    model.add(Dense(64, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(10, activation="softmax"))
    sgd = SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)
    model.compile(loss="categorical_crossentropy", optimizer=sgd, metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=20, batch_size=128, verbose=0)
    score = model.evaluate(x_test, y_test, batch_size=128)

    assert len(history.history["loss"]) == 20 and len(score) == 2
    assert history.history["loss"][-1] < history.history["loss"][0]  # it fits the training noise a bit
    assert 0.0 <= score[1] <= 1.0 and np.isfinite(score[0])
    assert sgd.iterations == 20 * 8 and model.count_params() == 20 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10


def test_fit_on_digits_reaches_95_percent_quickly():
    from neurona.datasets import digits

    (x, y), (xv, yv) = digits()
    x, xv = x.reshape(len(x), -1) / 16.0, xv.reshape(len(xv), -1) / 16.0
    model = Sequential([Dense(64, activation="relu", input_shape=(64,)), BatchNormalization(),
                        Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x, y, epochs=15, batch_size=32, validation_data=(xv, yv), verbose=0)
    elapsed = time.perf_counter() - start
    assert history.history["val_accuracy"][-1] >= 0.95, history.history["val_accuracy"]
    assert elapsed < 20, elapsed


def test_fit_matches_a_pytorch_loop_step_by_step():
    x = np.random.rand(64, 5).astype(np.float32)
    y = np.random.rand(64, 3).astype(np.float32)
    model = Sequential([Dense(8, activation="tanh", input_dim=5), Dense(3)])
    w1, b1, w2, b2 = model.get_weights()
    model.compile(optimizer=SGD(learning_rate=0.1, momentum=0.9), loss="mse")
    model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)

    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        for lin, w, b in ((net[0], w1, b1), (net[2], w2, b2)):
            lin.weight.copy_(torch.tensor(w.T))
            lin.bias.copy_(torch.tensor(b))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        for i in range(0, 64, 16):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(torch.tensor(x[i:i + 16])), torch.tensor(y[i:i + 16])).backward()
            opt.step()
    got = model.get_weights()
    np.testing.assert_allclose(got[0], net[0].weight.detach().numpy().T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[3], net[2].bias.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict(x), net(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_regularisation_losses_join_the_loss_and_constraints_apply():
    x, y = np.random.rand(32, 4), np.random.rand(32, 2)
    model = Sequential([Dense(2, input_dim=4, kernel_regularizer="l2", kernel_constraint="max_norm")])
    model.compile(optimizer=SGD(learning_rate=0.0), loss="mse")
    data_loss = float(((model.predict(x) - y) ** 2).mean())
    penalty = 0.01 * float((model.get_weights()[0].astype(np.float64) ** 2).sum())
    assert model.train_on_batch(x, y) == pytest.approx(data_loss + penalty, rel=1e-5)
    model.layers[0].kernel.data[...] = 10.0
    model.compile(optimizer=SGD(learning_rate=0.0), loss="mse")
    model.train_on_batch(x, y)
    norms = np.sqrt((model.get_weights()[0] ** 2).sum(axis=0))
    assert np.all(norms <= 2.0 + 1e-5)  # max_norm's default limit


def test_training_flag_reaches_dropout_and_batchnorm():
    x = np.random.rand(256, 6).astype(np.float32) * 3 + 1
    model = Sequential([BatchNormalization(input_shape=(6,)), Dropout(0.5)])
    model.compile(optimizer="sgd", loss="mse")
    out = model.predict(x)  # inference: running stats start at mean 0, var 1 -> identity, no dropout
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-3), rtol=1e-4)
    model.fit(x, np.zeros_like(x), epochs=1, batch_size=256, verbose=0)
    moving_mean = model.layers[0].moving_mean.numpy()
    assert np.all(moving_mean > 0.0)  # updated from a training batch only


def test_lazy_build_summary_and_shapes():
    model = Sequential([Dense(5), Dense(2)])
    assert not model.built
    with pytest.raises(ValueError, match="not built"):
        _ = model.output_shape
    model.predict(np.zeros((3, 7)))
    assert model.built and model.output_shape == (None, 2) and model.input_shape == (None, 7)
    text = model.summary(print_fn=None)
    assert "dense" in text and "(None, 5)" in text and "Total params: 52" in text


def test_functional_model_several_inputs_outputs_and_shared_layers():
    a, b = Input(shape=(4,)), Input(shape=(4,))
    shared = Dense(3, activation="tanh")
    merged = Concat()([shared(a), shared(b)])
    out1, out2 = Dense(2, activation="softmax")(merged), Dense(1)(merged)
    model = Model([a, b], [out1, out2])
    assert model.output_shape == [(None, 2), (None, 1)]
    assert model.count_params() == 4 * 3 + 3 + 6 * 2 + 2 + 6 + 1  # the shared Dense counted once
    xa, xb = np.random.rand(50, 4), np.random.rand(50, 4)
    pa, pb = model.predict([xa, xb])
    w, bias = shared.get_weights()
    manual = np.concatenate([np.tanh(xa @ w + bias), np.tanh(xb @ w + bias)], axis=1)
    np.testing.assert_allclose(pb, manual @ model.layers[-1].get_weights()[0] + model.layers[-1].get_weights()[1],
                               rtol=1e-5, atol=1e-6)
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"], metrics=["accuracy"],
                  loss_weights=[1.0, 0.5])
    ya, yb = np.random.randint(0, 2, 50), np.random.rand(50, 1)
    before = model.evaluate([xa, xb], [ya, yb])[0]
    history = model.fit([xa, xb], [ya, yb], epochs=30, batch_size=10, verbose=0)
    assert history.history["loss"][-1] < before
    assert "output_0_accuracy" in history.history
    rebuilt = Model.from_config(model.get_config())
    assert rebuilt.output_shape == model.output_shape and rebuilt.count_params() == model.count_params()


def test_models_nest_and_bad_graphs_are_refused():
    inner = Sequential([Dense(4, activation="relu", input_dim=3), Dense(2)])
    x = Input(shape=(3,))
    outer = Model(x, Dense(1)(inner(x)))
    assert outer.predict(np.ones((5, 3))).shape == (5, 1)
    assert outer.count_params() == inner.count_params() + 3
    y = Input(shape=(3,))
    with pytest.raises(ValueError, match="not among the inputs"):
        Model(x, Dense(1)(y))
    with pytest.raises(TypeError, match="symbolic"):
        Model(x, nr.ones((2, 2)))


def test_fit_validation_and_errors():
    model = Sequential([Dense(1, input_dim=2)])
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit(np.zeros((4, 2)), np.zeros((5, 1)), verbose=0)
    history = model.fit(np.random.rand(20, 2), np.random.rand(20, 1), validation_split=0.25, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "val_loss"}
    assert history.epoch == [0, 1]


def test_train_on_batch_and_progress_output(capsys):
    model = Sequential([Dense(3, activation="softmax", input_dim=4)])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    x, y = np.random.rand(8, 4), to_categorical(np.arange(8) % 3)
    loss, acc = model.train_on_batch(x, y)
    assert np.isfinite(loss) and 0 <= acc <= 1
    model.fit(x, y, epochs=2, batch_size=4, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "2/2 [==============================]" in out and "accuracy:" in out


def test_subclassed_model_trains_with_fit():
    class TwoLayer(Model):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = Dense(8, activation="tanh"), Dense(1)

        def call(self, x, training=None):
            return self.out(self.hidden(x))

    model = TwoLayer()
    model.compile(optimizer=SGD(learning_rate=0.1), loss="mse")
    x = np.random.rand(40, 3)
    y = x.sum(axis=1, keepdims=True)
    history = model.fit(x, y, epochs=20, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    assert len(model.trainable_weights) == 4 and model.count_params() == 3 * 8 + 8 + 8 + 1


def test_training_false_at_a_symbolic_call_freezes_that_call():
    x = Input(shape=(3,))
    frozen = Dropout(0.9)
    model = Model(x, frozen(x, training=False))
    data = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(model(nr.tensor(data), training=True).numpy(), data)
    rebuilt = Model.from_config(model.get_config())
    np.testing.assert_array_equal(rebuilt(nr.tensor(data), training=True).numpy(), data)



def _fit_digits_with_adam(optimizer, jit):
    from neurona.datasets import digits

    nr.manual_seed(0)
    (x, y), (xv, yv) = digits()
    x, xv = x.reshape(len(x), -1) / 16.0, xv.reshape(len(xv), -1) / 16.0
    model = Sequential([Dense(64, activation="relu", input_shape=(64,)), Dense(10, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit=jit)
    history = model.fit(x, y, epochs=5, batch_size=32, validation_data=(xv, yv), verbose=0, seed=0)
    loss = history.history["loss"]
    assert loss[-1] < 0.5 * loss[0], loss
    assert history.history["val_accuracy"][-1] >= 0.90, history.history["val_accuracy"]
    return model


@pytest.mark.parametrize("jit", [False, True])
def test_compile_adam_by_name_then_fit_on_digits_trains(jit):
    model = _fit_digits_with_adam("adam", jit)
    assert model.optimizer.iterations == 5 * 45  # 1,438 images in batches of 32


def test_adam_with_a_schedule_trains_and_jit_follows_the_schedule():
    # The schedule is Python: the traced step must read its value each iteration (sync_learning_rate),
    # so eager and traced training end at the same weights and the same rate.
    from neurona.optimizers import Adam, ExponentialDecay

    models = [_fit_digits_with_adam(Adam(learning_rate=ExponentialDecay(0.01, decay_steps=45, decay_rate=0.5)),
                                    jit) for jit in (False, True)]
    for m in models:
        assert m.optimizer.learning_rate == pytest.approx(0.01 * 0.5 ** 5)
    for a, b in zip(models[0].weights, models[1].weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-4)
    # a constant rate ends elsewhere: the schedule did act
    constant = _fit_digits_with_adam(Adam(learning_rate=0.01), False)
    assert not np.allclose(constant.weights[0].numpy(), models[0].weights[0].numpy(), atol=1e-3)
