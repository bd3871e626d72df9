"""Optimisers, learning-rate schedules and gradient clipping (course topic 4).

An optimiser takes a parameter list (or is bound later with `bind`), and after `backward`
`step()` updates every parameter in place under `no_grad`; `zero_grad()` clears the gradients.
`apply_gradients([(grad, weight), ...])` applies gradients from anywhere, after the optimiser's
`gradient_transforms` (clipping, an all-reduce); `neurona.optim.functional` holds pure,
differentiable updates for steps that are themselves differentiated (MAML).

>>> import neurona as nr
>>> from neurona.optim import SGD
>>> w = nr.tensor([3.0], requires_grad=True)
>>> opt = SGD([w], learning_rate=0.1)
>>> for _ in range(50):
...     opt.zero_grad(); ((w - 1) ** 2).sum().backward(); opt.step()
>>> round(w.item(), 4)
1.0

May import: neurona.backend, neurona.tensor, neurona.autograd, neurona.ops, neurona.ops.sparse,
neurona.nn._config.
"""
from ..nn._config import deserialize
from . import functional
from .clip import ClipByGlobalNorm, ClipByNorm, ClipByValue, clip_grad_norm, clip_grad_value
from .optimizer import Optimizer
from .optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from .schedules import (ExponentialDecay, InverseTimeDecay, LearningRateSchedule, ReduceLROnPlateau,
                        StepDecay)

_CLASSES = {c.__name__: c for c in (SGD, Adagrad, RMSprop, Adam, AdamW)}
_NAMES = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def get(identifier):
    """An unbound optimiser from a name ('sgd', 'adam', ...) or a config dict; an optimiser
    object is returned as is.

    >>> get("adam")
    Adam(learning_rate=0.001, decay=0.0, beta_1=0.9, beta_2=0.999, epsilon=1e-08)
    """
    return deserialize(identifier, "optimizer", _NAMES, _CLASSES, Optimizer)


def serialize(optimizer) -> dict:
    """`{"class_name", "config"}` of an optimiser (its hyperparameters, not its state)."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "ClipByGlobalNorm", "ClipByNorm", "ClipByValue", "ExponentialDecay",
           "InverseTimeDecay", "LearningRateSchedule", "Optimizer", "RMSprop", "ReduceLROnPlateau", "StepDecay",
           "clip_grad_norm", "clip_grad_value", "get", "serialize"]
