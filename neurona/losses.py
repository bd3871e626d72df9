"""`neurona.losses`: the Keras-style name of `neurona.nn.losses`.
May import: neurona.nn.
"""
from .nn.losses import *  # noqa: F401,F403
from .nn.losses import __all__  # noqa: F401
