"""Activation functions by name, for `Dense(activation=...)` and the `Activation` layer.

Every activation of the core op library is here under its Keras name; `get` also accepts any
callable `fn(tensor) -> tensor`, and None or 'linear' for the identity.
May import: neurona.ops.
"""
from __future__ import annotations

from .. import ops


def linear(x):
    """The identity: a layer with no activation."""
    return x


def relu(x):
    return ops.relu(x)


def sigmoid(x):
    return ops.sigmoid(x)


def tanh(x):
    return ops.tanh(x)


def softplus(x):
    return ops.softplus(x)


def softmax(x):
    """Softmax over the last axis (the class axis of a Dense output)."""
    return ops.softmax(x, axis=-1)


def log_softmax(x):
    return ops.log_softmax(x, axis=-1)


def elu(x):
    return ops.elu(x)


def leaky_relu(x):
    """max(x, 0.01·x), the course's leaky ReLU (and PyTorch's default slope). The `LeakyReLU`
    layer defaults to Keras' 0.3 instead, so that Keras code builds the same network; use the
    layer for any other slope."""
    return ops.leaky_relu(x)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805  # Klambauer et al. 2017


def selu(x):
    """scale · elu(x, alpha) with the self-normalising constants (Keras' and PyTorch's selu)."""
    return ops.elu(x, _SELU_ALPHA) * _SELU_SCALE


def swish(x):
    """x · sigmoid(x) (also called SiLU)."""
    return x * ops.sigmoid(x)


silu = swish


def gelu(x):
    """0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): the tanh form of GELU, as Keras'
    `gelu(approximate=True)` and PyTorch's `gelu(approximate='tanh')` (within 1e-3 of the erf form).

    >>> import neurona as nr
    >>> round(gelu(nr.tensor(1.0)).item(), 4)
    0.8412
    """
    return 0.5 * x * (1.0 + ops.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


_NAMES = {f.__name__: f for f in (linear, relu, sigmoid, tanh, softplus, softmax, log_softmax, elu, leaky_relu,
                                  selu, swish, gelu)}
_NAMES["silu"] = swish


def get(identifier):
    """The activation function for a name, a callable, or None (identity).

    >>> import neurona as nr
    >>> get("relu")(nr.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        try:
            return _NAMES[identifier.lower()]
        except KeyError:
            raise ValueError(f"unknown activation {identifier!r}; known: {sorted(_NAMES)}") from None
    if callable(identifier):
        return identifier
    raise ValueError(f"cannot interpret {identifier!r} as an activation")


def serialize(activation) -> str:
    """The name of `activation`: only the named activations (or neurona's ops of the same name,
    such as `nr.relu`) round-trip through a config."""
    name = getattr(activation, "__name__", None)
    if name not in _NAMES or not getattr(activation, "__module__", "").startswith("neurona"):
        raise ValueError(f"activation {activation!r} has no registered name and cannot be saved in a config")
    return name


__all__ = ["elu", "get", "leaky_relu", "linear", "log_softmax", "relu", "serialize", "sigmoid", "softmax",
           "softplus", "tanh"]
