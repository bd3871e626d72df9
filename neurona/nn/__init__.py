"""Neural-network building blocks: the Layer contract, layers, activations, initialisers,
regularisers, constraints, losses and metrics. Builds on the public Tensor/ops API only.
May import: neurona (Tensor, ops, autograd, backend, creation).
"""
from . import activations, constraints, initializers, losses, metrics, regularizers
from .layer import Layer, Weight, get_registered, register
from .layers import *  # noqa: F401,F403
