"""Regularisers (values and gradients against torch autograd; kernels only) and constraints
(against torch.renorm and the formulas)."""
import numpy as np
import pytest
import torch

import neurona as nr
from neurona import constraints, regularizers
from neurona.layers import Dense
from neurona.optim import SGD


def _w():
    return np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)


@pytest.mark.parametrize("reg,formula", [
    (regularizers.L1(0.01), lambda w: 0.01 * w.abs().sum()),
    (regularizers.L2(0.02), lambda w: 0.02 * (w ** 2).sum()),
    (regularizers.L1L2(l1=0.003, l2=0.04), lambda w: 0.003 * w.abs().sum() + 0.04 * (w ** 2).sum()),
    (regularizers.l1_l2(), lambda w: 0.01 * w.abs().sum() + 0.01 * (w ** 2).sum()),
])
def test_penalty_and_gradient_match_torch(reg, formula):
    w = nr.tensor(_w(), requires_grad=True)
    tw = torch.tensor(_w(), requires_grad=True)
    value, t_value = reg(w), formula(tw)
    assert value.item() == pytest.approx(t_value.item(), rel=1e-5)
    value.backward()
    t_value.backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_l2_gradient_is_weight_decay():
    w = nr.tensor(_w(), requires_grad=True)
    regularizers.L2(0.5)(w).backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * 0.5 * _w(), rtol=1e-6)


def test_zero_factors_give_zero():
    w = nr.tensor(_w(), requires_grad=True)
    assert regularizers.L1L2()(w).item() == 0.0


def test_dense_penalises_kernel_only_by_default():
    layer = Dense(3, kernel_regularizer="l2")
    layer.build((None, 5))
    assert len(layer.losses) == 1
    expected = 0.01 * float((layer.kernel.numpy() ** 2).sum())
    assert layer.losses[0].item() == pytest.approx(expected, rel=1e-5)
    assert layer.get_config()["bias_regularizer"] is None


def test_regularizer_loss_shrinks_weights_in_training():
    layer = Dense(3, kernel_regularizer=regularizers.L2(0.1), input_dim=4)
    layer(nr.zeros((1, 4)))
    before = float(np.abs(layer.kernel.numpy()).sum())
    opt = SGD(layer.trainable_weights, lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        sum(layer.losses).backward()
        opt.step()
    np.testing.assert_allclose(np.abs(layer.kernel.numpy()).sum(), before * 0.9 ** 3, rtol=1e-5)


@pytest.mark.parametrize("name", ["l1", "l2", "l1_l2"])
def test_regularizer_config_round_trip(name):
    reg = regularizers.get(name)
    again = regularizers.get(regularizers.serialize(reg))
    assert type(again) is type(reg) and again.get_config() == reg.get_config()


# -- constraints ----------------------------------------------------------------------------
def test_max_norm_matches_torch_renorm():
    w = _w() * 3
    got = constraints.MaxNorm(2.0)(nr.tensor(w)).numpy()
    # each unit's incoming weights are a column of the (fan_in, units) kernel: torch dim=1
    want = torch.renorm(torch.tensor(w), p=2, dim=1, maxnorm=2.0).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert (np.linalg.norm(got, axis=0) <= 2.0 + 1e-5).all()


def test_max_norm_on_conv_kernel_axes():
    w = np.random.default_rng(1).standard_normal((4, 3, 2, 2)).astype(np.float32) * 2
    got = constraints.MaxNorm(1.0, axis=(1, 2, 3))(nr.tensor(w)).numpy()
    want = torch.renorm(torch.tensor(w), p=2, dim=0, maxnorm=1.0).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_non_neg_and_unit_norm():
    w = _w()
    np.testing.assert_array_equal(constraints.NonNeg()(nr.tensor(w)).numpy(), np.maximum(w, 0))
    unit = constraints.UnitNorm()(nr.tensor(w)).numpy()
    np.testing.assert_allclose(np.linalg.norm(unit, axis=0), 1.0, rtol=1e-5)


def test_layer_applies_constraints_after_update():
    layer = Dense(3, kernel_constraint="max_norm", bias_constraint=constraints.NonNeg())
    layer.build((None, 5))
    with nr.no_grad():
        layer.kernel.data[...] = 10.0
        layer.bias.data[...] = -1.0
    layer.apply_constraints()
    np.testing.assert_allclose(np.linalg.norm(layer.kernel.numpy(), axis=0), 2.0, rtol=1e-5)
    assert (layer.bias.numpy() == 0).all()


@pytest.mark.parametrize("c", [constraints.MaxNorm(3.0, axis=(1, 2, 3)), constraints.NonNeg(), constraints.UnitNorm(1)])
def test_constraint_config_round_trip(c):
    again = constraints.get(constraints.serialize(c))
    assert type(again) is type(c) and again.get_config() == c.get_config()
