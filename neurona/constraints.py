"""`neurona.constraints`: the Keras-style name of `neurona.nn.constraints`.
May import: neurona.nn.
"""
from .nn.constraints import *  # noqa: F401,F403
from .nn.constraints import __all__  # noqa: F401
