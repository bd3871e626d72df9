"""Metrics (course topic 3): accuracy (categorical, sparse or binary, picked from the shapes as
Keras' 'accuracy' does), top-k accuracy, precision, recall and AUC.

Metrics are streaming: `update_state(y_true, y_pred, sample_weight=None)` adds a batch,
`result()` gives the value over every batch so far, `reset_state()` starts again (the trainer
resets them each epoch). They compute on NumPy arrays — a metric never needs a gradient — and
accept Tensors, arrays or lists. The functions (`categorical_accuracy`, ...) return one value
per sample.
May import: neurona.backend, neurona.nn._config.
"""
from __future__ import annotations

from .. import backend as B
from ._config import deserialize

np = B.numpy


def _numpy(x):
    if hasattr(x, "_ctx"):  # a Tensor
        x = x.numpy()
    elif hasattr(x, "get") and not isinstance(x, (dict, list)):  # a CuPy array
        x = x.get()
    return np.asarray(x)


def _labels(y_true, y_pred):
    """Integer labels of shape y_pred.shape[:-1] from (N, ...) or (N, ..., 1) targets."""
    y_true = _numpy(y_true)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(f"sparse labels of shape {y_true.shape} do not fit predictions of shape {y_pred.shape}")
    if y_true.dtype.kind == "f" and y_true.size and np.any(y_true != np.round(y_true)):
        bad = y_true[y_true != np.round(y_true)].reshape(-1)[:3].tolist()
        raise ValueError(f"sparse labels must be whole class numbers, got {bad} (they would be truncated)")
    if y_true.dtype.kind not in "iufb":
        raise ValueError(f"labels must be numbers, got dtype {y_true.dtype}: encode string labels as integers "
                         f"first (e.g. with numpy.unique(labels, return_inverse=True))")
    return y_true.astype(np.int64)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1 where (y_pred > threshold) equals y_true, per sample (averaged over the last axis).

    >>> binary_accuracy([[1], [0], [1]], [[0.8], [0.6], [0.4]]).tolist()
    [1.0, 0.0, 0.0]
    """
    y_true, y_pred = _numpy(y_true), _numpy(y_pred)
    y_true = y_true.reshape(y_pred.shape)
    hits = (y_pred > threshold) == (y_true > 0.5)
    return hits.mean(axis=-1) if hits.ndim > 1 else hits.astype(np.float64)


def categorical_accuracy(y_true, y_pred):
    """1 where the argmax of y_pred is the argmax of the one-hot y_true.

    >>> categorical_accuracy([[0, 1], [1, 0]], [[0.2, 0.8], [0.3, 0.7]]).tolist()
    [1.0, 0.0]
    """
    y_true, y_pred = _numpy(y_true), _numpy(y_pred)
    return (y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true, y_pred):
    """1 where the argmax of y_pred equals the integer label y_true.

    >>> sparse_categorical_accuracy([1, 1], [[0.2, 0.8], [0.3, 0.1]]).tolist()
    [1.0, 0.0]
    """
    y_pred = _numpy(y_pred)
    return (_labels(y_true, y_pred) == y_pred.argmax(axis=-1)).astype(np.float64)


def _in_top_k(labels, y_pred, k):
    # Rank of the true class's score: how many classes score strictly higher (ties count as in).
    true_score = np.take_along_axis(y_pred, labels[..., None], axis=-1)
    return ((y_pred > true_score).sum(axis=-1) < k).astype(np.float64)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the integer label is among the k highest scores."""
    y_pred = _numpy(y_pred)
    return _in_top_k(_labels(y_true, y_pred), y_pred, k)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the one-hot target's class is among the k highest scores.

    >>> top_k_categorical_accuracy([[0, 0, 1]], [[0.5, 0.3, 0.2]], k=2).tolist()
    [0.0]
    """
    y_true, y_pred = _numpy(y_true), _numpy(y_pred)
    return _in_top_k(y_true.argmax(axis=-1), y_pred, k)


def accuracy(y_true, y_pred):
    """Accuracy with the kind picked from the shapes: binary when y_pred has one column (or is
    1-D), categorical when y_true has y_pred's shape, sparse (integer labels) otherwise."""
    y_true, y_pred = _numpy(y_true), _numpy(y_pred)
    if y_pred.ndim == 1 or y_pred.shape[-1] == 1:
        return binary_accuracy(y_true, y_pred)
    if y_true.shape == y_pred.shape:
        return categorical_accuracy(y_true, y_pred)
    return sparse_categorical_accuracy(y_true, y_pred)


