"""`neurona.metrics`: the Keras-style name of `neurona.nn.metrics`.
May import: neurona.nn.
"""
from .nn.metrics import *  # noqa: F401,F403
from .nn.metrics import __all__  # noqa: F401
