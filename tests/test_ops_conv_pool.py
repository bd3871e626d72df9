"""conv2d, max_pool2d and avg_pool2d (NCHW) through their public functions, against PyTorch:
stride, padding (int, pair, 'same', 'valid'), dilation, groups, bias, and the rounding modes
('exact' refuses a size that does not divide; 'floor' is torch's default, 'ceil' its ceil_mode).
gradcheck on tiny shapes, gradgradcheck and a Hessian-vector product for conv."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, strategies as st

import neurona as nr
from oracle import check_op, distinct, hvp_check

CONV_CASES = {  # name: (x shape, w shape, conv kwargs)
    "plain": ((2, 3, 5, 5), (4, 3, 3, 3), {}),
    "stride2_pad1": ((2, 2, 5, 5), (3, 2, 3, 3), dict(stride=2, padding=1)),
    "dilation2": ((1, 2, 7, 7), (2, 2, 3, 3), dict(dilation=2)),
    "dilation_stride_pad": ((1, 2, 7, 7), (2, 2, 3, 3), dict(dilation=2, stride=2, padding=2)),
    "groups2": ((2, 4, 4, 4), (6, 2, 3, 3), dict(groups=2, padding=1)),
    "depthwise": ((1, 3, 4, 4), (3, 1, 3, 3), dict(groups=3)),
    "same": ((1, 2, 5, 4), (3, 2, 3, 3), dict(padding="same")),
    "same_5x3_dilated": ((1, 2, 6, 5), (2, 2, 3, 3), dict(padding="same", dilation=2)),
    "valid": ((1, 2, 4, 4), (2, 2, 3, 3), dict(padding="valid")),
    "rect_kernel_pairs": ((1, 2, 5, 7), (2, 2, 2, 3), dict(stride=(1, 2), padding=(0, 1))),
    "one_by_one": ((2, 3, 3, 3), (5, 3, 1, 1), {}),
    "floor": ((1, 2, 6, 6), (2, 2, 3, 3), dict(stride=2, rounding="floor")),
}


def _torch_conv_kwargs(kw):
    return {k: v for k, v in kw.items() if k != "rounding"}


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("name", CONV_CASES)
def test_conv2d(name, bias):
    x_shape, w_shape, kw = CONV_CASES[name]
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
    gradgrad = bias and name in ("stride2_pad1", "groups2", "dilation2")
    check_op(shapes, lambda *a: nr.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **_torch_conv_kwargs(kw)),
             gradgrad=gradgrad, tol={"float32": dict(rtol=1e-4, atol=1e-5)})


def test_conv2d_bigger_than_gradcheck_sizes():
    """A LeNet-sized layer, float32 against torch only (central differences would be slow)."""
    check_op([(4, 6, 14, 14), (16, 6, 5, 5), (16,)], nr.conv2d, TF.conv2d, gradcheck=False,
             tol={"float32": dict(rtol=1e-4, atol=1e-4)})


def test_conv2d_functional_alias_and_exact_size_error():
    x, w = nr.zeros((1, 1, 6, 6)), nr.zeros((1, 1, 3, 3))
    assert nr.F.conv2d(x, w).shape == (1, 1, 4, 4)
    with pytest.raises(nr.ShapeError, match=r"conv2d: output height = \(6 − 3 \+ 2·0\)/2 \+ 1 = 2.50 is not an integer.*rounding='floor'"):
        nr.conv2d(x, w, stride=2)


def test_conv_hessian_vector_product():
    """Through conv → tanh → conv the Hessian in the filters is nonzero; compare with torch."""
    rng = np.random.default_rng(6)
    x, w2 = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))
    hvp_check(lambda w: nr.conv2d(nr.conv2d(nr.tensor(x), w, padding=1).tanh(), nr.tensor(w2)).sum(),
              rng.standard_normal((2, 2, 3, 3)),
              lambda w: TF.conv2d(TF.conv2d(torch.tensor(x), w, padding=1).tanh(), torch.tensor(w2)).sum())


def test_conv_input_hessian_vector_product():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((3, 2, 3, 3))
    hvp_check(lambda x: (nr.conv2d(x, nr.tensor(w), stride=2, padding=1) ** 2).sum(), rng.standard_normal((1, 2, 5, 5)),
              lambda x: (TF.conv2d(x, torch.tensor(w), stride=2, padding=1) ** 2).sum())


POOL_CASES = {  # name: (x shape, kernel, stride, padding, rounding)
    "k2": ((2, 3, 4, 4), 2, None, 0, "exact"),
    "k3_s1_p1": ((1, 2, 4, 4), 3, 1, 1, "exact"),
    "k3_s2_p1": ((1, 2, 5, 5), 3, 2, 1, "exact"),
    "rect": ((1, 2, 4, 6), (2, 3), (2, 3), 0, "exact"),
    "floor": ((1, 2, 5, 5), 2, 2, 0, "floor"),
    "overlap_floor": ((1, 1, 6, 6), 3, 2, 0, "floor"),
}


def _torch_pool(fn, kernel, stride, padding, rounding):
    return lambda x: fn(x, kernel, stride, padding, ceil_mode=rounding == "ceil")


@pytest.mark.parametrize("name", POOL_CASES)
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pool(op, name):
    shape, k, s, p, rounding = POOL_CASES[name]
    check_op([shape], lambda x: getattr(nr, op)(x, k, s, p, rounding=rounding),
             _torch_pool(getattr(TF, op), k, s, p, rounding), gen=distinct(), gradgrad=name in ("k2", "k3_s2_p1"))


@pytest.mark.parametrize("shape, k, s, p", [((1, 2, 5, 5), 2, 2, 0), ((1, 1, 6, 6), 3, 2, 0), ((1, 1, 7, 7), 3, 2, 1)])
def test_max_pool_ceil(shape, k, s, p):
    check_op([shape], lambda x: nr.max_pool2d(x, k, s, p, rounding="ceil"),
             _torch_pool(TF.max_pool2d, k, s, p, "ceil"), gen=distinct())


@pytest.mark.parametrize("shape, k, s, p", [((1, 1, 5, 5), 2, 2, 1), ((1, 1, 5, 5), 3, 3, 1)])
def test_max_pool_ceil_last_window_in_padding(shape, k, s, p):
    out = nr.max_pool2d(nr.zeros(shape), k, s, p, rounding="ceil")
    assert out.shape == tuple(TF.max_pool2d(torch.zeros(shape), k, s, p, ceil_mode=True).shape)


def test_max_pool_ties_go_to_the_first_maximum():
    """Documented decision: a window with tied maxima sends its whole gradient to the first
    (row-major) of them, like PyTorch; e.g. a constant input gets one gradient per window."""
    x = nr.ones((1, 1, 4, 4), requires_grad=True)
    nr.max_pool2d(x, 2).sum().backward()
    xt = torch.ones((1, 1, 4, 4), requires_grad=True)
    TF.max_pool2d(xt, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())
    assert x.grad.numpy()[0, 0].tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


def test_max_pool_overlapping_windows_accumulate():
    """With stride < kernel one element can be the maximum of several windows."""
    data = np.zeros((1, 1, 3, 3))
    data[0, 0, 1, 1] = 5.0
    check_op([(1, 1, 3, 3)], lambda x: nr.max_pool2d(x, 2, 1), lambda x: TF.max_pool2d(x, 2, 1),
             gen=lambda rng, s: data + rng.uniform(0, 1, s))


def test_pool_errors():
    with pytest.raises(nr.ShapeError, match=r"max_pool2d: x must be \(N, C, H, W\), got shape \(4, 4\)"):
        nr.max_pool2d(nr.zeros((4, 4)), 2)
    with pytest.raises(nr.ShapeError, match=r"max_pool2d: output width = \(5 − 2 \+ 2·0\)/2 \+ 1 = 2.50"):
        nr.max_pool2d(nr.zeros((1, 1, 4, 5)), 2)
    with pytest.raises(ValueError, match="avg_pool2d: padding"):
        nr.avg_pool2d(nr.zeros((1, 1, 4, 4)), 2, padding=2)


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    c, k = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 6))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 6))
    return (draw(st.integers(1, 2)), c, h, w), (k, c // groups, kh, kw), dict(
        stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)


@given(conv_case(), st.booleans())
def test_conv2d_hypothesis(case, bias):
    """Random geometry in floor mode (torch's only mode) against torch, with gradcheck."""
    x_shape, w_shape, kw = case
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
    check_op(shapes, lambda *a: nr.conv2d(*a, **kw, rounding="floor"), lambda *a: TF.conv2d(*a, **kw),
             dtypes=("float64",))


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    h, w = draw(st.integers(kh, 6)), draw(st.integers(kw, 6))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w), (kh, kw), stride, padding


@given(pool_case())
def test_pool_hypothesis(case):
    shape, k, s, p = case
    for op in ("max_pool2d", "avg_pool2d"):
        check_op([shape], lambda x: getattr(nr, op)(x, k, s, p, rounding="floor"),
                 lambda x: getattr(TF, op)(x, k, s, p), gen=distinct(), dtypes=("float64",))
