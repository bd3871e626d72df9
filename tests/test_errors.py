"""Bad input gives errors that name the op and both shapes (ShapeError, a ValueError), and a
second backward without retain_graph says what to do."""
import pytest

import neurona as nr
from neurona import functional as F

SHAPE_ERRORS = {
    "matmul": (lambda: nr.ones((2, 3)) @ nr.ones((4, 5)),
               r"matmul: a.shape\[-1\] \(3\) must equal b.shape\[-2\] \(4\); a.shape=\(2, 3\), b.shape=\(4, 5\)"),
    "matmul_vector": (lambda: nr.matmul(nr.ones((2, 3)), nr.ones(4)),
                      r"matmul: a.shape\[-1\] \(3\) must equal b.shape\[0\] \(4\); a.shape=\(2, 3\), b.shape=\(4,\)"),
    "matmul_batch": (lambda: nr.ones((2, 2, 3)) @ nr.ones((3, 3, 4)),
                     r"matmul: batch axes of a.shape=\(2, 2, 3\) and b.shape=\(3, 3, 4\) cannot be broadcast"),
    "matmul_scalar": (lambda: nr.ones(3) @ nr.tensor(2.0), r"matmul: operands must have at least 1 dim; a.shape=\(3,\), b.shape=\(\)"),
    "dot": (lambda: nr.dot(nr.ones(3), nr.ones(4)), r"dot: vectors of different lengths; a.shape=\(3,\), b.shape=\(4,\)"),
    "conv2d_channels": (lambda: nr.conv2d(nr.ones((1, 3, 5, 5)), nr.ones((2, 4, 3, 3))),
                        r"conv2d: x.shape\[1\] \(3\) must equal w.shape\[1\] \(4\).*x.shape=\(1, 3, 5, 5\), w.shape=\(2, 4, 3, 3\)"),
    "conv2d_rank": (lambda: nr.conv2d(nr.ones((3, 5, 5)), nr.ones((2, 3, 3, 3))),
                    r"conv2d: x must be \(N, C, H, W\).*x.shape=\(3, 5, 5\), w.shape=\(2, 3, 3, 3\)"),
    "conv2d_groups": (lambda: nr.conv2d(nr.ones((1, 4, 5, 5)), nr.ones((3, 2, 3, 3)), groups=2),
                      r"conv2d: .*w.shape\[0\] must divide by groups; x.shape=\(1, 4, 5, 5\), w.shape=\(3, 2, 3, 3\)"),
    "conv2d_bias": (lambda: nr.conv2d(nr.ones((1, 3, 5, 5)), nr.ones((2, 3, 3, 3)), nr.ones(3)),
                    r"conv2d: bias shape \(3,\) must be \(2,\) for w.shape=\(2, 3, 3, 3\)"),
    "conv2d_kernel_too_big": (lambda: nr.conv2d(nr.ones((1, 3, 2, 2)), nr.ones((2, 3, 3, 3))),
                              r"conv2d: kernel 3 is larger than the padded input 2 \+ 2·0 along height"),
    "mse_loss": (lambda: F.mse_loss(nr.ones((4, 3)), nr.ones((4, 2))),
                 r"mse_loss: input shape \(4, 3\) must equal target shape \(4, 2\)"),
    "cross_entropy": (lambda: F.cross_entropy(nr.ones((4, 3)), nr.ones((4, 2))),
                      r"cross_entropy: input shape \(4, 3\) must equal target shape \(4, 2\)"),
    "nll_loss": (lambda: F.nll_loss(nr.ones((4, 3)), [0, 1, 2]),
                 r"nll_loss: target shape \(3,\) must be \(4,\) for input shape \(4, 3\)"),
}
for _op in ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "less", "equal"]:
    SHAPE_ERRORS[_op] = (lambda op=_op: getattr(nr, op)(nr.ones((2, 3)), nr.ones((4,))),
                         rf"{_op}: shapes \(2, 3\), \(4,\) cannot be broadcast together")
SHAPE_ERRORS["operator+"] = (lambda: nr.ones((2, 3)) + nr.ones(2), r"add: shapes \(2, 3\), \(2,\) cannot be broadcast together")
SHAPE_ERRORS["where"] = (lambda: nr.where(nr.ones(2) > 0, nr.ones(3), nr.ones(4)),
                         r"where: shapes \(2,\), \(3,\), \(4,\) cannot be broadcast together")


@pytest.mark.parametrize("name", SHAPE_ERRORS)
def test_shape_mismatch_names_the_op_and_the_shapes(name):
    call, message = SHAPE_ERRORS[name]
    with pytest.raises(nr.ShapeError, match=message):
        call()


def test_shape_error_is_a_value_error():
    assert issubclass(nr.ShapeError, ValueError)


def test_backward_twice_without_retain_graph_says_what_to_do():
    w = nr.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward()
    with pytest.raises(RuntimeError) as err:
        loss.backward()
    message = str(err.value)
    assert "second time" in message and "retain_graph=True" in message


def test_grad_twice_without_retain_graph_says_what_to_do():
    w = nr.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    nr.grad(loss, [w])
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        nr.grad(loss, [w])
