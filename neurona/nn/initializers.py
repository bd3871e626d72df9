"""Weight initialisers (course topic 4): how the first weights are drawn decides whether a deep
network trains at all.

Each initialiser is an object called as `init(shape, dtype)` that returns a backend array; random
ones draw from the generator seeded by `nr.manual_seed`. Fans follow the layouts of neurona's
layers: a Dense kernel is (fan_in, fan_out); a convolution kernel is (out_channels, in_channels,
*kernel) as `nr.conv2d` takes it, so fan_in = in_channels·kh·kw and fan_out = out_channels·kh·kw.
`get` accepts a name, a `{"class_name", "config"}` dict, an initialiser or any callable
`fn(shape, dtype)`.
May import: neurona.backend, neurona.nn._config.
"""
from __future__ import annotations

import math

from .. import backend as B
from ._config import Configurable, deserialize, serialize as _serialize


def compute_fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of `shape`.

    >>> compute_fans((784, 100)), compute_fans((6, 3, 5, 5))
    ((784, 100), (75, 150))
    """
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


class Initializer(Configurable):
    """Base class: `__call__(shape, dtype)` returns an array; `get_config` rebuilds it."""

    #: Constant initialisers give every unit of a layer the same weights, so every unit gets the
    #: same gradient and they stay identical: layers warn when a kernel uses one.
    breaks_symmetry = True

    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError(f"{type(self).__name__}.__call__")


def _rng():
    return B.generator(B.numpy)


class Constant(Initializer):
    """Every element equal to `value`.

    >>> Constant(0.5)((2,)).tolist()
    [0.5, 0.5]
    """

    breaks_symmetry = False

    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, dtype="float32"):
        return B.numpy.full(tuple(shape), self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    """All zeros: right for biases; for a kernel no unit can ever differ from another."""

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    """All ones (e.g. batch-normalisation γ and moving variance)."""

    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class RandomNormal(Initializer):
    """Normal(mean, stddev²); the default stddev 0.01 is the course's first fix, `0.01·randn`.

    >>> import neurona as nr
    >>> nr.manual_seed(0); w = RandomNormal()((1000, 100))
    >>> round(float(w.std()), 3)
    0.01
    """

    def __init__(self, mean=0.0, stddev=0.01):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype="float32"):
        return (self.mean + self.stddev * _rng().standard_normal(tuple(shape))).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class RandomUniform(Initializer):
    """Uniform on [minval, maxval) (Keras' default range ±0.05)."""

    def __init__(self, minval=-0.05, maxval=0.05):
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype="float32"):
        return _rng().uniform(self.minval, self.maxval, tuple(shape)).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


class VarianceScaling(Initializer):
    """Var(w) = scale / n with n = fan_in, fan_out or their mean (`mode`), drawn from a normal
    or a uniform on ±sqrt(3·scale/n) (`distribution`). Glorot, He and LeCun are special cases.
    The normal is not truncated (Keras truncates it): the course's formulas are plain `randn`.
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="normal"):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be fan_in, fan_out or fan_avg, not {mode!r}")
        if distribution not in ("normal", "uniform"):
            raise ValueError(f"VarianceScaling: distribution must be normal or uniform, not {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "normal":
            w = math.sqrt(variance) * _rng().standard_normal(tuple(shape))
        else:
            limit = math.sqrt(3.0 * variance)
            w = _rng().uniform(-limit, limit, tuple(shape))
        return w.astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times `gain` (Saxe et al. 2014): the Keras default for recurrent
    kernels, whose repeated products then neither shrink nor blow up the state at the start.
    Shapes beyond 2-D are flattened to (prod(shape[:-1]), shape[-1]).

    >>> import numpy as np
    >>> w = Orthogonal()((4, 4))
    >>> bool(np.allclose(w @ w.T, np.eye(4), atol=1e-5))
    True
    """

    def __init__(self, gain=1.0):
        self.gain = float(gain)

    def __call__(self, shape, dtype="float32"):
        shape = tuple(shape)
        rows, cols = (math.prod(shape[:-1]), shape[-1]) if len(shape) > 1 else (1, shape[0])
        a = _rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = B.numpy.linalg.qr(a)
        q = q * B.numpy.sign(B.numpy.diag(r))  # the sign fix makes q uniform over orthogonal matrices
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols]).reshape(shape).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


class _Named(VarianceScaling):
    _args: tuple = ()

    def __init__(self):
        super().__init__(*self._args)

    def get_config(self):
        return {}


class GlorotNormal(_Named):
    """Xavier/Glorot normal: std = sqrt(2 / (fan_in + fan_out))."""

    _args = (1.0, "fan_avg", "normal")


class GlorotUniform(_Named):
    """Xavier/Glorot uniform on ±sqrt(6 / (fan_in + fan_out)) (Keras' default for kernels).

    >>> import neurona as nr
    >>> nr.manual_seed(0); w = GlorotUniform()((300, 100))
    >>> bool(abs(w).max() <= (6 / 400) ** 0.5)
    True
    """

    _args = (1.0, "fan_avg", "uniform")


class HeNormal(_Named):
    """He normal, for ReLU networks: std = sqrt(2 / fan_in), the course's `randn(n)·sqrt(2/n)`."""

    _args = (2.0, "fan_in", "normal")


class HeUniform(_Named):
    """He uniform on ±sqrt(6 / fan_in)."""

    _args = (2.0, "fan_in", "uniform")


class LecunNormal(_Named):
    """LeCun normal: std = sqrt(1 / fan_in) (the course's `randn(n)/sqrt(n)` Xavier form)."""

    _args = (1.0, "fan_in", "normal")


_CLASSES = {c.__name__: c for c in (Constant, Zeros, Ones, RandomNormal, RandomUniform, VarianceScaling,
                                     GlorotNormal, GlorotUniform, HeNormal, HeUniform, LecunNormal, Orthogonal)}
_NAMES = {
    "zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones, "constant": Constant,
    "random_normal": RandomNormal, "normal": RandomNormal, "random_uniform": RandomUniform,
    "uniform": RandomUniform, "glorot_normal": GlorotNormal, "xavier_normal": GlorotNormal,
    "glorot_uniform": GlorotUniform, "xavier_uniform": GlorotUniform, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "variance_scaling": VarianceScaling,
    "orthogonal": Orthogonal,
}


def get(identifier):
    """An initialiser from a name ('he_normal'), a config dict, an initialiser or a callable.

    >>> get("xavier_uniform")
    GlorotUniform()
    """
    return deserialize(identifier, "initializer", _NAMES, _CLASSES, Initializer)


def serialize(initializer):
    """The JSON-ready form of `initializer` (see `get` for the way back)."""
    return _serialize(initializer)


__all__ = ["Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Initializer", "LecunNormal",
           "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "VarianceScaling", "Zeros", "compute_fans", "get",
           "serialize"]
