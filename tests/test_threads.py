"""One thread setting (neurona/backend/threads.py): set_num_threads sets neurona's kernel pool and
NumPy's BLAS (as threadpoolctl reports it), bad values are refused naming the setting, available_cpus
counts the CPUs this process may use (affinity, cgroup quota), DataLoader workers run their kernels
on one thread each, and the kernels that split work over threads (Winograd's transforms) give
bit-identical results at 1 and 2 threads (the split is by channel: no sum changes order)."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import neurona as nr
from neurona.backend import threads


def _blas_threads():
    # MKL, when neurona loaded it for its one-thread GEMMs (kernels/cblas.py), runs its sequential
    # layer: always 1 thread, whatever the setting; the BLAS that threads follow is NumPy's
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas" and i["internal_api"] != "mkl"]


@pytest.fixture
def restore():
    old = threads._num_threads
    blas = _blas_threads()
    yield
    threads._num_threads = old
    if blas:
        from threadpoolctl import threadpool_limits
        threadpool_limits(blas[0], user_api="blas")


def test_set_num_threads_sets_blas_and_kernels(restore):
    for n in (1, 2, 3):
        nr.set_num_threads(n)
        assert nr.get_num_threads() == n
        assert nr.backend.kernel_threads() == n
        assert _blas_threads() and all(t == n for t in _blas_threads())


@pytest.mark.parametrize("bad", [1.5, 0, -2, "abc", "2", True, None, 2.0])
def test_bad_values_refused(bad, restore):
    with pytest.raises(ValueError, match="set_num_threads: n must be a positive integer"):
        nr.set_num_threads(bad)
    nr.set_num_threads(np.int64(2))
    assert nr.get_num_threads() == 2


def test_bad_environment_refused():
    env = {**os.environ, "NEURONA_NUM_THREADS": "abc"}
    r = subprocess.run([sys.executable, "-c", "import neurona"], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "NEURONA_NUM_THREADS must be a positive integer" in r.stderr and "'abc'" in r.stderr


def test_environment_sets_both():
    env = {**os.environ, "NEURONA_NUM_THREADS": "1"}
    code = ("import neurona as nr; from threadpoolctl import threadpool_info as t; "
            "print(nr.get_num_threads(), nr.backend.kernel_threads(), "
            "[i['num_threads'] for i in t() if i['user_api'] == 'blas'])")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["1", "1", "[1]"]


def test_default_counts_available_cpus(tmp_path, restore, monkeypatch):
    threads._num_threads = None
    monkeypatch.delenv("NEURONA_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_default_threads", None)
    assert nr.get_num_threads() == nr.backend.kernel_threads() == threads.available_cpus()
    real = threads.available_cpus
    monkeypatch.setattr(threads, "_default_threads", None)
    monkeypatch.setattr(threads, "available_cpus", lambda: 5)  # counted once, on first use
    assert nr.get_num_threads() == 5
    monkeypatch.setattr(threads, "available_cpus", lambda: 7)
    assert nr.get_num_threads() == 5
    with nr.backend.thread_limit(1):
        assert nr.backend.kernel_threads() == 1
    nr.set_num_threads(2)
    assert nr.get_num_threads() == 2
    monkeypatch.setattr(threads, "available_cpus", real)
    assert threads.available_cpus() <= len(os.sched_getaffinity(0))
    f = tmp_path / "cpu.max"
    for text, cpus in [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000\n", 1),
                       ("400000 100000\n", 4), ("garbage", None)]:
        f.write_text(text)
        assert threads._cgroup_cpus(str(f)) == cpus
    assert threads._cgroup_cpus(str(tmp_path / "missing")) is None


def test_thread_limit_is_per_thread(restore):
    nr.set_num_threads(2)
    seen = {}

    def worker():
        with nr.backend.thread_limit(1):
            seen["inside"] = nr.backend.kernel_threads()
        seen["after"] = nr.backend.kernel_threads()

    with nr.backend.thread_limit(3):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert nr.backend.kernel_threads() == 3
    assert seen == {"inside": 1, "after": 2} and nr.backend.kernel_threads() == 2
    with pytest.raises(ValueError, match="thread_limit"):
        with nr.backend.thread_limit(0):
            pass


def test_dataloader_workers_use_one_kernel_thread(restore):
    nr.set_num_threads(2)
    seen = []

    def transform(batch, rng):
        seen.append(nr.backend.kernel_threads())
        return batch

    loader = nr.data.DataLoader((np.arange(12.0).reshape(6, 2),), batch_size=2, transform=transform,
                                num_workers=2, prefetch=2)
    assert len(list(loader)) == 3
    assert seen == [1, 1, 1] and nr.backend.kernel_threads() == 2


def test_winograd_identical_at_1_and_2_threads(restore, monkeypatch):
    pytest.importorskip("neurona.backend.kernels._numba")
    monkeypatch.setenv("NEURONA_CONV_ALGO", "winograd")
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((4, 16, 12, 12)).astype(np.float32)
    w0 = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    out = {}
    for n in (1, 2):
        nr.set_num_threads(n)
        x, w = nr.tensor(x0, requires_grad=True), nr.tensor(w0, requires_grad=True)
        y = nr.conv2d(x, w, padding=1)
        (y * y).sum().backward()
        out[n] = (y.numpy(), x.grad.numpy(), w.grad.numpy())
    for a, b in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plane_split_kernels_identical_at_1_and_2_threads(dtype, restore, monkeypatch):
    """col2im, 2×2 max pooling and its scatter split (n, c) planes over threads: same bits."""
    from neurona.backend import kernels
    pytest.importorskip("neurona.backend.kernels._numba")
    monkeypatch.setattr(kernels, "_MIN_ELEMENTS_PER_THREAD", 1)  # split even these small arrays
    monkeypatch.setattr(kernels, "_MIN_POOL_ELEMENTS_PER_THREAD", 1)
    rng = np.random.default_rng(1)
    shape = (3, 5, 10, 9)
    x = rng.standard_normal(shape).astype(dtype)
    out = {}
    for n in (1, 2):
        nr.set_num_threads(n)
        res = []
        for k, s, p in [((3, 3), (1, 1), (1, 1)), ((2, 2), (2, 2), (0, 0)), ((5, 3), (2, 1), (2, 0))]:
            geo = nr.ops.conv.make_geometry("test", shape, k, s, p, (1, 1), "floor").ints
            cols = kernels.im2col(x, geo)
            res.append(kernels.col2im(cols, shape, geo))
            pooled, arg = kernels.max_pool(x, geo)
            res += [pooled, arg, kernels.max_pool_scatter(pooled * 2, arg, shape, geo)]
        out[n] = res
    for a, b in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_kernels_identical_at_1_and_2_threads(dtype, restore, monkeypatch):
    """The fused batch norm's statistics, normalisation, gradient sums and input gradient split
    channels over threads: each channel's sums keep their order, so the bits are the same."""
    from neurona.backend import kernels
    pytest.importorskip("neurona.backend.kernels._bn")
    monkeypatch.setattr(kernels, "_MIN_ELEMENTS_PER_THREAD", 1)  # split even this small array
    rng = np.random.default_rng(2)
    x0 = (rng.standard_normal((6, 7, 5, 4)) * 3 + 10).astype(dtype)
    out = {}
    for n in (1, 2):
        nr.set_num_threads(n)
        x = nr.tensor(x0, requires_grad=True)
        gamma = nr.tensor(np.linspace(0.5, 2, 7).astype(dtype), requires_grad=True)
        beta = nr.tensor(np.linspace(-1, 1, 7).astype(dtype), requires_grad=True)
        y = nr.functional.batch_norm(x, gamma, beta)
        (y * y * nr.tensor(x0)).sum().backward()
        out[n] = (y.numpy(), x.grad.numpy(), gamma.grad.numpy(), beta.grad.numpy())
    for a, b in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("module", ["_numba", "_bn"])
