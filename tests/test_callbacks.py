"""neurona.callbacks: each callback observed doing its job during a real `fit`."""
import csv
import io
import os
import warnings

import numpy as np
import pytest

from neurona.callbacks import (Callback, CSVLogger, DeadUnitMonitor, EarlyStopping, GradientFlowMonitor,
                               LearningRateScheduler, ModelCheckpoint, ProgbarLogger, ReduceLROnPlateau,
                               TensorBoard)
from neurona.layers import Dense
from neurona.models import Sequential, load_model
from neurona.optimizers import SGD


def _data(n=64):
    x = np.random.rand(n, 4).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32)).astype(np.float32)


def _model(lr=0.1, hidden="relu"):
    model = Sequential([Dense(8, activation=hidden, input_dim=4), Dense(1)])
    model.compile(optimizer=SGD(learning_rate=lr), loss="mse")
    return model


class ScriptedLoss(Callback):
    """Overwrites val_loss with a scripted sequence, so stopping decisions are known in advance."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]


class WeightsAtEpochEnd(Callback):
    def __init__(self):
        super().__init__()
        self.snapshots = []

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots.append(self.model.get_weights())


def test_early_stopping_stops_after_patience_and_restores_best():
    x, y = _data()
    model, snaps = _model(), WeightsAtEpochEnd()
    script = ScriptedLoss([1.0, 0.5, 0.7, 0.6, 0.9, 0.1, 0.1])
    stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    history = model.fit(x, y, epochs=7, batch_size=16, verbose=0, callbacks=[script, snaps, stop])
    assert history.epoch == [0, 1, 2, 3, 4] and stop.stopped_epoch == 4 and stop.best_epoch == 1
    for got, want in zip(model.get_weights(), snaps.snapshots[1], strict=True):
        np.testing.assert_array_equal(got, want)


def test_early_stopping_without_improvement_does_not_stop():
    x, y = _data()
    stop = EarlyStopping(monitor="loss", patience=2)
    history = _model(lr=0.05).fit(x, y, epochs=4, verbose=0, callbacks=[stop])
    assert len(history.epoch) == 4 and stop.stopped_epoch is None


def test_model_checkpoint_best_only_writes_atomically(tmp_path, monkeypatch):
    x, y = _data()
    model = _model()
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append((a, b)), real_replace(a, b)))
    ckpt = ModelCheckpoint(tmp_path / "best", monitor="val_loss", save_best_only=True)
    model.fit(x, y, epochs=4, verbose=0, callbacks=[ScriptedLoss([3.0, 2.0, 2.5, 1.0]), ckpt])
    assert ckpt.best == 1.0
    assert sorted(os.listdir(tmp_path / "best")) == [  # the optimiser's state too; no temporaries left
        "config.json", "model.safetensors", "optimizer.safetensors"]
    assert len(replaced) == 3 * 3 and all(os.path.dirname(a) == os.path.dirname(b) for a, b in replaced)
    np.testing.assert_array_equal(load_model(tmp_path / "best").predict(x), model.predict(x))

    per_epoch = ModelCheckpoint(str(tmp_path / "w-{epoch:02d}.safetensors"), save_weights_only=True)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[per_epoch])
    assert {"w-01.safetensors", "w-02.safetensors"} <= set(os.listdir(tmp_path))


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    x, y = _data()
    model = _model(lr=0.1)
    seen = []

    class Spy(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(self.model.optimizer.learning_rate)

    sched = LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[sched, Spy()])
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert history.history["lr"] == pytest.approx([0.1, 0.05, 0.025])


def test_reduce_lr_on_plateau_divides_by_ten():
    x, y = _data()
    model = _model(lr=0.1)
    script = ScriptedLoss([1.0, 1.0, 1.0, 1.0, 1.0])
    plateau = ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=2)
    history = model.fit(x, y, epochs=5, verbose=0, callbacks=[script, plateau])
    assert history.history["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, y = _data()
    path = tmp_path / "log.csv"
    history = _model().fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[CSVLogger(path)])
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert [float(r["val_loss"]) for r in rows] == pytest.approx(history.history["val_loss"])
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, append=True)])
    assert len(list(csv.DictReader(open(path)))) == 4


def test_tensorboard_writes_scalars_and_histograms(tmp_path):
    pytest.importorskip("tensorboardX")
    x, y = _data()
    _model().fit(x, y, epochs=2, verbose=0, callbacks=[TensorBoard(tmp_path / "tb", histogram_freq=1)])
    assert sorted(os.listdir(tmp_path / "tb")) == ["train"]  # no validation data: no validation run
    files = [f for f in os.listdir(tmp_path / "tb" / "train") if f.startswith("events.out.tfevents")]
    assert len(files) == 1
    tags = _event_tags(tmp_path / "tb" / "train" / files[0])
    assert {"epoch_loss", "epoch_learning_rate"} <= tags
    assert any(t.endswith("/kernel") for t in tags) and any(t.endswith("/kernel/gradient") for t in tags)


def _event_tags(path):
    """Tags in an event file, read by hand (tensorboard itself is not a dependency)."""
    from tensorboardX.proto import event_pb2

    tags, raw = set(), open(path, "rb").read()
    pos = 0
    while pos < len(raw):  # TFRecord framing: length (8 bytes), crc (4), data, crc (4)
        n = int.from_bytes(raw[pos:pos + 8], "little")
        event = event_pb2.Event.FromString(raw[pos + 12:pos + 12 + n])
        tags.update(v.tag for v in event.summary.value)
        pos += 12 + n + 4
    return tags


def test_dead_unit_monitor_counts_relus_that_never_fire():
    x, y = _data()
    model = _model()
    bias = model.layers[0].bias
    bias.data[:3] = -100.0  # three of eight units can never fire on inputs in [0, 1)
    monitor = DeadUnitMonitor(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # 3/8 dead is under the warning threshold
        history = model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
    share = history.history[f"dead_units/{model.layers[0].name}"][0]
    manual = float(np.mean(~((np.maximum(x @ model.layers[0].kernel.numpy() + bias.numpy(), 0) > 0).any(axis=0))))
    assert share == pytest.approx(manual) and share >= 3 / 8
    bias.data[...] = -100.0
    with pytest.warns(UserWarning, match="never fire"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
    assert monitor.history[model.layers[0].name][-1] == 1.0


def test_gradient_flow_monitor_reports_norms_and_flags_vanishing():
    x, y = _data(32)
    model = _model(lr=0.0)
    monitor = GradientFlowMonitor(vanish=1e-6, warn=False)
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0, callbacks=[monitor])
    first, second = model.layers
    # One batch: the logged norm is the norm of that batch's gradient, recomputed here by hand.
    h = np.maximum(x @ first.kernel.numpy() + first.bias.numpy(), 0)
    err = 2 * (h @ second.kernel.numpy() + second.bias.numpy() - y) / len(y)
    expected = np.sqrt((np.square(h.T @ err)).sum() + np.square(err.sum(axis=0)).sum())
    assert monitor.history[second.name][0] == pytest.approx(expected, rel=1e-4)
    assert monitor.flags == []
    second.kernel.data[...] = 0.0  # no gradient flows back through a zero layer
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    assert monitor.flags == [(0, first.name, "vanishing")]  # epoch 0 of the second fit
    assert monitor.history[first.name][-1] == 0.0


def test_progbar_verbose_2_prints_one_line_per_epoch():
    x, y = _data()
    stream = io.StringIO()
    _model().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[ProgbarLogger(verbose=2, stream=stream)])
    lines = stream.getvalue().splitlines()
    assert lines[0] == "Epoch 1/2" and lines[1].startswith("4/4 [") and "loss:" in lines[1] and len(lines) == 4
