"""`neurona.layers`: every layer, Keras-style (`from neurona.layers import Dense, Dropout`).
`Input` and `InputLayer` (the functional API's symbolic input) live in `neurona.models` and are
re-exported here on first use, so importing the layers does not load the training machinery.
May import: neurona.nn, neurona.models (lazily).
"""
from .nn.layer import Layer
from .nn.layers import *  # noqa: F401,F403
from .nn.layers import __all__ as _all

__all__ = ["Input", "InputLayer", "Layer", *_all]


def __getattr__(name):
    if name in ("Input", "InputLayer"):
        from .models import functional

        return getattr(functional, name)
    raise AttributeError(f"module 'neurona.layers' has no attribute {name!r}")
