"""A second BLAS for GEMMs (neurona/backend/kernels/cblas.py): MKL through ctypes gives NumPy's
products for every operand layout it reads in place (rows or columns contiguous, leading strides
of slices and transposed views) and for those it copies; NEURONA_BLAS chooses it or not, a bad
value or a missing MKL is refused naming the setting; kernels.gemm sends one-thread products to
it and large products at several threads to NumPy's BLAS; the choice of `auto` is measured once
and cached; the fused LSTM's gradients are the same through either BLAS."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import neurona as nr
from neurona.backend import kernels, thread_limit
from neurona.backend.kernels import calibrate, cblas

mkl = cblas.mkl()
needs_mkl = pytest.mark.skipif(mkl is None, reason=f"MKL not loadable here: {cblas.mkl_error()}")


@pytest.fixture
def mkl_calls(monkeypatch):
    """MKL chosen, and the list of the row-operand shapes of the products it computes from now on."""
    calls = []
    real = mkl.gemm
    monkeypatch.setattr(mkl, "gemm", lambda a, b, out=None: calls.append(a.shape) or real(a, b, out))
    monkeypatch.setattr(cblas, "_chosen", mkl)
    return calls


def _layouts(rng, m, k, dtype):
    """(name, array) pairs of an (m, k) operand in the layouts GEMM callers hand over."""
    base = rng.standard_normal((m + 3, k + 5)).astype(dtype)
    t = rng.standard_normal((k + 4, m + 2)).astype(dtype)
    return [
        ("C-contiguous", np.ascontiguousarray(base[:m, :k])),
        ("row slice of a wider array (leading stride)", base[1:m + 1, 2:k + 2]),
        ("transposed view", np.ascontiguousarray(t[:k, :m]).T),
        ("transposed view of a slice", t[1:k + 1, :m].T),
        ("every other row (copied)", rng.standard_normal((2 * m, k)).astype(dtype)[::2]),
        ("reversed rows (copied)", np.ascontiguousarray(base[:m, :k])[::-1]),
    ]


@needs_mkl
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_matches_numpy_for_every_layout(dtype):
    rng = np.random.default_rng(0)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for m, k, n in ((7, 5, 3), (1, 9, 4), (6, 1, 2), (33, 64, 17), (128, 784, 40)):
        for name_a, a in _layouts(rng, m, k, dtype):
            for name_b, b in _layouts(rng, k, n, dtype):
                assert mkl.takes(a, b), (name_a, name_b)
                got = mkl.gemm(a, b)
                want = a.astype(np.float64) @ b.astype(np.float64)
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(k), err_msg=f"{name_a} @ {name_b}")
                assert got.dtype == dtype and got.flags.c_contiguous


@needs_mkl
def test_gemm_into_a_strided_out_and_empty_shapes():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    big = np.full((8, 9), 7.0, dtype=np.float32)
    out = big[1:7, 2:7]  # rows contiguous, leading stride 9
    assert mkl.takes(a, b, out)
    assert mkl.gemm(a, b, out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    assert (big[0] == 7).all() and (big[:, :2] == 7).all() and (big[:, 7:] == 7).all()  # nothing else written
    assert not mkl.takes(a, b, np.empty((5, 6), np.float32).T)  # columns contiguous: NumPy's path
    assert not mkl.takes(a, b, np.empty((6, 5), np.float64))  # another dtype
    assert not mkl.takes(a, b.astype(np.float64)) and not mkl.takes(a.astype(np.int64), b.astype(np.int64))
    assert mkl.gemm(np.empty((0, 4), np.float32), b).shape == (0, 5)
    z = mkl.gemm(np.empty((3, 0), np.float32), np.empty((0, 2), np.float32))
    assert z.shape == (3, 2) and (z == 0).all()


@needs_mkl
def test_kernels_gemm_routes_products_to_mkl_and_splits_the_large_ones(mkl_calls, monkeypatch):
    calls = mkl_calls
    rng = np.random.default_rng(2)
    small = rng.standard_normal((32, 256)).astype(np.float32), rng.standard_normal((256, 512)).astype(np.float32)
    large = rng.standard_normal((256, 256)).astype(np.float32), rng.standard_normal((256, 256)).astype(np.float32)
    tiny = rng.standard_normal((32, 4)).astype(np.float32), rng.standard_normal((4, 128)).astype(np.float32)
    assert 256 ** 3 >= kernels.MIN_GEMM_THREADS_WORK > 32 * 256 * 512 >= kernels.MIN_SECOND_BLAS_WORK > 32 * 4 * 128
    with thread_limit(1):
        for a, b in (small, large, tiny):
            np.testing.assert_allclose(kernels.matmul(a, b), a @ b, rtol=1e-4, atol=1e-4)
    assert calls == [(32, 256), (256, 256)]  # the tiny one stayed on NumPy's BLAS (the call costs more)
    huge = rng.standard_normal((1024, 512)).astype(np.float32), rng.standard_normal((512, 512)).astype(np.float32)
    assert 1024 * 512 * 512 >= kernels.MIN_MKL_SPLIT_WORK > 256 ** 3
    old = nr.get_num_threads()
    nr.set_num_threads(2)
    par = kernels._parallel_gemm_module()
    split_calls = []
    if par is not None:
        real_split = par.gemm
        monkeypatch.setattr(par, "gemm", lambda a, b, out, parts: split_calls.append((a.shape, parts))
                            or real_split(a, b, out, parts))
    try:
        calls.clear()
        for a, b in (small, large, huge):
            np.testing.assert_allclose(kernels.matmul(a, b), a @ b, rtol=1e-4, atol=1e-3)
        # under 8 M: MKL on the calling thread; 8–128 M: in two blocks on numba's threads (MKL on
        # the calling thread where numba's runtime is not thread-safe); the huge one in two row
        # blocks on neurona's pool
        if par is not None:
            assert calls == [(32, 256), (512, 512), (512, 512)] and split_calls == [((256, 256), 2)]
        else:
            assert calls == [(32, 256), (256, 256), (512, 512), (512, 512)]
        calls.clear()
        kernels.matmul(*tiny)
        assert calls == []  # under the 2 M floor: NumPy's BLAS, one thread
    finally:
        nr.set_num_threads(old)
    out = np.empty((32, 512), np.float32)
    with thread_limit(1):
        assert kernels.gemm(*small, out=out) is out
    np.testing.assert_allclose(out, small[0] @ small[1], rtol=1e-4, atol=1e-4)
    a3 = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(kernels.matmul(a3, small[0][:4, :5]), a3 @ small[0][:4, :5], rtol=1e-6)  # 3-D: NumPy


def _run(code, **env):
    e = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True)


def test_setting_is_checked_and_named():
    r = _run("from neurona.backend.kernels import cblas; cblas.chosen()", NEURONA_BLAS="openblas")
    assert r.returncode != 0 and "NEURONA_BLAS='openblas'" in r.stderr and "auto, numpy, mkl" in r.stderr
    r = _run("from neurona.backend.kernels import cblas; print(cblas.name())", NEURONA_BLAS="numpy")
    assert r.returncode == 0 and r.stdout.strip() == "numpy"


def test_mkl_asked_for_but_missing_says_how_to_get_it(monkeypatch):
    monkeypatch.setenv("NEURONA_BLAS", "mkl")
    monkeypatch.setattr(cblas, "_mkl", None)
    monkeypatch.setattr(cblas, "_mkl_error", None)
    monkeypatch.setattr(cblas, "_chosen", False)
    monkeypatch.setattr(cblas, "find_mkl", lambda: None)
    with pytest.raises(cblas.BlasError, match=r"NEURONA_BLAS=mkl: the mkl package is not installed \(pip install -e '\.\[mkl\]'\)"):
        cblas.chosen()
    monkeypatch.setenv("NEURONA_BLAS", "auto")
    monkeypatch.setattr(cblas, "_chosen", False)
    assert cblas.chosen() is None and cblas.name() == "numpy"  # auto without MKL: NumPy's BLAS, no error


@needs_mkl
def test_auto_measures_once_and_caches_the_choice(tmp_path):
    code = ("import json; from neurona.backend.kernels import cblas, calibrate; n = cblas.name(); "
            "print(json.dumps([n, str(calibrate.blas_path())]))")
    r = _run(code, NEURONA_BLAS="auto", XDG_CACHE_HOME=str(tmp_path), NEURONA_CONV_CALIBRATION="1")
    assert r.returncode == 0, r.stderr
    name, path = json.loads(r.stdout)
    entry = next(iter(json.loads(open(path).read()).values()))
    assert entry["use"] == name and set(entry["probes"]) == {f"{m}x{k}x{n}" for m, k, n in calibrate.BLAS_PROBES}
    assert all(len(v) == 2 and min(v) > 0 for v in entry["probes"].values())
    entry["use"] = "numpy" if name == "mkl" else "mkl"  # a planted answer: a second process reads it back
    with open(path, "w") as f:
        json.dump({entry["key"]: entry}, f)
    r = _run(code, NEURONA_BLAS="auto", XDG_CACHE_HOME=str(tmp_path), NEURONA_CONV_CALIBRATION="1")
    assert json.loads(r.stdout)[0] == entry["use"]
    r = _run(code, NEURONA_BLAS="auto", XDG_CACHE_HOME=str(tmp_path), NEURONA_CONV_CALIBRATION="0")
    assert json.loads(r.stdout)[0] == "numpy"  # calibration off: NumPy's BLAS


@needs_mkl
def test_fused_lstm_gradients_are_the_same_through_either_blas(monkeypatch):
    # 32 rows × 128 units, 6 steps: the recurrent kernel's gradient (128 × 192 × 512) is above the 2 M floor
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 6, 5)).astype(np.float32)
    assert 128 * 192 * 512 >= kernels.MIN_SECOND_BLAS_WORK
    real, calls = mkl.gemm, []
    monkeypatch.setattr(mkl, "gemm", lambda a, b, out=None: calls.append(a.shape) or real(a, b, out))
    results = {}
    for name, lib in (("numpy", None), ("mkl", mkl)):
        monkeypatch.setattr(cblas, "_chosen", lib)
        nr.manual_seed(0)
        layer = nr.layers.LSTM(128, return_sequences=True)
        xt = nr.tensor(x, requires_grad=True)
        with thread_limit(1):
            y = layer(xt)
            (y * y).sum().backward()
        results[name] = [y.numpy(), xt.grad.numpy()] + [w.grad.numpy() for w in layer.trainable_weights]
        if name == "numpy":
            assert calls == []
    # with MKL the steps' products run inside the compiled loops (tests/test_rnn_sequences.py);
    # the recurrent kernel's gradient hrsᵀ·dU (128 × 192 rows by 192 × 512) is one MKL call
    assert calls == [(128, 192)]
    for a, b in zip(results["numpy"], results["mkl"]):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


@needs_mkl
def test_graph_mode_sends_large_products_to_the_chosen_blas(mkl_calls):
    calls = mkl_calls
    rng = np.random.default_rng(4)
    big = nr.tensor(rng.standard_normal((64, 256)).astype(np.float32)), nr.tensor(rng.standard_normal((256, 256)).astype(np.float32))
    small = nr.tensor(rng.standard_normal((8, 16)).astype(np.float32)), nr.tensor(rng.standard_normal((16, 4)).astype(np.float32))

    @nr.jit
    def f(a, b, c, d):
        return (a @ b).sum() + (c @ d).sum()

    with thread_limit(1):
        want = float((big[0].numpy() @ big[1].numpy()).sum() + (small[0].numpy() @ small[1].numpy()).sum())
        f(*big, *small)  # the first call traces (and runs eagerly)
        calls.clear()
        for _ in range(2):
            got = float(f(*big, *small).numpy())  # replays of the compiled graph
    assert abs(got - want) <= 1e-3 * abs(want) + 1e-2
    assert calls.count((64, 256)) == 2 and (8, 16) not in calls  # the small product kept np.matmul


@needs_mkl
def test_a_stack_times_a_matrix_is_one_2d_gemm_both_ways(mkl_calls):
    """(32, 64, 256)·(256, 65), a Dense layer on a sequence: one (2048, 256) product through
    kernels.gemm forward, and b's gradient one (256, 2048)·(2048, 65) product, not a batched
    matmul summed over the stack."""
    calls = mkl_calls
    rng = np.random.default_rng(5)
    a = nr.tensor(rng.standard_normal((32, 64, 256)).astype(np.float32), requires_grad=True)
    b = nr.tensor(rng.standard_normal((256, 65)).astype(np.float32), requires_grad=True)
    g = rng.standard_normal((32, 64, 65)).astype(np.float32)
    with thread_limit(1):
        y = a @ b
        (y * nr.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.numpy(), a.numpy() @ b.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b.grad.numpy(), np.einsum("ntk,ntm->km", a.numpy(), g), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(a.grad.numpy(), g @ b.numpy().T, rtol=1e-4, atol=1e-4)
    assert (2048, 256) in calls and (256, 2048) in calls and (2048, 65) in calls


def test_choosing_mkl_holds_numpys_blas_at_one_thread():
    """Once MKL does neurona's GEMMs, NumPy's OpenBLAS stays at one thread, set_num_threads
    included (its idle threads would spin on the cores neurona's pool needs); a subprocess, as
    the hold is process-wide."""
    if mkl is None:
        pytest.skip(f"MKL not loadable here: {cblas.mkl_error()}")
    code = ("import neurona as nr; from threadpoolctl import threadpool_info\n"
            "from neurona.backend.kernels import cblas\n"
            "def ob(): return sorted({d['num_threads'] for d in threadpool_info() if d['internal_api'] == 'openblas'})\n"
            "nr.set_num_threads(2); before = ob(); cblas.chosen(); held = ob()\n"
            "nr.set_num_threads(2); print(before, held, ob())")
    r = _run(code, NEURONA_BLAS="mkl")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[2]", "[1]", "[1]"], r.stdout
    r = _run(code, NEURONA_BLAS="numpy")
    assert r.stdout.split() == ["[2]", "[2]", "[2]"], r.stdout


@needs_mkl
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_split_on_numbas_threads_matches_numpy_for_every_layout(dtype):
    """`_gemm_par.gemm`: blocks of rows (more rows than columns) or columns, operands in every
    layout CBLAS reads, into a strided out; the bits of MKL's one-thread product for row blocks."""
    par = kernels._parallel_gemm_module()
    if par is None:
        pytest.skip("numba's parallel runtime here is not OpenMP or TBB")
    rng = np.random.default_rng(6)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for m, k, n in ((70, 33, 20), (9, 40, 101), (64, 64, 64)):
        for name_a, a in _layouts(rng, m, k, dtype)[:4]:
            for name_b, b in _layouts(rng, k, n, dtype)[:4]:
                for parts in (2, 3):
                    big = np.full((m + 2, n + 3), 7.0, dtype=dtype)
                    out = big[1:m + 1, 1:n + 1]
                    assert par.gemm(a, b, out, parts) is out
                    want = a.astype(np.float64) @ b.astype(np.float64)
                    np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.sqrt(k), err_msg=f"{name_a} @ {name_b}")
                    assert (big[0] == 7).all() and (big[:, 0] == 7).all() and (big[:, n + 1:] == 7).all()
