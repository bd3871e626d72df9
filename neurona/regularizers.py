"""`neurona.regularizers`: the Keras-style name of `neurona.nn.regularizers`.
May import: neurona.nn.
"""
from .nn.regularizers import *  # noqa: F401,F403
from .nn.regularizers import __all__  # noqa: F401
