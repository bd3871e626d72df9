"""Whole sequences in compiled loops with MKL's packed products (neurona/backend/kernels/_rnn_seq.py):
for the LSTM, GRU and SimpleRNN — with masks, recurrent dropout, an input bias or not, inputs read
by id from a projected table — outputs and every gradient equal those of the Python step loop
(NumPy's BLAS) within float32 rounding; row blocks on two threads give the bits of one; the packed
product equals NumPy's; NumPy's BLAS chosen means no compiled loop."""
import numpy as np
import pytest

import neurona as nr
import neurona.nn.layers.recurrent as rec
from neurona.backend import thread_limit
from neurona.backend.kernels import cblas
from neurona.backend.kernels.rnn import rnn_sequences
from neurona.nn.layers.recurrent import RecurrentSequence

pytest.importorskip("neurona.backend.kernels._rnn")
mkl = cblas.mkl()
pytestmark = pytest.mark.skipif(mkl is None, reason=f"MKL not loadable here: {cblas.mkl_error()}")
GATES = {"lstm": 4, "gru": 3, "simple": 1}


@pytest.fixture
def seq_calls(monkeypatch):
    """MKL chosen; the names of the compiled sequence functions called from now on."""
    from neurona.backend.kernels import _rnn_seq

    calls = []
    for name in ("lstm_sequence", "lstm_sequence_backward", "gru_sequence", "gru_sequence_backward",
                 "simple_sequence", "simple_sequence_backward"):
        real = getattr(_rnn_seq, name)
        monkeypatch.setattr(_rnn_seq, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    monkeypatch.setattr(cblas, "_chosen", mkl)
    return calls


def _run(kind, seed, mask=None, rmask=None, bias=True, ids=False, N=19, T=6, H=12, threads=1):
    """Y and every input's gradient of one RecurrentSequence with seeded inputs."""
    rng = np.random.default_rng(seed)
    G = GATES[kind]
    rows = 7 if ids else N * T
    Z = nr.tensor(rng.standard_normal((rows, G * H) if ids else (N, T, G * H)).astype(np.float32), requires_grad=True)
    R = nr.tensor((rng.standard_normal((H, G * H)) * 0.3).astype(np.float32), requires_grad=True)
    h0 = nr.tensor(rng.standard_normal((N, H)).astype(np.float32), requires_grad=True)
    extra = []
    if kind == "lstm":
        extra.append(nr.tensor(rng.standard_normal((N, H)).astype(np.float32), requires_grad=True))  # c0
        if bias:
            extra.append(nr.tensor(rng.standard_normal(G * H).astype(np.float32), requires_grad=True))
    elif kind == "gru":
        extra.append(nr.tensor(rng.standard_normal(G * H).astype(np.float32), requires_grad=True))  # rb
    key = rng.integers(0, rows, (N, T)) if ids else None
    with thread_limit(threads):
        Y = RecurrentSequence.apply(Z, R, h0, *extra, kind=kind, mask=mask, rmask=rmask, ids=key)
        w = nr.tensor(rng.standard_normal(Y.shape).astype(np.float32))
        (Y * w).sum().backward()
    return [Y.data, Z.grad.data, R.grad.data, h0.grad.data] + [e.grad.data for e in extra]


CASES = [("lstm", False, False, True, False), ("lstm", True, True, False, False), ("lstm", True, False, True, True),
         ("gru", False, False, True, False), ("gru", True, True, True, True),
         ("simple", False, False, True, False), ("simple", True, True, True, False), ("simple", False, True, True, True)]


@pytest.mark.parametrize("kind, use_mask, use_rmask, bias, ids", CASES)
def test_compiled_sequence_equals_the_python_step_loop(monkeypatch, seq_calls, kind, use_mask, use_rmask, bias, ids):
    rng = np.random.default_rng(1)
    mask = rng.random((19, 6)) > 0.3 if use_mask else None
    rmask = (rng.random((19, 12)) > 0.2).astype(np.float32) / 0.8 if use_rmask else None
    compiled = _run(kind, 2, mask, rmask, bias, ids)
    name = {"lstm": "lstm_sequence", "gru": "gru_sequence", "simple": "simple_sequence"}[kind]
    assert seq_calls == [name, name + "_backward"]
    monkeypatch.setattr(cblas, "_chosen", None)  # NumPy's BLAS: the Python loop over steps
    seq_calls.clear()
    loop = _run(kind, 2, mask, rmask, bias, ids)
    assert seq_calls == []
    assert len(compiled) == len(loop)
    for i, (a, b) in enumerate(zip(compiled, loop)):
        assert a.shape == b.shape and a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5, err_msg=f"{kind}: output/gradient {i}")


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple"])
def test_row_blocks_on_two_threads_give_the_bits_of_one(seq_calls, kind):
    one = _run(kind, 3, mask=np.random.default_rng(0).random((19, 6)) > 0.2, threads=1)
    assert len(seq_calls) == 2
    two = _run(kind, 3, mask=np.random.default_rng(0).random((19, 6)) > 0.2, threads=2)
    assert len(seq_calls) == 6  # 19 rows at 2 threads: blocks of 9 and 10, forward and backward
    for i, (a, b) in enumerate(zip(one, two)):
        if kind == "lstm" and i == len(one) - 1:  # the bias gradient: the blocks' float64 sums added
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"{kind}: output/gradient {i}")


