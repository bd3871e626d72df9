"""F.batch_norm, the fused op: forward and backward against torch.nn.functional.batch_norm (float32,
float64; (N, C), NCHW, channels last), running statistics after several steps, inference mode,
gradcheck and gradgradcheck, the numba kernels against the array-module fallbacks, a large mean,
a traced (nr.jit) training step against eager mode, and the errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neurona as nr
from neurona import functional as F
from neurona.backend import kernels
from neurona.graph import jit
from oracle import check_op, hvp_check

SHAPES = [(8, 5), (4, 3, 5, 5), (3, 2, 4, 3, 2)]
TOL32 = {"float32": dict(rtol=1e-4, atol=1e-5)}


def _params(c, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, c), rng.uniform(-1.0, 1.0, c)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_training_matches_torch_with_gradcheck_and_gradgradcheck(shape):
    """Inputs x, γ and β, each compared (value and gradient) with torch in float32 and float64,
    then gradcheck (the fused backward) and gradgradcheck (the create_graph backward)."""
    c = shape[1]
    gamma, beta = _params(c)
    gens = [lambda rng, s: rng.standard_normal(s) * 2 + 1, lambda rng, s: gamma, lambda rng, s: beta]
    check_op([shape, (c,), (c,)], lambda x, g, b: F.batch_norm(x, g, b, eps=1e-3),
             lambda x, g, b: TF.batch_norm(x, None, None, g, b, training=True, eps=1e-3),
             gen=gens, gradgrad=True, tol=TOL32)


def test_without_gamma_and_beta_matches_torch():
    check_op([(6, 4, 3, 3)], lambda x: F.batch_norm(x),
             lambda x: TF.batch_norm(x, None, None, training=True), gradgrad=True, tol=TOL32)


def test_second_order_gradient_matches_torch_double_backward():
    x = np.random.default_rng(2).standard_normal((5, 3, 2, 2))
    hvp_check(lambda t: (F.batch_norm(t) ** 3).sum(),
              x, lambda t: (TF.batch_norm(t, None, None, training=True) ** 3).sum())


def test_create_graph_gives_the_fused_backward_first_order_gradient():
    rng = np.random.default_rng(3)
    x = nr.tensor(rng.standard_normal((6, 4, 5, 5)) * 3 + 2, requires_grad=True)
    gamma, beta = (nr.tensor(a, requires_grad=True) for a in _params(4))
    v = nr.tensor(rng.standard_normal(x.shape))
    fused = nr.grad((F.batch_norm(x, gamma, beta) * v).sum(), [x, gamma, beta])
    composite = nr.grad((F.batch_norm(x, gamma, beta) * v).sum(), [x, gamma, beta], create_graph=True)
    for a, b in zip(fused, composite):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(16, 5), (6, 3, 4, 4)], ids=str)
def test_running_statistics_after_three_steps_and_inference_match_torch(shape, dtype):
    rng = np.random.default_rng(4)
    c = shape[1]
    gamma, beta = (a.astype(dtype) for a in _params(c))
    rm, rv = nr.tensor(np.zeros(c, dtype)), nr.tensor(np.ones(c, dtype))
    rmt, rvt = torch.zeros(c, dtype=getattr(torch, dtype)), torch.ones(c, dtype=getattr(torch, dtype))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    for step in range(3):
        x = (rng.standard_normal(shape) * 3 + step).astype(dtype)
        y = F.batch_norm(nr.tensor(x), nr.tensor(gamma), nr.tensor(beta), rm, rv, momentum=0.2)
        yt = TF.batch_norm(torch.tensor(x), rmt, rvt, torch.tensor(gamma), torch.tensor(beta), training=True,
                           momentum=0.2)
        np.testing.assert_allclose(y.numpy(), yt.numpy(), **tol)
    np.testing.assert_allclose(rm.numpy(), rmt.numpy(), **tol)
    np.testing.assert_allclose(rv.numpy(), rvt.numpy(), **tol)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    y = F.batch_norm(nr.tensor(x), nr.tensor(gamma), nr.tensor(beta), rm, rv, training=False)
    yt = TF.batch_norm(torch.tensor(x), rmt, rvt, torch.tensor(gamma), torch.tensor(beta), training=False)
    np.testing.assert_allclose(y.numpy(), yt.numpy(), **tol)


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 5)], ids=str)
def test_inference_matches_torch_and_leaves_running_statistics_alone(shape):
    c = shape[1]
    rng = np.random.default_rng(5)
    mean, var = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    gamma, beta = _params(c)
    gens = [lambda r, s: r.standard_normal(s), lambda r, s: gamma, lambda r, s: beta]

    def ours(x, g, b):
        rm, rv = nr.tensor(mean.astype(x.dtype)), nr.tensor(var.astype(x.dtype))
        y = F.batch_norm(x, g, b, rm, rv, training=False)
        np.testing.assert_array_equal(rm.numpy(), mean.astype(x.dtype))
        return y

    def theirs(x, g, b):
        return TF.batch_norm(x, torch.tensor(mean, dtype=x.dtype), torch.tensor(var, dtype=x.dtype), g, b,
                             training=False)

    check_op([shape, (c,), (c,)], ours, theirs, gen=gens, gradgrad=True, tol=TOL32)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_channels_last_axis_matches_torch_on_the_transposed_input(dtype):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((4, 5, 5, 3)) * 2 + 1).astype(dtype)
    gamma, beta = (a.astype(dtype) for a in _params(3))
    v = rng.standard_normal(x.shape).astype(dtype)
    xn, gn, bn = (nr.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rm, rv = nr.tensor(np.zeros(3, dtype)), nr.tensor(np.ones(3, dtype))
    y = F.batch_norm(xn, gn, bn, rm, rv, axis=-1)
    (y * nr.tensor(v)).sum().backward()
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rmt, rvt = torch.zeros(3, dtype=xt.dtype), torch.ones(3, dtype=xt.dtype)
    yt = TF.batch_norm(xt.permute(0, 3, 1, 2), rmt, rvt, gt, bt, training=True).permute(0, 2, 3, 1)
    (yt * torch.tensor(v)).sum().backward()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    for ours, theirs in [(y, yt), (xn.grad, xt.grad), (gn.grad, gt.grad), (bn.grad, bt.grad), (rm, rmt), (rv, rvt)]:
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), **tol)


def test_non_contiguous_input():
    x = np.random.default_rng(7).standard_normal((5, 4, 6, 3))
    check_op([(5, 4, 6, 3)], lambda t: F.batch_norm(t.transpose(0, 3, 1, 2)),
             lambda t: TF.batch_norm(t.permute(0, 3, 1, 2), None, None, training=True),
             gen=lambda rng, s: x, tol=TOL32)


def _forward_backward(x, gamma, beta, g, training=True):
    xn, gn, bn = (nr.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rm, rv = nr.tensor(np.zeros_like(gamma)), nr.tensor(np.ones_like(gamma))
    if not training:
        rm, rv = rm + 0.5, rv * 2.0
    y = F.batch_norm(xn, gn, bn, rm, rv, training=training)
    y.backward(nr.tensor(g))
    return [y.numpy(), xn.grad.numpy(), gn.grad.numpy(), bn.grad.numpy(), rm.numpy(), rv.numpy()]


@pytest.mark.skipif(not kernels.numba_active(), reason="numba is not in use")
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(32, 6), (4, 3, 8, 8), (2, 5, 1, 1)], ids=str)
def test_numba_kernels_equal_the_array_module_fallbacks(shape, dtype, training, monkeypatch):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    gamma, beta = (a.astype(dtype) for a in _params(shape[1]))
    fast = _forward_backward(x, gamma, beta, g, training)
    monkeypatch.setenv("NEURONA_NO_NUMBA", "1")
    assert kernels._fast_bn(x) is None
    plain = _forward_backward(x, gamma, beta, g, training)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
    for name, a, b in zip(["y", "dx", "dgamma", "dbeta", "running_mean", "running_var"], fast, plain):
        np.testing.assert_allclose(a, b, **tol, err_msg=name)


def test_float16_runs_on_the_array_module_path_and_sums_in_float32():
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((64, 4, 4, 4)) + 8).astype(np.float16)
    y = F.batch_norm(nr.tensor(x))
    assert y.dtype == np.float16
    want = TF.batch_norm(torch.tensor(x, dtype=torch.float32), None, None, training=True).numpy()
    np.testing.assert_allclose(y.numpy().astype(np.float32), want, atol=2e-2)


@pytest.mark.parametrize("shape", [(64, 8, 32, 32), (4096, 8)], ids=str)
def test_variance_of_a_large_mean_is_accurate(shape):
    """Mean 1e3, standard deviation 1 in float32: E[x²] − E[x]² would lose every digit (ulp(1e6) is
    0.06); the shifted float64 sums keep the variance to float32 precision."""
    rng = np.random.default_rng(10)
    x = (rng.standard_normal(shape) + 1e3).astype(np.float32)
    axes = tuple(i for i in range(len(shape)) if i != 1)
    ref = x.astype(np.float64)
    rm, rv = nr.zeros(shape[1]), nr.zeros(shape[1])
    y = F.batch_norm(nr.tensor(x), running_mean=rm, running_var=rv, momentum=1.0, eps=0.0)
    m = x.size // shape[1]
    np.testing.assert_allclose(rv.numpy(), ref.var(axis=axes) * m / (m - 1), rtol=1e-6)
    np.testing.assert_allclose(rm.numpy(), ref.mean(axis=axes), rtol=1e-7)
    yref = (ref - ref.mean(axis=axes, keepdims=True)) / ref.std(axis=axes, keepdims=True)
    np.testing.assert_allclose(y.numpy(), yref, atol=1e-3)


def _bn_step(w, gamma, beta, rm, rv):
    def step(x, labels):
        h = F.batch_norm(F.conv2d(x, w, padding=1), gamma, beta, rm, rv, momentum=0.3)
        loss = F.cross_entropy(F.relu(h).mean(axis=(2, 3)), labels)
        loss.backward()
        with nr.no_grad():
            for p in (w, gamma, beta):
                p -= 0.1 * p.grad
                p.grad = None
        return loss
    return step


def _bn_weights(seed):
    rng = np.random.default_rng(seed)
    w = nr.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3, requires_grad=True)
    gamma, beta = (nr.tensor(a.astype(np.float32), requires_grad=True) for a in _params(4))
    return [w, gamma, beta, nr.zeros(4), nr.ones(4)]


def test_traced_training_step_gives_eager_weights_and_running_statistics():
    eager_w, traced_w = _bn_weights(11), _bn_weights(11)
    eager, traced = _bn_step(*eager_w), jit(_bn_step(*traced_w))
    rng = np.random.default_rng(12)
    for _ in range(4):
        x = nr.tensor(rng.standard_normal((8, 3, 6, 6)).astype(np.float32) * 2 + 1)
        labels = nr.tensor(rng.integers(0, 4, 8))
        np.testing.assert_allclose(traced(x, labels).item(), eager(x, labels).item(), rtol=1e-5)
    for a, b in zip(eager_w, traced_w):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
    assert traced.trace_count == 1 and not np.allclose(traced_w[3].numpy(), 0.0)
    ops = traced.graphs()[0].op_types()
    assert {"BatchNormStats", "BatchNormTrain", "BatchNormGradSums", "BatchNormGradInput"} <= set(ops)


def test_layer_uses_the_fused_op():
    from neurona.layers import BatchNormalization

    layer = BatchNormalization(momentum=0.9)
    y = layer(nr.randn(16, 3, 4, 4, requires_grad=True), training=True)
    assert y.grad_fn.name == "BatchNormTrain"
    assert layer(nr.randn(16, 3, 4, 4, requires_grad=True), training=False).grad_fn.name == "BatchNormInference"


def test_errors_name_the_op_and_the_shapes():
    x = nr.randn(8, 4, 3, 3)
    with pytest.raises(ValueError, match=r"batch_norm: gamma.shape \(3,\) must be \(4,\), the channels of "
                                         r"x.shape=\(8, 4, 3, 3\) along axis 1"):
        F.batch_norm(x, nr.ones(3))
    with pytest.raises(ValueError, match=r"batch_norm: running_var.shape \(4, 1\) must be \(4,\)"):
        F.batch_norm(x, running_mean=nr.zeros(4), running_var=nr.ones((4, 1)))
    with pytest.raises(ValueError, match=r"batch_norm: axis 4 must be a channel axis of x, got x.shape=\(8, 4, 3, 3\)"):
        F.batch_norm(x, axis=4)
    with pytest.raises(ValueError, match="batch_norm: axis 1 must be a channel axis of x, got x.shape=\\(8,\\)"):
        F.batch_norm(nr.randn(8))
    with pytest.raises(ValueError, match="training=False needs running_mean and running_var"):
        F.batch_norm(x, training=False)
    with pytest.raises(TypeError, match="batch_norm: x must be floating point, not int64"):
        F.batch_norm(nr.tensor(np.ones((4, 2), np.int64)))
    with pytest.raises(ValueError, match=r"batch_norm: no values to normalise, x.shape=\(0, 4\)"):
        F.batch_norm(nr.zeros((0, 4)))
