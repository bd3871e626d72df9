"""conv2d split over the batch (kernels.conv_by_batch and its two siblings): with several kernel
threads each op runs once per batch range, side by side, with one BLAS thread each. Every
algorithm (im2col, Winograd 3×3 and 5×5, the 1×1 path, the direct kernel) must give what the
whole op gives at one thread, within float32 rounding (the filter gradient sums the ranges'
parts), also when the thread count changes between the forward and the backward pass;
gradcheck and gradgradcheck in float64 and PyTorch parity through the split path."""
import numpy as np
import pytest
import torch.nn.functional as TF

import neurona as nr
from neurona.backend import kernels
from oracle import check_op

pytest.importorskip("neurona.backend.kernels._numba")

LAYERS = {  # name: (x shape, w shape, conv kwargs, NEURONA_CONV_ALGO)
    "im2col_s2": ((8, 3, 9, 9), (5, 3, 3, 3), dict(stride=2, padding=1), "im2col"),
    "winograd3": ((8, 8, 10, 10), (12, 8, 3, 3), dict(padding=1), "winograd"),
    "winograd5": ((9, 8, 9, 9), (6, 8, 5, 5), dict(padding=2), "winograd"),
    "one_by_one": ((8, 6, 5, 5), (7, 6, 1, 1), dict(stride=2), "auto"),
    "direct": ((8, 1, 7, 7), (4, 1, 3, 3), dict(padding=1), "auto"),
}


@pytest.fixture
def restore():
    old = nr.get_num_threads()
    yield
    nr.set_num_threads(old)


def _run(x0, w0, g0, kw, threads_fwd, threads_bwd):
    nr.set_num_threads(threads_fwd)
    x, w = nr.tensor(x0, requires_grad=True), nr.tensor(w0, requires_grad=True)
    y = nr.conv2d(x, w, **kw)
    nr.set_num_threads(threads_bwd)
    y.backward(nr.tensor(g0))
    return y.numpy(), x.grad.numpy(), w.grad.numpy()


@pytest.mark.parametrize("min_work", [0, 1 << 40])  # split, then whole on one thread
@pytest.mark.parametrize("name", LAYERS)
def test_split_equals_the_whole_op(name, min_work, restore, monkeypatch):
    x_shape, w_shape, kw, algo = LAYERS[name]
    monkeypatch.setenv("NEURONA_CONV_ALGO", algo)
    monkeypatch.setattr(kernels, "MIN_SPLIT_WORK", min_work)
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(x_shape).astype(np.float32)
    w0 = rng.standard_normal(w_shape).astype(np.float32)
    nr.set_num_threads(1)
    y_shape = nr.conv2d(nr.tensor(x0), nr.tensor(w0), **kw).shape
    g0 = rng.standard_normal(y_shape).astype(np.float32)
    calls = []
    real = kernels.over_batch
    monkeypatch.setattr(kernels, "over_batch", lambda r, t: calls.append(len(r)) or real(r, t))
    whole = _run(x0, w0, g0, kw, 1, 1)
    assert calls == []
    for fwd, bwd in ((2, 2), (3, 3), (2, 1), (1, 2)):
        calls.clear()
        split = _run(x0, w0, g0, kw, fwd, bwd)
        expected = [fwd] if fwd > 1 else []
        expected += [bwd, bwd] if bwd > 1 else []
        ranges = [1 if min_work else min(c, x_shape[0] // kernels.MIN_IMAGES_PER_THREAD) for c in expected]
        assert calls == ranges, (fwd, bwd, calls)
        for what, a, b in zip(("y", "dx", "dw"), whole, split):
            scale = np.abs(a).max()
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * scale, err_msg=f"{name} {what} at {fwd}/{bwd}")


def test_small_batches_small_layers_and_one_thread_run_whole(restore):
    nr.set_num_threads(2)
    x = np.zeros((7, 3, 4, 4), np.float32)
    assert kernels.batch_ranges(x, 7) is None  # 7 images: not 4 per thread
    assert kernels.batch_ranges(x, 8) == [(0, 4), (4, 8)]
    assert kernels.batch_ranges(x.astype(np.float16), 8) is None  # no compiled kernels
    assert kernels.batch_ranges(x, 64, work=kernels.MIN_SPLIT_WORK - 1) == [(0, 64)]  # whole, one thread
    assert kernels.batch_ranges(x, 64, work=kernels.MIN_SPLIT_WORK) == [(i, i + 32) for i in (0, 32)]
    nr.set_num_threads(1)
    assert kernels.batch_ranges(x, 64) is None


@pytest.mark.parametrize("name", ["im2col_s2", "winograd3", "winograd5"])
def test_split_matches_torch_and_gradchecks(name, restore, monkeypatch):
    x_shape, w_shape, kw, algo = LAYERS[name]
    monkeypatch.setenv("NEURONA_CONV_ALGO", algo)
    monkeypatch.setattr(kernels, "MIN_SPLIT_WORK", 0)
    nr.set_num_threads(2)
    small_x = (8, 2) + x_shape[2:]  # central differences over few inputs; still 2 ranges
    small_w = (3, 2) + w_shape[2:]
    check_op([x_shape, w_shape], lambda x, w: nr.conv2d(x, w, **kw), lambda x, w: TF.conv2d(x, w, **kw),
             gradgrad=True, gc_shapes=[small_x, small_w], tol={"float32": dict(rtol=1e-3, atol=1e-3)})  # Winograd: ~1e-5 of the scale (~60)


@pytest.mark.parametrize("min_work", [0, 1 << 40])  # split in two ranges, then whole on one thread
@pytest.mark.parametrize("name", ["im2col_s2", "winograd3", "one_by_one"])
def test_graph_mode_replays_the_split(name, min_work, restore, monkeypatch):
    """nr.jit of a step through a split conv2d, replayed on new inputs, gives the eager step's
    filter gradient: the per-range saved matrices are no arrays graph mode can hand on, so they
    must not be read back from the traced run (they were: 96 % off on the second input)."""
    x_shape, w_shape, kw, algo = LAYERS[name]
    monkeypatch.setenv("NEURONA_CONV_ALGO", algo)
    monkeypatch.setattr(kernels, "MIN_SPLIT_WORK", min_work)
    nr.set_num_threads(2)
    rng = np.random.default_rng(7)
    w = nr.tensor(rng.standard_normal(w_shape).astype(np.float32), requires_grad=True)
    xs = [nr.tensor(rng.standard_normal(x_shape).astype(np.float32)) for _ in range(2)]

    def step(x):
        w.grad = None
        out = (nr.conv2d(x, w, **kw) ** 2).sum()
        out.backward()
        return out

    eager = []
    for x in xs:
        out = step(x)
        eager.append((out.item(), w.grad.numpy().copy()))
    compiled = nr.jit(step)
    for x, (v, g) in zip(xs + xs[:1], eager + eager[:1]):
        out = compiled(x)
        assert out.item() == pytest.approx(v, rel=1e-6)
        np.testing.assert_allclose(w.grad.numpy(), g, rtol=1e-5, atol=1e-5 * np.abs(g).max())
