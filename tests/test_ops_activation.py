"""Activations (course topic 4) against PyTorch, gradcheck and gradgradcheck."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neurona as nr
from neurona import functional as F
from oracle import away_from_zero, check_op, distinct, hvp_check, uniform

SHAPES = [(5,), (2, 3), (2, 3, 4)]

ACTIVATIONS = {
    "sigmoid": (F.sigmoid, torch.sigmoid, uniform(-4, 4)),
    "tanh": (F.tanh, torch.tanh, uniform(-3, 3)),
    "relu": (F.relu, TF.relu, away_from_zero()),
    "leaky_relu": (F.leaky_relu, TF.leaky_relu, away_from_zero()),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), away_from_zero()),
    "elu": (F.elu, TF.elu, away_from_zero()),
    "elu_0.5": (lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5), away_from_zero()),
    "softplus": (F.softplus, TF.softplus, uniform(-5, 5)),
    "softmax": (F.softmax, lambda x: torch.softmax(x, -1), uniform()),
    "softmax_axis0": (lambda x: F.softmax(x, axis=0), lambda x: torch.softmax(x, 0), uniform()),
    "log_softmax": (F.log_softmax, lambda x: torch.log_softmax(x, -1), uniform()),
    "log_softmax_axis0": (lambda x: F.log_softmax(x, axis=0), lambda x: torch.log_softmax(x, 0), uniform()),
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation(name, shape):
    nr_fn, torch_fn, gen = ACTIVATIONS[name]
    check_op([shape], nr_fn, torch_fn, gen=gen, gradgrad=True)


def test_tensor_methods():
    check_op([(2, 3)], lambda x: x.sigmoid() + x.tanh() + x.relu() + x.softmax(0) + x.log_softmax(),
             lambda x: x.sigmoid() + x.tanh() + x.relu() + x.softmax(0) + x.log_softmax(-1), gen=away_from_zero())


def test_leaky_relu_default_slope_is_001():
    assert F.leaky_relu(nr.tensor([-2.0, 3.0])).tolist() == pytest.approx([-0.02, 3.0])


KINKS = {"relu": (F.relu, TF.relu), "leaky_relu": (F.leaky_relu, TF.leaky_relu),
         "elu": (F.elu, TF.elu), "elu_0.5": (lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5)),
         "prelu": (lambda x: F.prelu(x, nr.tensor(0.25, dtype=x.dtype)), lambda x: TF.prelu(x, torch.tensor([0.25], dtype=x.dtype))),
         "abs": (nr.abs, torch.abs)}


@pytest.mark.parametrize("name", KINKS)
def test_kink_gradient_at_zero_matches_torch(name):
    """Documented decision: at 0, relu' = 0, leaky_relu' = slope, elu' = alpha, prelu' = alpha,
    abs' = 0, all as in PyTorch."""
    fn, torch_fn = KINKS[name]
    check_op([(3,)], fn, torch_fn, gen=lambda rng, s: np.array([-1.0, 0.0, 1.0]), gradcheck=False)


@pytest.mark.parametrize("x_shape, alpha_shape", [((4, 3), (3,)), ((4, 3), ()), ((2, 3), (1,))])
def test_prelu(x_shape, alpha_shape):
    """The slope is learnable: its gradient is checked too. torch's prelu wants one weight per
    channel (axis 1) or a single one."""
    check_op([x_shape, alpha_shape], F.prelu, lambda x, a: TF.prelu(x, a.reshape(-1)),
             gen=[away_from_zero(), uniform(0.05, 0.5)], gradgrad=True)


def test_prelu_per_channel_nchw():
    check_op([(2, 3, 2, 2), (3,)], lambda x, a: F.prelu(x, a.reshape(1, 3, 1, 1)), TF.prelu,
             gen=[away_from_zero(), uniform(0.05, 0.5)])


@pytest.mark.parametrize("pieces, axis", [(2, -1), (3, -1), (2, 1)])
def test_maxout(pieces, axis):
    shape = (2, 6, 2) if axis == 1 else (2, 3, 6)

    def ref(x):
        ax = axis % x.ndim
        return x.reshape(x.shape[:ax] + (x.shape[ax] // pieces, pieces) + x.shape[ax + 1:]).amax(ax + 1)

    check_op([shape], lambda x: F.maxout(x, pieces, axis), ref, gen=distinct(), gradgrad=True)


def test_maxout_needs_a_multiple_of_pieces():
    with pytest.raises(nr.ShapeError, match=r"maxout: .*length 5.*pieces=2"):
        F.maxout(nr.zeros((2, 5)), 2)


@pytest.mark.parametrize("fn, ref", [(F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)])
def test_softmax_large_logits_are_stable(fn, ref):
    x = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]])
    for dtype in ("float32", "float64"):
        out = fn(nr.tensor(x.astype(dtype)), axis=-1).numpy()
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, ref(torch.tensor(x.astype(dtype)), -1).numpy(), rtol=1e-6)


def test_sigmoid_and_softplus_are_stable_at_extremes():
    x = nr.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], requires_grad=True)
    s = F.sigmoid(x)
    np.testing.assert_allclose(s.numpy(), torch.sigmoid(torch.tensor(x.numpy())).numpy())
    sp = F.softplus(x)
    np.testing.assert_allclose(sp.numpy(), TF.softplus(torch.tensor(x.numpy())).numpy())
    (s + sp).sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))


def test_sigmoid_derivative_is_sigma_one_minus_sigma():
    x = nr.tensor(np.linspace(-5, 5, 11), dtype="float64", requires_grad=True)
    s = F.sigmoid(x)
    s.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), s.numpy() * (1 - s.numpy()), rtol=1e-12)


def test_softmax_hessian_vector_product():
    w = np.random.default_rng(1).standard_normal((3, 4))
    hvp_check(lambda x: (F.softmax(x) * nr.tensor(w)).sum() + F.log_softmax(x, 0).sum() * 0.3,
              np.random.default_rng(2).standard_normal((3, 4)),
              lambda x: (torch.softmax(x, -1) * torch.tensor(w)).sum() + torch.log_softmax(x, 0).sum() * 0.3)
