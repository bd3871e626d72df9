"""`neurona.initializers`: the Keras-style name of `neurona.nn.initializers`.
May import: neurona.nn.
"""
from .nn.initializers import *  # noqa: F401,F403
from .nn.initializers import __all__  # noqa: F401
