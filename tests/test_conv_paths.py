"""conv2d's 1×1 path (neurona/ops/conv.py) against PyTorch and against im2col:
(a GEMM per image; strides subsample first; groups), forced and refused through NEURONA_CONV_ALGO.
Forward, input gradient and filter gradient in float32 and float64, gradcheck and gradgradcheck
in float64, and a check that the path is really the one taken."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neurona as nr
from neurona.ops import conv as conv_mod
from oracle import check_op

ONE_BY_ONE = {  # name: (x shape, w shape, conv kwargs)
    "s1": ((2, 3, 4, 5), (5, 3, 1, 1), {}),
    "s2_exact": ((2, 3, 5, 7), (4, 3, 1, 1), dict(stride=2)),
    "s2_floor_even": ((2, 3, 6, 4), (4, 3, 1, 1), dict(stride=2, rounding="floor")),
    "s3_floor": ((1, 2, 7, 8), (3, 2, 1, 1), dict(stride=3, rounding="floor")),
    "rect_stride": ((2, 2, 5, 6), (3, 2, 1, 1), dict(stride=(1, 2), rounding="floor")),
    "groups2": ((2, 4, 3, 3), (6, 2, 1, 1), dict(groups=2)),
    "groups2_s2": ((1, 4, 5, 5), (4, 2, 1, 1), dict(groups=2, stride=2)),
    "depthwise": ((2, 3, 3, 4), (3, 1, 1, 1), dict(groups=3)),
    "dilation2": ((1, 2, 4, 4), (3, 2, 1, 1), dict(dilation=2)),
    "one_pixel": ((3, 2, 1, 1), (4, 2, 1, 1), {}),
}


def _torch_kw(kw):
    return {k: v for k, v in kw.items() if k != "rounding"}


def _counting(monkeypatch, names):
    calls = []
    for name in names:
        real = getattr(conv_mod, name)
        monkeypatch.setattr(conv_mod, name, lambda *a, _r=real, _n=name, **k: calls.append(_n) or _r(*a, **k))
    return calls


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("name", ONE_BY_ONE)
def test_one_by_one_matches_torch_and_gradchecks(name, bias, monkeypatch):
    monkeypatch.delenv("NEURONA_CONV_ALGO", raising=False)
    calls = _counting(monkeypatch, ["_one_by_one_forward", "_one_by_one_input_grad", "_one_by_one_weight_grad"])
    x_shape, w_shape, kw = ONE_BY_ONE[name]
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
    check_op(shapes, lambda *a: nr.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **_torch_kw(kw)),
             gradgrad=True, tol={"float32": dict(rtol=1e-4, atol=1e-5)})
    assert {"_one_by_one_forward", "_one_by_one_input_grad", "_one_by_one_weight_grad"} <= set(calls)


def _pass(x, w, gy, **kw):
    nx, nw = nr.tensor(x, requires_grad=True), nr.tensor(w, requires_grad=True)
    y = nr.conv2d(nx, nw, **kw)
    y.backward(nr.tensor(gy))
    return y.numpy(), nx.grad.numpy(), nw.grad.numpy()


@pytest.mark.parametrize("stride", [1, 2])
def test_one_by_one_equals_im2col_on_a_sweep_shape(stride, monkeypatch):
    """float32, 32 images 16→32 on 14×14 (a conv sweep shape): the 1×1 path and im2col agree, and
    NEURONA_CONV_ALGO=im2col really leaves the 1×1 path."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 16, 14, 14)).astype(np.float32)
    w = rng.standard_normal((32, 16, 1, 1)).astype(np.float32)
    gy = rng.standard_normal((32, 32, 14 // stride, 14 // stride)).astype(np.float32)
    calls = _counting(monkeypatch, ["_one_by_one_forward", "_one_by_one_input_grad", "_one_by_one_weight_grad"])
    monkeypatch.setenv("NEURONA_CONV_ALGO", "1x1")
    ours = _pass(x, w, gy, stride=stride, rounding="floor")
    assert calls == ["_one_by_one_forward", "_one_by_one_input_grad", "_one_by_one_weight_grad"]
    monkeypatch.setenv("NEURONA_CONV_ALGO", "im2col")
    ref = _pass(x, w, gy, stride=stride, rounding="floor")
    assert len(calls) == 3
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = TF.conv2d(tx, tw, stride=stride)
    ty.backward(torch.tensor(gy))
    for name, a, b, t in zip(("output", "input grad", "filter grad"), ours, ref,
                             (ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy())):
        assert a.dtype == np.float32 and a.shape == t.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max(), err_msg=name)
        np.testing.assert_allclose(a, t, rtol=1e-4, atol=1e-4 * np.abs(t).max(), err_msg=name)


def test_one_by_one_with_padding_goes_through_im2col(monkeypatch):
    monkeypatch.delenv("NEURONA_CONV_ALGO", raising=False)
    calls = _counting(monkeypatch, ["_one_by_one_forward"])
    check_op([(1, 2, 3, 3), (3, 2, 1, 1)], lambda a, b: nr.conv2d(a, b, padding=1),
             lambda a, b: TF.conv2d(a, b, padding=1), gradgrad=True)
    assert calls == []


def test_bad_algorithm_setting_is_refused(monkeypatch):
    monkeypatch.setenv("NEURONA_CONV_ALGO", "fft")
    with pytest.raises(ValueError, match="NEURONA_CONV_ALGO must be one of auto, im2col, winograd, 1x1"):
        nr.conv2d(nr.zeros((1, 1, 2, 2)), nr.zeros((1, 1, 1, 1)))

