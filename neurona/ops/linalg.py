"""Linear algebra: matmul (batched, with broadcasting of batch axes) and dot.
May import: neurona.backend, neurona.autograd, neurona.ops._base.
"""
from __future__ import annotations

from ..autograd.function import Function
from ._base import ShapeError, tensor_operands, unbroadcast


class MatMul(Function):
    """a @ b for a.ndim >= 2 and b.ndim >= 2 (1-D operands are promoted by `matmul`)."""

    ufunc = "matmul"  # the executor may give it an output buffer

    def forward(self, a, b):
        if a.shape[-1] != b.shape[-2]:
            raise ShapeError(
                f"matmul: a.shape[-1] ({a.shape[-1]}) must equal b.shape[-2] ({b.shape[-2]}); "
                f"a.shape={a.shape}, b.shape={b.shape}"
            )
        try:
            return a @ b
        except ValueError:
            raise ShapeError(f"matmul: batch axes of a.shape={a.shape} and b.shape={b.shape} cannot be broadcast") from None

    def backward(self, g):
        a, b = self.inputs
        ga = unbroadcast(g @ b.swapaxes(-1, -2), a.shape) if a.requires_grad else None
        gb = unbroadcast(a.swapaxes(-1, -2) @ g, b.shape) if b.requires_grad else None
        return ga, gb


def matmul(a, b):
    """Matrix product with NumPy's rules: batched over leading axes, 1-D operands promoted.

    >>> import neurona as nr
    >>> (nr.ones((2, 3)) @ nr.ones((3, 4))).shape
    (2, 4)
    """
    a, b = tensor_operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: operands must have at least 1 dim; a.shape={a.shape}, b.shape={b.shape}")
    if a.ndim >= 2 and b.ndim >= 2:
        return MatMul.apply(a, b)
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ShapeError(
            f"matmul: a.shape[-1] ({a.shape[-1]}) must equal b.shape[{-2 if b.ndim > 1 else 0}] "
            f"({b2.shape[-2]}); a.shape={a.shape}, b.shape={b.shape}"
        )
    out = MatMul.apply(a2, b2)
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out


def dot(a, b):
    """Inner product of 1-D tensors; matmul otherwise."""
    a, b = tensor_operands(a, b)
    if a.ndim == 1 and b.ndim == 1:
        if a.shape != b.shape:
            raise ShapeError(f"dot: vectors of different lengths; a.shape={a.shape}, b.shape={b.shape}")
        return (a * b).sum()
    return matmul(a, b)
