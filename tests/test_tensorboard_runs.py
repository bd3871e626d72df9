"""The TensorBoard callback writes training and validation as two runs, `train/` and
`validation/`, under the same tags (Keras' layout), read back with TensorBoard's own reader."""
import numpy as np
import pytest

from neurona.callbacks import TensorBoard
from neurona.layers import Dense
from neurona.models import Sequential

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _run(path):
    acc = event_accumulator.EventAccumulator(str(path), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_train_and_validation_are_two_runs_with_the_same_tags(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((64, 4), dtype=np.float32)
    y = (x.sum(1) > 2).astype(np.int64)
    model = Sequential([Dense(8, input_dim=4, activation="relu"), Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0,
                        callbacks=[TensorBoard(tmp_path / "logs", update_freq=2)])
    train, val = _run(tmp_path / "logs" / "train"), _run(tmp_path / "logs" / "validation")
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(train)
    assert set(val) == {"epoch_loss", "epoch_accuracy"}  # the same tags: TensorBoard overlays them
    assert not any(tag.startswith("epoch_val_") for tag in train)
    np.testing.assert_allclose(train["epoch_loss"], history.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(val["epoch_loss"], history.history["val_loss"], rtol=1e-6)
    np.testing.assert_allclose(val["epoch_accuracy"], history.history["val_accuracy"], rtol=1e-6)
    assert len(train["batch_loss"]) == 3 * 3 // 2  # 3 batches per epoch, every 2nd of 9 logged


def test_update_freq_is_validated():
    with pytest.raises(ValueError, match="update_freq must be 'epoch', 'batch' or a positive int, got 'step'"):
        TensorBoard(update_freq="step")
