"""fit / evaluate / predict on data given batch by batch: a DataLoader, a Dataset, a generator.
The same batches in the same order give exactly the array path's results (jit or not, partial last
batch included); callbacks see the same logs; arguments that cannot apply are refused by name."""
import io

import numpy as np
import pytest

from neurona.callbacks import (Callback, CSVLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint,
                               ProgbarLogger)
from neurona.data import ArrayDataset, DataLoader, Dataset
from neurona.layers import Dense
from neurona.models import Input, Model, Sequential


def _model(seed=0):
    model = Sequential([Dense(5, activation="relu", input_dim=4), Dense(3, activation="softmax")])
    rng = np.random.default_rng(seed)
    for w in model.weights:  # identical starting weights for every run
        w.data[...] = rng.normal(0.0, 0.5, w.shape).astype(w.data.dtype)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n)  # float64 inputs: fit makes them float32


def _weights(model):
    return [w.numpy().copy() for w in model.weights]


def _assert_same(a, b):
    for wa, wb in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(wa, wb)


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.batches, self.epochs, self.built_at_begin = [], [], None

    def on_train_begin(self, logs=None):
        self.built_at_begin = self.model.built

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append((batch, dict(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((epoch, dict(logs)))


@pytest.mark.parametrize("jit", [False, True])
def test_loader_gives_the_array_results(jit):
    """40 samples in batches of 16: the last batch (8) is partial, so jit traces twice."""
    x, y = _data()
    vx, vy = _data(12, seed=2)
    arrays, loader = _model(), _model()
    rec_a, rec_l = Recorder(), Recorder()
    h_a = arrays.fit(x, y, batch_size=16, epochs=3, shuffle=False, validation_data=(vx, vy), verbose=0,
                     jit=jit, callbacks=[rec_a])
    h_l = loader.fit(DataLoader((x, y), batch_size=16), epochs=3, verbose=0, jit=jit, callbacks=[rec_l],
                     validation_data=DataLoader((vx, vy), batch_size=5))
    _assert_same(arrays, loader)
    # validation in batches of 5 instead of 32 changes only the rounding of the averages
    assert h_a.history.keys() == h_l.history.keys()
    for k in h_a.history:
        np.testing.assert_allclose(h_a.history[k], h_l.history[k], rtol=1e-5, err_msg=k)
        if not k.startswith("val_"):
            assert h_a.history[k] == h_l.history[k], k
    assert rec_a.batches == rec_l.batches  # the same per-batch logs
    assert rec_a.params == rec_l.params == {"epochs": 3, "steps": 3, "batch_size": 16, "samples": 40,
                                            "verbose": 0, "metrics": ["loss", "accuracy"]}
    if jit:
        assert loader._jitted("train").trace_count == 2  # a full and a partial batch, each traced once
    assert arrays.evaluate(x, y, batch_size=16, jit=jit) == loader.evaluate(DataLoader((x, y), batch_size=16),
                                                                             jit=jit)
    np.testing.assert_array_equal(arrays.predict(x, batch_size=16, jit=jit),
                                  loader.predict(DataLoader((x,), batch_size=16), jit=jit))
    # the non-jit run agrees with the traced one to rounding
    if jit:
        plain = _model()
        plain.fit(DataLoader((x, y), batch_size=16), epochs=3, verbose=0)
        for a, b in zip(_weights(plain), _weights(loader)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_shuffling_loader_decides_the_order_each_epoch():
    """fit on arrays wraps them in DataLoader(shuffle=True, seed): the same loader given to fit
    gives the same epochs, so each epoch iterates the loader afresh in its own order."""
    x, y = _data()
    arrays, loader = _model(), _model()
    arrays.fit(x, y, batch_size=8, epochs=3, seed=5, verbose=0)
    loader.fit(DataLoader((x, y), batch_size=8, shuffle=True, seed=5, num_workers=2), epochs=3, verbose=0)
    _assert_same(arrays, loader)
    unshuffled = _model()
    unshuffled.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    assert not np.array_equal(_weights(unshuffled)[0], _weights(loader)[0])


class PerSample(Dataset):
    """A dataset read one sample at a time (the base class stacks them)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


@pytest.mark.parametrize("make", [ArrayDataset, PerSample])
def test_dataset_is_wrapped_with_fits_settings(make):
    x, y = _data()
    arrays, ds = _model(), _model()
    arrays.fit(x, y, batch_size=16, epochs=2, seed=3, verbose=0)
    rec = Recorder()
    ds.fit(make(x, y), batch_size=16, epochs=2, seed=3, verbose=0, callbacks=[rec])
    _assert_same(arrays, ds)
    assert rec.params["steps"] == 3 and rec.params["samples"] == 40 and rec.params["batch_size"] == 16
    assert arrays.evaluate(x, y) == ds.evaluate(make(x, y))
    np.testing.assert_array_equal(arrays.predict(x, batch_size=7), ds.predict(make(x, y), batch_size=7))


def _cycle(x, y, batch_size, as_tuple=True):
    """An infinite generator of batches in order."""
    while True:
        for s in range(0, len(x), batch_size):
            batch = x[s:s + batch_size], y[s:s + batch_size]
            yield batch if as_tuple else list(batch)


def test_generator_with_steps_per_epoch():
    x, y = _data(48)
    vx, vy = _data(12, seed=2)
    arrays, gen = _model(), _model()
    h_a = arrays.fit(x, y, batch_size=16, epochs=3, shuffle=False, validation_data=(vx, vy), verbose=0)
    rec = Recorder()
    h_g = gen.fit(_cycle(x, y, 16, as_tuple=False), steps_per_epoch=3, epochs=3, verbose=0, callbacks=[rec],
                  validation_data=_cycle(vx, vy, 12), validation_steps=1)
    _assert_same(arrays, gen)
    assert h_a.history == h_g.history  # one validation batch of 12 = the array path's single batch
    assert rec.params["steps"] == 3 and rec.params["samples"] is None and rec.params["batch_size"] is None
    # steps_per_epoch caps an epoch of any input
    capped = _model()
    capped.fit(x, y, batch_size=16, epochs=1, shuffle=False, steps_per_epoch=2, verbose=0)
    two = _model()
    two.fit(x[:32], y[:32], batch_size=16, epochs=1, shuffle=False, verbose=0)
    _assert_same(capped, two)


def test_finite_generator_that_runs_out_stops_training_with_a_warning():
    x, y = _data(32)
    model = _model()
    batches = (b for b in [(x[:16], y[:16]), (x[16:], y[16:]), (x[:16], y[:16])])
    with pytest.warns(UserWarning, match=r"ran out of batches in epoch 2 \(1 of steps_per_epoch=2\)"):
        hist = model.fit(batches, steps_per_epoch=2, epochs=5, verbose=0)
    assert len(hist.history["loss"]) == 2


def test_tensor_batches_and_a_reiterable_without_len():
    import neurona as nr

    x, y = _data()

    class Batches:  # an iterable whose __iter__ starts over: iterated afresh each epoch
        def __iter__(self):
            for s in range(0, 40, 16):
                yield nr.tensor(x[s:s + 16].astype(np.float32)), nr.tensor(y[s:s + 16])

    class Steps(Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_epoch_begin(self, epoch, logs=None):
            self.seen.append(self.params["steps"])

    arrays, tensors = _model(), _model()
    arrays.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    steps, bar = Steps(), ProgbarLogger(verbose=1, stream=io.StringIO())
    bar.on_epoch_begin(0)
    assert bar._line(2, {}).startswith("2/Unknown - ")  # the first pass has no total to draw against
    tensors.fit(Batches(), epochs=2, verbose=0, callbacks=[steps, bar])
    _assert_same(arrays, tensors)
    assert steps.seen == [None, 3]  # known after the first pass
    assert bar.stream.getvalue().count("3/3 [==============================]") == 2
    np.testing.assert_array_equal(arrays.predict(x, batch_size=16), tensors.predict(Batches()))


def test_predict_concatenates_in_order_and_ignores_targets():
    x, y = _data(23)
    model = _model()
    want = model.predict(x)
    np.testing.assert_array_equal(model.predict(DataLoader((x, y), batch_size=5)), want)  # (x, y): y ignored
    np.testing.assert_array_equal(model.predict(x[s:s + 4] for s in range(0, 23, 4)), want)  # bare x batches
    np.testing.assert_array_equal(model.predict(((x[s:s + 9],) for s in range(0, 23, 9)), steps=2), want[:18])
    assert model.predict(DataLoader((x,), batch_size=5)).shape == (23, 3)


def _two_in_two_out(seed=0):
    a, b = Input(shape=(4,)), Input(shape=(2,))
    h = Dense(6, activation="tanh")(a)
    out1 = Dense(1)(h)
    out2 = Dense(3, activation="softmax")(Dense(6)(b))
    model = Model([a, b], [out1, out2])
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.data[...] = rng.normal(0.0, 0.5, w.shape).astype(w.data.dtype)
    model.compile(optimizer="sgd", loss=["mse", "sparse_categorical_crossentropy"], metrics=["accuracy"])
    return model


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_several_inputs_and_outputs(layout):
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(30, 4)), rng.normal(size=(30, 2))
    y1, y2 = rng.normal(size=(30, 1)), rng.integers(0, 3, 30)
    arrays, loader = _two_in_two_out(), _two_in_two_out()
    h_a = arrays.fit([x1, x2], [y1, y2], batch_size=8, epochs=2, shuffle=False, verbose=0)
    if layout == "flat":  # what DataLoader((x1, x2, y1, y2)) yields
        data = DataLoader((x1, x2, y1, y2), batch_size=8)
    else:
        batches = [((x1[s:s + 8], x2[s:s + 8]), [y1[s:s + 8], y2[s:s + 8]]) for s in range(0, 30, 8)]
        data = type("Batches", (), {"__iter__": lambda self: iter(batches)})()  # a list would be the array API
    h_l = loader.fit(data, epochs=2, verbose=0)
    _assert_same(arrays, loader)
    assert h_a.history == h_l.history
    assert arrays.evaluate([x1, x2], [y1, y2]) == loader.evaluate(DataLoader((x1, x2, y1, y2), batch_size=32))
    for a, b in zip(arrays.predict([x1, x2], batch_size=8), loader.predict(data)):
        np.testing.assert_array_equal(a, b)


def test_callbacks_work_with_a_loader_and_an_unbuilt_model(tmp_path):
    """The model builds from the loader's first batch before the callbacks start."""
    x, y = _data()
    vx, vy = _data(12, seed=2)
    model = Sequential([Dense(5, activation="relu"), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rec = Recorder()
    lrs = []
    hist = model.fit(DataLoader((x, y), batch_size=16, shuffle=True, seed=0), epochs=20, verbose=2,
                     validation_data=ArrayDataset(vx, vy),
                     callbacks=[rec, EarlyStopping(monitor="loss", patience=1, min_delta=10.0),
                                LearningRateScheduler(lambda epoch, lr: lrs.append(lr) or lr * 0.5),
                                CSVLogger(tmp_path / "log.csv"),
                                ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}"), save_weights_only=True)])
    assert rec.built_at_begin
    assert len(hist.history["loss"]) == 2  # EarlyStopping: no improvement by 10 after the first epoch
    assert lrs == [0.01, 0.005]
    assert (tmp_path / "log.csv").read_text().count("\n") == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ckpt")) == ["ckpt-01", "ckpt-02"]
    assert set(rec.epochs[-1][1]) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_arguments_that_cannot_apply_are_refused_by_name():
    x, y = _data()
    loader = DataLoader((x, y), batch_size=8)
    model = _model()
    for kwargs, name in [({"y": y}, "y must be None"), ({"batch_size": 8}, "batch_size=8"),
                         ({"shuffle": True}, "shuffle=True"), ({"seed": 0}, "seed=0"),
                         ({"transform": lambda b, rng: b}, "transform="), ({"num_workers": 2}, "num_workers=2"),
                         ({"validation_split": 0.2}, "validation_split")]:
        with pytest.raises(ValueError, match=name):
            model.fit(loader, verbose=0, **kwargs)
    with pytest.raises(ValueError, match="validation_split cannot split a ArrayDataset"):
        model.fit(ArrayDataset(x, y), validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="y must be None"):
        model.evaluate(loader, y)
    with pytest.raises(ValueError, match="batch_size=8 cannot apply when x is a DataLoader"):
        model.predict(loader, batch_size=8)


def test_an_infinite_generator_needs_steps_per_epoch():
    x, y = _data()
    model = _model()
    with pytest.raises(ValueError, match="x is a generator.*give steps_per_epoch"):
        model.fit(_cycle(x, y, 8), epochs=2, verbose=0)
    with pytest.raises(ValueError, match="validation_data is a generator.*give validation_steps"):
        model.fit(x, y, validation_data=_cycle(x, y, 8), verbose=0)


def test_a_badly_shaped_batch_names_its_index_and_the_expected_structure():
    x, y = _data()

    def batches():
        yield x[:8], y[:8]
        yield x[8:16], y[8:16]
        yield x[16:24], y[16:24], y[16:24]

    model = _model()
    with pytest.raises(ValueError, match=r"batch 2 of x is tuple of 3 \(ndarray \(8, 4\), ndarray \(8,\), "
                                         r"ndarray \(8,\)\); expected \(x, y\) with y an array and x an array"):
        model.fit(batches(), steps_per_epoch=3, verbose=0)
    with pytest.raises(ValueError, match=r"batch 0 of x has inputs and targets of \[8, 7\] samples"):
        model.fit(iter([(x[:8], y[:7])]), steps_per_epoch=1, verbose=0)
    with pytest.raises(ValueError, match=r"batch 0 of x is tuple of 1 \(ndarray \(40, 4\)\)"):
        model.evaluate(DataLoader((x,), batch_size=64))
    two = _two_in_two_out()
    with pytest.raises(ValueError, match=r"batch 0 of x is tuple of 2 .*expected \(inputs, targets\) with 2 input "
                                         r"and 2 target arrays.*or the flat tuple of 4 arrays"):
        two.fit(iter([(x[:8], y[:8])]), steps_per_epoch=1, verbose=0)
    with pytest.raises(ValueError, match="x gave no batches"):
        model.fit(DataLoader((x[:0], y[:0])), verbose=0)


def test_fit_on_gpu_from_a_loader():
    cupy = pytest.importorskip("cupy")
    try:
        gpus = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 - no driver or no device
        gpus = 0
    if not gpus:
        pytest.skip("no CUDA device")
    x, y = _data()
    cpu, gpu = _model(), _model().to("cuda")
    cpu.fit(DataLoader((x, y), batch_size=16), epochs=2, verbose=0)
    gpu.fit(DataLoader((x, y), batch_size=16), epochs=2, verbose=0, validation_data=DataLoader((x, y)))
    for a, b in zip(_weights(cpu), _weights(gpu)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cpu.predict(ArrayDataset(x)), gpu.predict(ArrayDataset(x)), rtol=1e-4, atol=1e-5)
