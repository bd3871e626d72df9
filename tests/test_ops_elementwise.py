"""Elementwise ops against PyTorch (forward, every input gradient, dtype), gradcheck and
gradgradcheck, over a table of shapes with broadcasting; hypothesis draws more broadcastable
shape pairs."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import neurona as nr
from oracle import away_from_zero, check_op, hvp_check, uniform

# (a.shape, b.shape): equal, scalar, row/column broadcast, both stretched, rank mismatch
BROADCAST = [((3, 4), (3, 4)), ((), (2, 3)), ((2, 3), ()), ((2, 3), (3,)), ((2, 1), (1, 3)),
             ((4, 1, 3), (2, 1)), ((1,), (2, 2, 2))]

BINARY = {
    "add": (nr.add, torch.add, uniform()),
    "sub": (nr.sub, torch.sub, uniform()),
    "mul": (nr.mul, torch.mul, uniform()),
    "div": (nr.div, torch.div, [uniform(), away_from_zero(0.5, 2.0)]),
    "pow": (nr.pow, torch.pow, [uniform(0.5, 2.0), uniform(-2.0, 2.0)]),
    "maximum": (nr.maximum, torch.maximum, uniform()),
    "minimum": (nr.minimum, torch.minimum, uniform()),
}


@pytest.mark.parametrize("shapes", BROADCAST, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary(name, shapes):
    nr_fn, torch_fn, gen = BINARY[name]
    check_op(shapes, nr_fn, torch_fn, gen=gen, gradgrad=shapes in BROADCAST[:4])


OPERATORS = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "**": lambda a, b: a ** b,
}


@pytest.mark.parametrize("op", OPERATORS)
def test_python_operators(op):
    f = OPERATORS[op]
    check_op([(2, 3), (3,)], f, f, gen=[uniform(0.5, 2.0), uniform(0.5, 2.0)], gradgrad=True)


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**"])
def test_python_number_operand_keeps_dtype(op):
    f = OPERATORS[op]
    check_op([(2, 3)], lambda a: f(a, 1.5), lambda a: f(a, 1.5), gen=uniform(0.5, 2.0), gradgrad=True)
    check_op([(2, 3)], lambda a: f(2.5, a), lambda a: f(2.5, a), gen=uniform(0.5, 2.0), gradgrad=True)


@pytest.mark.parametrize("p", [0, 1, 2, 3, -1, 0.5, -1.5, 2.5])
def test_pow_scalar_exponent(p):
    check_op([(3, 4)], lambda a: a ** p, lambda a: a ** p, gen=uniform(0.5, 2.0), gradgrad=True)


@pytest.mark.parametrize("p", [0, 1, 2])
def test_pow_integer_exponent_at_zero(p):
    """x**p at x = 0 has the finite derivative p·0^(p−1) (0^0 = 1 for p = 1), as in PyTorch."""
    check_op([(3,)], lambda a: a ** p, lambda a: a ** p, gen=lambda rng, s: np.array([0.0, 1.0, -2.0]),
             gradcheck=False)


UNARY = {
    "neg": (nr.neg, torch.neg, uniform()),
    "exp": (nr.exp, torch.exp, uniform()),
    "log": (nr.log, torch.log, uniform(0.2, 3.0)),
    "log1p": (nr.log1p, torch.log1p, uniform(-0.5, 3.0)),
    "sqrt": (nr.sqrt, torch.sqrt, uniform(0.2, 3.0)),
    "abs": (nr.abs, torch.abs, away_from_zero()),
}


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 1, 3)], ids=str)
@pytest.mark.parametrize("name", UNARY)
def test_unary(name, shape):
    nr_fn, torch_fn, gen = UNARY[name]
    check_op([shape], nr_fn, torch_fn, gen=gen, gradgrad=True)


def test_tensor_methods_match_functions():
    check_op([(2, 3)], lambda a: a.exp().log().sqrt().abs(), lambda a: a.exp().log().sqrt().abs(),
             gen=uniform(0.5, 2.0), gradgrad=True)
    check_op([(2, 3)], lambda a: -abs(a), lambda a: -abs(a), gen=away_from_zero())


@pytest.mark.parametrize("lo, hi", [(-0.5, 0.7), (None, 0.3), (-0.2, None)])
def test_clip(lo, hi):
    check_op([(4, 5)], lambda a: nr.clip(a, lo, hi), lambda a: torch.clamp(a, lo, hi), gradgrad=True)
    check_op([(4, 5)], lambda a: a.clip(lo, hi), lambda a: a.clamp(lo, hi))


def test_clip_gradient_passes_at_the_bounds():
    """At a == a_min or a == a_max the gradient passes, as torch.clamp does."""
    check_op([(3,)], lambda a: nr.clip(a, -1.0, 1.0), lambda a: torch.clamp(a, -1.0, 1.0),
             gen=lambda rng, s: np.array([-1.0, 0.0, 1.0]), gradcheck=False)


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), (3, 4)), ((3, 4), (), (4,))], ids=str)
def test_where(shapes):
    cond = np.random.default_rng(3).random(shapes[0]) > 0.5
    check_op(list(shapes[1:]), lambda a, b: nr.where(nr.tensor(cond), a, b),
             lambda a, b: torch.where(torch.tensor(cond), a, b), gradgrad=True)


def test_maximum_ties_split_the_gradient():
    """Documented decision: on a tie maximum/minimum send half the gradient to each input
    (PyTorch's rule)."""
    for nr_fn, torch_fn in [(nr.maximum, torch.maximum), (nr.minimum, torch.minimum)]:
        check_op([(3,), (3,)], nr_fn, torch_fn, gradcheck=False,
                 gen=[lambda rng, s: np.array([1.0, 2.0, 3.0]), lambda rng, s: np.array([1.0, 0.0, 5.0])])
    a, b = nr.tensor([2.0], requires_grad=True), nr.tensor([2.0], requires_grad=True)
    nr.maximum(a, b).sum().backward()
    assert a.grad.tolist() == b.grad.tolist() == [0.5]


COMPARISONS = {  # name: (function, torch function, operator)
    "less": (nr.less, torch.lt, lambda a, b: a < b),
    "less_equal": (nr.less_equal, torch.le, lambda a, b: a <= b),
    "greater": (nr.greater, torch.gt, lambda a, b: a > b),
    "greater_equal": (nr.greater_equal, torch.ge, lambda a, b: a >= b),
    "equal": (nr.equal, torch.eq, lambda a, b: a == b),
    "not_equal": (nr.not_equal, torch.ne, lambda a, b: a != b),
}


@pytest.mark.parametrize("name", COMPARISONS)
def test_comparisons_have_no_gradient(name):
    nr_fn, torch_fn, operator = COMPARISONS[name]
    gen = lambda rng, s: rng.integers(0, 3, s).astype(float)  # noqa: E731 - ties on purpose
    check_op([(4, 3), (3,)], nr_fn, torch_fn, gen=gen, grad=False, gradcheck=False)
    check_op([(4, 3), (3,)], operator, operator, gen=gen, grad=False, gradcheck=False)
    a = nr.tensor([1.0, 2.0], requires_grad=True)
    out = operator(a, 1.5)
    assert out.dtype == np.bool_ and not out.requires_grad


def test_cast_gradient_comes_back_in_the_source_dtype():
    x = nr.tensor([1.0, 2.0], dtype="float32", requires_grad=True)
    y = x.double() * nr.tensor([3.0, 4.0], dtype="float64")
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [3.0, 4.0]


@given(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_broadcasting_hypothesis(shapes):
    a_shape, b_shape = shapes.input_shapes
    for nr_fn, torch_fn in [(nr.mul, torch.mul), (nr.sub, torch.sub), (nr.maximum, torch.maximum)]:
        check_op([a_shape, b_shape], nr_fn, torch_fn, dtypes=("float64",), gradcheck=False)
    check_op([a_shape, b_shape], lambda a, b: a / (b * b + 1), lambda a, b: a / (b * b + 1), dtypes=("float64",))


def test_second_order_hessian_vector_product():
    f = lambda x: (x.exp() * x.sqrt() / (1 + x ** 2) - nr.log(x) * x).sum()  # noqa: E731
    ft = lambda x: (x.exp() * x.sqrt() / (1 + x ** 2) - torch.log(x) * x).sum()  # noqa: E731
    hvp_check(f, np.random.default_rng(0).uniform(0.5, 2.0, (3, 4)), ft)


def test_third_order_derivative():
    x = nr.tensor(0.7, dtype="float64", requires_grad=True)
    (g1,) = nr.grad(nr.exp(2 * x) * x ** 3, [x], create_graph=True)
    (g2,) = nr.grad(g1, [x], create_graph=True)
    (g3,) = nr.grad(g2, [x])
    xt = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    (t1,) = torch.autograd.grad(torch.exp(2 * xt) * xt ** 3, [xt], create_graph=True)
    (t2,) = torch.autograd.grad(t1, [xt], create_graph=True)
    (t3,) = torch.autograd.grad(t2, [xt])
    assert g3.item() == pytest.approx(t3.item(), rel=1e-12)
