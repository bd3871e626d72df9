"""The backend's window kernels: numba and the plain-NumPy fallback give the same numbers, and
conv2d / max_pool2d / avg_pool2d through either match PyTorch forward and backward and pass
gradcheck and gradgradcheck."""
import numpy as np
import pytest
import torch

import neurona as nr
from neurona.backend import kernels
from neurona.backend.kernels import _xp

numba_kernels = pytest.importorskip("neurona.backend.kernels._numba")

# (N, C, H, W), kernel, stride, padding, dilation
GEOMETRIES = [
    ((2, 3, 7, 6), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((1, 2, 9, 8), (2, 3), (2, 1), (0, 1), (1, 1)),
    ((2, 1, 8, 9), (3, 2), (2, 3), (1, 0), (2, 1)),
    ((3, 4, 5, 5), (5, 5), (1, 1), (2, 2), (1, 1)),
    ((1, 2, 6, 6), (2, 2), (2, 2), (0, 0), (1, 1)),
    ((2, 2, 5, 7), (2, 2), (1, 2), (0, 0), (1, 1)),
    ((1, 3, 9, 9), (2, 2), (2, 2), (0, 0), (2, 2)),
    ((2, 2, 9, 7), (3, 3), (2, 2), (0, 0), (1, 1)),
]


def _geo(shape, k, s, p, d):
    return nr.ops.conv.make_geometry("test", shape, k, s, p, d, "floor").ints


@pytest.fixture(params=["numba", "numpy"])
def backend_mode(request, monkeypatch):
    monkeypatch.setenv("NEURONA_NO_NUMBA", "1" if request.param == "numpy" else "0")
    assert kernels.numba_active() == (request.param == "numba")
    return request.param


@pytest.mark.parametrize("shape,k,s,p,d", GEOMETRIES)
def test_numba_equals_fallback(shape, k, s, p, d):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    x[0, 0, 1, 1] = x[0, 0, 1, 2]  # a tie: both must route to the first maximum
    geo = _geo(shape, k, s, p, d)
    cols = _xp.im2col(x, geo)
    dcols = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(numba_kernels.col2im(dcols, *shape, *geo), _xp.col2im(dcols, shape, geo),
                               rtol=1e-12, atol=1e-12)
    out, arg = numba_kernels.max_pool(x, *geo)
    out_ref, arg_ref = _xp.max_pool(x, geo)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    out_k, arg_k = kernels.max_pool(x, geo)  # the dense fast path where the windows fit
    np.testing.assert_array_equal(out_k, out_ref)
    np.testing.assert_array_equal(arg_k, arg_ref)
    g = rng.standard_normal(out.shape)
    np.testing.assert_allclose(numba_kernels.max_pool_scatter(g, arg, *shape[2:], *geo),
                               _xp.max_pool_scatter(g, arg_ref, shape, geo), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(numba_kernels.max_pool_select(x, arg, *geo), _xp.max_pool_select(x, arg, geo))


@pytest.mark.parametrize("k,s", [(2, 2), (3, 2), (2, 1)])
def test_max_pool_ties_route_to_first(k, s):
    x = np.zeros((1, 2, 6, 6), np.float32)  # every window is one big tie
    geo = _geo(x.shape, (k, k), (s, s), (0, 0), (1, 1))
    for out, arg in (numba_kernels.max_pool(x, *geo), _xp.max_pool(x, geo), kernels.max_pool(x, geo)):
        assert (arg == 0).all() and (out == 0).all()


def test_max_pool_nan_propagates():
    x = np.zeros((1, 1, 2, 2), np.float32)
    x[0, 0, 1, 0] = np.nan
    geo = _geo(x.shape, (2, 2), (2, 2), (0, 0), (1, 1))
    for out, arg in (numba_kernels.max_pool(x, *geo), _xp.max_pool(x, geo), kernels.max_pool(x, geo)):
        assert np.isnan(out[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 2


CONV_CASES = [  # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 8, 7), (4, 3, 3, 3), 1, 1, 1, 1),
    ((2, 4, 9, 9), (6, 2, 3, 2), 2, (1, 0), 1, 2),
    ((1, 1, 10, 10), (3, 1, 5, 5), 1, 2, 1, 1),
    ((2, 2, 9, 9), (2, 2, 3, 3), 2, 2, 2, 1),
    ((2, 2, 7, 6), (4, 2, 3, 2), 1, (2, 1), 1, 1),  # C·K = 8: the direct kernels
]


@pytest.mark.parametrize("xs,ws,p", [((3, 1, 9, 8), (6, 1, 5, 5), 2), ((2, 2, 7, 6), (4, 2, 3, 2), (0, 1))])
def test_direct_conv_equals_im2col(monkeypatch, xs, ws, p):
    monkeypatch.setenv("NEURONA_NO_NUMBA", "0")  # the direct kernels exist only compiled
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    geo = nr.ops.conv.make_geometry("test", xs, ws[2:], 1, p, 1, "exact")
    assert kernels.direct_conv_suits(x, ws[0], geo.ints, 1)
    cols = _xp.im2col(x, geo.ints)
    y, _ = nr.ops.conv.conv_forward(x, w, geo, cols=cols)  # given cols: the GEMM path
    np.testing.assert_allclose(kernels.conv_direct(x, w, geo.ints), y, rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    dw = nr.ops.conv.conv_weight_grad(x, gy, geo, cols=cols)
    np.testing.assert_allclose(kernels.conv_weight_direct(x, gy, geo.ints), dw, rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES)
def test_conv2d_matches_torch(backend_mode, xs, ws, stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    nx, nw, nb = (nr.tensor(a, requires_grad=True) for a in (x, w, b))
    ny = nr.F.conv2d(nx, nw, nb, rounding="floor", **kw)
    ny.backward(nr.tensor(gy))
    np.testing.assert_allclose(ny.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for n, t in ((nx, tx), (nw, tw), (nb, tb)):
        np.testing.assert_allclose(n.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)
    fn = lambda a, c: nr.F.conv2d(a, c, rounding="floor", **kw)  # noqa: E731
    small = [nr.tensor(x[:1], requires_grad=True), nr.tensor(w, requires_grad=True)]
    assert nr.gradcheck(fn, small)
    assert nr.gradgradcheck(fn, small)


POOL_CASES = [((2, 3, 6, 6), 2, None, 0), ((1, 2, 7, 7), 3, 2, 1), ((2, 2, 5, 6), (2, 3), (1, 2), (1, 1))]


@pytest.mark.parametrize("xs,k,s,p", POOL_CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_matches_torch(backend_mode, kind, xs, k, s, p):
    rng = np.random.default_rng(2)
    x = rng.permutation(np.linspace(-2, 2, int(np.prod(xs)))).reshape(xs)  # no ties
    tfn = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
    nfn = nr.F.max_pool2d if kind == "max" else nr.F.avg_pool2d
    tx = torch.tensor(x, requires_grad=True)
    ty = tfn(tx, k, s, p)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    nx = nr.tensor(x, requires_grad=True)
    ny = nfn(nx, k, s, p, rounding="floor")
    ny.backward(nr.tensor(gy))
    np.testing.assert_allclose(ny.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    fn = lambda a: nfn(a, k, s, p, rounding="floor")  # noqa: E731
    assert nr.gradcheck(fn, [nr.tensor(x, requires_grad=True)])
    assert nr.gradgradcheck(fn, [nr.tensor(x, requires_grad=True)])


def test_freed_memory_is_reused():
    """With glibc tuned, a training-step-sized temporary reuses freed pages instead of faulting
    in new ones each time (the cost that made W2 steps ~40 % slower)."""
    import resource

    from neurona.backend.kernels import malloc

    x = nr.tensor(1.0, requires_grad=True)
    (x * 2).backward()  # the first backward pass applies the tuning
    if not malloc.applied:
        pytest.skip("not glibc, or NEURONA_MALLOC_TUNING=0")
    n = 3_000_000  # 12 MB of float32 each, three alive at once, as in a training step

    def step():
        a, b = np.ones(n, np.float32), np.ones(n, np.float32)
        return (a + b).sum()

    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    # untuned glibc trims the freed heap top every time: ~16,000 faults for these 10 steps
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 1000


def _malloc_applied_after(code, **env):
    import os
    import subprocess
    import sys

    code = f"import neurona as nr, neurona.backend.kernels.malloc as m\n{code}\nprint(m.applied)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, **env}).stdout.strip()


def test_malloc_tuning_waits_for_the_first_backward_pass():
    """Importing neurona, building and predicting change nothing process-wide; training does."""
    predict = "from neurona.layers import Dense\nDense(2)(nr.ones((1, 3)))"
    assert _malloc_applied_after(predict) == "False"
    train = "x = nr.tensor(1.0, requires_grad=True)\n(x * 3).backward()"
    assert _malloc_applied_after(train) in ("True", "False")  # False only off glibc
    if _malloc_applied_after(train) == "True":
        assert _malloc_applied_after(train, NEURONA_MALLOC_TUNING="0") == "False"


def test_float16_uses_the_numpy_kernels():
    """numba does not compile float16 arithmetic; those arrays take the NumPy path and still agree
    with the float32 result."""
    rng = np.random.default_rng(3)
    x32 = rng.permutation(np.linspace(-2, 2, 2 * 3 * 6 * 6)).reshape(2, 3, 6, 6).astype(np.float32)
    w32 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    outs = []
    for dtype in (np.float16, np.float32):
        x, w = nr.tensor(x32.astype(dtype), requires_grad=True), nr.tensor(w32.astype(dtype))
        y = nr.F.max_pool2d(nr.F.conv2d(x, w, padding=1), 2)
        y.sum().backward()
        assert y.dtype == dtype and x.grad.dtype == dtype
        outs.append((y.numpy().astype(np.float32), x.grad.numpy().astype(np.float32)))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=2e-2, atol=5e-2)
