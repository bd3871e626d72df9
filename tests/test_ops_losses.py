"""Losses against torch.nn.functional, for reduction='mean'|'sum'|'none': mse_loss,
quadratic_cost (the course's 1/2n Σ‖y − a‖²), binary_cross_entropy(_with_logits), cross_entropy
(integer labels or one-hot/probabilities, label smoothing, spatial), nll_loss, huber_loss."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neurona as nr
from neurona import functional as F
from oracle import check_op, uniform

REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction):
    check_op([(4, 3), (4, 3)], lambda a, b: F.mse_loss(a, b, reduction),
             lambda a, b: TF.mse_loss(a, b, reduction=reduction), gradgrad=True)


def test_quadratic_cost_is_half_sum_over_samples():
    """C = 1/(2n) Σₓ ‖y(x) − a(x)‖² with n = 4 samples: half the sum of squares over n."""
    check_op([(4, 3), (4, 3)], F.quadratic_cost, lambda a, y: ((a - y) ** 2).sum() / (2 * 4), gradgrad=True)
    a, y = nr.tensor([[1.0, 2.0], [0.0, 0.0]]), nr.tensor([[0.0, 0.0], [0.0, 3.0]])
    assert F.quadratic_cost(a, y).item() == pytest.approx((1 + 4 + 9) / 4)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    check_op([(4, 3), (4, 3)], lambda p, y: F.binary_cross_entropy(p, y, reduction),
             lambda p, y: TF.binary_cross_entropy(p, y, reduction=reduction),
             gen=[uniform(0.05, 0.95), uniform(0.0, 1.0)], gradgrad=True)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # log(0), then clamped at −100
def test_binary_cross_entropy_at_0_and_1_is_finite_like_torch():
    p, y = np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0, 0.0])
    check_op([(4,), (4,)], lambda a, b: F.binary_cross_entropy(a, b, "none"),
             lambda a, b: TF.binary_cross_entropy(a, b, reduction="none"), grad=False, gradcheck=False,
             gen=[lambda rng, s: p, lambda rng, s: y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [None, [0.5, 1.0, 3.0]])
def test_binary_cross_entropy_with_logits(reduction, pos_weight):
    """pos_weight (one per class, a constant in torch) weights the positive term."""
    def pw(z):
        return None if pos_weight is None else nr.tensor(np.array(pos_weight, z.dtype))

    check_op([(4, 3), (4, 3)], lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction, pw(z)),
             lambda z, y: TF.binary_cross_entropy_with_logits(
                 z, y, reduction=reduction, pos_weight=None if pos_weight is None else torch.tensor(pos_weight, dtype=z.dtype)),
             gen=[uniform(-4, 4), uniform(0, 1)], gradgrad=True)


def test_binary_cross_entropy_with_logits_large_logits_are_stable():
    z = np.array([-200.0, -30.0, 0.0, 30.0, 200.0])
    check_op([(5,), (5,)], lambda a, b: F.binary_cross_entropy_with_logits(a, b, "none"),
             lambda a, b: TF.binary_cross_entropy_with_logits(a, b, reduction="none"), gradcheck=False,
             gen=[lambda rng, s: z, lambda rng, s: np.array([1.0, 0.0, 1.0, 1.0, 0.0])])


LABELS = np.array([2, 0, 1, 2, 4])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_integer_labels(reduction):
    for labels in (LABELS, nr.tensor(LABELS)):
        check_op([(5, 5)], lambda z: F.cross_entropy(z, labels, reduction),
                 lambda z: TF.cross_entropy(z, torch.tensor(LABELS), reduction=reduction), gradgrad=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_one_hot_and_probabilities(reduction, smoothing):
    onehot = np.eye(5)[LABELS]
    check_op([(5, 5)], lambda z: F.cross_entropy(z, nr.tensor(onehot, dtype=z.dtype), reduction, smoothing),
             lambda z: TF.cross_entropy(z, torch.tensor(onehot, dtype=z.dtype), reduction=reduction, label_smoothing=smoothing))
    check_op([(5, 5), (5, 5)], lambda z, p: F.cross_entropy(z, p.softmax(), reduction, smoothing),
             lambda z, p: TF.cross_entropy(z, p.softmax(-1), reduction=reduction, label_smoothing=smoothing), gradgrad=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_label_smoothing_integer_labels(reduction):
    check_op([(5, 5)], lambda z: F.cross_entropy(z, LABELS, reduction, label_smoothing=0.2),
             lambda z: TF.cross_entropy(z, torch.tensor(LABELS), reduction=reduction, label_smoothing=0.2), gradgrad=True)


def test_cross_entropy_spatial():
    """(N, C, H, W) logits with (N, H, W) labels: per-pixel classification."""
    labels = np.random.default_rng(2).integers(0, 3, (2, 2, 3))
    check_op([(2, 3, 2, 3)], lambda z: F.cross_entropy(z, labels), lambda z: TF.cross_entropy(z, torch.tensor(labels)))
    check_op([(2, 3, 2, 3)], lambda z: F.cross_entropy(z, labels, label_smoothing=0.1),
             lambda z: TF.cross_entropy(z, torch.tensor(labels), label_smoothing=0.1))


def test_cross_entropy_large_logits_are_stable():
    z = np.array([[1000.0, 0.0, -1000.0], [0.0, 1e4, 0.0]])
    check_op([(2, 3)], lambda a: F.cross_entropy(a, [1, 0], "none"),
             lambda a: TF.cross_entropy(a, torch.tensor([1, 0]), reduction="none"), gradcheck=False, gen=lambda rng, s: z)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    check_op([(5, 5)], lambda lp: F.nll_loss(lp.log_softmax(), LABELS, reduction),
             lambda lp: TF.nll_loss(lp.log_softmax(-1), torch.tensor(LABELS), reduction=reduction), gradgrad=True)
    labels = np.array([[0, 2], [1, 1]])
    check_op([(2, 3, 2)], lambda lp: F.nll_loss(lp, labels, reduction),
             lambda lp: TF.nll_loss(lp, torch.tensor(labels), reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.5])
def test_huber_loss(reduction, delta):
    # |input − target| stays away from delta, where the second derivative jumps
    def gen(rng, shape):
        d = rng.uniform(0.05, 2.0, shape)
        d = np.where(np.abs(d - delta) < 0.05, d + 0.2, d)
        return d * rng.choice([-1.0, 1.0], shape)

    check_op([(4, 3), (4, 3)], lambda a, b: F.huber_loss(a, b, reduction, delta),
             lambda a, b: TF.huber_loss(a, b, reduction=reduction, delta=delta), gen=[gen, lambda rng, s: np.zeros(s)])


LOSS_SHAPE_ERRORS = [  # (loss, input, target, message)
    (F.mse_loss, (4, 3), (4, 2), r"mse_loss: input shape \(4, 3\) must equal target shape \(4, 2\)"),
    (F.quadratic_cost, (4, 3), (3,), r"quadratic_cost: input shape \(4, 3\) must equal target shape \(3,\)"),
    (F.binary_cross_entropy, (4,), (4, 1),
     r"binary_cross_entropy: input shape \(4,\) must equal target shape \(4, 1\)"),
    (F.binary_cross_entropy_with_logits, (4,), (5,),
     r"binary_cross_entropy_with_logits: input shape \(4,\) must equal target shape \(5,\)"),
    (F.cross_entropy, (4, 3), (4, 2), r"cross_entropy: input shape \(4, 3\) must equal target shape \(4, 2\)"),
    (F.huber_loss, (2, 2), (4,), r"huber_loss: input shape \(2, 2\) must equal target shape \(4,\)"),
]


@pytest.mark.parametrize("loss, input_shape, target_shape, message", LOSS_SHAPE_ERRORS)
def test_loss_shape_errors_name_the_op_and_both_shapes(loss, input_shape, target_shape, message):
    with pytest.raises(nr.ShapeError, match=message):
        loss(nr.zeros(input_shape), nr.zeros(target_shape))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_label_shape_errors(smoothing):
    op = "cross_entropy" if smoothing else "nll_loss"
    with pytest.raises(nr.ShapeError, match=rf"{op}: target shape \(2,\) must be \(4,\) for input shape \(4, 3\)"):
        F.cross_entropy(nr.zeros((4, 3)), [0, 1], label_smoothing=smoothing)


def test_loss_argument_errors():
    with pytest.raises(ValueError, match=r"mse_loss: reduction must be 'mean', 'sum' or 'none', not 'avg'"):
        F.mse_loss(nr.zeros(2), nr.zeros(2), reduction="avg")
    with pytest.raises(ValueError, match=r"nll_loss: labels must lie in \[0, 3\), got 0..3"):
        F.cross_entropy(nr.zeros((2, 3)), [0, 3])
    with pytest.raises(TypeError, match="nll_loss: target must hold integer class labels"):
        F.nll_loss(nr.zeros((2, 3)), np.array([0.0, 1.0]))
