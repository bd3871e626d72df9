"""The fused float32 LSTM step kernels (neurona/backend/kernels/_rnn.py) against the NumPy
formulas they replace, and their vectorised tanh against float64 tanh."""
import numpy as np
import pytest

import neurona as nr
import neurona.nn.layers.recurrent as rec
from neurona.nn.layers.recurrent import RecurrentSequence

_rnn = pytest.importorskip("neurona.backend.kernels._rnn")


@pytest.mark.parametrize("lo, hi", [(-3, 3), (-12, 12), (-1e-3, 1e-3)])
def test_kernel_tanh_is_within_4e7_of_float64_tanh(lo, hi):
    from numba import njit

    @njit(fastmath=_rnn._FM, error_model="numpy")  # the flags of the kernels that inline it
    def apply(x, out):
        for k in range(x.shape[0]):
            out[k] = _rnn.tanh(x[k])

    x = np.linspace(lo, hi, 200_001, dtype=np.float32)
    out = np.empty_like(x)
    apply(x, out)
    err = np.abs(out.astype(np.float64) - np.tanh(x.astype(np.float64)))
    assert err.max() <= 4e-7  # measured 3.4e-7 (at x ≈ 5.9, ~6 units in the last place)
    assert np.all(np.abs(out) <= 1)
    special = np.array([np.nan, np.inf, -np.inf, 9.1, -9.1, 50.0, 0.0], dtype=np.float32)
    apply(special, out[:7])
    assert np.isnan(out[0])  # NaN stays NaN (no `nnan` fastmath flag)
    assert out[1:7].tolist() == [1.0, -1.0, 1.0, -1.0, 1.0, 0.0]  # saturated exactly, as float32 tanh


def _run(fused, seed, mask=None, rmask=None, N=5, T=7, H=16, bias=True):
    rng = np.random.default_rng(seed)
    Z = nr.tensor(rng.standard_normal((N, T, 4 * H)).astype(np.float32), requires_grad=True)
    R = nr.tensor((rng.standard_normal((H, 4 * H)) * 0.3).astype(np.float32), requires_grad=True)
    h0 = nr.tensor(rng.standard_normal((N, H)).astype(np.float32), requires_grad=True)
    c0 = nr.tensor(rng.standard_normal((N, H)).astype(np.float32), requires_grad=True)
    w = nr.tensor(rng.standard_normal((N, T, 2 * H)).astype(np.float32))
    b = nr.tensor(rng.standard_normal(4 * H).astype(np.float32), requires_grad=True)
    Y = RecurrentSequence.apply(Z, R, h0, c0, *([b] if bias else []), kind="lstm", mask=mask, rmask=rmask)
    assert Y._ctx.fused is fused
    (Y * w).sum().backward()
    return [Y.data, Z.grad.data, R.grad.data, h0.grad.data, c0.grad.data] + ([b.grad.data] if bias else [])


@pytest.mark.parametrize("use_mask, use_rmask, bias", [(False, False, True), (True, False, True), (False, True, False),
                                                        (True, True, False)])
def test_fused_lstm_sequence_equals_the_numpy_formulas(monkeypatch, use_mask, use_rmask, bias):
    rng = np.random.default_rng(0)
    mask = rng.random((5, 7)) > 0.3 if use_mask else None
    rmask = (rng.random((5, 16)) > 0.2).astype(np.float32) / 0.8 if use_rmask else None
    fused = _run(True, 1, mask, rmask, bias=bias)
    monkeypatch.setattr(rec, "rnn_kernels", lambda a: None)
    plain = _run(False, 1, mask, rmask, bias=bias)
    assert len(fused) == len(plain) == (6 if bias else 5)
    for name, a, b in zip(["Y", "dZ", "dR", "dh0", "dc0", "db"], fused, plain):
        # only the tanh differs (≤ 3e-7 absolute), carried through 7 steps
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6, err_msg=name)
    if use_mask:  # a masked step leaves the state as it was, in both paths
        n, t = np.argwhere(~mask[:, 1:])[0]
        np.testing.assert_array_equal(fused[0][n, t + 1], fused[0][n, t])


def test_fused_path_is_float32_numpy_only():
    from neurona.backend.kernels.rnn import rnn_kernels

    assert rnn_kernels(np.zeros(3, np.float32)) is not None
    assert rnn_kernels(np.zeros(3, np.float64)) is None  # gradcheck's dtype keeps the NumPy formulas
    assert rnn_kernels(np.zeros(3, np.float16)) is None


