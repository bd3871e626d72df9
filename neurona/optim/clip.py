"""Gradient clipping (course topic 4, exploding gradients): by global norm, by each gradient's
norm and by value.

Two forms of each: the gradient transforms `ClipByGlobalNorm`, `ClipByNorm` and `ClipByValue`
(callables `fn(grads, params) -> grads` that return new gradients, the links of an optimiser's
`gradient_transforms` chain that `clipnorm`/`clipvalue`/`global_clipnorm` create), and the
PyTorch-style functions `clip_grad_norm` and `clip_grad_value` that change each parameter's
`.grad` (to be called between `backward` and `step`). Everything is written with Tensor ops and
reads no Python value, so an optimiser's clipping can be traced by `nr.jit`. Row-sparse
gradients (`Embedding(sparse=True)`) are coalesced first: the norm of a row is the norm of the
sum of its duplicates.
May import: neurona.backend, neurona.ops, neurona.ops.sparse, neurona.autograd.grad_mode.
"""
from __future__ import annotations

import math

from .. import backend as B
from .. import ops
from ..autograd.grad_mode import no_grad
from ..ops.sparse import RowSparse


def _dense_part(g):
    """The values that a norm or a clip reads: a dense gradient itself, a row-sparse one's
    summed rows."""
    return g.values if isinstance(g, RowSparse) else g


def _total_norm(grads, norm_type=2.0):
    """The norm of all gradients together as a float64 0-d Tensor (row-sparse ones coalesced)."""
    norm_type = float(norm_type)
    total = None
    for g in grads:
        g = _dense_part(g)
        if math.isinf(norm_type):
            part = ops.abs(g).max().astype(B.float64)
            total = part if total is None else ops.maximum(total, part)
        else:
            g = g.astype(B.float64)
            # for norm 2, x·x is |x|² to the bit, without abs's pass (and the sign it saves)
            part = (g * g if norm_type == 2.0 else ops.abs(g) ** norm_type).sum()
            total = part if total is None else total + part
    return total if math.isinf(norm_type) else total ** (1.0 / norm_type)


def _scale(grads, max_norm, total):
    # coef ≥ 1 would not clip: multiplying by exactly 1.0 leaves the gradient unchanged
    coef = ops.minimum(float(max_norm) / (total + 1e-6), 1.0)
    return [g * coef.astype(g.dtype) for g in grads]


def _coalesced(grads):
    return [g.coalesce() if isinstance(g, RowSparse) else g for g in grads]


class ClipByGlobalNorm:
    """Gradient transform: scale every gradient by max_norm / total_norm when the norm of all
    gradients together exceeds `max_norm` (Keras' `global_clipnorm`, optax's
    `clip_by_global_norm`).

    >>> import neurona as nr
    >>> [round(g.item(), 4) for g in ClipByGlobalNorm(1.0)([nr.tensor([3.0]), nr.tensor([4.0])], None)]
    [0.6, 0.8]
    """

    def __init__(self, max_norm):
        self.max_norm = float(max_norm)

    def __call__(self, grads, params):
        present = [g for g in grads if g is not None]
        if not present:
            return list(grads)
        present = _coalesced(present)
        scaled = iter(_scale(present, self.max_norm, _total_norm(present)))
        return [None if g is None else next(scaled) for g in grads]

    def __repr__(self):
        return f"ClipByGlobalNorm({self.max_norm})"


class ClipByNorm:
    """Gradient transform: clip each gradient to L2 norm `max_norm` on its own (Keras' `clipnorm`).

    >>> import neurona as nr
    >>> ClipByNorm(1.0)([nr.tensor([3.0, 4.0])], None)[0].numpy().round(4).tolist()
    [0.6, 0.8]
    """

    def __init__(self, max_norm):
        self.max_norm = float(max_norm)

    def __call__(self, grads, params):
        out = []
        for g in grads:
            if g is not None:
                (g,) = _coalesced([g])
                (g,) = _scale([g], self.max_norm, _total_norm([g]))
            out.append(g)
        return out

    def __repr__(self):
        return f"ClipByNorm({self.max_norm})"


class ClipByValue:
    """Gradient transform: clip every gradient element to [−value, value] (Keras' `clipvalue`).

    >>> import neurona as nr
    >>> ClipByValue(1.0)([nr.tensor([-5.0, 0.5, 2.0])], None)[0].tolist()
    [-1.0, 0.5, 1.0]
    """

    def __init__(self, value):
        self.value = float(value)

    def __call__(self, grads, params):
        v = self.value
        out = []
        for g in grads:
            if isinstance(g, RowSparse):
                g = g.coalesce()
                g = RowSparse(g.indices, ops.clip(g.values, -v, v), g.shape, coalesced=True)
            elif g is not None:
                g = ops.clip(g, -v, v)
            out.append(g)
        return out

    def __repr__(self):
        return f"ClipByValue({self.value})"


def _clip_in_place(params, transform):
    """Run `transform` on the parameters' gradients and store the results as their `.grad`."""
    params = [p for p in params if p.grad is not None]
    with no_grad():
        for p, g in zip(params, transform([p.grad for p in params], params)):
            p.grad = g


def clip_grad_norm(params, max_norm, norm_type=2.0) -> float:
    """Scale every gradient by max_norm / total_norm when the norm of all gradients together
    exceeds `max_norm` (as `torch.nn.utils.clip_grad_norm_`); returns the norm before clipping.

    >>> import neurona as nr
    >>> w = nr.zeros(2, requires_grad=True); w.grad = nr.tensor([3.0, 4.0])
    >>> clip_grad_norm([w], 1.0), w.grad.numpy().round(4).tolist()
    (5.0, [0.6, 0.8])
    """
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    with no_grad():
        grads = _coalesced([p.grad for p in params])
        total = _total_norm(grads, norm_type)
        for p, g in zip(params, _scale(grads, max_norm, total)):
            p.grad = g
    return float(total.item())


def clip_grad_value(params, clip_value) -> None:
    """Clip every gradient element to [−clip_value, clip_value].

    >>> import neurona as nr
    >>> w = nr.zeros(3, requires_grad=True); w.grad = nr.tensor([-5.0, 0.5, 2.0])
    >>> clip_grad_value([w], 1.0); w.grad.tolist()
    [-1.0, 0.5, 1.0]
    """
    _clip_in_place(params, ClipByValue(clip_value))
