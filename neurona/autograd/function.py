"""`Function`: one differentiable operation, and a node of the define-by-run graph.

A subclass implements `forward(*arrays, **params)` on raw backend arrays (saving on `self` only
what backward needs) and `backward(grad)` that returns one gradient per input (None where none
is needed), written with differentiable Tensor ops so that the same formula gives higher-order
gradients when the engine runs it with `create_graph=True`.
May import: neurona.tensor, neurona.autograd.grad_mode.
"""
from __future__ import annotations

import weakref

from numpy import asarray as _asarray, generic as _numpy_scalar

from .grad_mode import state as _grad_state

# Set by neurona.graph while it traces: a callable (cls, inputs, params) that records the op and
# returns its output, or None to let this thread's call run eagerly. One global check per op.
_trace_hook = None


class Function:
    """Base class of every differentiable op.

    >>> import neurona as nr
    >>> class Square(nr.Function):
    ...     def forward(self, x):
    ...         return x * x
    ...     def backward(self, g):
    ...         (x,) = self.inputs
    ...         return 2 * x * g
    >>> x = nr.tensor([3.0], requires_grad=True)
    >>> Square.apply(x).backward(nr.ones(1)); x.grad.item()
    6.0
    """

    inputs: tuple = ()
    out_ref = None
    freed = False

    @classmethod
    def apply(cls, *inputs, **params):
        if _trace_hook is not None:
            out = _trace_hook(cls, inputs, params)
            if out is not None:
                return out
        fn = cls.__new__(cls)
        data = fn.forward(*[t.data for t in inputs], **params)
        if isinstance(data, _numpy_scalar):  # NumPy turns 0-d results into scalars
            data = _asarray(data)
        if _grad_state.enabled:
            for t in inputs:
                if t.requires_grad:
                    fn.inputs = inputs
                    out = Tensor._make(data, True, fn)
                    fn.out_ref = weakref.ref(out)
                    return out
        return Tensor._make(data, False, None)

    def forward(self, *arrays, **params):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    def needs_grad(self, i: int) -> bool:
        """Whether input `i` wants a gradient (skip computing the ones nobody needs)."""
        return self.inputs[i].requires_grad

    def output(self):
        """The Tensor this node produced (alive while the graph that uses it is)."""
        out = self.out_ref() if self.out_ref is not None else None
        if out is None:
            raise RuntimeError(f"{type(self).__name__}: its output was freed before backward")
        return out

    @property
    def name(self) -> str:
        return type(self).__name__


from ..tensor import Tensor  # noqa: E402  (Tensor imports Function too)