def test_recurrent_kernels_are_created_c_contiguous_so_optimizers_fuse():
    from neurona.layers import LSTM

    layer = LSTM(8)
    layer.build((None, 3, 4))
    # Orthogonal's q.T is Fortran-ordered; the Adam/SGD kernels take C-ordered weights only
    assert all(w.data.flags.c_contiguous for w in layer.weights)


@pytest.mark.parametrize("shape, idx_shape", [((65, 8), (32, 16)), ((7,), (300,)), ((5, 2, 3), (4, 25))])
def test_index_add_rows_has_add_at_bits(shape, idx_shape):
    """An embedding's backward (IndexAdd with an integer-array key) through the numba kernel."""
    from neurona.backend import kernels

    rng = np.random.default_rng(0)
    idx = rng.integers(-shape[0], shape[0], idx_shape)
    g = rng.standard_normal(idx_shape + shape[1:]).astype(np.float32)
    a, b = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    assert kernels.index_add_rows(a, idx, g)
    np.add.at(b, idx, g)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(IndexError, match="out of range for"):
        kernels.index_add_rows(a, np.array([shape[0]]), np.zeros((1,) + shape[1:], np.float32))


def test_lstm_sequence_with_its_bias_input_gradchecks_and_has_second_derivatives():
    """float64 (the NumPy formulas): the bias input's gradient, and gradients of gradients
    through the differentiable backward."""
    rng = np.random.default_rng(2)
    N, T, H = 2, 3, 3
    ins = [nr.tensor(rng.standard_normal(s), requires_grad=True)
           for s in [(N, T, 4 * H), (H, 4 * H), (N, H), (N, H), (4 * H,)]]
    assert nr.gradcheck(lambda *a: RecurrentSequence.apply(*a, kind="lstm"), ins)
    assert nr.gradgradcheck(lambda *a: RecurrentSequence.apply(*a, kind="lstm"), ins)


@pytest.mark.parametrize("threads", [2, 3])
def test_fused_lstm_over_row_blocks_equals_one_thread(threads, monkeypatch):
    """With several kernel threads each takes a block of batch rows for the whole sequence; the
    result is the one-thread result (the bias gradient within float rounding: its partial sums
    are added per block)."""
    from neurona.backend import thread_limit

    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "4")  # the row blocks run only with short BLAS spinning
    rng = np.random.default_rng(5)
    mask = rng.random((24, 6)) > 0.2
    rmask = (rng.random((24, 16)) > 0.2).astype(np.float32) / 0.8
    with thread_limit(1):
        one = _run(True, 3, mask, rmask, N=24, T=6)
    with thread_limit(threads):
        many = _run(True, 3, mask, rmask, N=24, T=6)
    for name, a, b in zip(["Y", "dZ", "dR", "dh0", "dc0", "db"], many, one):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=name)


def _run_kind(kind, seed, mask=None, rmask=None, N=5, T=7, H=16):
    rng = np.random.default_rng(seed)
    G = {"gru": 3, "simple": 1}[kind]
    Z = nr.tensor(rng.standard_normal((N, T, G * H)).astype(np.float32), requires_grad=True)
    R = nr.tensor((rng.standard_normal((H, G * H)) * 0.3).astype(np.float32), requires_grad=True)
    h0 = nr.tensor(rng.standard_normal((N, H)).astype(np.float32), requires_grad=True)
    extra = [nr.tensor(rng.standard_normal(G * H).astype(np.float32), requires_grad=True)] if kind == "gru" else []
    w = nr.tensor(rng.standard_normal((N, T, H)).astype(np.float32))
    Y = RecurrentSequence.apply(Z, R, h0, *extra, kind=kind, mask=mask, rmask=rmask)
    fused = Y._ctx.fused  # (backward frees what the op saved)
    (Y * w).sum().backward()
    return fused, [Y.data] + [t.grad.data for t in [Z, R, h0, *extra]]


@pytest.mark.parametrize("kind", ["gru", "simple"])
@pytest.mark.parametrize("use_mask, use_rmask", [(False, False), (True, True)])
def test_fused_gru_and_simple_rnn_equal_the_numpy_formulas(monkeypatch, kind, use_mask, use_rmask):
    from neurona.backend import thread_limit

    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "4")  # the row blocks run only with short BLAS spinning
    rng = np.random.default_rng(0)
    mask = rng.random((16, 7)) > 0.3 if use_mask else None
    rmask = (rng.random((16, 16)) > 0.2).astype(np.float32) / 0.8 if use_rmask else None
    fused_flag, fused = _run_kind(kind, 1, mask, rmask, N=16)
    with thread_limit(2):  # two blocks of 8 rows
        _, split = _run_kind(kind, 1, mask, rmask, N=16)
    monkeypatch.setattr(rec, "rnn_kernels", lambda a: None)
    plain_flag, plain = _run_kind(kind, 1, mask, rmask, N=16)
    assert fused_flag and not plain_flag
    for name, a, b, c in zip(["Y", "dZ", "dR", "dh0", "drb"], fused, plain, split):
        # within float32 rounding of the largest entry (dR sums 112 products of size ~10)
        assert np.abs(a - b).max() <= 2e-6 * max(1.0, np.abs(b).max()), name
        assert np.abs(c - a).max() <= 1e-6 * max(1.0, np.abs(a).max()), name


