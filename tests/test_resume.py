"""Resuming training: the optimiser's state saved with the model (optimizer.safetensors), so that
train 2 epochs, save, load, train 1 more == train 3 epochs straight, weight for weight; the
epoch-e shuffle under `initial_epoch`; refusal of damaged or mismatched state files; checkpoints
that resume; atomic writes of the three files."""
import json
import os

import numpy as np
import pytest

import neurona as nr
from neurona.callbacks import Callback, ModelCheckpoint
from neurona.layers import Dense
from neurona.models import Sequential, load_model
from neurona.optim import SGD, Adam, ExponentialDecay, RMSprop
from neurona.saving import save_model

_RNG = np.random.default_rng(0)
X = _RNG.normal(size=(96, 6)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[_RNG.integers(0, 3, 96)]

OPTIMIZERS = {
    "sgd_momentum": lambda: SGD(learning_rate=0.1, momentum=0.9),
    "adam": lambda: Adam(learning_rate=0.01),
    "rmsprop_schedule": lambda: RMSprop(learning_rate=ExponentialDecay(0.01, decay_steps=4, decay_rate=0.5),
                                        momentum=0.5),
}


def _model(make_opt, jit=False):
    nr.manual_seed(1)  # same initial weights, and the same seed drawn for the shuffling
    model = Sequential([Dense(8, activation="tanh", input_dim=6, name="hidden"),
                        Dense(3, activation="softmax", name="out")])
    model.compile(optimizer=make_opt(), loss="categorical_crossentropy", jit=jit)
    return model


def _assert_same_weights(got, want):
    for g, w in zip(got.get_weights(), want.get_weights(), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name,seed,jit", [("sgd_momentum", 7, False), ("adam", None, False),
                                           ("rmsprop_schedule", 3, False), ("adam", 5, True)])
def test_resume_equals_training_straight(tmp_path, name, seed, jit):
    straight = _model(OPTIMIZERS[name], jit)
    straight.fit(X, Y, epochs=3, batch_size=16, seed=seed, verbose=0)

    first = _model(OPTIMIZERS[name], jit)
    first.fit(X, Y, epochs=2, batch_size=16, seed=seed, verbose=0)
    first.save(tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors", "optimizer.safetensors"]
    resumed = load_model(tmp_path / "m")
    assert resumed.optimizer.iterations == 12
    resumed.fit(X, Y, epochs=3, initial_epoch=2, batch_size=16, seed=seed, verbose=0)

    _assert_same_weights(resumed, straight)
    assert resumed.optimizer.iterations == straight.optimizer.iterations == 18
    assert resumed.optimizer.learning_rate == straight.optimizer.learning_rate  # a schedule resumes at step 18

    fresh = load_model(tmp_path / "m")  # the same folder without its optimiser state drifts away
    fresh.optimizer.load_state_dict({})
    fresh.fit(X, Y, epochs=3, initial_epoch=2, batch_size=16, seed=seed, verbose=0)
    assert max(np.abs(a - b).max() for a, b in zip(fresh.get_weights(), straight.get_weights())) > 1e-3


def test_initial_epoch_uses_that_epochs_shuffle():
    class Batches(Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_train_batch_end(self, batch, logs=None):
            self.seen.append(self.model._last_inputs[0].copy())

    straight, resumed = Batches(), Batches()
    _model(OPTIMIZERS["adam"]).fit(X, Y, epochs=3, batch_size=16, seed=11, verbose=0, callbacks=[straight])
    _model(OPTIMIZERS["adam"]).fit(X, Y, epochs=3, initial_epoch=2, batch_size=16, seed=11, verbose=0,
                                   callbacks=[resumed])
    assert len(resumed.seen) == 6
    for got, want in zip(resumed.seen, straight.seen[12:], strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(straight.seen[0], straight.seen[12])  # the epochs are shuffled differently


def test_include_optimizer_false_and_untrained_models_save_no_state(tmp_path):
    model = _model(OPTIMIZERS["adam"])
    model.save(tmp_path / "untrained")  # compiled, but no step taken yet: nothing to resume
    assert not (tmp_path / "untrained" / "optimizer.safetensors").exists()
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "optimizer.safetensors").exists()
    model.save(tmp_path / "m", include_optimizer=False)  # the previous save's state is removed
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["optimizer"] is None and config["format_version"] == 2
    loaded = load_model(tmp_path / "m")
    assert loaded.optimizer.iterations == 0
    _assert_same_weights(loaded, model)


def _saved(tmp_path, name="adam"):
    model = _model(OPTIMIZERS[name])
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "m")
    return model, tmp_path / "m"


def _rewrite_state(folder, change):
    """Apply `change` to the optimiser arrays and re-seal the file's SHA-256 in config.json, as a
    crafted (not merely damaged) file would be."""
    import hashlib

    from safetensors.numpy import load_file, save_file

    path = folder / "optimizer.safetensors"
    arrays = load_file(str(path))
    change(arrays)
    save_file(arrays, str(path))
    config = json.loads((folder / "config.json").read_text())
    config["optimizer"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "config.json").write_text(json.dumps(config))


def test_damaged_optimizer_file_is_refused_by_name(tmp_path):
    model, folder = _saved(tmp_path)
    path = folder / "optimizer.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"optimizer\.safetensors does not match .*SHA-256 differs"):
        load_model(folder)
    loaded = load_model(folder, compile=False)  # compile=False never reads the optimiser state
    assert loaded.optimizer is None
    _assert_same_weights(loaded, model)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"optimizer\.safetensors is missing"):
        load_model(folder)