# -- streaming metrics ---------------------------------------------------------------------
class Metric:
    """Base class of streaming metrics."""

    def __init__(self, name=None):
        self.name = name or _DEFAULT_NAMES.get(type(self).__name__, type(self).__name__.lower())
        self.reset_state()

    def reset_state(self):
        raise NotImplementedError(f"{type(self).__name__}.reset_state")

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError(f"{type(self).__name__}.update_state")

    def result(self) -> float:
        raise NotImplementedError(f"{type(self).__name__}.result")

    def __call__(self, y_true, y_pred, sample_weight=None) -> float:
        """Add a batch and return the result so far."""
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class MeanMetricWrapper(Metric):
    """The (sample-weighted) mean of a per-sample function over every batch seen."""

    fn = None

    def __init__(self, name=None, **kwargs):
        self.kwargs = kwargs
        super().__init__(name)

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = type(self).fn(y_true, y_pred, **self.kwargs).reshape(-1)
        if sample_weight is None:
            self.total += float(values.sum())
            self.count += values.size
        else:
            w = np.broadcast_to(_numpy(sample_weight).astype(np.float64).reshape(-1), values.shape)
            self.total += float((values * w).sum())
            self.count += float(w.sum())

    def result(self):
        return self.total / self.count if self.count else 0.0

    def get_config(self):
        return {**super().get_config(), **self.kwargs}


class Mean(Metric):
    """The running (weighted) mean of the values given to `update_state` (Keras' `Mean`): what a
    custom `train_step` uses to report a loss averaged over the epoch.

    >>> m = Mean(name="d_loss")
    >>> m.update_state(2.0); m.update_state([4.0, 6.0])
    >>> m.result()
    4.0
    """

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def update_state(self, values, sample_weight=None):  # noqa: D401 - Keras' signature
        values = _numpy(values).astype(np.float64).reshape(-1)
        if sample_weight is None:
            self.total += float(values.sum())
            self.count += values.size
        else:
            w = np.broadcast_to(_numpy(sample_weight).astype(np.float64).reshape(-1), values.shape)
            self.total += float((values * w).sum())
            self.count += float(w.sum())

    def result(self):
        return self.total / self.count if self.count else 0.0


class Accuracy(MeanMetricWrapper):
    """Accuracy, auto-picking binary / categorical / sparse from the shapes (see `accuracy`).

    >>> m = Accuracy()
    >>> m.update_state([0, 1], [[0.9, 0.1], [0.8, 0.2]]); m.update_state([1], [[0.1, 0.9]])
    >>> round(m.result(), 4)
    0.6667
    """

    fn = staticmethod(accuracy)


class BinaryAccuracy(MeanMetricWrapper):
    fn = staticmethod(binary_accuracy)

    def __init__(self, name=None, threshold=0.5):
        super().__init__(name, threshold=float(threshold))


class CategoricalAccuracy(MeanMetricWrapper):
    fn = staticmethod(categorical_accuracy)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    fn = staticmethod(sparse_categorical_accuracy)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    fn = staticmethod(top_k_categorical_accuracy)

    def __init__(self, name=None, k=5):
        super().__init__(name, k=int(k))


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    fn = staticmethod(sparse_top_k_categorical_accuracy)

    def __init__(self, name=None, k=5):
        super().__init__(name, k=int(k))


class _Confusion(Metric):
    """True/false positives and negatives of binary decisions y_pred > threshold, counted over
    every element (a multi-column output is treated as independent binary outputs)."""

    def __init__(self, name=None, threshold=0.5):
        self.threshold = float(threshold)
        super().__init__(name)

    def reset_state(self):
        self.tp = self.fp = self.fn = self.tn = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = _numpy(y_pred)
        y_true = _numpy(y_true).reshape(y_pred.shape) > 0.5
        pred = y_pred > self.threshold
        w = 1.0 if sample_weight is None else _numpy(sample_weight).astype(np.float64).reshape(
            (-1,) + (1,) * (y_pred.ndim - 1))
        w = np.broadcast_to(w, y_pred.shape)
        self.tp += float(w[pred & y_true].sum())
        self.fp += float(w[pred & ~y_true].sum())
        self.fn += float(w[~pred & y_true].sum())
        self.tn += float(w[~pred & ~y_true].sum())

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class Precision(_Confusion):
    """TP / (TP + FP): of the positives predicted, the share that are positive.

    >>> Precision()([1, 0, 1, 1], [0.9, 0.8, 0.2, 0.7])
    0.6666666666666666
    """

    def result(self):
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0


class Recall(_Confusion):
    """TP / (TP + FN): of the actual positives, the share found.

    >>> Recall()([1, 0, 1, 1], [0.9, 0.8, 0.2, 0.7])
    0.6666666666666666
    """

    def result(self):
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


