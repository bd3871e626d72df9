"""Losses (with reduction='mean'|'sum'|'none'), dropout and embedding lookup.
May import: neurona.backend, neurona.autograd, neurona.ops.
"""
from __future__ import annotations

from .. import backend as B
from ..autograd.function import Function
from ._base import ShapeError, as_tensor, const
from .activation import log_softmax
from .elementwise import abs as absolute, clip, log, log1p, exp, maximum, where
from .movement import gather, index
from .reduce import mean, sum as reduce_sum
from .sparse import EmbeddingLookup


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return reduce_sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def _same_shape(op, pred, target):
    if pred.shape != target.shape:
        raise ShapeError(f"{op}: input shape {pred.shape} must equal target shape {target.shape}")


def _index_array(op, indices, like, what):
    """Integer `indices` (a Tensor, an array or a list) as an array on the backend of `like`;
    a Tensor on another device is an error, as an operand of any op would be."""
    if not hasattr(indices, "_ctx"):
        return B.array_module(like.data).asarray(indices)
    if B.device_of(indices.data) != B.device_of(like.data):
        raise ValueError(f"{op}: {what} is on {B.device_of(indices.data)!r} but the input is on "
                         f"{B.device_of(like.data)!r}; move one of them with .to(device)")
    return indices.data


def mse_loss(input, target, reduction="mean"):  # noqa: A002 - PyTorch's name
    """Mean squared error (y − ŷ)², averaged over every element with reduction='mean'."""
    input, target = as_tensor(input), as_tensor(target, input)
    _same_shape("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def quadratic_cost(output, target):
    """The course's quadratic cost C = 1/(2n) Σₓ ‖y(x) − a(x)‖², n = number of samples (axis 0)."""
    output, target = as_tensor(output), as_tensor(target, output)
    _same_shape("quadratic_cost", output, target)
    d = output - target
    return reduce_sum(d * d) * (0.5 / output.shape[0])


def _check_unit_interval(op, target):
    """Binary targets are probabilities: values outside [0, 1] give a loss without meaning (and
    negative "probabilities" of the other class), so they are refused. Checked on the host data,
    once at tracing time under nr.jit."""
    xp = B.array_module(target.data)
    if target.size and (bool(xp.any(target.data < 0)) or bool(xp.any(target.data > 1))):
        raise ValueError(f"{op}: target values must lie in [0, 1] (probabilities of the positive class), got "
                         f"{float(target.data.min())}..{float(target.data.max())}")


def binary_cross_entropy(input, target, reduction="mean"):  # noqa: A002
    """−[y·log p + (1 − y)·log(1 − p)] for probabilities p; logs are clamped at −100 as in
    PyTorch so that p = 0 or 1 gives a finite loss."""
    input, target = as_tensor(input), as_tensor(target, input)
    _same_shape("binary_cross_entropy", input, target)
    _check_unit_interval("binary_cross_entropy", target)
    log_p = clip(log(input), -100.0, None)
    log_q = clip(log(1 - input), -100.0, None)
    return _reduce(-(target * log_p + (1 - target) * log_q), reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, reduction="mean", pos_weight=None):  # noqa: A002
    """Binary cross-entropy on logits z, computed stably: max(z,0) − z·y + log(1 + e^−|z|)."""
    input, target = as_tensor(input), as_tensor(target, input)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    _check_unit_interval("binary_cross_entropy_with_logits", target)
    softplus_neg = maximum(-input, 0.0) + log1p(exp(-absolute(input)))  # log(1 + e^−z)
    if pos_weight is None:
        loss = (1 - target) * input + softplus_neg
    else:
        w = 1 + (as_tensor(pos_weight, input) - 1) * target
        loss = (1 - target) * input + w * softplus_neg
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def nll_loss(input, target, reduction="mean"):  # noqa: A002
    """Negative log-likelihood of integer class labels `target` (N,) given log-probabilities
    `input` (N, C) — or (N, C, d1, ...) with target (N, d1, ...)."""
    input = as_tensor(input)
    labels = _index_array("nll_loss", target, input, "target")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold integer class labels, not {labels.dtype}")
    expected = input.shape[:1] + input.shape[2:]
    if labels.shape != expected:
        raise ShapeError(f"nll_loss: target shape {labels.shape} must be {expected} for input shape {input.shape}")
    n_classes = input.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"nll_loss: labels must lie in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    picked = gather(input, B.array_module(labels).expand_dims(labels, 1), axis=1)
    return _reduce(-picked.reshape(labels.shape), reduction, "nll_loss")


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):  # noqa: A002
    """Softmax cross-entropy of logits `input` (N, C, ...): integer labels (N, ...) or
    probabilities/one-hot rows of the same shape as `input`. Uses log_softmax, so large logits
    do not overflow."""
    input = as_tensor(input)
    logp = log_softmax(input, axis=1)
    labels = _index_array("cross_entropy", target, input, "target")
    if labels.dtype.kind in "iu" and label_smoothing == 0:
        return nll_loss(logp, labels, reduction)
    if labels.dtype.kind in "iu":
        expected = input.shape[:1] + input.shape[2:]
        if labels.shape != expected:
            raise ShapeError(f"cross_entropy: target shape {labels.shape} must be {expected} for input shape {input.shape}")
        xp = B.array_module(input.data)
        onehot = xp.moveaxis(xp.eye(input.shape[1], dtype=input.dtype)[labels], -1, 1)
        probs = const(onehot)
    else:
        probs = as_tensor(target, input)
        _same_shape("cross_entropy", input, probs)
    if label_smoothing:
        probs = probs * (1 - label_smoothing) + label_smoothing / input.shape[1]
    return _reduce(-reduce_sum(probs * logp, axis=1), reduction, "cross_entropy")


