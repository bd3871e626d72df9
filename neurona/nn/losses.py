"""Losses by name and object, Keras-style (course topics 2–3): called as `loss(y_true, y_pred)`
— the target first, as in Keras — and averaged over the batch into a scalar Tensor.

Probabilities are clipped to [ε, 1 − ε] (ε = 1e-7) before the log, so a saturated softmax or
sigmoid gives a large but finite loss; `from_logits=True` takes raw scores instead and uses the
stable log-softmax / log-sigmoid forms. The class axis is the last one (`axis=-1`).
May import: neurona (Tensor, ops), neurona.nn._config.
"""
from __future__ import annotations

from ..ops.nn import _check_unit_interval
from .. import backend as B, ops
from ..ops import ShapeError
from ..tensor import Tensor
from ._config import deserialize, serialize as _serialize

EPSILON = 1e-7


def _as_pair(y_true, y_pred):
    y_pred = ops.as_tensor(y_pred)
    if not isinstance(y_true, Tensor):
        arr = B.array_module(y_pred.data).asarray(y_true)
        y_true = Tensor._make(arr.astype(y_pred.dtype) if arr.dtype.kind in "fb" else arr, False, None)
    return y_true, y_pred


def _float_target(op, y_true, y_pred):
    if y_true.dtype != y_pred.dtype:
        y_true = y_true.astype(y_pred.dtype)
    if y_pred.ndim and y_pred.shape[-1] == 1 and y_true.shape == y_pred.shape[:-1]:
        y_true = y_true.reshape(y_pred.shape)  # targets (N,) for one output column (N, 1), as Keras allows
    if y_true.shape != y_pred.shape:
        raise ShapeError(f"{op}: y_true shape {y_true.shape} must equal y_pred shape {y_pred.shape}")
    return y_true


def _reduce(values, reduction, op):
    """'mean': one scalar over every element; 'none': one value per sample (the mean over the
    other axes), for sample weights."""
    if reduction == "mean":
        return values.mean()
    if reduction == "none":
        return values.mean(axis=tuple(range(1, values.ndim))) if values.ndim > 1 else values
    raise ValueError(f"{op}: reduction must be 'mean' or 'none', got {reduction!r}")


def mean_squared_error(y_true, y_pred, reduction="mean"):
    """mean((y_true − y_pred)²) over every element.

    >>> mean_squared_error([[1.0, 2.0]], [[1.0, 4.0]]).item()
    2.0
    """
    y_true, y_pred = _as_pair(y_true, y_pred)
    t = _float_target("mean_squared_error", y_true, y_pred)
    if reduction == "mean":
        return ops.mse_loss(y_pred, t)
    return _reduce(ops.mse_loss(y_pred, t, reduction="none"), reduction, "mean_squared_error")


def mean_absolute_error(y_true, y_pred, reduction="mean"):
    """mean(|y_true − y_pred|)."""
    y_true, y_pred = _as_pair(y_true, y_pred)
    return _reduce(abs(y_pred - _float_target("mean_absolute_error", y_true, y_pred)), reduction,
                   "mean_absolute_error")


def binary_crossentropy(y_true, y_pred, from_logits=False, reduction="mean"):
    """−mean[y·log p + (1 − y)·log(1 − p)] for sigmoid outputs p (or logits with from_logits).

    >>> round(binary_crossentropy([1.0, 0.0], [0.9, 0.2]).item(), 4)
    0.1643
    """
    y_true, y_pred = _as_pair(y_true, y_pred)
    y_true = _float_target("binary_crossentropy", y_true, y_pred)
    _check_unit_interval("binary_crossentropy", y_true)
    if from_logits:
        if reduction == "mean":
            return ops.binary_cross_entropy_with_logits(y_pred, y_true)
        return _reduce(ops.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none"), reduction,
                       "binary_crossentropy")
    p = y_pred.clip(EPSILON, 1 - EPSILON)
    return _reduce(-(y_true * p.log() + (1 - y_true) * (1 - p).log()), reduction, "binary_crossentropy")


def categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1, reduction="mean"):
    """−mean over samples of Σ_classes y·log p, for one-hot (or soft) targets. Probabilities are
    renormalised to sum to 1 along `axis` and clipped, as Keras does.

    >>> round(categorical_crossentropy([[0.0, 1.0]], [[0.3, 0.7]]).item(), 4)
    0.3567
    """
    y_true, y_pred = _as_pair(y_true, y_pred)
    y_true = _float_target("categorical_crossentropy", y_true, y_pred)
    if from_logits:
        log_p = ops.log_softmax(y_pred, axis=axis)
    else:
        p = y_pred / y_pred.sum(axis=axis, keepdims=True)
        log_p = p.clip(EPSILON, 1 - EPSILON).log()
    return _reduce(-(y_true * log_p).sum(axis=axis), reduction, "categorical_crossentropy")


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1, reduction="mean"):
    """Categorical cross-entropy with integer labels: y_true (N, ...) or (N, ..., 1) holds class
    indices into the last axis of y_pred (N, ..., C).

    >>> round(sparse_categorical_crossentropy([1], [[0.3, 0.7]]).item(), 4)
    0.3567
    """
    y_pred = ops.as_tensor(y_pred)
    labels = y_true.data if isinstance(y_true, Tensor) else B.array_module(y_pred.data).asarray(y_true)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ShapeError(f"sparse_categorical_crossentropy: y_true shape {labels.shape} must be {y_pred.shape[:-1]} "
                         f"(or with a trailing 1) for y_pred shape {y_pred.shape}")
    if labels.dtype.kind == "f":  # a cast op, not NumPy, so that nr.jit does not freeze the labels
        xp = B.array_module(labels)
        if labels.size and bool(xp.any(labels != xp.round(labels))):
            bad = labels[labels != xp.round(labels)].reshape(-1)[:3].tolist()
            raise ValueError(f"sparse_categorical_crossentropy: labels must be whole class numbers, got {bad} "
                             f"(a float label would be truncated); for soft targets use categorical_crossentropy")
        labels = ops.cast(Tensor._make(labels, False, None), B.int64).data
    n_classes = y_pred.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"sparse_categorical_crossentropy: labels must lie in [0, {n_classes}), "
                         f"got {labels.min()}..{labels.max()}")
    if axis not in (-1, y_pred.ndim - 1):
        raise ValueError("sparse_categorical_crossentropy: the class axis must be the last one")
    if from_logits:
        log_p = ops.log_softmax(y_pred, axis=-1)
    else:
        p = y_pred / y_pred.sum(axis=-1, keepdims=True)
        log_p = p.clip(EPSILON, 1 - EPSILON).log()
    picked = ops.gather(log_p, B.array_module(labels).expand_dims(labels, -1), axis=-1)
    return _reduce(-picked, reduction, "sparse_categorical_crossentropy")


def huber(y_true, y_pred, delta=1.0, reduction="mean"):
    """½d² where |d| ≤ delta, delta·(|d| − ½delta) beyond (d = y_pred − y_true), averaged.

    >>> huber([0.0, 0.0], [0.5, 3.0]).item()
    1.3125
    """
    y_true, y_pred = _as_pair(y_true, y_pred)
    t = _float_target("huber", y_true, y_pred)
    if reduction == "mean":
        return ops.huber_loss(y_pred, t, delta=delta)
    return _reduce(ops.huber_loss(y_pred, t, reduction="none", delta=delta), reduction, "huber")


mse = mean_squared_error
mae = mean_absolute_error


