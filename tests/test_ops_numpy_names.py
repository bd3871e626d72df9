"""The ops a NumPy/PyTorch user reaches for (std, norm, prod, cumsum, einsum, sign, floor, round,
linspace, one_hot, unsqueeze) against PyTorch 2.13 over tables of shapes and arguments, with
gradcheck / gradgradcheck in float64, the gradient rules at zeros pinned, the error messages,
and graph mode tracing the zero-gradient elementwise ops."""
import numpy as np
import pytest
import torch

import neurona as nr
import neurona.functional as F
from oracle import check_op, distinct

AXES = [((2, 3, 4), None, False), ((2, 3, 4), 1, False), ((2, 3, 4), -1, True),
        ((2, 3, 4), (0, 2), False), ((2, 3, 4), (0, 2), True), ((5,), 0, False)]


def _dim(axis, shape):
    return tuple(range(len(shape))) if axis is None else axis


@pytest.mark.parametrize("shape, axis, keepdims", AXES, ids=str)
@pytest.mark.parametrize("ddof", [0, 1])
def test_std(shape, axis, keepdims, ddof):
    check_op([shape], lambda x: nr.std(x, axis, keepdims, ddof),
             lambda x: torch.std(x, _dim(axis, shape), correction=ddof, keepdim=keepdims), gradgrad=True)


def test_std_default_is_numpys_ddof0():
    x = np.random.default_rng(0).standard_normal((3, 5))
    np.testing.assert_allclose(nr.std(nr.tensor(x)).numpy(), np.std(x), rtol=1e-6)
    np.testing.assert_allclose(nr.tensor(x).std(1, ddof=1).numpy(), np.std(x, 1, ddof=1), rtol=1e-6)


NORMS = [(None, None, False), (2, 1, False), (2, -1, True), (None, (0, 2), False), (1, 1, False),
         (1, -1, True), (float("inf"), 2, False), (float("-inf"), 0, True)]


@pytest.mark.parametrize("ord, axis, keepdims", NORMS, ids=str)
def test_vector_norm(ord, axis, keepdims):
    shape = (2, 3, 4)
    check_op([shape], lambda x: nr.norm(x, ord, axis, keepdims),
             lambda x: torch.linalg.vector_norm(x, 2 if ord is None else ord, _dim(axis, shape), keepdims),
             gen=_distinct_abs, gradgrad=ord in (None, 2))


def _distinct_abs(rng, shape):  # |x| distinct: inf/-inf norms have no ties to blur
    return distinct(0.1, 2.0)(rng, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize("axis", [None, (0, 1), (-1, -3)], ids=str)
def test_frobenius_norm(axis):
    shape = (3, 4) if axis is None else (2, 3, 4)
    dim = (-2, -1) if axis is None else axis
    check_op([shape], lambda x: nr.norm(x, "fro", axis), lambda x: torch.linalg.matrix_norm(x, "fro", dim),
             gradgrad=True)


def test_norm_gradient_at_zero_is_zero_as_pytorch():
    data = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 0.0]])
    for kw, tkw in [({}, {}), (dict(axis=1), dict(dim=1)), (dict(ord=1, axis=1), dict(ord=1, dim=1))]:
        x = nr.tensor(data, requires_grad=True)
        xt = torch.tensor(data, requires_grad=True)
        (nr.norm(x, **kw) * 1.0).sum().backward()
        torch.linalg.vector_norm(xt, **tkw).sum().backward()
        assert np.isfinite(x.grad.numpy()).all()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), atol=1e-12)
    x = nr.zeros(4, dtype="float64", requires_grad=True)
    nr.norm(x).backward()
    assert x.grad.tolist() == [0.0] * 4


@pytest.mark.parametrize("shape, axis, keepdims", [((2, 3, 4), None, False), ((2, 3, 4), 1, False),
                                                   ((2, 3, 4), -1, True), ((5,), 0, False)], ids=str)
def test_prod(shape, axis, keepdims):
    ref = (lambda x: torch.prod(x)) if axis is None else (lambda x: torch.prod(x, axis, keepdim=keepdims))
    check_op([shape], lambda x: nr.prod(x, axis, keepdims), ref, gradgrad=True)


def _with_zeros(rng, shape):
    x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    x[0, 1] = 0.0             # row 0: one zero
    x[1, 0] = x[1, 2] = 0.0   # row 1: two zeros; row 2: none
    return x