def test_packed_product_equals_numpy():
    from neurona.backend.kernels import _rnn_seq  # noqa: F401 - registers the symbol
    from numba import njit

    @njit
    def product(a, packed, n, k, out):
        _rnn_seq._product(a.ctypes.data, k, packed, a.shape[0], n, k, out.ctypes.data, n)

    rng = np.random.default_rng(4)
    a = rng.standard_normal((5, 33)).astype(np.float32)
    b = rng.standard_normal((33, 70)).astype(np.float32)
    out = np.full((5, 70), np.nan, dtype=np.float32)
    product(a, mkl.pack_b(b, 5), 70, 33, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    bt = np.ascontiguousarray(b.T)  # a transposed view packs without a copy
    product(a, mkl.pack_b(bt.T, 5), 70, 33, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    assert mkl.pack_b(b, 5).ctypes.data % 64 == 0
    with pytest.raises(TypeError, match="pack_b: a 2-D float32 operand"):
        mkl.pack_b(b.astype(np.float64), 5)


def test_numpy_blas_or_other_dtypes_keep_the_python_loop(monkeypatch):
    monkeypatch.setattr(cblas, "_chosen", None)
    assert rnn_sequences(np.zeros((2, 2), np.float32)) is None
    monkeypatch.setattr(cblas, "_chosen", mkl)
    assert rnn_sequences(np.zeros((2, 2), np.float32)) is not None
    assert rnn_sequences(np.zeros((2, 2), np.float64)) is None  # gradcheck's float64: NumPy formulas


def test_lstm_layer_trains_the_same_through_the_compiled_loop(monkeypatch, seq_calls):
    """A Keras-style LSTM layer with masking from Embedding(mask_zero=True), two fit-like steps."""
    x = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5], [6, 0, 0, 0, 0]])

    def losses():
        nr.manual_seed(0)
        model = nr.models.Sequential([nr.layers.Embedding(8, 6, mask_zero=True),
                                      nr.layers.LSTM(10, return_sequences=True), nr.layers.GRU(7)])
        model.build((None, 5))
        opt = nr.optimizers.Adam(model.trainable_weights, learning_rate=1e-2)
        out = []
        for _ in range(2):
            opt.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward()
            opt.step()
            out.append(float(loss.numpy()))
        return out

    compiled = losses()
    assert "lstm_sequence" in seq_calls and "gru_sequence_backward" in seq_calls
    monkeypatch.setattr(cblas, "_chosen", None)
    np.testing.assert_allclose(compiled, losses(), rtol=1e-5)
