"""`neurona.activations`: the Keras-style name of `neurona.nn.activations`.
May import: neurona.nn.
"""
from .nn.activations import *  # noqa: F401,F403
from .nn.activations import __all__  # noqa: F401
