"""Gradient clipping (course topic 4, exploding gradients): by global norm and by value.
Both change `.grad` in place and are meant to run between `backward` and `step`.
May import: neurona.backend, neurona.autograd.grad_mode.
"""
from __future__ import annotations

import math

from .. import backend as B


def clip_grad_norm(params, max_norm, norm_type=2.0) -> float:
    """Scale every gradient by max_norm / total_norm when the norm of all gradients together
    exceeds `max_norm` (as `torch.nn.utils.clip_grad_norm_`); returns the norm before clipping.

    >>> import neurona as nr
    >>> w = nr.zeros(2, requires_grad=True); w.grad = nr.tensor([3.0, 4.0])
    >>> clip_grad_norm([w], 1.0), w.grad.numpy().round(4).tolist()
    (5.0, [0.6, 0.8])
    """
    grads = [p.grad.data for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        total = max(float(abs(g).max()) for g in grads)
    else:
        total = sum(float((abs(g.astype(B.float64)) ** norm_type).sum()) for g in grads) ** (1.0 / norm_type)
    coef = float(max_norm) / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= g.dtype.type(coef)
    return total


def clip_grad_value(params, clip_value) -> None:
    """Clip every gradient element to [−clip_value, clip_value] in place.

    >>> import neurona as nr
    >>> w = nr.zeros(3, requires_grad=True); w.grad = nr.tensor([-5.0, 0.5, 2.0])
    >>> clip_grad_value([w], 1.0); w.grad.tolist()
    [-1.0, 0.5, 1.0]
    """
    v = float(clip_value)
    for p in params:
        if p.grad is not None:
            B.array_module(p.grad.data).clip(p.grad.data, -v, v, out=p.grad.data)
