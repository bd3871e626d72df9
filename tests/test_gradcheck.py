"""nr.gradcheck / nr.gradgradcheck themselves: they pass correct gradients, catch wrong ones with
a report naming the worst element, and insist on float64."""
import re

import numpy as np
import pytest

import neurona as nr


class SquareWrongBackward(nr.Function):
    def forward(self, a):
        return a * a

    def backward(self, g):
        (a,) = self.inputs
        return g * a  # should be 2·a·g


class SquareConstBackward(nr.Function):
    """First derivative right, but written with a constant, so its own derivative is lost."""

    def forward(self, a):
        self.twice = 2 * a
        return a * a

    def backward(self, g):
        return g * nr.tensor(self.twice)


def _x(*values):
    return nr.tensor(np.array(values), requires_grad=True)


def test_gradcheck_passes_correct_gradients_of_several_inputs():
    a, b = _x(0.5, -1.0, 2.0), _x(1.5)
    report = nr.gradcheck(lambda p, q: (p * q).exp() - p / q, [a, b])
    assert report and report.ok and report.max_abs_error < 1e-6


def test_gradcheck_multiple_outputs_and_constant_inputs():
    a = _x(0.3, 0.7)
    const = nr.tensor(np.array([2.0, 3.0]))
    assert nr.gradcheck(lambda p, c: (p * c, p.sum() ** 2), [a, const])


def test_gradcheck_reports_the_worst_element():
    """gradcheck projects the outputs on a random vector v, so the report shows v-weighted
    gradients; for this backward the analytic value is half the numerical one everywhere."""
    x = _x(1.0, -3.0, 2.0)
    with pytest.raises(nr.GradcheckError) as err:
        nr.gradcheck(SquareWrongBackward.apply, [x])
    m = re.search(r"worst element: input 0 \(shape \(3,\)\) at index \((\d),\): analytic (\S+), "
                  r"numerical (\S+), abs error (\S+)$", str(err.value))
    assert m, str(err.value)
    analytic, numerical, error = (float(v.rstrip(",")) for v in m.groups()[1:])
    assert numerical == pytest.approx(2 * analytic, rel=1e-6) and error == pytest.approx(abs(analytic), rel=1e-2)
    report = nr.gradcheck(SquareWrongBackward.apply, [x], raise_exception=False)
    assert not report and report.max_abs_error == pytest.approx(abs(analytic), rel=1e-6)


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    x = _x(1.0, -3.0, 2.0)
    assert nr.gradcheck(SquareConstBackward.apply, [x])
    with pytest.raises(nr.GradcheckError, match="gradgradcheck failed; worst element: input 0"):
        nr.gradgradcheck(SquareConstBackward.apply, [x])
    assert nr.gradgradcheck(lambda t: t * t, [x])


def test_gradcheck_needs_float64():
    with pytest.raises(TypeError, match="gradcheck: inputs must be float64 for a numerical check, got float32"):
        nr.gradcheck(lambda t: t * 2, [nr.ones(2, requires_grad=True)])


def test_gradcheck_leaves_inputs_unchanged():
    x = _x(0.1, 0.2)
    nr.gradcheck(lambda t: t.tanh(), [x])
    assert x.tolist() == [0.1, 0.2] and x.grad is None