def huber_loss(input, target, reduction="mean", delta=1.0):  # noqa: A002
    """½d² where |d| ≤ delta, delta·(|d| − ½delta) elsewhere (d = input − target)."""
    input, target = as_tensor(input), as_tensor(target, input)
    _same_shape("huber_loss", input, target)
    d = input - target
    small = absolute(d) <= delta  # an op, not raw NumPy: graph mode traces the mask
    loss = where(small, 0.5 * d * d, delta * (absolute(d) - 0.5 * delta))
    return _reduce(loss, reduction, "huber_loss")


class Dropout(Function):
    """x · mask, with the mask (0 or 1/(1−p) per element) drawn by `forward` from the seeded
    generator and saved for backward. Drawing inside the op means that a graph replaying this
    node draws a fresh mask at every run; `random = True` tells the graph passes never to
    constant-fold or merge it."""

    random = True

    def forward(self, x, p):
        xp = B.array_module(x)
        keep = B.generator(xp).random(x.shape, dtype=B.float32) >= p
        self.mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - p))
        return x * self.mask

    def backward(self, g):
        return (g * const(self.mask),)


def dropout(x, p=0.5, training=True):
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1−p),
    so nothing changes at inference (training=False returns x).

    >>> import neurona as nr
    >>> y = dropout(nr.ones(1000), p=0.2)
    >>> sorted(set(y.tolist())), abs(float(y.mean()) - 1.0) < 0.1
    ([0.0, 1.25], True)
    """
    x = as_tensor(x)
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    return Dropout.apply(x, p=float(p))


def embedding(indices, weight, sparse=False):
    """Rows of `weight` (V, D) picked by integer `indices` (any shape): shape indices.shape + (D,).
    The gradient adds up for repeated indices; with `sparse=True` a leaf `weight` gets it as a
    `RowSparse` (the ids and their gradient rows, see `neurona.ops.sparse`) instead of a dense
    (V, D) array.

    >>> import neurona as nr
    >>> w = nr.ones((1000, 2), requires_grad=True)
    >>> embedding([3, 3, 7], w, sparse=True).sum().backward(); w.grad
    RowSparse(shape=(1000, 2), rows=3, dtype=float32)
    """
    weight = as_tensor(weight)
    idx = _index_array("embedding", indices, weight, "indices")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, not {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= weight.shape[0]):
        raise IndexError(f"embedding: indices must lie in [0, {weight.shape[0]}), got {idx.min()}..{idx.max()}")
    return EmbeddingLookup.apply(weight, key=idx) if sparse else index(weight, idx)


def one_hot(ids, num_classes, dtype=None):
    """Integer class ids (any shape) as float one-hot vectors along a new last axis of length
    `num_classes` (float32 by default; no gradient).

    >>> import neurona as nr
    >>> nr.one_hot(nr.tensor([2, 0]), 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    ids = as_tensor(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"one_hot: ids must be integers, got dtype {ids.dtype}")
    bad = (ids.data < 0) | (ids.data >= num_classes)
    if bad.any():
        raise IndexError(f"one_hot: ids must lie in [0, {num_classes}); got {ids.data[bad].ravel()[:5].tolist()} "
                         f"(ids of shape {ids.shape})")
    xp = B.array_module(ids.data)
    dtype = B.default_float if dtype is None else B.as_dtype(dtype)
    return const((ids.data[..., None] == xp.arange(num_classes)).astype(dtype))
