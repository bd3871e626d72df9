"""Initialisers: their statistics against the formulas, fans, seeding, the zero-kernel warning,
names and configs."""
import math
import warnings

import numpy as np
import pytest

import neurona as nr
from neurona import initializers
from neurona.layers import Dense

SHAPE = (400, 300)
FAN_IN, FAN_OUT = SHAPE


def _draw(name):
    return initializers.get(name)(SHAPE, "float32")


@pytest.mark.parametrize("name,std", [
    ("random_normal", 0.01),
    ("glorot_normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("xavier_normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("glorot_uniform", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("xavier_uniform", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("he_normal", math.sqrt(2 / FAN_IN)),
    ("he_uniform", math.sqrt(2 / FAN_IN)),
    ("lecun_normal", math.sqrt(1 / FAN_IN)),
])
def test_standard_deviation_matches_formula(name, std):
    w = _draw(name)
    assert w.shape == SHAPE and w.dtype == np.float32
    assert abs(float(w.mean())) < 0.02 * std * 10
    assert float(w.std()) == pytest.approx(std, rel=0.02)


@pytest.mark.parametrize("name,limit", [("glorot_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
                                        ("he_uniform", math.sqrt(6 / FAN_IN)),
                                        ("random_uniform", 0.05)])
def test_uniform_limits(name, limit):
    w = _draw(name)
    assert float(np.abs(w).max()) <= limit
    assert float(np.abs(w).max()) > 0.99 * limit


def test_constants():
    assert (_draw("zeros") == 0).all() and (_draw("ones") == 1).all()
    assert (initializers.Constant(0.25)((3, 2)) == 0.25).all()
    assert (initializers.get({"class_name": "Constant", "config": {"value": 2.0}})((2,)) == 2.0).all()


def test_fans_of_conv_kernels():
    assert initializers.compute_fans((16, 3, 5, 5)) == (75, 400)
    nr.manual_seed(1)
    w = initializers.HeNormal()((64, 32, 3, 3))
    assert float(w.std()) == pytest.approx(math.sqrt(2 / (32 * 9)), rel=0.03)


def test_seeded_through_manual_seed():
    nr.manual_seed(7)
    a = _draw("he_normal")
    nr.manual_seed(7)
    b = _draw("he_normal")
    c = _draw("he_normal")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_zero_kernel_warns_but_zero_bias_does_not():
    with pytest.warns(UserWarning, match="symmetry"):
        Dense(3, kernel_initializer="zeros").build((None, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = Dense(3)
        layer.build((None, 4))
    assert (layer.bias.numpy() == 0).all()


def test_zero_kernel_cannot_break_symmetry():
    # Why the warning: every unit of a zero-initialised layer gets the same gradient.
    hidden = Dense(4, activation="tanh", kernel_initializer="ones")
    out = Dense(1, kernel_initializer="ones")
    with pytest.warns(UserWarning):
        out(hidden(nr.randn(8, 3))).sum().backward()
    g = hidden.kernel.grad.numpy()
    np.testing.assert_allclose(g, g[:, :1].repeat(4, axis=1), rtol=1e-5)


@pytest.mark.parametrize("name", ["zeros", "ones", "constant", "random_normal", "random_uniform", "glorot_normal",
                                  "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "xavier_uniform"])
def test_config_round_trip(name):
    init = initializers.get(name)
    again = initializers.get(initializers.serialize(init))
    assert type(again) is type(init) and again.get_config() == init.get_config()


def test_get_accepts_callables_and_rejects_unknown_names():
    def fives(shape, dtype):
        return np.full(shape, 5, dtype)

    assert initializers.get(fives) is fives
    layer = Dense(2, kernel_initializer=fives)
    layer.build((None, 3))
    assert (layer.kernel.numpy() == 5).all()
    with pytest.raises(ValueError, match="unknown initializer"):
        initializers.get("orthogonal_magic")