def test_prod_with_zeros_has_pytorchs_gradient():
    check_op([(3, 4)], lambda x: nr.prod(x, 1), lambda x: torch.prod(x, 1), gen=_with_zeros, gradgrad=True)
    check_op([(3, 4)], lambda x: nr.prod(x[:1]), lambda x: torch.prod(x[:1]), gen=_with_zeros, gradgrad=True)
    x = nr.tensor([[2.0, 0.0, 4.0], [0.0, 0.0, 5.0]], requires_grad=True)
    nr.prod(x, 1).sum().backward()
    assert x.grad.tolist() == [[0.0, 8.0, 0.0], [0.0, 0.0, 0.0]]


def test_prod_over_several_axes():
    check_op([(2, 3, 4)], lambda x: nr.prod(x, (0, 2), True),
             lambda x: torch.prod(torch.prod(x, 2, keepdim=True), 0, keepdim=True), gen=_with_zeros_3d,
             gradgrad=True)


def _with_zeros_3d(rng, shape):
    x = rng.uniform(0.5, 1.5, shape)
    x[0, 1, 2] = 0.0
    return x


@pytest.mark.parametrize("shape, axis", [((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1), ((5,), 0),
                                         ((2, 3), None)], ids=str)
def test_cumsum(shape, axis):
    ref = (lambda x: torch.cumsum(x.flatten(), 0)) if axis is None else (lambda x: torch.cumsum(x, axis))
    check_op([shape], lambda x: nr.cumsum(x, axis), ref, gradgrad=True)


EINSUMS = [("ij,jk->ik", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]), ("i,i->", [(4,), (4,)]),
           ("ij->j", [(3, 4)]), ("ij->ji", [(3, 4)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
           ("ij,kl->ijkl", [(2, 3), (2, 2)]), ("ij,k->jk", [(2, 3), (4,)]), ("ij,jk", [(2, 3), (3, 4)]),
           ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 2, 4)])]


@pytest.mark.parametrize("subs, shapes", EINSUMS, ids=str)
def test_einsum(subs, shapes):
    check_op(shapes, lambda *xs: nr.einsum(subs, *xs), lambda *xs: torch.einsum(subs, *xs), gradgrad=True)


def test_einsum_gradient_of_one_operand_only():
    a = nr.tensor(np.ones((2, 3)), requires_grad=True)
    b = nr.tensor(np.arange(12.0).reshape(3, 4))
    nr.einsum("ij,jk->ik", a, b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.ones((2, 4)) @ np.arange(12.0).reshape(3, 4).T)
    assert b.grad is None


ROUNDING = [("sign", nr.sign, torch.sign), ("floor", nr.floor, torch.floor), ("round", nr.round, torch.round)]


def _halves(rng, shape):
    return rng.integers(-6, 7, shape) / 2.0 + rng.choice([0.0, 0.0, 0.3], shape)


@pytest.mark.parametrize("name, nr_fn, torch_fn", ROUNDING, ids=[r[0] for r in ROUNDING])
def test_rounding_forward_and_zero_gradient(name, nr_fn, torch_fn):
    check_op([(3, 5)], nr_fn, torch_fn, gen=_halves, grad=False, gradcheck=False)
    # a zero gradient: x * f(x) differentiates as f(x), as in PyTorch
    check_op([(3, 5)], lambda x: x * nr_fn(x), lambda x: x * torch_fn(x), gen=_halves, gradcheck=False)
    x = nr.tensor([0.5, -1.5], requires_grad=True)
    assert not nr_fn(x).requires_grad


def test_round_decimals_and_half_to_even():
    assert nr.round(nr.tensor([0.5, 1.5, 2.5, -0.5])).tolist() == [0.0, 2.0, 2.0, -0.0]
    check_op([(3, 4)], lambda x: nr.round(x, 1), lambda x: torch.round(x, decimals=1), grad=False, gradcheck=False)


def test_rounding_tensor_methods():
    x = nr.tensor([-1.7, 0.0, 2.5])
    assert x.sign().tolist() == [-1.0, 0.0, 1.0]
    assert x.floor().tolist() == [-2.0, 0.0, 2.0]
    assert x.round().tolist() == [-2.0, 0.0, 2.0]


def test_rounding_ops_trace_and_replay_under_jit():
    f = nr.jit(lambda x: (nr.sign(x) + 2.0 * nr.floor(x) + nr.round(x)) * x + x.round(1))
    eager = lambda x: (nr.sign(x) + 2.0 * nr.floor(x) + nr.round(x)) * x + x.round(1)  # noqa: E731
    rng = np.random.default_rng(0)
    for _ in range(3):  # the first call traces, the next ones replay
        x = nr.tensor(_halves(rng, (4, 5)).astype("float32"))
        np.testing.assert_array_equal(f(x).numpy(), eager(x).numpy())
    assert "Fused" in f.graphs()[-1].op_types()


