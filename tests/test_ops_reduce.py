"""Reductions against PyTorch over a table of shapes and axes (None, int, negative, tuple,
keepdims), gradcheck and gradgradcheck; tie-breaking rules pinned."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import neurona as nr
from oracle import check_op, distinct, hvp_check

CASES = [((2, 3, 4), None, False), ((2, 3, 4), 1, False), ((2, 3, 4), -1, True),
         ((2, 3, 4), (0, 2), False), ((2, 3, 4), (0, 2), True), ((5,), 0, False), ((), None, False)]


def _dim(axis, shape):
    return tuple(range(len(shape))) if axis is None else axis


@pytest.mark.parametrize("shape, axis, keepdims", CASES, ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "logsumexp"])
def test_smooth_reductions(name, shape, axis, keepdims):
    nr_fn = getattr(nr, name)
    torch_fn = {"sum": torch.sum, "mean": torch.mean, "logsumexp": torch.logsumexp}[name]
    check_op([shape], lambda x: nr_fn(x, axis, keepdims), lambda x: torch_fn(x, _dim(axis, shape), keepdims),
             gradgrad=True)


@pytest.mark.parametrize("shape, axis, keepdims", CASES[:-1], ids=str)
@pytest.mark.parametrize("ddof", [0, 1])
def test_var(shape, axis, keepdims, ddof):
    check_op([shape], lambda x: nr.var(x, axis, keepdims, ddof),
             lambda x: torch.var(x, _dim(axis, shape), correction=ddof, keepdim=keepdims), gradgrad=True)


@pytest.mark.parametrize("shape, axis, keepdims", CASES, ids=str)
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min(name, shape, axis, keepdims):
    nr_fn = getattr(nr, name)
    torch_fn = {"max": torch.amax, "min": torch.amin}[name]
    check_op([shape], lambda x: nr_fn(x, axis, keepdims), lambda x: torch_fn(x, _dim(axis, shape), keepdims),
             gen=distinct(), gradgrad=True)


def test_tensor_methods():
    f = lambda x: x.sum(0) + x.mean(axis=0) + x.max(0) + x.min(0, keepdims=True)[0] + x.var(0) + x.logsumexp(0)  # noqa: E731
    ft = lambda x: x.sum(0) + x.mean(0) + x.amax(0) + x.amin(0, keepdim=True)[0] + x.var(0, correction=0) + x.logsumexp(0)  # noqa: E731
    check_op([(3, 4)], f, ft, gen=distinct())


@pytest.mark.parametrize("nr_fn, torch_fn", [(nr.max, torch.amax), (nr.min, torch.amin)])
def test_max_ties_split_evenly(nr_fn, torch_fn):
    """Documented decision: tied maxima share the gradient evenly (torch.amax's rule), so the
    gradient that reaches the tied elements sums to the upstream gradient."""
    tied = lambda rng, s: np.array([[1.0, 3.0, 3.0, 3.0], [2.0, 2.0, -1.0, 0.0]])  # noqa: E731
    check_op([(2, 4)], lambda x: nr_fn(x, 1), lambda x: torch_fn(x, 1), gen=tied, gradcheck=False)
    check_op([(2, 4)], nr_fn, torch_fn, gen=tied, gradcheck=False)
    x = nr.tensor([3.0, 1.0, 3.0], requires_grad=True)
    nr.max(x).backward()
    assert x.grad.tolist() == [0.5, 0.0, 0.5]


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (1, True), (-1, False)])
def test_argmax_argmin(name, axis, keepdims):
    """Integer indices, no gradient; the first one on ties, as NumPy and PyTorch."""
    data = np.array([[1.0, 5.0, 5.0], [7.0, 7.0, 0.0], [-1.0, -1.0, -1.0]], dtype=np.float32)
    x = nr.tensor(data, requires_grad=True)
    out = getattr(nr, name)(x, axis, keepdims)
    ref = getattr(torch, name)(torch.tensor(data), axis, keepdims) if axis is not None else getattr(torch, name)(torch.tensor(data))
    assert out.dtype == np.int64 and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    np.testing.assert_array_equal(getattr(x, name)(axis, keepdims).numpy(), ref.numpy())


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # log(0) = −inf on purpose
def test_logsumexp_is_stable():
    x = np.array([[1000.0, 1000.0], [-1000.0, -1e5], [-np.inf, 0.0]])
    for dtype in ("float32", "float64"):
        out = nr.logsumexp(nr.tensor(x.astype(dtype)), axis=1).numpy()
        np.testing.assert_allclose(out, torch.logsumexp(torch.tensor(x.astype(dtype)), 1).numpy(), rtol=1e-6)
    all_neg_inf = nr.logsumexp(nr.tensor([-np.inf, -np.inf]))
    assert all_neg_inf.item() == -np.inf


def test_mean_var_float32_keep_dtype():
    x = nr.ones((3, 4))
    assert nr.mean(x).dtype == nr.var(x, 0).dtype == np.float32


def test_max_of_empty_tensor_is_an_error():
    with pytest.raises(ValueError, match="max: cannot reduce an empty tensor"):
        nr.max(nr.zeros((0, 3)))


def test_axis_out_of_range_names_the_op():
    with pytest.raises(nr.ShapeError, match="sum: axis 2 is out of range for a tensor with 2 dims"):
        nr.sum(nr.zeros((2, 3)), axis=2)


def test_reduction_hessian_vector_product():
    hvp_check(lambda x: nr.logsumexp(x, 1).sum() * nr.var(x) + nr.mean(x * x, 0).max(),
              np.random.default_rng(3).standard_normal((3, 4)),
              lambda x: torch.logsumexp(x, 1).sum() * torch.var(x, correction=0) + torch.mean(x * x, 0).amax())


@st.composite
def shape_and_axes(draw):
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    axes = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                          st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple)))
    return shape, axes, draw(st.booleans())


@given(shape_and_axes())
def test_reductions_hypothesis(case):
    shape, axis, keepdims = case
    dim = _dim(axis, shape)
    for nr_fn, torch_fn in [(nr.sum, torch.sum), (nr.mean, torch.mean), (nr.logsumexp, torch.logsumexp),
                            (nr.max, torch.amax)]:
        check_op([shape], lambda x: nr_fn(x, axis, keepdims), lambda x: torch_fn(x, dim, keepdims),
                 gen=distinct(), dtypes=("float64",))
    check_op([shape], lambda x: nr.var(x, axis, keepdims), lambda x: torch.var(x, dim, correction=0, keepdim=keepdims),
             dtypes=("float64",))


@pytest.mark.parametrize("fn", [nr.max, nr.min])
def test_max_without_grad_skips_the_tie_mask(fn):
    """Under no_grad (or on an input without requires_grad) max/min save no tie mask: the same
    values, no `share` array on the node; with grad the mask is there and ties still split."""
    from neurona.ops.reduce import Max

    x = np.array([[1.0, 3.0, 3.0], [2.0, -1.0, 0.5]], np.float32)
    seen = []
    forward = Max.forward

    def spy(self, *a, **k):
        out = forward(self, *a, **k)
        seen.append(hasattr(self, "share"))
        return out

    Max.forward = spy
    try:
        with nr.no_grad():
            a = fn(nr.tensor(x, requires_grad=True), axis=1)
        b = fn(nr.tensor(x), axis=1)
        t = nr.tensor(x, requires_grad=True)
        c = fn(t, axis=1)
        c.sum().backward()
    finally:
        Max.forward = forward
    assert seen == [False, False, True]
    want = x.max(axis=1) if fn is nr.max else x.min(axis=1)
    np.testing.assert_array_equal(a.numpy(), want)
    np.testing.assert_array_equal(b.numpy(), want)
    np.testing.assert_array_equal(c.numpy(), want)
    assert t.grad.numpy().sum() == pytest.approx(2.0)
