"""`Function`: one differentiable operation, and a node of the define-by-run graph.

A subclass implements `forward(*arrays, **params)` on raw backend arrays (saving on `self` only
what backward needs) and `backward(grad)` that returns one gradient per input (None where none
is needed), written with differentiable Tensor ops so that the same formula gives higher-order
gradients when the engine runs it with `create_graph=True`.

A subclass also declares, as class attributes, the facts that graph mode's passes need about
it, so that no pass keeps its own table of op names:
* `elementwise`: the scalar expression of forward for the fusion pass (`"({0} * {1})"`, `{i}`
  standing for input i), a tuple with one more expression per array that forward saves on
  `self` (in the order it saves them), or a classmethod `(dtype, **params) -> str | tuple | None`
  when the expression depends on the parameters. The language is Python on scalars with `math`
  and `np` (`literal(x, dtype)` writes a typed constant); numba compiles it.
* `ufunc`: the name of a NumPy ufunc equal to forward that takes `out=`: the executor lets the
  op write into a planned buffer, or over its input for an in-place update.
* `method`: the name of a NumPy array method equal to forward, its parameters passed in order
  (`Transpose`: `a.transpose(axes)`): the executor calls it directly, without a Function object.
* `reduction`: the name of a NumPy ufunc whose `reduce(a, params["axes"], None, None,
  params["keepdims"])` equals forward (`Sum`: "add"), or a classmethod `(**params) -> str | None`
  when that depends on the parameters: the executor calls the reduction directly.
* `random`: forward draws random numbers, so no pass folds it to a constant or merges two calls.
* `differentiable`: False for an op whose output never takes part in a gradient (a comparison).
May import: numpy, neurona.tensor, neurona.autograd.grad_mode, neurona.autograd.tracing.
"""
from __future__ import annotations

import math
import weakref

from numpy import asarray as _asarray, dtype as _dtype, generic as _numpy_scalar

from . import tracing as _tracing
from .grad_mode import state as _grad_state


def literal(x, dtype) -> str:
    """A Python number as a typed scalar in an `elementwise` expression.

    >>> literal(0.5, "float32"), literal(float("-inf"), "float64")
    ('np.float32(0.5)', 'np.float64(-math.inf)')
    """
    x = float(x)
    text = repr(x) if math.isfinite(x) else ("math.nan" if x != x else ("math.inf" if x > 0 else "-math.inf"))
    return f"np.{_dtype(dtype).name}({text})"


class Function:
    """Base class of every differentiable op.

    >>> import neurona as nr
    >>> class Square(nr.Function):
    ...     elementwise = "({0} * {0})"   # lets nr.jit fuse it with its neighbours
    ...     def forward(self, x):
    ...         return x * x
    ...     def backward(self, g):
    ...         (x,) = self.inputs
    ...         return 2 * x * g
    >>> x = nr.tensor([3.0], requires_grad=True)
    >>> Square.apply(x).backward(nr.ones(1)); x.grad.item()
    6.0
    """

    # facts for graph mode (see the module docstring)
    elementwise = None
    ufunc = None
    method = None
    reduction = None
    random = False
    differentiable = True

    inputs: tuple = ()
    out_ref = None
    freed = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("forward", "backward"):
            if isinstance(cls.__dict__.get(name), staticmethod):
                raise TypeError(
                    f"{cls.__name__}.{name} is a @staticmethod taking ctx, as in PyTorch; in neurona {name} is an "
                    f"ordinary method: `def forward(self, x, ...)` gets the inputs' arrays and keeps what backward "
                    f"needs as attributes of self (no ctx.save_for_backward), and `def backward(self, grad)` "
                    f"returns one gradient per input, written with neurona ops. Call it as {cls.__name__}.apply(...)")

    @classmethod
    def apply(cls, *inputs, **params):
        """Run forward on the inputs' arrays and link the output into the graph when an input
        requires grad (and grad mode is on). The one place where ops are run and linked: graph
        mode's tracer is told about each call here, in the thread that traces only."""
        fn = cls.__new__(cls)
        arrays = [t._data for t in inputs]
        rec = _tracing._current.get() if _tracing.recording else None
        if rec is None:
            data = fn.forward(*arrays, **params)
            if isinstance(data, _numpy_scalar):  # NumPy makes 0-d results scalars
                data = _asarray(data)
        else:
            rec.check_inputs(cls, inputs)
            out = fn.forward(*arrays, **params)
            data = _asarray(out) if isinstance(out, _numpy_scalar) else out
            rec.record(cls, inputs, params, fn, data, data is not out, arrays)
        if _grad_state.enabled:
            for t in inputs:
                if t.requires_grad:
                    if not cls.differentiable:
                        break
                    fn.inputs = inputs
                    res = Tensor._make(data, True, fn)
                    fn.out_ref = weakref.ref(res)
                    return res
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
