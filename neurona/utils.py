"""Small helpers a course student reaches for next to `fit`: `to_categorical` (one-hot labels),
`clear_session` (fresh layer names, as in Keras).
May import: numpy, neurona.nn.
"""
from __future__ import annotations

import numpy as np


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels: shape (..., ) -> (..., num_classes).

    >>> to_categorical([0, 2, 1]).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    y = np.asarray(y.numpy() if hasattr(y, "numpy") else y)
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(y == np.round(y)):
            raise ValueError(f"to_categorical: labels must be integers, got dtype {y.dtype}")
        y = y.astype(np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]  # Keras accepts a trailing axis of size 1
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must lie in [0, {num_classes}); got range [{y.min()}, {y.max()}]")
    out = np.zeros((*y.shape, num_classes), dtype=dtype)
    np.put_along_axis(out, y[..., None].astype(np.int64), 1, axis=-1)
    return out


def clear_session():
    """Forget the automatic layer names given so far, so the next `Dense()` is `dense` again
    (Keras' `clear_session`). Models already made keep their names; two models made after a
    reset can hold layers with equal names, which matters only when one model holds both.

    >>> from neurona.layers import Dense
    >>> clear_session(); Dense(2).name
    'dense'
    """
    from .nn.layer import reset_names

    reset_names()
