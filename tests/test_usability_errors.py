"""Bad input a new user gives gets an error that names the problem (issue 10, item 2), and Python
lists are accepted where Keras accepts them."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import neurona as nr
from neurona import backend as B
from neurona.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from neurona.models import Model, Sequential, load_model
from neurona.ops import ShapeError


def _mlp():
    model = Sequential([Dense(3, input_dim=2, activation="softmax", name="hidden")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# -- Python lists ---------------------------------------------------------------------------------------
def test_fit_evaluate_predict_take_python_lists_like_arrays():
    x = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]]
    y = [0, 1, 2, 1]
    a, b = _mlp(), _mlp()
    b.set_weights(a.get_weights())
    ha = a.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0)
    hb = b.fit(np.array(x, np.float32), np.array(y), epochs=2, batch_size=2, shuffle=False, verbose=0)
    assert ha.history["loss"] == pytest.approx(hb.history["loss"])
    np.testing.assert_allclose(a.predict(x), b.predict(np.array(x, np.float32)), rtol=1e-6)
    assert a.evaluate(x, y) == pytest.approx(b.evaluate(np.array(x, np.float32), np.array(y)))
    a.fit(x, y, validation_data=(x, y), epochs=1, verbose=0)


def test_validation_split_takes_python_lists():
    model = _mlp()
    x, y = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]], [0, 1, 2, 1]
    history = model.fit(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert "val_loss" in history.history


def test_list_of_arrays_still_means_several_inputs():
    a, b = Input(shape=(2,)), Input(shape=(3,))
    from neurona.layers import Concatenate

    model = Model([a, b], Dense(1)(Concatenate()([a, b])))
    model.compile("sgd", "mse")
    out = model.predict([np.zeros((4, 2), np.float32), np.zeros((4, 3), np.float32)])
    assert out.shape == (4, 1)
    # two inputs written as nested lists: a list of as many entries as the model has inputs
    out = model.predict([[[0.0, 0.0]] * 4, [[0.0, 0.0, 0.0]] * 4])
    assert out.shape == (4, 1)


def test_ragged_or_unbatched_lists_are_named():
    model = _mlp()
    with pytest.raises(ValueError, match=r"sequential.*fit: x is a nested list whose rows have different lengths"):
        model.fit([[0.1, 0.2], [0.3]], [0, 1], verbose=0)
    with pytest.raises(ValueError, match=r"predict: x is a single float .* batch axis"):
        model.predict(0.5)


# -- numbers that must be integers ------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [2.5, 0, -1, True, "32"])
def test_fit_batch_size_must_be_a_positive_integer(bad):
    model = _mlp()
    with pytest.raises(ValueError, match=r"fit: batch_size must be a positive integer .*got " + repr(bad).replace(".", r"\.")):
        model.fit(np.zeros((4, 2), np.float32), np.zeros(4, np.int64), batch_size=bad, verbose=0)
    with pytest.raises(ValueError, match="evaluate: batch_size"):
        model.evaluate(np.zeros((4, 2), np.float32), np.zeros(4, np.int64), batch_size=bad)


def test_num_threads_is_validated_and_named(monkeypatch):
    monkeypatch.setattr(B.threads, "_num_threads", None)
    for bad in ("abc", "1.5", "0", "-2"):
        monkeypatch.setenv("NEURONA_NUM_THREADS", bad)
        with pytest.raises(ValueError, match=f"NEURONA_NUM_THREADS must be a positive integer.*got '{bad}'"):
            nr.get_num_threads()
    monkeypatch.setenv("NEURONA_NUM_THREADS", "2")
    assert nr.get_num_threads() == 2
    monkeypatch.delenv("NEURONA_NUM_THREADS")
    assert nr.get_num_threads() == B.threads.available_cpus()  # the default
    for bad in (1.5, 0, "2", True):
        with pytest.raises(ValueError, match=r"set_num_threads: n must be a positive integer"):
            nr.set_num_threads(bad)
    nr.set_num_threads(np.int64(1))
    assert nr.get_num_threads() == 1


def test_conv_algo_is_validated_and_named(monkeypatch):
    from neurona.backend.kernels import winograd

    monkeypatch.setenv("NEURONA_CONV_ALGO", "foo")
    with pytest.raises(ValueError, match=r"NEURONA_CONV_ALGO must be one of auto, im2col, winograd, 1x1, got 'foo'"):
        winograd._algo_setting()
    geo = (3, 3, 1, 1, 1, 1, 1, 1, 8, 8)
    with pytest.raises(ValueError, match="NEURONA_CONV_ALGO"):
        winograd.suits(8, 16, 16, geo, 1, fast=True)
    monkeypatch.setenv("NEURONA_CONV_ALGO", " Winograd ")
    assert winograd._algo_setting() == "winograd"


# -- hand-edited configs ------------------------------------------------------------------------------------
def _edit_config(folder, old, new):
    path = folder / "config.json"
    text = json.dumps(json.loads(path.read_text()))
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_bad_config_key_names_the_layer_and_the_key(tmp_path):
    model = Sequential([Dense(3, input_dim=2, name="hidden"), Dense(1, name="out")])
    model.save(tmp_path / "m")
    _edit_config(tmp_path / "m", '"units": 3', '"units": 3, "actvation": "relu"')
    with pytest.raises(ValueError, match=r"config.json is invalid: Dense layer 'hidden': unknown config key "
                                         r"'actvation' \(did you mean 'activation'\?\)\. Dense takes: units"):
        load_model(tmp_path / "m")
    _edit_config(tmp_path / "m", '"units": 3, "actvation": "relu"', '"unitz": 3')
    with pytest.raises(ValueError, match=r"Dense layer 'hidden': unknown config key 'unitz'.*missing config key 'units'"):
        load_model(tmp_path / "m")
    _edit_config(tmp_path / "m", '"unitz": 3', '"units": 3')
    _edit_config(tmp_path / "m", '"activation": "linear"', '"activation": "rellu"')
    with pytest.raises(ValueError, match=r"Dense layer 'hidden': unknown activation 'rellu'"):
        load_model(tmp_path / "m")


def test_bad_config_key_in_a_functional_model(tmp_path):
    x = Input(shape=(4,))
    model = Model(x, Dense(2, name="head")(x))
    model.save(tmp_path / "f")
    _edit_config(tmp_path / "f", '"units": 2', '"units": 2, "kernel_init": "zeros"')
    with pytest.raises(ValueError, match=r"Dense layer 'head': unknown config key 'kernel_init' \(did you mean "
                                         r"'kernel_initializer'\?\)"):
        load_model(tmp_path / "f")


# -- image layouts ------------------------------------------------------------------------------------------------
def test_channels_last_data_into_an_nchw_model_hints_at_the_layout():
    model = Sequential([Conv2D(4, 3, input_shape=(1, 28, 28)), Flatten(), Dense(2)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    nhwc = np.zeros((2, 28, 28, 1), np.float32)
    hint = r"looks like channels-last \(N, H, W, C\) data: transpose it \(x\.transpose\(0, 3, 1, 2\)\) or .*data_format='channels_last'"
    with pytest.raises(ShapeError, match=hint):
        model.fit(nhwc, np.zeros(2, np.int64), verbose=0)
    with pytest.raises(ShapeError, match=hint):
        MaxPooling2D(2)(nr.zeros((2, 28, 28, 1)))
    with pytest.raises(ShapeError, match=r"channels-first \(N, C, H, W\).*data_format='channels_first'"):
        MaxPooling2D(2, data_format="channels_last")(nr.zeros((2, 1, 28, 28)))
    # the right layout, or a shape that does not look like the other one, gets no hint
    assert model.predict(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 2)
    conv = Conv2D(4, 3)
    conv(nr.zeros((2, 2, 9, 9)))
    with pytest.raises(ShapeError, match="must have 2 channels") as err:
        conv(nr.zeros((2, 5, 9, 9)))
    assert "looks like" not in str(err.value)


def test_lazily_built_conv_warns_on_channels_last_looking_data():
    with pytest.warns(UserWarning, match=r"building for 28 input channels \(channels_first\).*channels-last"):
        Conv2D(4, 3)(nr.zeros((2, 28, 28, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Conv2D(4, 3)(nr.zeros((2, 3, 28, 28)))
        Conv2D(4, 3, data_format="channels_last")(nr.zeros((2, 28, 28, 3)))


# -- pictures ---------------------------------------------------------------------------------------------------
def test_plot_history_without_metrics_and_without_touching_pyplot(tmp_path):
    import matplotlib

    from neurona.plots import plot_history

    before = matplotlib.get_backend()
    model = Sequential([Dense(1, input_dim=2)])
    model.compile("sgd", "mse")
    history = model.fit(np.zeros((8, 2), np.float32), np.zeros((8, 1), np.float32), epochs=2, verbose=0,
                        validation_split=0.25)
    path = plot_history(history, tmp_path / "loss.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert matplotlib.get_backend() == before
    with pytest.raises(ValueError, match=r"plot_history: no 'accuracy' in the history; it holds \['loss', 'val_loss'\]"):
        plot_history(history, tmp_path / "acc.png", metrics=["loss", "accuracy"])


def test_missing_dot_says_what_to_install(tmp_path, monkeypatch):
    from neurona import graph as G

    x = nr.tensor(2.0, requires_grad=True)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    with pytest.raises(RuntimeError, match=r"`dot` program is not on PATH.*apt-get install graphviz"):
        nr.viz.draw_graph(x * x, tmp_path / "g.svg")
    assert nr.viz.draw_graph(x * x, tmp_path / "g.dot").read_text().startswith("digraph")
    graph = G.trace_graph(lambda a: a + 1, nr.ones(2)) if hasattr(G, "trace_graph") else None
    if graph is not None:
        with pytest.raises(RuntimeError, match=r"apt-get install graphviz"):
            G.draw(graph, tmp_path / "t.svg")


def test_missing_graphviz_package_says_what_to_install():
    code = ("import sys; sys.modules['graphviz'] = None\n"
            "import neurona as nr\n"
            "try:\n    nr.viz\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install graphviz" in out.stdout and "[viz]" in out.stdout, out.stdout + out.stderr
