"""fit/evaluate/predict with jit=True: the Keras training step (forward, loss with penalties,
backward, optimiser update, constraints) traced by nr.jit gives eager mode's weights, and models
with Dropout and BatchNormalization train as well as in eager mode."""
import numpy as np
import pytest

import neurona as nr
from neurona.callbacks import LearningRateScheduler
from neurona.datasets import digits
from neurona.layers import BatchNormalization, Dense, Dropout, Layer
from neurona.models import Sequential
from neurona.nn.constraints import MaxNorm
from neurona.nn.regularizers import L2
from neurona.optim import ExponentialDecay
from neurona.optimizers import SGD, Adam


@pytest.fixture(scope="module")
def data():
    (x, y), (xv, yv) = digits()
    return x.reshape(len(x), -1) / 16.0, y, xv.reshape(len(xv), -1) / 16.0, yv


def _model(layers, optimizer, jit=False, **compile_kw):
    nr.manual_seed(1)
    model = Sequential(layers())
    model.compile(optimizer=optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit=jit,
                  **compile_kw)
    return model


def _mlp():
    # an L2 penalty and a max-norm constraint: both belong to the traced step
    return [Dense(128, activation="relu", input_shape=(64,), kernel_regularizer=L2(1e-4)),
            Dense(10, activation="softmax", kernel_constraint=MaxNorm(2.0))]


def _fit_both(data, layers, optimizer, epochs=2, **fit_kw):
    x, y, xv, yv = data
    out = []
    for jit in (False, True):
        model = _model(layers, optimizer)
        history = model.fit(x, y, epochs=epochs, batch_size=32, validation_data=(xv, yv), verbose=0, seed=0,
                            jit=jit, **fit_kw)
        out.append((model, history.history))
    return out


def test_fit_jit_gives_eager_weights_on_digits(data):
    (eager, h_eager), (traced, h_jit) = _fit_both(data, _mlp, lambda: SGD(learning_rate=0.1, momentum=0.9))
    for a, b in zip(eager.get_weights(), traced.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    assert h_eager["val_accuracy"][-1] >= 0.95 and h_jit["val_accuracy"][-1] >= 0.95
    np.testing.assert_allclose(h_jit["loss"], h_eager["loss"], rtol=1e-5)
    # 1438 samples: batches of 32 and a last one of 30, so two signatures; the same for validation
    steps = traced._jit_steps
    assert steps["train"].trace_count == 2 and steps["eval"].trace_count == 2
    assert steps["train"]._last.program.launches > 0  # the replays ran the graph
    assert traced.optimizer.iterations == eager.optimizer.iterations == 2 * 45


def test_fit_jit_with_dropout_and_batchnorm(data):
    def layers():
        return [Dense(128, activation="relu", input_shape=(64,)), BatchNormalization(), Dropout(0.2),
                Dense(10, activation="softmax")]

    (eager, h_eager), (traced, h_jit) = _fit_both(data, layers, lambda: Adam(learning_rate=0.005), epochs=4)
    assert h_jit["val_accuracy"][-1] >= 0.93, h_jit["val_accuracy"]
    assert abs(h_jit["val_accuracy"][-1] - h_eager["val_accuracy"][-1]) <= 0.02
    bn_eager, bn_jit = eager.layers[1], traced.layers[1]
    assert not np.allclose(bn_jit.moving_mean.numpy(), 0.0)  # the moving statistics were written back
    # the replays draw dropout masks from the seeded generator in eager order, so even the
    # weights agree (a mask frozen into the trace would not)
    np.testing.assert_allclose(bn_jit.moving_mean.numpy(), bn_eager.moving_mean.numpy(), rtol=1e-4, atol=1e-5)


def test_compile_jit_is_the_default_for_fit_evaluate_predict(data, tmp_path):
    x, y, xv, yv = data
    model = _model(_mlp, lambda: SGD(learning_rate=0.05), jit=True)
    model.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
    assert model._jit_steps["train"].trace_count == 1
    eager_pred = model.predict(xv, batch_size=100, jit=False)
    np.testing.assert_allclose(model.predict(xv, batch_size=100), eager_pred, rtol=1e-5, atol=1e-6)
    assert model._jit_steps["predict"].trace_count == 2  # 100 and the last 59
    np.testing.assert_allclose(model.evaluate(xv, yv, batch_size=100), model.evaluate(xv, yv, batch_size=100, jit=False),
                               rtol=1e-5)
    model.save(tmp_path / "m")
    assert nr.models.load_model(tmp_path / "m").jit  # the compile setting is saved


def test_fit_jit_follows_schedules_and_learning_rate_callbacks(data):
    def optimizer():
        return Adam(learning_rate=ExponentialDecay(0.01, decay_steps=10, decay_rate=0.5), clipnorm=1.0)

    (eager, _), (traced, _) = _fit_both(data, _mlp, optimizer)
    for a, b in zip(eager.get_weights(), traced.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)

    (eager, _), (traced, _) = _fit_both(data, _mlp, lambda: SGD(learning_rate=0.1, momentum=0.9),
                                        callbacks=[LearningRateScheduler(lambda epoch: 0.1 / (1 + epoch))])
    for a, b in zip(eager.get_weights(), traced.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    assert traced._jit_steps["train"].trace_count == 2  # the new rate is read, not retraced


class _Concat(Layer):
    """Joins a list of inputs along the last axis (the library has no merge layer yet)."""

    def call(self, xs, training=None):
        return nr.concatenate(list(xs), axis=-1)


def test_fit_jit_with_several_inputs_and_outputs():
    from neurona.models import Input, Model

    def build():
        nr.manual_seed(3)
        a, b = Input(shape=(4,)), Input(shape=(4,))
        shared = Dense(3, activation="tanh")
        merged = _Concat()([shared(a), shared(b)])
        model = Model([a, b], [Dense(2, activation="softmax")(merged), Dense(1)(merged)])
        model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"], metrics=["accuracy"],
                      loss_weights=[1.0, 0.5])
        return model

    rng = np.random.default_rng(0)
    xa, xb = rng.random((50, 4)), rng.random((50, 4))
    ya, yb = rng.integers(0, 2, 50), rng.random((50, 1))
    histories, weights = [], []
    for jit in (False, True):
        model = build()
        histories.append(model.fit([xa, xb], [ya, yb], epochs=3, batch_size=16, verbose=0, seed=0, jit=jit).history)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(histories[1]["output_0_accuracy"], histories[0]["output_0_accuracy"])
    model.jit = True  # train_on_batch follows the compile setting
    loss, *_ = model.train_on_batch([xa[:16], xb[:16]], [ya[:16], yb[:16]])
    assert np.isfinite(loss) and model._jit_steps["train"].trace_count == 2  # 16 and the last 2
