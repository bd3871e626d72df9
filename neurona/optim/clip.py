"""Gradient clipping (course topic 4, exploding gradients): by global norm and by value.
Both change `.grad` in place, with Tensor ops (so an optimiser's clipping can be traced by
`nr.jit`), and are meant to run between `backward` and `step`.
May import: neurona.backend, neurona.ops, neurona.autograd.grad_mode.
"""
from __future__ import annotations

import math

from .. import backend as B
from .. import ops
from ..autograd.grad_mode import no_grad


def _clip_grad_norm(params, max_norm, norm_type=2.0):
    """`clip_grad_norm` that returns the total norm as a float64 0-d Tensor (None when no
    parameter has a gradient): no Python value is read, so it can run inside a trace."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    norm_type = float(norm_type)
    with no_grad():
        if math.isinf(norm_type):
            total = None
            for g in grads:
                m = ops.abs(g).max().astype(B.float64)
                total = m if total is None else ops.maximum(total, m)
        else:
            total = None
            for g in grads:
                s = (ops.abs(g.astype(B.float64)) ** norm_type).sum()
                total = s if total is None else total + s
            total = total ** (1.0 / norm_type)
        # coef ≥ 1 would not clip: multiplying by exactly 1.0 leaves the gradient unchanged
        coef = ops.minimum(float(max_norm) / (total + 1e-6), 1.0)
        for g in grads:
            g *= coef.astype(g.dtype)
    return total


def clip_grad_norm(params, max_norm, norm_type=2.0) -> float:
    """Scale every gradient by max_norm / total_norm when the norm of all gradients together
    exceeds `max_norm` (as `torch.nn.utils.clip_grad_norm_`); returns the norm before clipping.

    >>> import neurona as nr
    >>> w = nr.zeros(2, requires_grad=True); w.grad = nr.tensor([3.0, 4.0])
    >>> clip_grad_norm([w], 1.0), w.grad.numpy().round(4).tolist()
    (5.0, [0.6, 0.8])
    """
    total = _clip_grad_norm(params, max_norm, norm_type)
    return 0.0 if total is None else float(total.item())


def clip_grad_value(params, clip_value) -> None:
    """Clip every gradient element to [−clip_value, clip_value] in place.

    >>> import neurona as nr
    >>> w = nr.zeros(3, requires_grad=True); w.grad = nr.tensor([-5.0, 0.5, 2.0])
    >>> clip_grad_value([w], 1.0); w.grad.tolist()
    [-1.0, 0.5, 1.0]
    """
    v = float(clip_value)
    with no_grad():
        for p in params:
            if p.grad is not None:
                p.grad[...] = ops.clip(p.grad, -v, v)
