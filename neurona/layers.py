"""`neurona.layers`: every layer, Keras-style (`from neurona.layers import Dense, Dropout`), and
`Input`/`InputLayer`, the functional API's symbolic input (`neurona.nn.symbolic`; also in
`neurona.models`), so importing the layers does not load the training machinery.
May import: neurona.nn.
"""
from .nn.layer import Layer
from .nn.layers import *  # noqa: F401,F403
from .nn.layers import __all__ as _all
from .nn.symbolic import Input, InputLayer

__all__ = ["Input", "InputLayer", "Layer", *_all]
