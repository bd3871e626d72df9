"""neurona: a deep-learning framework you can read down to the last gradient.

>>> import neurona as nr
>>> x, y, z = nr.tensor(-2.0, requires_grad=True), nr.tensor(5.0, requires_grad=True), nr.tensor(-4.0, requires_grad=True)
>>> f = (x + y) * z
>>> f.backward()
>>> f.item(), x.grad.item(), y.grad.item(), z.grad.item()
(-12.0, -4.0, -4.0, 3.0)

The heavier parts (layers, models, optimisers, graph mode, the applications) load on first use,
so `import neurona` stays light and changes nothing process-wide.
May import: neurona (backend, autograd, creation, ops, tensor, functional); the rest lazily, by name.
"""
from . import backend
from .autograd import Function, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from .backend import (bool_, float16, float32, float64, get_num_threads, int8, int16, int32, int64, manual_seed,
                      set_num_threads, uint8)
from .creation import (arange, eye, full, full_like, linspace, ones, ones_like, rand, rand_like, randint, randn,
                       randn_like, tensor, zeros, zeros_like)
from .ops import *  # noqa: F401,F403 - every op is also nr.<op>
from .ops import ShapeError
from .tensor import Tensor
from . import functional
from . import functional as F

__version__ = "0.1.0"


_LAZY_MODULES = ("viz", "nn", "layers", "models", "optim", "optimizers", "losses", "metrics", "initializers",
                 "regularizers", "constraints", "activations", "callbacks", "data", "datasets", "saving",
                 "utils", "vision")


def __getattr__(name):
    if name in _LAZY_MODULES:  # heavier parts load on first use: `import neurona` stays light
        import importlib

        return importlib.import_module("." + name, __name__)
    if name in ("graph", "jit", "function"):  # graph mode loads on first use
        import importlib

        graph = importlib.import_module(".graph", __name__)
        return graph if name == "graph" else getattr(graph, name)
    raise AttributeError(f"module 'neurona' has no attribute {name!r}")