# -- objects --------------------------------------------------------------------------------
class Loss:
    """Base class: `__call__(y_true, y_pred, sample_weight=None) -> scalar Tensor`, with a `name`
    and a config. With `sample_weight` (one weight per sample), the loss is Σ wᵢ·lossᵢ / N, Keras'
    'sum over batch size' reduction."""

    fn = None

    def __init__(self, name=None, **kwargs):
        self.name = name or _DEFAULT_NAMES[type(self).__name__]
        self.kwargs = kwargs

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            return type(self).fn(y_true, y_pred, **self.kwargs)
        per_sample = type(self).fn(y_true, y_pred, reduction="none", **self.kwargs)
        w = sample_weight if isinstance(sample_weight, Tensor) else Tensor(
            B.array_module(per_sample.data).asarray(sample_weight))
        w = w.astype(per_sample.dtype) if w.dtype != per_sample.dtype else w
        if w.shape != per_sample.shape:
            w = w.reshape(per_sample.shape) if w.size == per_sample.size else w
        if w.shape != per_sample.shape:
            raise ShapeError(f"{self.name}: sample_weight of shape {w.shape} must hold one weight per sample "
                             f"({per_sample.shape[0]})")
        return (per_sample * w).sum() / per_sample.shape[0]

    def get_config(self) -> dict:
        return {"name": self.name, **self.kwargs}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class MeanSquaredError(Loss):
    fn = staticmethod(mean_squared_error)

    def __init__(self, name=None):
        super().__init__(name)


class MeanAbsoluteError(Loss):
    fn = staticmethod(mean_absolute_error)

    def __init__(self, name=None):
        super().__init__(name)


class BinaryCrossentropy(Loss):
    fn = staticmethod(binary_crossentropy)

    def __init__(self, from_logits=False, name=None):
        super().__init__(name, from_logits=bool(from_logits))


class CategoricalCrossentropy(Loss):
    """Categorical cross-entropy as an object.

    >>> round(CategoricalCrossentropy(from_logits=True)([[1.0, 0.0]], [[2.0, 0.0]]).item(), 4)
    0.1269
    """

    fn = staticmethod(categorical_crossentropy)

    def __init__(self, from_logits=False, axis=-1, name=None):
        super().__init__(name, from_logits=bool(from_logits), axis=int(axis))


class SparseCategoricalCrossentropy(Loss):
    fn = staticmethod(sparse_categorical_crossentropy)

    def __init__(self, from_logits=False, name=None):
        super().__init__(name, from_logits=bool(from_logits))


class Huber(Loss):
    fn = staticmethod(huber)

    def __init__(self, delta=1.0, name=None):
        super().__init__(name, delta=float(delta))


_DEFAULT_NAMES = {"MeanSquaredError": "mean_squared_error", "MeanAbsoluteError": "mean_absolute_error",
                  "BinaryCrossentropy": "binary_crossentropy", "CategoricalCrossentropy": "categorical_crossentropy",
                  "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy", "Huber": "huber"}
_CLASSES = {c.__name__: c for c in (MeanSquaredError, MeanAbsoluteError, BinaryCrossentropy, CategoricalCrossentropy,
                                     SparseCategoricalCrossentropy, Huber)}
_NAMES = {"mse": MeanSquaredError, "mean_squared_error": MeanSquaredError, "mae": MeanAbsoluteError,
          "mean_absolute_error": MeanAbsoluteError, "binary_crossentropy": BinaryCrossentropy,
          "categorical_crossentropy": CategoricalCrossentropy,
          "sparse_categorical_crossentropy": SparseCategoricalCrossentropy, "huber": Huber, "huber_loss": Huber}


def get(identifier):
    """A loss object from a name ('mse', 'categorical_crossentropy', ...), a config dict, a loss
    object or any callable `fn(y_true, y_pred)`.

    >>> get("mse")
    MeanSquaredError(name='mean_squared_error')
    """
    return deserialize(identifier, "loss", _NAMES, _CLASSES, Loss)


def serialize(loss):
    return _serialize(loss)


__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "Huber", "Loss", "MeanAbsoluteError",
           "MeanSquaredError", "SparseCategoricalCrossentropy", "binary_crossentropy",
           "categorical_crossentropy", "get", "huber", "mae", "mean_absolute_error",
           "mean_squared_error", "mse", "serialize", "sparse_categorical_crossentropy"]
