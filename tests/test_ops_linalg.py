"""matmul (batched, broadcast batch axes, 1-D operands promoted as in NumPy) and dot against
PyTorch, gradcheck, gradgradcheck and a Hessian-vector product."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import neurona as nr
from oracle import check_op, hvp_check

MATMUL_SHAPES = [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
                 ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)),
                 ((1, 1), (1, 1))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
    check_op(list(shapes), nr.matmul, torch.matmul, gradgrad=True)


def test_matmul_operator_and_method():
    check_op([(3, 4), (4, 2)], lambda a, b: a @ b + a.matmul(b), lambda a, b: a @ b + a.matmul(b))
    w = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)
    check_op([(3, 4)], lambda a: a @ w, lambda a: a @ torch.tensor(w), dtypes=("float32",))  # Tensor @ ndarray
    check_op([(2, 3)], lambda a: w @ a, lambda a: torch.tensor(w) @ a, dtypes=("float32",))  # ndarray @ Tensor


@pytest.mark.parametrize("shapes", [((5,), (5,)), ((3, 4), (4, 2)), ((4,), (4, 2))], ids=str)
def test_dot(shapes):
    ref = torch.dot if len(shapes[0]) == len(shapes[1]) == 1 else torch.matmul
    check_op(list(shapes), nr.dot, ref, gradgrad=True)
    check_op(list(shapes), lambda a, b: a.dot(b), ref)


@given(batch_a=st.lists(st.integers(1, 3), max_size=2), batch_b=st.lists(st.integers(1, 3), max_size=2),
       n=st.integers(1, 3), k=st.integers(1, 3), m=st.integers(1, 3))
def test_matmul_hypothesis_batch_broadcast(batch_a, batch_b, n, k, m):
    # make the batch axes broadcastable: where both have an axis, one of them is 1 or they agree
    lb = min(len(batch_a), len(batch_b))
    for i in range(1, lb + 1):
        if batch_a[-i] != batch_b[-i] and 1 not in (batch_a[-i], batch_b[-i]):
            batch_b[-i] = 1
    check_op([tuple(batch_a) + (n, k), tuple(batch_b) + (k, m)], nr.matmul, torch.matmul, dtypes=("float64",))


def test_matmul_float32_rounding_on_a_large_product():
    """float32 results stay float32 and agree with torch to float32 accuracy on a 64×256×32 GEMM."""
    check_op([(64, 256), (256, 32)], nr.matmul, torch.matmul, gradcheck=False,
             tol={"float32": dict(rtol=1e-4, atol=1e-4)})


def test_matmul_hessian_vector_product():
    """A two-layer product has a nonzero Hessian in the weights."""
    rng = np.random.default_rng(5)
    a, c = rng.standard_normal((3, 4)), rng.standard_normal((4, 3))
    hvp_check(lambda w: ((nr.tensor(a) @ w).tanh() @ w.T @ nr.tensor(c)).sum(), rng.standard_normal((4, 2)),
              lambda w: ((torch.tensor(a) @ w).tanh() @ w.T @ torch.tensor(c)).sum())
