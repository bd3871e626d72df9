"""ONNX export of the recurrent layers (SimpleRNN -> RNN, LSTM -> LSTM, GRU -> GRU with
linear_before_reset = reset_after), each run in onnxruntime and compared with `predict`."""
import numpy as np
import pytest

import neurona as nr
from neurona.layers import GRU, LSTM, Dense, SimpleRNN
from neurona.models import Sequential
from neurona.saving.onnx_export import export_onnx

ort = pytest.importorskip("onnxruntime")
FREE = (None, 4)  # time axis left free (and the batch axis), so one file takes any length


def _check(model, x, tmp_path):
    path = model.export_onnx(tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    want = model.predict(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _random_weights(model, seed):
    rng = np.random.default_rng(seed)  # non-zero biases everywhere, so a misplaced bias block shows
    for layer in model.layers:
        layer.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in layer.get_weights()])


@pytest.mark.parametrize("make", [
    lambda: [LSTM(6, return_sequences=True, input_shape=FREE), LSTM(5), Dense(3)],
    lambda: [GRU(6, return_sequences=True, input_shape=FREE), GRU(4, reset_after=False), Dense(3)],
    lambda: [SimpleRNN(5, return_sequences=True, input_shape=FREE), Dense(2)],
    lambda: [LSTM(4, use_bias=False, return_sequences=True, input_shape=FREE)],
], ids=["lstm-stack", "gru-both-resets", "simple-rnn", "lstm-no-bias"])
def test_recurrent_layers_export_to_onnxruntime(make, tmp_path):
    nr.manual_seed(0)
    model = Sequential(make())
    x = np.random.default_rng(1).normal(size=(3, 7, 4)).astype(np.float32)
    _random_weights(model, 2)
    _check(model, x, tmp_path)
    _check(model, x[:1, :2], tmp_path)  # another batch size and length, same file


@pytest.mark.parametrize("layer,what", [(LSTM(3, go_backwards=True), "go_backwards"),
                                        (SimpleRNN(3, activation="relu"), "activations"),
                                        (GRU(3, return_state=True), "return_state")])
def test_recurrent_export_refuses_what_onnx_cannot_say(layer, what, tmp_path):
    model = Sequential([layer])
    model(np.zeros((2, 4, 3), np.float32))
    with pytest.raises(ValueError, match=f"{layer.name}.*{what}"):
        export_onnx(model, tmp_path / "m.onnx")