@pytest.mark.parametrize("args, kw", [((0, 1, 5), {}), ((-2.0, 3.0, 7), {}), ((1, 0, 4), {}), ((0, 1, 1), {}),
                                      ((0, 1, 0), {})], ids=str)
def test_linspace(args, kw):
    got = nr.linspace(*args, **kw)
    want = torch.linspace(*args)
    assert got.dtype == np.float32 and got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)


def test_linspace_dtype_endpoint_and_grad():
    x = nr.linspace(0, 1, 4, endpoint=False, dtype="float64", requires_grad=True)
    assert x.dtype == np.float64 and x.requires_grad and x.tolist() == [0.0, 0.25, 0.5, 0.75]
    with pytest.raises(ValueError, match="linspace: num must be >= 0, got -1"):
        nr.linspace(0, 1, -1)


def test_one_hot():
    ids = np.array([[0, 3], [2, 1]])
    got = F.one_hot(nr.tensor(ids), 4)
    want = torch.nn.functional.one_hot(torch.tensor(ids), 4).float()
    assert got.dtype == np.float32 and got.shape == (2, 2, 4) and not got.requires_grad
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert nr.one_hot(nr.tensor([1]), 2, dtype="float64").dtype == np.float64


def test_one_hot_errors():
    with pytest.raises(IndexError, match=r"one_hot: ids must lie in \[0, 3\); got \[3, -1\]"):
        nr.one_hot(nr.tensor([0, 3, -1]), 3)
    with pytest.raises(TypeError, match="one_hot: ids must be integers, got dtype float32"):
        nr.one_hot(nr.tensor([0.0, 1.0]), 3)


@pytest.mark.parametrize("axis", [0, 1, -1, 2])
def test_unsqueeze(axis):
    check_op([(2, 3)], lambda x: nr.unsqueeze(x, axis), lambda x: torch.unsqueeze(x, axis))
    check_op([(2, 3)], lambda x: x.unsqueeze(axis), lambda x: x.unsqueeze(axis))


def test_tensor_methods():
    f = lambda x: x.std(0) + x.prod(0) + x.cumsum(0)[-1] + x.norm(axis=0) + x.norm(1, 0)  # noqa: E731
    ft = lambda x: (x.std(0, correction=0) + x.prod(0) + x.cumsum(0)[-1] + torch.linalg.vector_norm(x, dim=0)  # noqa: E731
                    + torch.linalg.vector_norm(x, 1, dim=0))
    check_op([(3, 4)], f, ft)


def test_errors_name_the_op_and_operands():
    x = nr.ones((2, 3))
    with pytest.raises(nr.ShapeError, match="einsum: operand 1 has shape \\(2, 3\\), subscripts 'jkl'"):
        nr.einsum("ij,jkl->ik", x, x)
    with pytest.raises(nr.ShapeError, match="einsum: index 'j' is 3 in one operand and 2 in operand 1"):
        nr.einsum("ij,jk->ik", x, x)
    with pytest.raises(nr.ShapeError, match="einsum: 'ij,jk->ik' names 2 operands, 1 given"):
        nr.einsum("ij,jk->ik", x)
    with pytest.raises(nr.ShapeError, match="one distinct index per axis"):
        nr.einsum("ii->", nr.ones((2, 2)))
    with pytest.raises(ValueError, match="einsum: '...' is not supported"):
        nr.einsum("...ij->...ji", x)
    with pytest.raises(TypeError, match="einsum: operands have dtypes"):
        nr.einsum("ij,jk->ik", x, nr.ones((3, 2), dtype="float64"))
    with pytest.raises(nr.ShapeError, match="prod: axis 2 is out of range for a tensor with 2 dims"):
        nr.prod(x, 2)
    with pytest.raises(nr.ShapeError, match="cumsum: axis -3 is out of range"):
        nr.cumsum(x, -3)
    with pytest.raises(nr.ShapeError, match="std: axis 5"):
        nr.std(x, 5)
    with pytest.raises(ValueError, match=r"norm: ord=1 over axes \(0, 1\) would be a matrix norm"):
        nr.norm(x, 1)
    with pytest.raises(ValueError, match=r"norm: ord=2 over axes \(0, 1\) would be a matrix norm"):
        nr.norm(x, 2, (0, 1))
    with pytest.raises(ValueError, match=r"norm: ord=3 is not supported"):
        nr.norm(x, 3)
    with pytest.raises(nr.ShapeError, match=r"norm: ord='fro' needs two axes, got axis=0"):
        nr.norm(x, "fro", 0)
