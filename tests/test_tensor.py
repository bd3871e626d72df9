"""The Tensor API: construction and dtypes, facts (shape, ndim, dtype, numpy, item, __array__),
creation functions and `manual_seed`, Python operators and NumPy-style indexing, detach,
in-place parameter updates under `no_grad`."""
import numpy as np
import pytest
import torch

import neurona as nr


def test_python_floats_become_float32_ints_int64_arrays_keep_their_dtype():
    assert nr.tensor(1.5).dtype == np.float32
    assert nr.tensor([[1.0, 2.0]]).dtype == np.float32
    assert nr.tensor([1, 2]).dtype == np.int64
    assert nr.tensor([True, False]).dtype == np.bool_
    assert nr.tensor(np.zeros(2, np.float64)).dtype == np.float64
    assert nr.tensor(np.zeros(2, np.int32)).dtype == np.int32
    assert nr.tensor([1, 2], dtype="float64").dtype == np.float64
    assert nr.tensor(1.5, dtype=nr.float16).dtype == np.float16
    assert nr.tensor(nr.tensor([1.0])).dtype == np.float32
    # the default dtypes are PyTorch's
    assert str(torch.tensor(1.5).dtype) == "torch.float32" and str(torch.tensor([1, 2]).dtype) == "torch.int64"


