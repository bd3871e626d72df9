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
]


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