def test_every_compiled_kernel_releases_the_gil(module):
    """Kernels run side by side in the kernel pool (plane splits, conv2d's batch ranges) and in
    DataLoader/serving threads: one that held the GIL would run the ranges one after the other
    (the direct convolution did, so LeNet's first layer gained nothing from a second thread)."""
    import importlib

    from numba.core.registry import CPUDispatcher
    mod = importlib.import_module(f"neurona.backend.kernels.{module}")
    kernels = {name: f for name, f in vars(mod).items() if isinstance(f, CPUDispatcher) and not name.startswith("_")}
    assert len(kernels) >= 8
    held = [name for name, f in kernels.items() if not f.targetoptions.get("nogil")]
    assert held == [], f"{module}: these kernels hold the GIL: {held}"


@pytest.mark.parametrize("shape", [(96, 70, 40), (40, 70, 96), (8, 7, 5)])
def test_matmul_on_one_blas_thread_split_over_the_pool(shape, restore, monkeypatch):
    """With SPLIT_LARGE_GEMMS at several kernel threads every 2-D GEMM runs on one BLAS thread
    (OpenBLAS's threads would spin for ~0.1 s afterwards, on the cores the kernel pool needs), and
    a large one is split over the kernel pool by rows (more rows than columns) or columns of the
    result; the BLAS count is restored after each; values and gradients through MatMul as at one
    thread."""
    from neurona.backend import kernels
    monkeypatch.setattr(kernels, "MIN_GEMM_THREADS_WORK", 1000)
    monkeypatch.setattr(kernels, "SPLIT_LARGE_GEMMS", True)
    m, k, n = shape
    rng = np.random.default_rng(3)
    a0, b0 = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    seen, handed = [], []
    real, real_side = kernels.blas_threads, kernels._winograd.run_side_by_side

    def spy(count):
        seen.append(count)
        return real(count)

    def spy_side(tasks):
        handed.append(len(tasks))
        return real_side(tasks)

    monkeypatch.setattr(kernels, "blas_threads", spy)
    monkeypatch.setattr(kernels._winograd, "run_side_by_side", spy_side)
    out = {}
    for threads_n in (1, 2):
        nr.set_num_threads(threads_n)
        seen.clear()
        handed.clear()
        a, b = nr.tensor(a0, requires_grad=True), nr.tensor(b0, requires_grad=True)
        y = a @ b
        (y * y).sum().backward()
        out[threads_n] = (y.numpy(), a.grad.numpy(), b.grad.numpy())
        assert _blas_threads() and all(t == threads_n for t in _blas_threads())
        large = m * k * n >= 1000
        assert seen == ([1, 1, 1] if threads_n > 1 else []), (threads_n, seen)  # y, its two gradients
        assert handed == ([2, 2, 2] if threads_n > 1 and large else []), (threads_n, handed)
    for a, b in zip(out[1], out[2]):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6 * np.abs(a).max())
    batched = np.ones((2, 3, 4), np.float32)
    assert kernels.matmul(batched, np.ones((4, 5), np.float32)).shape == (2, 3, 5)


