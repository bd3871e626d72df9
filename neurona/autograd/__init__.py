"""Autograd: Function nodes, the backward engine, grad modes, the per-thread recording state of
graph mode (`is_tracing`) and numerical checks.
May import: neurona.tensor, neurona.backend.
"""
from .engine import run_backward
from .function import Function
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .tracing import is_tracing


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs` (leaves or intermediate tensors), as a
    tuple; `.grad` attributes are left alone.

    >>> import neurona as nr
    >>> x = nr.tensor(3.0, requires_grad=True)
    >>> (dx,) = nr.grad(x ** 3, [x], create_graph=True)
    >>> nr.grad(dx, [x])[0].item()   # d²(x³)/dx² = 6x
    18.0
    """
    from ..backend import array_module
    from ..tensor import Tensor

    single_in = isinstance(inputs, Tensor)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if single_in else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    seeds = []
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError("grad: an output does not require grad (nothing it depends on requires grad)")
        if g is None:
            if out.size != 1:
                raise RuntimeError(f"grad: grad_outputs is needed for a non-scalar output of shape {out.shape}")
            g = Tensor._make(array_module(out.data).ones_like(out.data), False, None)
        seeds.append(g if isinstance(g, Tensor) else Tensor(g, dtype=out.dtype, device=out.device))
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("grad: an input does not require grad")
    retain = create_graph if retain_graph is None else retain_graph
    result = run_backward(outputs, seeds, inputs, retain, create_graph)
    if not allow_unused and any(r is None for r in result):
        raise RuntimeError("grad: an input is not used to compute the outputs; pass allow_unused=True")
    return tuple(result)