def test_row_blocks_wait_for_short_blas_spinning(monkeypatch):
    from neurona.backend import thread_limit
    from neurona.backend.kernels.rnn import over_rows

    seen = []
    with thread_limit(2):
        monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
        over_rows(lambda a, b: seen.append((a, b)), 32)
        assert seen == [(0, 32)]  # OpenBLAS's threads would spin on the cores the blocks need
        monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "4")
        seen.clear()
        over_rows(lambda a, b: seen.append((a, b)), 32)
        assert sorted(seen) == [(0, 16), (16, 32)]


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple"])
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_op_reading_table_rows_by_id_equals_it_on_the_gathered_rows(monkeypatch, kind, threads):
    """With `ids` the op reads step t of sequence n from row ids[n, t] of a table (an embedding
    projected once): the same outputs and gradients, bit for bit, as on the gathered (N, T, G·H)
    rows, the table's gradient being dZ's rows summed per id (as the gather's backward sums them)."""
    from neurona.backend import thread_limit

    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "4")  # the row blocks run only with short BLAS spinning
    rng = np.random.default_rng(8)
    N, T, H, V = 16, 6, 8, 5
    G, S = {"lstm": (4, 2), "gru": (3, 1), "simple": (1, 1)}[kind]
    table_np = rng.standard_normal((V, G * H)).astype(np.float32)
    ids = rng.integers(0, V, (N, T))
    mask = rng.random((N, T)) > 0.3
    R_np = (rng.standard_normal((H, G * H)) * 0.3).astype(np.float32)
    states_np = [rng.standard_normal((N, H)).astype(np.float32) for _ in range(2 if kind == "lstm" else 1)]
    extra_np = [rng.standard_normal(G * H).astype(np.float32)] if kind != "simple" else []
    w = nr.tensor(rng.standard_normal((N, T, S * H)).astype(np.float32))

    def run(by_id):
        table = nr.tensor(table_np.copy(), requires_grad=True)
        R = nr.tensor(R_np.copy(), requires_grad=True)
        leaves = [nr.tensor(a.copy(), requires_grad=True) for a in states_np + extra_np]
        Z = table if by_id else nr.embedding(ids, table)
        with thread_limit(threads):
            Y = RecurrentSequence.apply(Z, R, *leaves, kind=kind, mask=mask, ids=ids if by_id else None)
            assert Y._ctx.fused
            (Y * w).sum().backward()
        return [Y.data] + [t.grad.data for t in [table, R, *leaves]]

    for a, b in zip(run(True), run(False)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(256, 1024), (5, 37), (17, 3), (1, 1)])
def test_transpose_into_equals_the_transpose(shape):
    a = np.random.default_rng(9).standard_normal(shape).astype(np.float32)
    out = np.full(shape[::-1], np.nan, dtype=np.float32)
    _rnn.transpose_into(a, out)
    np.testing.assert_array_equal(out, a.T)


@pytest.mark.parametrize("fused", [True, False])
def test_lstm_h_only_output_equals_the_h_half_of_the_full_output(monkeypatch, fused):
    """`h_only=True` (a layer that returns no cell state) gives the h half of the [h c] output,
    and the same gradients, bit for bit, as the full output with a zero gradient for the cells."""
    if not fused:
        monkeypatch.setattr(rec, "rnn_kernels", lambda a: None)
    rng = np.random.default_rng(11)
    N, T, H = 6, 5, 8
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(N, T, 4 * H), (H, 4 * H), (N, H), (N, H), (4 * H,)]]
    mask = rng.random((N, T)) > 0.3
    w = rng.standard_normal((N, T, H)).astype(np.float32)

    def run(h_only):
        leaves = [nr.tensor(a.copy(), requires_grad=True) for a in arrays]
        Y = RecurrentSequence.apply(*leaves, kind="lstm", mask=mask, h_only=h_only)
        assert Y._ctx.fused is fused
        out = Y if h_only else Y[:, :, :H]
        assert out.shape == (N, T, H)
        (out * nr.tensor(w)).sum().backward()
        return [out.numpy()] + [t.grad.data for t in leaves]

    for a, b in zip(run(True), run(False)):
        np.testing.assert_array_equal(a, b)
