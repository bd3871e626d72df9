"""`neurona.optimizers`: the Keras-style name of `neurona.optim`
(`from neurona.optimizers import SGD`).
May import: neurona.optim.
"""
from .optim import *  # noqa: F401,F403
from .optim import __all__  # noqa: F401
