"""The training-step seam (`train_step`/`test_step`/`predict_step` under `fit`/`evaluate`/`predict`)
and layer tracking (layers held in attributes, lists and dicts)."""
import numpy as np
import pytest

import neurona as nr
from neurona.layers import Dense, Dropout
from neurona.models import Model, Sequential, load_model
from neurona.nn.layer import Layer, register
from neurona.nn.metrics import Mean


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32) + 0.1).astype(np.float32)
    return x, y


@register
class Blocks(Layer):
    """A layer owning sublayers in a list and in a dict (what an RNN wrapper or a block stack does)."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.stack = [Dense(units, activation="relu"), Dense(units)]
        self.heads = {"a": Dense(1), "b": Dense(1)}

    def call(self, x, training=None):
        for layer in self.stack:
            x = layer(x)
        return self.heads["a"](x) + self.heads["b"](x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_layers_in_lists_and_dicts_are_tracked():
    layer = Blocks()
    layer(nr.ones((2, 4)))
    assert len(layer.weights) == 8  # 4 Dense layers, kernel + bias each
    assert len(layer.trainable_weights) == 8
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 8
    assert all(not sub.trainable for sub in layer.stack)
    layer.trainable = True
    assert len(layer.trainable_weights) == 8


def test_a_list_filled_after_assignment_is_tracked():
    class Grow(Layer):
        def __init__(self):
            super().__init__()
            self.blocks = []
            for _ in range(3):
                self.blocks.append(Dense(2))

        def call(self, x, training=None):
            for b in self.blocks:
                x = b(x)
            return x

    layer = Grow()
    layer(nr.ones((1, 2)))
    assert len(layer.weights) == 6


def test_nested_layers_train_save_and_move(tmp_path):
    x, y = _data()
    model = Sequential([Blocks(input_dim=4)])
    model.compile("sgd", "mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    after = model.get_weights()
    assert len(after) == 8 and all(not np.allclose(a, b) for a, b in zip(after, before))
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert "Blocks" in model.summary(print_fn=None) and "Total params: 35" in model.summary(print_fn=None)
    model.to("cpu")
    assert all(w.device == "cpu" for w in model.weights)


class TwoHeaded(Model):
    """A subclassed model whose layers are attributes and a dict; it counts its own steps."""

    def __init__(self):
        super().__init__()
        self.body = Dense(8, activation="relu")
        self.heads = {"out": Dense(1)}
        self.tracker = Mean(name="my_loss")
        self.calls = 0

    def call(self, x, training=None):
        return self.heads["out"](self.body(x))

    def train_step(self, data):
        x, y = data
        self.calls += 1
        pred = self(x, training=True)
        loss = ((pred - y) ** 2).mean()
        grads = nr.grad(loss, self.trainable_weights)
        with nr.no_grad():
            for w, g in zip(self.trainable_weights, grads):
                w -= 0.05 * g
        self.tracker.update_state(loss.item())
        return {"my_loss": self.tracker.result()}

    def reset_metrics(self):
        super().reset_metrics()
        self.tracker.reset_state()


def test_custom_train_step_drives_fit_callbacks_and_history():
    x, y = _data(96)
    model = TwoHeaded()
    model.compile()  # no loss: the step computes its own
    seen = []

    class Spy(nr.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(dict(logs))

    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[Spy()])
    assert model.calls == 9 and len(seen) == 9
    assert set(history.history) == {"my_loss"}
    losses = history.history["my_loss"]
    assert losses[-1] < losses[0]
    assert len(model.weights) == 4 and len(model.layers) == 2


def test_custom_step_trains_on_x_alone():
    class Autoencoder(Model):
        def __init__(self):
            super().__init__()
            self.enc, self.dec = Dense(2), Dense(4)

        def call(self, x, training=None):
            return self.dec(self.enc(x))

        def train_step(self, data):
            (x,) = data
            loss = ((self(x, training=True) - x) ** 2).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            return {"loss": loss}

    x, _ = _data(64)
    model = Autoencoder()
    model(nr.tensor(x[:1]))  # built before fit, so compile's optimiser binds to its weights
    model.compile(optimizer="adam")
    history = model.fit(x, epochs=4, batch_size=16, verbose=0, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_default_step_needs_targets_and_a_loss():
    model = Sequential([Dense(1, input_dim=4)])
    with pytest.raises(ValueError, match="give a loss"):
        model.compile("sgd")
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="give the targets y"):
        model.fit(np.ones((8, 4), np.float32), verbose=0)


def test_train_step_equals_a_manual_step():
    x, y = _data(32)
    a = Sequential([Dense(3, input_dim=4, activation="tanh"), Dense(1)])
    b = Sequential([Dense(3, input_dim=4, activation="tanh"), Dense(1)])
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(nr.optimizers.SGD(0.1), "mse")
    logs = a.train_step((nr.tensor(x), nr.tensor(y)))
    loss = b.train_on_batch(x, y)
    assert logs["loss"] == pytest.approx(loss)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_custom_step_under_jit_matches_eager():
    class Plain(Model):
        def __init__(self):
            super().__init__()
            self.dense = Dense(1)

        def call(self, x, training=None):
            return self.dense(x)

        def train_step(self, data):
            x, y = data
            loss = ((self(x, training=True) - y) ** 2).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            return {"loss": loss}

    x, y = _data(64)
    models = []
    for jit in (False, True):
        nr.manual_seed(1)
        m = Plain()
        m(nr.tensor(x[:1]))
        m.compile(optimizer=nr.optimizers.SGD(0.05))
        m.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False, jit=jit)
        models.append(m)
    for wa, wb in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    assert models[1]._jitted("custom_train").trace_count == 1


def test_custom_test_and_predict_steps():
    class Doubler(Sequential):
        def predict_step(self, data):
            return super().predict_step(data) * 2.0

        def test_step(self, data):
            x, y = data
            return {"mae": (self(x) - y).abs().mean()}

    x, y = _data(20)
    model = Doubler([Dense(1, input_dim=4)])
    model.compile("sgd", "mse")
    base = Sequential([Dense(1, input_dim=4)])
    base.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(x), 2 * base.predict(x), rtol=1e-6)
    result = model.evaluate(x, y, batch_size=20, return_dict=True)
    assert set(result) == {"mae"}
    assert result["mae"] == pytest.approx(float(np.abs(base.predict(x) - y).mean()), rel=1e-5)


def test_dropout_inside_tracked_list_sees_training_flag():
    class Net(Model):
        def __init__(self):
            super().__init__()
            self.layers_ = [Dense(16), Dropout(0.5), Dense(1)]

        def call(self, x, training=None):
            for la in self.layers_:
                x = la(x, training=training)
            return x

    net = Net()
    x = nr.ones((4, 8))
    a, b = net(x, training=False).numpy(), net(x, training=False).numpy()
    np.testing.assert_array_equal(a, b)
    assert len(net.trainable_weights) == 4


def test_summary_of_a_subclassed_model():
    model = TwoHeaded()
    text = model.summary(print_fn=None)
    assert "?" in text
    model(nr.ones((2, 4)))
    text = model.summary(print_fn=None)
    assert "(None, 8)" in text and "(None, 1)" in text and "Total params: 49" in text


def test_clear_session_restarts_layer_names():
    from neurona.utils import clear_session

    clear_session()
    assert Dense(1).name == "dense" and Dense(1).name == "dense_1"
    clear_session()
    assert Dense(1).name == "dense"


@pytest.mark.parametrize("device", ["cuda:1", "cuda:x", "tpu"])
def test_unusable_device_names_are_refused(device):
    layer = Dense(1)
    with pytest.raises(ValueError, match="device"):
        layer.to(device)


def test_a_layer_made_frozen_creates_frozen_weights(tmp_path):
    model = Sequential([Dense(3, input_dim=2, trainable=False), Dense(1)])
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2
    model.compile("sgd", "mse")
    model.save(tmp_path / "m")
    assert len(load_model(tmp_path / "m").trainable_weights) == 2
