"""The course's worked examples, exactly as the lectures compute them."""
import math

import numpy as np
import pytest

import neurona as nr


def test_topic2_circuit_f_equals_x_plus_y_times_z():
    """f(x, y, z) = (x + y)·z at (−2, 5, −4): q = x + y = 3, f = −12;
    ∂f/∂x = ∂f/∂y = z = −4, ∂f/∂z = q = 3."""
    x, y, z = (nr.tensor(v, requires_grad=True) for v in (-2.0, 5.0, -4.0))
    q = x + y
    f = q * z
    f.backward()
    assert q.item() == 3.0 and f.item() == -12.0
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-4.0, -4.0, 3.0)


def test_topic2_sigmoid_circuit_against_sigma_one_minus_sigma():
    """f(w, x) = 1 / (1 + e^−(w0·x0 + w1·x1 + w2)) at the lecture's w = (2, −3, −3), x = (−1, −2):
    the dot product is 1, σ(1) ≈ 0.73, and the local gradient σ(1 − σ) ≈ 0.2 gives
    ∂f/∂w = (−0.2, −0.39, 0.2) and ∂f/∂x = (0.39, −0.59). Built gate by gate, as in the circuit."""
    w = nr.tensor([2.0, -3.0, -3.0], dtype="float64", requires_grad=True)
    x = nr.tensor([-1.0, -2.0], dtype="float64", requires_grad=True)
    dot = w[0] * x[0] + w[1] * x[1] + w[2]
    f = 1.0 / (1.0 + nr.exp(-dot))
    f.backward()
    s = 1 / (1 + math.exp(-1.0))
    local = s * (1 - s)
    assert dot.item() == 1.0 and f.item() == pytest.approx(s, rel=1e-15)
    np.testing.assert_allclose(w.grad.numpy(), [-1 * local, -2 * local, local], rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), [2 * local, -3 * local], rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), [-0.20, -0.39, 0.20], atol=0.005)
    np.testing.assert_allclose(x.grad.numpy(), [0.39, -0.59], atol=0.005)
    # the same through the fused sigmoid op
    w2 = nr.tensor([2.0, -3.0, -3.0], dtype="float64", requires_grad=True)
    nr.sigmoid((w2[:2] * x.detach()).sum() + w2[2]).backward()
    np.testing.assert_allclose(w2.grad.numpy(), w.grad.numpy(), rtol=1e-12)


def test_topic1_vacation_neuron():
    """Topic 1: will I go on holiday? Inputs a = (5, 2, 1) (weather, company, price), weights
    w = (2, 4, −3): z = 10 + 8 − 3 = 15 and the sigmoid neuron outputs σ(15)."""
    w = nr.tensor([2.0, 4.0, -3.0], dtype="float64")
    a = nr.tensor([5.0, 2.0, 1.0], dtype="float64")
    z = nr.dot(w, a)
    out = nr.sigmoid(z)
    assert z.item() == 15.0
    assert out.item() == pytest.approx(1 / (1 + math.exp(-15)), rel=1e-15)
    assert (w @ a).item() == 15.0
    # as a perceptron with threshold 0 the answer is "go"
    assert (z > 0).item()
