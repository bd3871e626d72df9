"""Neural-network building blocks: the Layer contract, layers, initialisers, regularisers,
constraints. Builds on the public Tensor/ops API only."""
from .layer import Layer, Weight, get_registered, register
