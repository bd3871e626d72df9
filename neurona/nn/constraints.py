"""Weight constraints: projections applied after each optimiser step (`layer.apply_constraints`).

A constraint is called on a weight Tensor and returns the projected Tensor. `axis` names the
axes that hold one unit's incoming weights: axis 0 for a Dense kernel (fan_in, units); for a
convolution kernel (out, in, kh, kw) use axis=(1, 2, 3).
May import: neurona (Tensor ops), neurona.nn._config.
"""
from __future__ import annotations

from ._config import Configurable, deserialize, serialize as _serialize

_EPS = 1e-7


class Constraint(Configurable):
    """Base class: `__call__(weight) -> projected Tensor`."""

    def __call__(self, weight):
        raise NotImplementedError(f"{type(self).__name__}.__call__")


def _axis(axis):
    return axis if isinstance(axis, int) else tuple(axis)


def _axis_config(axis):
    return axis if isinstance(axis, int) else list(axis)


class MaxNorm(Constraint):
    """Rescale each unit's incoming weight vector so that its L2 norm is at most `max_value`
    (the max-norm constraint used with dropout).

    >>> import neurona as nr
    >>> MaxNorm(1.0)(nr.tensor([[3.0, 0.1], [4.0, 0.0]])).numpy().round(3).tolist()
    [[0.6, 0.1], [0.8, 0.0]]
    """

    def __init__(self, max_value=2.0, axis=0):
        self.max_value, self.axis = float(max_value), _axis(axis)

    def __call__(self, weight):
        norms = (weight * weight).sum(axis=self.axis, keepdims=True).sqrt()
        desired = norms.clip(0.0, self.max_value)
        return weight * (desired / (norms + _EPS))

    def get_config(self):
        return {"max_value": self.max_value, "axis": _axis_config(self.axis)}


class NonNeg(Constraint):
    """Negative weights become zero."""

    def __call__(self, weight):
        return weight.clip(0.0, None)


class UnitNorm(Constraint):
    """Each unit's incoming weight vector is scaled to unit L2 norm."""

    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def __call__(self, weight):
        return weight / ((weight * weight).sum(axis=self.axis, keepdims=True).sqrt() + _EPS)

    def get_config(self):
        return {"axis": _axis_config(self.axis)}


_CLASSES = {c.__name__: c for c in (MaxNorm, NonNeg, UnitNorm)}
_NAMES = {"max_norm": MaxNorm, "maxnorm": MaxNorm, "non_neg": NonNeg, "nonneg": NonNeg, "unit_norm": UnitNorm,
          "unitnorm": UnitNorm}


def get(identifier):
    """A constraint from a name ('max_norm'), a config dict, a constraint or a callable."""
    return deserialize(identifier, "constraint", _NAMES, _CLASSES, Constraint)


def serialize(constraint):
    return _serialize(constraint)


__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "get", "serialize"]