def test_state_of_the_wrong_shape_names_the_slot_and_both_shapes(tmp_path):
    _, folder = _saved(tmp_path)
    _rewrite_state(folder, lambda a: a.__setitem__("hidden/kernel/m", np.zeros((8, 6), np.float32)))
    with pytest.raises(ValueError, match=r"slot hidden/kernel/m has shape \(8, 6\), the weight hidden/kernel has "
                                         r"shape \(6, 8\)"):
        load_model(folder)


def test_state_that_does_not_fit_the_optimiser_is_refused(tmp_path):
    _, folder = _saved(tmp_path)
    _rewrite_state(folder, lambda a: a.pop("out/bias/v"))
    with pytest.raises(ValueError, match=r"missing \['out/bias/v'\]"):
        load_model(folder)

    _, folder = _saved(tmp_path / "b")
    _rewrite_state(folder, lambda a: a.__setitem__("extra/kernel/m", np.zeros((2, 2), np.float32)))
    with pytest.raises(ValueError, match=r"unexpected \['extra/kernel/m'\]"):
        load_model(folder)

    _, folder = _saved(tmp_path / "s")
    _rewrite_state(folder, lambda a: a.__setitem__("iterations", np.zeros(2, np.int64)))
    with pytest.raises(ValueError, match=r"iterations has shape \(2,\), expected a scalar"):
        load_model(folder)

    _, folder = _saved(tmp_path / "c")
    config = json.loads((folder / "config.json").read_text())
    config["compile"]["optimizer"] = {"class_name": "SGD", "config": {"learning_rate": 0.1, "momentum": 0.9}}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="holds the state of 'Adam', but the model is compiled with SGD"):
        load_model(folder)


def test_version_1_folders_still_load(tmp_path):
    model, folder = _saved(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    del config["optimizer"]
    config["format_version"] = 1
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "optimizer.safetensors").unlink()
    loaded = load_model(folder)
    assert loaded.optimizer.iterations == 0
    _assert_same_weights(loaded, model)
    config["format_version"] = 3
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="format_version 3; this neurona reads versions 1, 2"):
        load_model(folder)


def test_checkpoint_resumes_training(tmp_path):
    straight = _model(OPTIMIZERS["sgd_momentum"])
    ckpt = ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}"), monitor="loss")
    straight.fit(X, Y, epochs=3, batch_size=16, verbose=0, callbacks=[ckpt])  # seed drawn, saved with the state
    assert (tmp_path / "ckpt-02" / "optimizer.safetensors").exists()
    resumed = load_model(tmp_path / "ckpt-02")
    resumed.fit(X, Y, epochs=3, initial_epoch=2, batch_size=16, verbose=0)
    _assert_same_weights(resumed, straight)
    _assert_same_weights(load_model(tmp_path / "ckpt-03"), straight)

    light = ModelCheckpoint(str(tmp_path / "light"), monitor="loss", save_optimizer=False)
    straight.fit(X, Y, epochs=1, batch_size=16, verbose=0, callbacks=[light])
    assert sorted(os.listdir(tmp_path / "light")) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("crash", ["optimizer_write", "weights_write", "first_rename"])
def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch, crash):
    import neurona.saving.safetensors_io as stio  # what the model folder's files are written with

    model, folder = _saved(tmp_path)
    before = {p: (folder / p).read_bytes() for p in os.listdir(folder)}
    assert len(before) == 3
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0)  # new weights and new optimiser state

    real_save = stio.save_file

    def failing_save(arrays, filename, metadata=None):
        if crash == ("optimizer_write" if "iterations" in arrays else "weights_write"):
            real_save(arrays, filename, metadata=metadata)  # half a file exists when the disk fills
            raise OSError("disk full")
        real_save(arrays, filename, metadata=metadata)

    def failing_replace(src, dst):
        raise OSError("disk full")

    if crash == "first_rename":
        monkeypatch.setattr(os, "replace", failing_replace)
    else:
        monkeypatch.setattr(stio, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, folder)
    monkeypatch.undo()
    assert {p: (folder / p).read_bytes() for p in os.listdir(folder)} == before  # no temporaries either
    restored = load_model(folder)
    assert restored.optimizer.iterations == 6
