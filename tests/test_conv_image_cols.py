"""conv2d's per-image im2col (kernels.conv_image_cols and its two gradients; numba im2col_images
and col2im_images): cols (N, C·kh·kw, OH·OW), a GEMM per image, for layers on large maps that the
1×1, direct and Winograd paths decline. Against PyTorch and against the shared-matrix im2col
(NEURONA_CONV_ALGO=im2col), in float32 and float64, at 1 and 2 threads (the batch split), with
gradcheck and gradgradcheck in float64, and a check that the path is really the one taken."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neurona as nr
from neurona.backend import kernels
from oracle import check_op

pytest.importorskip("neurona.backend.kernels._numba")

PATH = ("conv_image_cols", "conv_input_grad_image_cols", "conv_weight_grad_image_cols")

SMALL = {  # name: (x shape, w shape, conv kwargs), with MIN_IMAGE_COLS_PIXELS lowered to 1
    "k3_pad1": ((2, 3, 6, 7), (4, 3, 3, 3), dict(padding=1)),
    "k5_pad2": ((2, 3, 7, 6), (5, 3, 5, 5), dict(padding=2)),
    "k3_dil2": ((1, 3, 8, 8), (4, 3, 3, 3), dict(dilation=2, padding=2)),
    "rect_k2x3": ((2, 3, 6, 7), (4, 3, 2, 3), dict(padding=(0, 1))),
    "rect_dil12_pad21": ((2, 2, 7, 9), (3, 2, 3, 3), dict(dilation=(1, 2), padding=(2, 1))),
    "no_pad": ((2, 4, 6, 6), (3, 4, 3, 3), {}),
}


def _torch_kw(kw):
    return {k: v for k, v in kw.items() if k != "rounding"}


@pytest.fixture
def restore_threads():
    old = nr.get_num_threads()
    yield
    nr.set_num_threads(old)


def _counting(monkeypatch):
    calls = []
    for name in PATH:
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _r=real, _n=name, **k: calls.append(_n) or _r(*a, **k))
    return calls


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("name", SMALL)
def test_image_cols_matches_torch_and_gradchecks(name, bias, monkeypatch):
    monkeypatch.delenv("NEURONA_CONV_ALGO", raising=False)
    monkeypatch.setattr(kernels, "MIN_IMAGE_COLS_PIXELS", 1)
    calls = _counting(monkeypatch)
    x_shape, w_shape, kw = SMALL[name]
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
    check_op(shapes, lambda *a: nr.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **_torch_kw(kw)),
             gradgrad=True, tol={"float32": dict(rtol=1e-4, atol=1e-5)})
    assert set(PATH) <= set(calls)


def _pass(x, w, gy, threads, **kw):
    nr.set_num_threads(threads)
    nx, nw = nr.tensor(x, requires_grad=True), nr.tensor(w, requires_grad=True)
    y = nr.conv2d(nx, nw, **kw)
    y.backward(nr.tensor(gy))
    return y.numpy(), nx.grad.numpy(), nw.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", [(3, 16, 28, 5, 1), (3, 16, 14, 3, 1), (2, 8, 9, 5, 1)])
def test_image_cols_equals_shared_im2col_on_sweep_shapes(layer, dtype, monkeypatch, restore_threads):
    """Sweep-sized layers (the default threshold, batch 8) at 1 and 2 threads (split over the
    batch with MIN_SPLIT_WORK 0): the per-image path, im2col's shared matrix and PyTorch agree,
    and NEURONA_CONV_ALGO=im2col really leaves the per-image path."""
    c, k, size, r, stride = layer
    kw = dict(stride=stride, padding=r // 2, rounding="floor")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, c, size, size)).astype(dtype)
    w = rng.standard_normal((k, c, r, r)).astype(dtype)
    oh = (size + 2 * (r // 2) - r) // stride + 1
    gy = rng.standard_normal((8, k, oh, oh)).astype(dtype)
    monkeypatch.setattr(kernels, "MIN_SPLIT_WORK", 0)
    monkeypatch.setenv("NEURONA_CONV_ALGO", "im2col")
    calls = _counting(monkeypatch)
    ref = _pass(x, w, gy, 1, **kw)
    assert calls == []
    monkeypatch.setenv("NEURONA_CONV_ALGO", "auto")
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = TF.conv2d(tx, tw, stride=stride, padding=r // 2)
    ty.backward(torch.tensor(gy))
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    for threads in (1, 2):
        calls.clear()
        ours = _pass(x, w, gy, threads, **kw)
        assert set(calls) == set(PATH), threads
        for what, a, b, t in zip(("output", "input grad", "filter grad"), ours, ref,
                                 (ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy())):
            assert a.dtype == dtype and a.shape == t.shape, what
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max(), err_msg=f"{what}, {threads} threads")
            np.testing.assert_allclose(a, t, rtol=rtol, atol=rtol * np.abs(t).max(), err_msg=f"{what} vs torch")


def test_image_cols_declines_what_other_paths_take():
    x = np.zeros((8, 16, 28, 28), np.float32)
    geo3 = (3, 3, 1, 1, 1, 1, 1, 1, 28, 28)
    # Winograd's (where this machine's calibration lets Winograd take it)
    assert kernels.image_cols_suits(x, 16, 32, geo3, 1) == (not kernels.winograd_suits(x, 16, 32, geo3, 1))
    assert not kernels.image_cols_suits(x, 16, 32, (1, 1, 1, 1, 0, 0, 1, 1, 28, 28), 1)  # the 1×1 path's
    assert not kernels.image_cols_suits(x, 1, 6, geo3, 1)  # the direct kernel's
    assert not kernels.image_cols_suits(x, 16, 32, geo3, 2)  # grouped: shared matrix
    assert not kernels.image_cols_suits(x, 3, 16, (3, 3, 2, 2, 1, 1, 1, 1, 14, 14), 1)  # stride 2
    assert not kernels.image_cols_suits(x, 3, 16, (3, 3, 1, 1, 0, 0, 1, 1, 6, 6), 1)  # small map
    assert not kernels.image_cols_suits(x, 6, 16, (5, 5, 1, 1, 0, 0, 1, 1, 10, 10), 1)  # 150 rows
    assert kernels.image_cols_suits(x, 3, 16, geo3, 1)
    assert not kernels.image_cols_suits(x.astype(np.float16), 3, 16, geo3, 1)  # no numba kernel


def test_image_cols_under_graph_replay(monkeypatch):
    """A traced step replayed on new data gets the new run's columns for its filter gradient
    (the forward's saved ImageCols is an ndarray, so the tracer keeps it as a saved output)."""
    from neurona.graph import jit

    monkeypatch.delenv("NEURONA_CONV_ALGO", raising=False)
    calls = _counting(monkeypatch)

    def step(x, w):
        loss = (nr.conv2d(x, w, padding=1) ** 2).sum()
        return (loss,) + tuple(nr.grad(loss, [x, w]))

    traced = jit(step)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = nr.tensor(rng.standard_normal((2, 3, 9, 9)), requires_grad=True)
        w = nr.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
        for got, want in zip(traced(x, w), step(x, w)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-10)
    assert set(PATH) <= set(calls)