def test_large_gemms_keep_the_blas_threads_by_default(restore, monkeypatch):
    """Without SPLIT_LARGE_GEMMS (the default) a small GEMM at several kernel threads runs on one
    BLAS thread and a large one on the BLAS's own threads, not handed to the kernel pool."""
    from neurona.backend import kernels
    monkeypatch.setattr(kernels, "MIN_GEMM_THREADS_WORK", 1000)
    assert kernels.SPLIT_LARGE_GEMMS is False
    seen, handed = [], []
    real = kernels.blas_threads
    monkeypatch.setattr(kernels, "blas_threads", lambda n: seen.append(n) or real(n))
    monkeypatch.setattr(kernels._winograd, "run_side_by_side", lambda tasks: handed.append(len(tasks)))
    nr.set_num_threads(2)
    rng = np.random.default_rng(5)
    small = rng.standard_normal((8, 7)).astype(np.float32), rng.standard_normal((7, 5)).astype(np.float32)
    large = rng.standard_normal((96, 70)).astype(np.float32), rng.standard_normal((70, 40)).astype(np.float32)
    np.testing.assert_allclose(kernels.matmul(*small), small[0] @ small[1], rtol=1e-6)
    assert seen == [1] and handed == []
    np.testing.assert_allclose(kernels.matmul(*large), large[0] @ large[1], rtol=1e-6)
    assert seen == [1] and handed == []


def test_split_matmul_exact_on_integers_and_views(restore, monkeypatch):
    """The split GEMM writes every block of the result: integer products (no BLAS, exact) and
    transposed views (the backward pass's operands) equal NumPy's whole product."""
    from neurona.backend import kernels
    monkeypatch.setattr(kernels, "MIN_GEMM_THREADS_WORK", 1000)
    monkeypatch.setattr(kernels, "SPLIT_LARGE_GEMMS", True)
    nr.set_num_threads(3)
    rng = np.random.default_rng(4)
    for m, k, n in [(50, 30, 20), (20, 30, 50), (49, 31, 49)]:
        ai, bi = rng.integers(-9, 9, (m, k)), rng.integers(-9, 9, (k, n))
        np.testing.assert_array_equal(kernels.matmul(ai, bi), ai @ bi)
        af, bf = rng.standard_normal((k, m)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32)
        np.testing.assert_allclose(kernels.matmul(af.T, bf.T), af.T @ bf.T, rtol=1e-5, atol=1e-5)


def test_serving_predictions_use_one_kernel_thread(restore):
    """The model server's batch threads predict on one kernel thread each (as DataLoader workers):
    requests give the parallelism; the training thread's count is left alone."""
    import types

    from neurona.serving.repository import LoadedVersion

    nr.set_num_threads(2)
    seen = []

    class Model:
        def predict_step(self, batch):
            seen.append(nr.backend.kernel_threads())
            return batch[0]

    out = LoadedVersion.predict(types.SimpleNamespace(model=Model()), [np.ones((2, 3), np.float32)])
    assert seen == [1] and nr.backend.kernel_threads() == 2
    np.testing.assert_array_equal(out[0], np.ones((2, 3), np.float32))
