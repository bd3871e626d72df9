"""Winograd F(2×2, 5×5) for 5×5 stride-1 layers (neurona/backend/kernels/winograd.py) against
PyTorch and im2col (forward, input and filter gradients, float32/float64, gradcheck and
gradgradcheck), and the per-machine calibration of the algorithm rule (kernels/calibrate.py):
read from its cache, measured once, refused when NEURONA_CONV_CALIBRATION=0."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neurona as nr
from neurona.backend import kernels
from neurona.backend.kernels import calibrate, winograd
from oracle import check_op

pytest.importorskip("neurona.backend.kernels._numba")


def _pass(x, w, gy, **kw):
    nx, nw = nr.tensor(x, requires_grad=True), nr.tensor(w, requires_grad=True)
    y = nr.conv2d(nx, nw, **kw)
    y.backward(nr.tensor(gy))
    return y.numpy(), nx.grad.numpy(), nw.grad.numpy()


# == Winograd F(2×2, 5×5) ===========================================================================

FIVE = [  # (N, C, H, W), K, padding: even/odd maps, no/some/asymmetric padding, one output tile
    ((2, 3, 8, 8), 4, 2),
    ((2, 3, 7, 9), 4, 2),
    ((1, 5, 6, 7), 3, 0),
    ((3, 3, 5, 6), 4, 1),
    ((2, 4, 9, 7), 5, (2, 1)),
    ((1, 3, 5, 5), 3, 0),
]  # C·K > 8 throughout: fewer channel pairs go to the direct kernel


@pytest.fixture(params=[2, 4], ids=["F2x2", "F4x4"])
def tile5(request, monkeypatch):
    monkeypatch.setattr(winograd, "TILE5", request.param)
    return request.param


@pytest.mark.parametrize("m", [2, 4])
def test_f_m5_matrices_compute_a_1d_correlation(m):
    bt, g, at = (np.array(a, dtype=np.float64) for a in winograd._MATRICES5[m])
    rng = np.random.default_rng(0)
    for _ in range(5):
        d, f = rng.standard_normal(m + 4), rng.standard_normal(5)
        np.testing.assert_allclose(at @ ((g @ f) * (bt @ d)), [d[i:i + 5] @ f for i in range(m)], rtol=1e-12)


def test_tile_size_follows_the_map(monkeypatch):
    monkeypatch.setattr(winograd, "TILE5", None)
    geo = lambda size: nr.ops.conv.make_geometry("t", (1, 1, size, size), 5, 1, 2, 1, "exact").ints  # noqa: E731
    # the tile with less transformed data, th·tw·α²: 4×4 outputs on 8×8 tiles from 5×5 maps on
    # (14×14: 16·64 against 49·36), 2×2 on 6×6 tiles below (2×2 maps: 64 against 36)
    assert winograd.tile_for(5, geo(28)) == 4 and winograd.tile_for(5, geo(16)) == 4
    assert winograd.tile_for(5, geo(14)) == 4 and winograd.tile_for(5, geo(7)) == 4
    assert winograd.tile_for(5, geo(5)) == 4 and winograd.tile_for(5, geo(2)) == 2


def _five_pair(xs, k, padding, dtype):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal((k, xs[1], 5, 5)).astype(dtype)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = TF.conv2d(tx, tw, padding=padding)
    gy = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(gy))
    return _pass(x, w, gy, padding=padding), (ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy())


@pytest.mark.parametrize("xs,k,padding", FIVE)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-11), (np.float32, 1e-4)])
def test_winograd_5x5_matches_torch(tile5, xs, k, padding, dtype, tol, monkeypatch):
    monkeypatch.setenv("NEURONA_CONV_ALGO", "winograd")
    calls = []
    for name in ("winograd_conv", "winograd_input_grad", "winograd_weight_grad"):
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _r=real, _n=name, **kw: calls.append(_n) or _r(*a, **kw))
    ours, theirs = _five_pair(xs, k, padding, dtype)
    assert calls == ["winograd_conv", "winograd_input_grad", "winograd_weight_grad"]
    for name, a, b in zip(("output", "input grad", "filter grad"), ours, theirs):
        assert a.dtype == dtype and a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max(), err_msg=name)


def test_winograd_5x5_gradcheck_and_gradgradcheck(tile5, monkeypatch):
    monkeypatch.setenv("NEURONA_CONV_ALGO", "winograd")
    rng = np.random.default_rng(3)
    x = nr.tensor(rng.standard_normal((2, 3, 6, 5)), requires_grad=True)
    w = nr.tensor(rng.standard_normal((3, 3, 5, 5)), requires_grad=True)
    fn = lambda a, b: nr.F.conv2d(a, b, padding=2)  # noqa: E731
    assert nr.gradcheck(fn, (x, w))
    assert nr.gradgradcheck(fn, (x, w))


def test_winograd_5x5_equals_im2col_on_a_sweep_shape(tile5, monkeypatch):
    monkeypatch.setenv("NEURONA_CONV_ALGO", "winograd")
    ours, _ = _five_pair((8, 16, 14, 14), 32, 2, np.float32)
    monkeypatch.setenv("NEURONA_CONV_ALGO", "im2col")
    ref, theirs = _five_pair((8, 16, 14, 14), 32, 2, np.float32)
    for name, a, b, t in zip(("output", "input grad", "filter grad"), ours, ref, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * np.abs(b).max(), err_msg=name)
        np.testing.assert_allclose(b, t, rtol=1e-4, atol=1e-5 * np.abs(t).max(), err_msg=name)


def test_winograd_5x5_strided_or_dilated_stays_on_im2col(monkeypatch):
    monkeypatch.setenv("NEURONA_CONV_ALGO", "winograd")
    calls = []
    real = kernels.winograd_conv
    monkeypatch.setattr(kernels, "winograd_conv", lambda *a: calls.append(1) or real(*a))
    for kw in (dict(stride=2, padding=2), dict(dilation=2, padding=4)):
        check_op([(1, 2, 7, 7), (2, 2, 5, 5)], lambda a, b, kw=kw: nr.conv2d(a, b, rounding="floor", **kw),
                 lambda a, b, kw=kw: TF.conv2d(a, b, **kw), dtypes=("float64",))
    assert calls == []


# == calibration ====================================================================================

@pytest.fixture
def fresh_calibration(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("NEURONA_CONV_CALIBRATION", raising=False)
    monkeypatch.delenv("NEURONA_CONV_ALGO", raising=False)
    monkeypatch.setattr(calibrate, "_rules", None)
    return tmp_path


def _write_entry(path, min_work, max_waste):
    import json
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({calibrate.machine_key(): {"min_work": min_work, "max_waste": max_waste}}))


def test_calibrated_rule_is_read_from_the_cache(fresh_calibration, monkeypatch):
    monkeypatch.setattr(calibrate, "measure", lambda: pytest.fail("the cache should have been read"))
    big = nr.ops.conv.make_geometry("t", (1, 16, 32, 32), 3, 1, 1, 1, "exact").ints
    fourteen = nr.ops.conv.make_geometry("t", (1, 16, 14, 14), 3, 1, 1, 1, "exact").ints
    _write_entry(calibrate.cache_path(), {"3": None, "5": None}, {"3": 1.15, "5": 1.15})
    assert not winograd.suits(64, 64, 64, big, 1, True)      # Winograd never won on this machine
    monkeypatch.setattr(calibrate, "_rules", None)
    _write_entry(calibrate.cache_path(), {"3": 1000, "5": 1000}, {"3": 1.35, "5": 1.15})
    assert winograd.suits(8, 16, 16, fourteen, 1, True)       # 14×14 allowed, 8·196·16 ≥ 1000
    assert not winograd.suits(8, 16, 16, fourteen, 1, False)  # still needs numba
    monkeypatch.setenv("NEURONA_CONV_CALIBRATION", "0")
    assert not winograd.suits(8, 16, 16, fourteen, 1, True)   # the constants: 8·196·16 < MIN_WORK
    assert winograd.suits(64, 16, 16, fourteen, 1, True)      # the constants: 31 % waste allowed
    thirteen = nr.ops.conv.make_geometry("t", (1, 16, 13, 13), 3, 1, 1, 1, "exact").ints
    assert not winograd.suits(64, 16, 16, thirteen, 1, True)  # 4×4 tiles on 13×13: 51 % waste
    assert calibrate.rules() is None


def test_calibration_measures_once_and_writes_the_cache(fresh_calibration, monkeypatch):
    monkeypatch.setattr(calibrate, "LADDER", ((4, 8, 8), (4, 8, 12)))
    monkeypatch.setattr(calibrate, "WASTE_PROBE", (4, 8, 6))
    monkeypatch.setattr(calibrate, "REPS", 1)
    entry = calibrate.rules()
    assert set(entry["min_work"]) == set(entry["max_waste"]) == {"3", "5"}
    assert all(v in (None, 4 * 8 * 8 * 8, 4 * 12 * 12 * 8) for v in entry["min_work"].values())
    assert all(v in (1.15, 1.35) for v in entry["max_waste"].values())
    assert len(entry["probes"]) == 6 and all(t > 0 for pair in entry["probes"].values() for t in pair)
    assert calibrate.cache_path().is_file()
    monkeypatch.setattr(calibrate, "_rules", None)
    monkeypatch.setattr(calibrate, "measure", lambda: pytest.fail("measured twice"))
    assert calibrate.rules()["min_work"] == entry["min_work"]


def test_calibration_survives_a_corrupt_cache(fresh_calibration, monkeypatch):
    calibrate.cache_path().parent.mkdir(parents=True)
    calibrate.cache_path().write_text("not json")
    monkeypatch.setattr(calibrate, "measure", lambda: {"min_work": {"3": 5, "5": None}, "max_waste": {"3": 1.15, "5": 1.15}})
    assert calibrate.rules()["min_work"]["3"] == 5
    assert "min_work" in __import__("json").loads(calibrate.cache_path().read_text())[calibrate.machine_key()]
