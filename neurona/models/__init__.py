"""Keras-style models: `Sequential`, the functional `Model(inputs, outputs)` built from `Input`,
their training loop (compile/fit/evaluate/predict) and `load_model`.
May import: neurona, neurona.nn, neurona.optim, neurona.data, neurona.callbacks, neurona.saving.
"""
from .functional import Input, InputLayer, Model, SymbolicTensor
from .sequential import Sequential
from ..callbacks import History


def load_model(path, compile=True):  # noqa: A002 - Keras' name
    """Load a model saved by `model.save(path)` (never runs code from the files)."""
    from ..saving import load_model as _load

    return _load(path, compile=compile)


__all__ = ["History", "Input", "InputLayer", "Model", "Sequential", "SymbolicTensor", "load_model"]