def test_facts():
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = nr.tensor(data, requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
    assert x.dtype == np.float32 and x.device == "cpu"
    assert isinstance(x.numpy(), np.ndarray)
    np.testing.assert_array_equal(x.numpy(), data)
    np.testing.assert_array_equal(np.asarray(x), data)
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert x.tolist() == data.tolist()
    assert nr.tensor([[2.5]]).item() == 2.5 and float(nr.tensor(2.5)) == 2.5 and int(nr.tensor(3)) == 3
    assert x.requires_grad and x.grad is None and x.is_leaf and x.grad_fn is None
    assert [row.tolist() for row in x] == data.tolist()


def test_repr():
    assert repr(nr.tensor([1.0, 2.0], requires_grad=True)) == "tensor([1., 2.], dtype=float32, requires_grad=True)"
    y = nr.tensor([1.0], requires_grad=True) * 2
    assert repr(y).endswith("grad_fn=Mul)")
    assert repr(nr.tensor([1, 2])) == "tensor([1, 2])"


def test_only_floating_tensors_require_grad():
    with pytest.raises(TypeError, match="only floating-point tensors can require grad, not int64"):
        nr.tensor([1, 2], requires_grad=True)


@pytest.mark.parametrize("fn", [nr.zeros, nr.ones, nr.rand, nr.randn])
def test_creation_shapes_dtypes(fn):
    assert fn(2, 3).shape == fn((2, 3)).shape == (2, 3)
    assert fn(2, 3).dtype == np.float32
    assert fn(4, dtype="float64").dtype == np.float64
    t = fn(2, requires_grad=True)
    assert t.requires_grad and t.is_leaf
    like = {nr.zeros: nr.zeros_like, nr.ones: nr.ones_like, nr.rand: nr.rand_like, nr.randn: nr.randn_like}[fn]
    src = nr.tensor(np.zeros((3, 1)))
    assert like(src).shape == (3, 1) and like(src).dtype == np.float64


def test_creation_values():
    assert nr.zeros(3).tolist() == [0.0] * 3 and nr.ones(2, 2).tolist() == [[1.0, 1.0]] * 2
    assert nr.full((2,), 7.0).tolist() == [7.0, 7.0] and nr.full(2, 3).dtype == np.float32
    assert nr.full_like(nr.zeros((1, 2)), 4.0).tolist() == [[4.0, 4.0]]
    assert nr.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert nr.arange(4).tolist() == [0, 1, 2, 3] and nr.arange(4).dtype == np.int64
    assert nr.arange(1, 7, 2).tolist() == [1, 3, 5]
    np.testing.assert_allclose(nr.arange(0.0, 1.0, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    assert nr.arange(0.0, 1.0, 0.25).dtype == np.float32
    r = nr.rand(1000).numpy()
    assert r.min() >= 0 and r.max() < 1 and abs(r.mean() - 0.5) < 0.05
    n = nr.randn(10000).numpy()
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05
    k = nr.randint(2, 5, (1000,))
    assert k.dtype == np.int64 and set(k.tolist()) == {2, 3, 4}


@pytest.mark.parametrize("make", [lambda: nr.rand(3, 4), lambda: nr.randn(5), lambda: nr.randint(0, 10, 6),
                                  lambda: nr.randn_like(nr.zeros((2, 2)))])
def test_manual_seed_reproducibility(make):
    nr.manual_seed(42)
    a, b = make().numpy(), make().numpy()
    nr.manual_seed(42)
    np.testing.assert_array_equal(make().numpy(), a)
    np.testing.assert_array_equal(make().numpy(), b)
    assert not np.array_equal(a, b)


A = np.arange(1.0, 7.0, dtype=np.float32).reshape(2, 3)
B_ = np.array([0.5, -1.0, 2.0], dtype=np.float32)
OPERATORS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "pow": lambda a, b: abs(a) ** b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "neg": lambda a, b: -a + b,
    "radd": lambda a, b: 2.0 + a, "rsub": lambda a, b: 2.0 - a, "rmul": lambda a, b: 2.0 * a,
    "rdiv": lambda a, b: 2.0 / a, "rpow": lambda a, b: 2.0 ** a, "matmul": lambda a, b: a @ b,
}


@pytest.mark.parametrize("name", OPERATORS)
def test_operators_work_as_on_numpy(name):
    f = OPERATORS[name]
    b = B_ if name != "matmul" else B_.reshape(3, 1)
    want = f(A, b)
    got = f(nr.tensor(A), nr.tensor(b))
    assert isinstance(got, nr.Tensor) and got.dtype == want.dtype
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    mixed = f(nr.tensor(A), b)  # a NumPy operand on the right works too
    np.testing.assert_allclose(mixed.numpy(), want, rtol=1e-6)


def test_numpy_array_on_the_left_gives_a_tensor():
    out = B_ * nr.tensor(A, requires_grad=True)
    assert isinstance(out, nr.Tensor) and out.requires_grad


KEYS = [0, -1, (1, 2), slice(None, None, -1), (Ellipsis, 1), (None, slice(1, None)), ([0, 1, 1],),
        (np.array([1, 0]), np.array([2, 2])), (slice(None), [2, 0]), A > 3, (np.array([True, False]),), (1, A[0] > 1)]


@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_indexing_like_numpy(key):
    x = nr.tensor(A)
    np.testing.assert_array_equal(x[key].numpy(), A[key])
    if isinstance(key, np.ndarray):
        np.testing.assert_array_equal(x[nr.tensor(key)].numpy(), A[key])


def test_setitem_and_detach():
    x = nr.zeros((2, 3))
    x[0, 1:] = 5.0
    x[1] = nr.tensor([1.0, 2.0, 3.0])
    x[x > 2] = -1.0
    assert x.tolist() == [[0, -1, -1], [1, 2, -1]]
    w = nr.ones(3, requires_grad=True)
    y = (w * 2).detach()
    assert not y.requires_grad and y.is_leaf and y.tolist() == [2.0] * 3


def test_inplace_sgd_step_under_no_grad():
    """The course's hand-written optimiser: p -= lr * p.grad; p.grad = None."""
    p = nr.tensor([1.0, -2.0], requires_grad=True)
    data_before = p.data
    for _ in range(2):
        loss = (p * p).sum()
        loss.backward()
        with nr.no_grad():
            p -= 0.25 * p.grad
        p.grad = None
    assert p.tolist() == [0.25, -0.5]
    assert p.requires_grad and p.is_leaf and p.data is data_before  # updated in place
    with nr.no_grad():
        p += 1.0
        p *= 2.0
        p /= 4.0
        p[0] = 0.0
    assert p.tolist() == [0.0, 0.25]


@pytest.mark.parametrize("update", [lambda p: p.__isub__(1.0), lambda p: p.__setitem__(0, 1.0)])
def test_inplace_update_while_recording_says_to_use_no_grad(update):
    p = nr.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"in-place update .* inside `with nr.no_grad\(\):`"):
        update(p)


def test_no_grad_records_nothing_and_enable_grad_restores():
    w = nr.ones(2, requires_grad=True)
    with nr.no_grad():
        y = w * 2
        assert not nr.is_grad_enabled()
        with nr.enable_grad():
            z = w * 2
    assert nr.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None

    @nr.no_grad()
    def infer(t):
        return t * 3

    assert not infer(w).requires_grad


def test_astype_and_conversion_methods():
    x = nr.tensor([1.5, 2.5], requires_grad=True)
    assert x.double().dtype == np.float64 and x.float().dtype == np.float32
    assert x.long().tolist() == [1, 2] and x.astype("float16").dtype == np.float16
    assert x.to(dtype="float64").dtype == np.float64 and x.cpu().device == "cpu"


ISSUE_OPS = """add sub mul div neg pow exp log sqrt abs maximum minimum clip where less less_equal greater
greater_equal equal not_equal sigmoid tanh relu leaky_relu prelu elu softplus softmax log_softmax maxout
sum mean var max min argmax argmin logsumexp reshape transpose broadcast_to squeeze expand_dims flatten
concatenate stack split pad index gather matmul dot conv2d max_pool2d avg_pool2d mse_loss quadratic_cost
binary_cross_entropy binary_cross_entropy_with_logits cross_entropy nll_loss huber_loss dropout
embedding""".split()


@pytest.mark.parametrize("name", ISSUE_OPS)
def test_every_op_is_in_nr_and_in_functional(name):
    assert callable(getattr(nr, name)) and getattr(nr.F, name) is getattr(nr, name)
    assert getattr(nr, name).__doc__, f"{name} has no docstring"


def test_integer_tensor_with_python_float_gives_float32_like_torch():
    import torch

    cases = [lambda m: m.arange(3) * 0.5, lambda m: m.tensor([1, 2]) / 2, lambda m: 2.0 / m.tensor([1, 2]),
             lambda m: m.tensor([3, 4]) - 1.5]
    for case in cases:
        assert str(case(nr).dtype) == str(case(torch).dtype).replace("torch.", "")
    assert (nr.tensor([1, 2]) * 2).dtype == nr.int64
