"""Weight penalties added to the loss (course topic 4): L1, L2 (weight decay) and L1L2.

A regulariser is called on a weight Tensor and returns a scalar Tensor; layers collect them in
`layer.losses` and the trainer adds them to the data loss. The factor multiplies the plain sum
(Keras' convention): L2(λ) adds λ·Σw², which is the course's λ/(2n)·Σw² with λ_keras = λ/(2n).
Penalise kernels only: the course is explicit that biases are not regularised (they have few
parameters and do not cause overfitting), so layers default `bias_regularizer` to None.
May import: neurona (Tensor ops), neurona.nn._config.
"""
from __future__ import annotations

from ._config import Configurable, deserialize, serialize as _serialize


class Regularizer(Configurable):
    """Base class: `__call__(weight) -> scalar Tensor`."""

    def __call__(self, weight):
        raise NotImplementedError(f"{type(self).__name__}.__call__")


class L1L2(Regularizer):
    """l1·Σ|w| + l2·Σw².

    >>> import neurona as nr
    >>> L1L2(l1=0.1, l2=0.01)(nr.tensor([1.0, -2.0])).item()
    0.35
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, weight):
        penalty = 0.0
        if self.l1:
            penalty = penalty + self.l1 * abs(weight).sum()
        if self.l2:
            penalty = penalty + self.l2 * (weight * weight).sum()
        if isinstance(penalty, float):
            return (weight * 0.0).sum()
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1·Σ|w|: drives many weights to exactly zero (sparse weights)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """l2·Σw²: weight decay, its gradient 2·l2·w shrinks every weight towards zero.

    >>> import neurona as nr
    >>> L2(0.5)(nr.tensor([1.0, 2.0])).item()
    2.5
    """

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


_CLASSES = {c.__name__: c for c in (L1L2, L1, L2)}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}


def l1_l2(l1=0.01, l2=0.01):
    """L1L2 with Keras' default factors."""
    return L1L2(l1=l1, l2=l2)


def get(identifier):
    """A regulariser from a name ('l2'), a config dict, a regulariser or a callable."""
    return deserialize(identifier, "regularizer", _NAMES, _CLASSES, Regularizer)


def serialize(regularizer):
    return _serialize(regularizer)


__all__ = ["L1", "L1L2", "L2", "Regularizer", "get", "l1_l2", "serialize"]
