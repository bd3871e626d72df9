"""neurona.saving: save/load round trips, refusal of crafted, corrupt and mismatched files, atomic
writes, and ONNX export checked with onnxruntime against predict."""
import json
import os

import numpy as np
import pytest

from neurona.layers import (ELU, PReLU, Activation, BatchNormalization, Dense, Dropout, Flatten, LeakyReLU,
                            Reshape, Softmax)
from neurona.models import Input, Model, Sequential, load_model
from neurona.optimizers import SGD
from neurona.saving import load_weights, save_weights



def _trained_mlp():
    model = Sequential([Dense(16, activation="relu", input_dim=8, kernel_regularizer="l2"), BatchNormalization(),
                        Dropout(0.3), Dense(4), Activation("softmax")])
    model.compile(optimizer=SGD(learning_rate=0.05, momentum=0.9), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    x = np.random.rand(64, 8).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[np.random.randint(0, 4, 64)]
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model, x, y


def test_round_trip_gives_identical_predictions_and_compile(tmp_path):
    model, x, y = _trained_mlp()
    model.save(tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors", "optimizer.safetensors"]
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.layers[1].moving_variance.numpy(), model.layers[1].moving_variance.numpy())
    assert [type(la).__name__ for la in loaded.layers] == [type(la).__name__ for la in model.layers]
    assert loaded.evaluate(x, y) == pytest.approx(model.evaluate(x, y), rel=1e-6)  # loss, regulariser, metric
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations  # the training state came back too
    loaded.fit(x, y, epochs=1, verbose=0)  # compiled again: it trains


def test_functional_model_round_trip(tmp_path):
    a, b = Input(shape=(3,), name="a"), Input(shape=(3,), name="b")
    shared = Dense(5, activation="tanh")
    model = Model([a, b], [Dense(2)(shared(a)), shared(b)])
    xs = [np.random.rand(6, 3), np.random.rand(6, 3)]
    model.save(tmp_path / "f")
    loaded = load_model(tmp_path / "f")
    for got, want in zip(loaded.predict(xs), model.predict(xs), strict=True):
        np.testing.assert_array_equal(got, want)
    assert loaded.count_params() == model.count_params()


def test_weights_only_round_trip_and_mismatch(tmp_path):
    model, x, _ = _trained_mlp()
    save_weights(model, tmp_path / "w.safetensors")
    other = Sequential([Dense(16, activation="relu", input_dim=8), BatchNormalization(), Dropout(0.3), Dense(4),
                        Activation("softmax")])
    load_weights(other, tmp_path / "w.safetensors")  # the same architecture, other auto-numbered names
    np.testing.assert_array_equal(other.predict(x), model.predict(x))
    different = Sequential([Dense(12, activation="relu", input_dim=8), BatchNormalization(), Dropout(0.3),
                            Dense(4), Activation("softmax")])
    with pytest.raises(ValueError, match="do not match"):  # another architecture: matched by name, refused
        load_weights(different, tmp_path / "w.safetensors")
    twin = Sequential.from_config(model.get_config())
    load_weights(twin, tmp_path / "w.safetensors")
    np.testing.assert_array_equal(twin.predict(x), model.predict(x))


def test_crafted_config_never_runs_code(tmp_path):
    model, _, _ = _trained_mlp()
    model.save(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    marker = tmp_path / "pwned"
    for evil in ({"class_name": "os.system", "config": {}},
                 {"class_name": "Dense",
                  "config": {"units": 2, "activation": f"__import__('os').system('touch {marker}')"}}):
        cfg["config"]["layers"][0] = evil
        cfg_path.write_text(json.dumps(cfg))
        with pytest.raises(ValueError, match="unknown"):
            load_model(tmp_path / "m")
    assert not marker.exists()
    cfg["class_name"] = "Dense"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="not a model class"):
        load_model(tmp_path / "m")


def test_a_pickle_or_garbage_is_a_clear_error(tmp_path):
    import pickle

    model, _, _ = _trained_mlp()
    model.save(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_bytes(pickle.dumps({"class_name": "Sequential"}))
    with pytest.raises(ValueError, match="not valid JSON"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a neurona model config"):
        load_model(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        load_model(tmp_path / "nowhere")


def test_corrupt_or_swapped_weights_are_refused(tmp_path):
    model, _, _ = _trained_mlp()
    model.save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    raw = weights.read_bytes()
    weights.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="does not match"):
        load_model(tmp_path / "m")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load_weights(model, weights)
    other, _, _ = _trained_mlp()
    other.save(tmp_path / "o")
    weights.write_bytes((tmp_path / "o" / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="SHA-256 differs"):
        load_model(tmp_path / "m")


def test_writes_are_atomic(tmp_path, monkeypatch):
    model, x, _ = _trained_mlp()
    model.save(tmp_path / "m")
    before = {p: (tmp_path / "m" / p).read_bytes() for p in os.listdir(tmp_path / "m")}

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    kept = model.layers[0].kernel.numpy().copy()
    model.layers[0].kernel.data[...] += 1.0
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "m")
    monkeypatch.undo()
    after = {p: (tmp_path / "m" / p).read_bytes() for p in os.listdir(tmp_path / "m")}
    assert after == before  # old files intact, no temporary files left behind
    model.layers[0].kernel.data[...] = kept
    np.testing.assert_array_equal(load_model(tmp_path / "m").predict(x), model.predict(x))


def _onnx_run(path, feeds):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_onnx_export_matches_predict(tmp_path):
    onnx = pytest.importorskip("onnx")
    model, x, _ = _trained_mlp()
    path = model.export_onnx(tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(str(path)))
    (out,) = _onnx_run(path, {"input": x})
    np.testing.assert_allclose(out, model.predict(x), rtol=1e-5, atol=1e-6)
    (out,) = _onnx_run(path, {"input": x[:3]})  # the batch axis is dynamic
    assert out.shape == (3, 4)


def test_onnx_export_other_layers_and_functional(tmp_path):
    pytest.importorskip("onnx")
    model = Sequential([Reshape((2, 6), input_shape=(12,)), Flatten(), Dense(6), LeakyReLU(0.2), Dense(5),
                        ELU(0.7), Dense(4), PReLU(), Dense(3), Softmax()])
    x = np.random.randn(7, 12).astype(np.float32)
    model.layers[7].alpha.data[...] = np.linspace(0.1, 0.4, 4)
    (out,) = _onnx_run(model.export_onnx(tmp_path / "s.onnx"), {"input": x})
    np.testing.assert_allclose(out, model.predict(x), rtol=1e-5, atol=1e-6)

    a, b = Input(shape=(12,)), Input(shape=(12,))
    shared = Dense(8, activation="tanh")
    fmodel = Model([a, b], [Dense(2, activation="sigmoid")(shared(a)), Dense(3, activation="elu")(shared(b))])
    x2 = np.random.randn(7, 12).astype(np.float32)
    outs = _onnx_run(fmodel.export_onnx(tmp_path / "f.onnx"), {"input_0": x, "input_1": x2})
    for got, want in zip(outs, fmodel.predict([x, x2]), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_onnx_export_refuses_unknown_activations(tmp_path):
    pytest.importorskip("onnx")
    model = Sequential([Dense(2, activation=lambda t: t * 2, input_dim=3)])
    with pytest.raises(ValueError, match="no ONNX mapping"):
        model.export_onnx(tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_saved_files_have_the_same_bytes_in_every_process(tmp_path):
    """safetensors writes its metadata map in a per-process order; neurona sorts it, so one model
    saved by three processes gives three identical weight files (the pipeline compares them by
    hash)."""
    import hashlib
    import subprocess
    import sys

    script = ("import sys, neurona as nr\n"
              "from neurona.models import Sequential\nfrom neurona.layers import Dense\n"
              "nr.manual_seed(0)\n"
              "m = Sequential([Dense(3, input_dim=2, name='a'), Dense(1, name='b')])\n"
              "m.save(sys.argv[1])\n")
    digests = set()
    for i in range(3):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / str(i))], check=True)
        digests.add(hashlib.sha256((tmp_path / str(i) / "model.safetensors").read_bytes()).hexdigest())
    assert len(digests) == 1