class AUC(Metric):
    """Area under the ROC curve (or the precision-recall curve, curve='PR'), streamed: scores
    are binned at `num_thresholds` thresholds in [0, 1] (as Keras does), so the result is the
    exact AUC up to that binning. With from_logits=True the scores go through a sigmoid first.

    >>> AUC()([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """

    def __init__(self, name=None, num_thresholds=200, curve="ROC", from_logits=False):
        if curve not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR', not {curve!r}")
        if num_thresholds < 2:
            raise ValueError(f"AUC: num_thresholds must be at least 2, got {num_thresholds}")
        self.num_thresholds, self.curve, self.from_logits = int(num_thresholds), curve, bool(from_logits)
        eps = 1e-7
        inner = np.arange(1, self.num_thresholds - 1, dtype=np.float64) / (self.num_thresholds - 1)
        self.thresholds = np.concatenate([[-eps], inner, [1 + eps]])
        super().__init__(name)

    def reset_state(self):
        self.pos = np.zeros(self.num_thresholds + 1)  # weight of positives per score bin
        self.neg = np.zeros(self.num_thresholds + 1)

    def update_state(self, y_true, y_pred, sample_weight=None):
        scores = _numpy(y_pred).astype(np.float64).reshape(-1)
        if self.from_logits:
            scores = 1 / (1 + np.exp(-scores))
        labels = _numpy(y_true).reshape(-1) > 0.5
        if labels.size != scores.size:
            raise ValueError(f"AUC: {labels.size} labels for {scores.size} scores")
        w = np.ones_like(scores) if sample_weight is None else np.broadcast_to(
            _numpy(sample_weight).astype(np.float64).reshape(-1, *([1] * (_numpy(y_pred).ndim - 1))),
            _numpy(y_pred).shape).reshape(-1)
        # bin b holds scores in (thresholds[b-1], thresholds[b]]: a score is above thresholds[:b].
        bins = np.searchsorted(self.thresholds, scores, side="left")
        self.pos += np.bincount(bins[labels], w[labels], minlength=self.num_thresholds + 1)
        self.neg += np.bincount(bins[~labels], w[~labels], minlength=self.num_thresholds + 1)

    def result(self):
        # Predicted positive at threshold i: score > thresholds[i], i.e. bins i+1 and up.
        tp = np.cumsum(self.pos[::-1])[::-1][1:]
        fp = np.cumsum(self.neg[::-1])[::-1][1:]
        total_pos, total_neg = self.pos.sum(), self.neg.sum()
        if self.curve == "ROC":
            if not total_pos or not total_neg:
                return 0.0
            x, y = fp / total_neg, tp / total_pos
        else:
            if not total_pos:
                return 0.0
            x = tp / total_pos
            y = np.divide(tp, tp + fp, out=np.ones_like(tp), where=(tp + fp) > 0)
        return float(np.sum((x[:-1] - x[1:]) * (y[:-1] + y[1:]) / 2))

    def get_config(self):
        return {**super().get_config(), "num_thresholds": self.num_thresholds, "curve": self.curve,
                "from_logits": self.from_logits}


_DEFAULT_NAMES = {"Accuracy": "accuracy", "BinaryAccuracy": "binary_accuracy",
                  "CategoricalAccuracy": "categorical_accuracy",
                  "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
                  "TopKCategoricalAccuracy": "top_k_categorical_accuracy",
                  "SparseTopKCategoricalAccuracy": "sparse_top_k_categorical_accuracy",
                  "Precision": "precision", "Recall": "recall", "AUC": "auc"}
_CLASSES = {c.__name__: c for c in (Mean, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                                     TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, Precision, Recall, AUC)}
_NAMES = {"accuracy": Accuracy, "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
          "sparse_categorical_accuracy": SparseCategoricalAccuracy, "top_k": TopKCategoricalAccuracy,
          "top_k_categorical_accuracy": TopKCategoricalAccuracy,
          "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy, "precision": Precision,
          "recall": Recall, "auc": AUC}


def get(identifier):
    """A fresh metric object from a name, a config dict or a metric; a plain function
    `fn(y_true, y_pred)` returning per-sample values becomes a mean metric named after it.
    'acc' is accepted for 'accuracy' and keeps that name (Keras logs it as 'acc').

    >>> get("top_k")
    TopKCategoricalAccuracy(name='top_k', k=5)
    """
    if isinstance(identifier, str):
        key = identifier.lower()
        cls = Accuracy if key == "acc" else _NAMES.get(key)
        if cls is None:
            raise ValueError(f"unknown metric {identifier!r}; known: {sorted(_NAMES)}")
        return cls(name=identifier)
    if isinstance(identifier, Metric) or isinstance(identifier, dict):
        return deserialize(identifier, "metric", _NAMES, _CLASSES, Metric)
    if callable(identifier):
        wrapper = type(f"Mean_{identifier.__name__}", (MeanMetricWrapper,), {"fn": staticmethod(identifier)})
        return wrapper(name=identifier.__name__)
    raise ValueError(f"cannot interpret {identifier!r} as a metric")


def serialize(metric) -> dict:
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


__all__ = ["AUC", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "Mean", "MeanMetricWrapper", "Metric", "Precision",
           "Recall", "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
           "TopKCategoricalAccuracy", "accuracy", "binary_accuracy", "categorical_accuracy", "get",
           "serialize", "sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy",
           "top_k_categorical_accuracy"]
