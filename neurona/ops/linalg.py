"""Linear algebra: matmul (batched, with broadcasting of batch axes), dot, einsum.
May import: neurona.backend, neurona.autograd, neurona.ops._base.
"""
from __future__ import annotations

from .. import backend as B
from ..autograd.function import Function
from ..backend import kernels
from ._base import ShapeError, as_tensor, tensor_operands, unbroadcast


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
            return kernels.matmul(a, b)
        except ValueError:
            raise ShapeError(f"matmul: batch axes of a.shape={a.shape} and b.shape={b.shape} cannot be broadcast") from None

    def backward(self, g):
        a, b = self.inputs
        ga = unbroadcast(g @ b.swapaxes(-1, -2), a.shape) if a.requires_grad else None
        if not b.requires_grad:
            gb = None
        elif b.ndim == 2 and a.ndim > 2:  # a stack times one matrix: b's gradient sums over the stack, one GEMM
            gb = a.reshape(-1, a.shape[-1]).swapaxes(0, 1) @ g.reshape(-1, g.shape[-1])
        else:
            gb = unbroadcast(a.swapaxes(-1, -2) @ g, b.shape)
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


class Einsum(Function):
    """`subs` is explicit ("ij,jk->ik"). The gradient of operand i is the einsum of the upstream
    gradient with the other operands, onto operand i's indices; an index that only operand i has
    (summed away) comes back by broadcasting."""

    def forward(self, *arrays, subs):
        self.subs = subs
        return B.array_module(arrays[0]).einsum(subs, *arrays)

    def backward(self, g):
        ins, out = self.subs.split("->")
        ins = ins.split(",")
        grads = []
        for i, x in enumerate(self.inputs):
            if not x.requires_grad:
                grads.append(None)
                continue
            others = [t for j, t in enumerate(self.inputs) if j != i]
            seen = set(out).union(*(s for j, s in enumerate(ins) if j != i))
            kept = "".join(c for c in ins[i] if c in seen)
            r = Einsum.apply(g, *others, subs=",".join([out] + ins[:i] + ins[i + 1:]) + "->" + kept)
            shape = tuple(n if c in seen else 1 for c, n in zip(ins[i], x.shape))
            grads.append(r.reshape(shape).broadcast_to(x.shape))
        return tuple(grads)


def einsum(subscripts, *operands):
    """Einstein summation, as numpy.einsum / torch.einsum, over any number of operands;
    differentiable in each. Not supported: '...' and an index repeated within one operand
    (a diagonal or trace: use a mask and `sum`).

    >>> import neurona as nr
    >>> nr.einsum("ij,jk->ik", nr.ones((2, 3)), nr.ones((3, 4))).shape
    (2, 4)
    """
    ops = [as_tensor(t) for t in operands]
    subs = subscripts.replace(" ", "")
    ins = subs.split("->")[0].split(",")
    if "." in subs:
        raise ValueError(f"einsum: '...' is not supported in {subscripts!r}; write the indices out")
    if len(ins) != len(ops):
        raise ShapeError(f"einsum: {subscripts!r} names {len(ins)} operands, {len(ops)} given")
    if "->" not in subs:  # implicit output: the indices seen once, in alphabetical order
        letters = "".join(ins)
        subs += "->" + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    sizes = {}
    for k, (s, t) in enumerate(zip(ins, ops)):
        if len(s) != t.ndim or len(set(s)) != len(s):
            raise ShapeError(f"einsum: operand {k} has shape {t.shape}, subscripts {s!r} "
                             "(one distinct index per axis needed)")
        for c, n in zip(s, t.shape):
            if sizes.setdefault(c, n) != n:
                raise ShapeError(f"einsum: index {c!r} is {sizes[c]} in one operand and {n} in "
                                 f"operand {k} (shapes {[o.shape for o in ops]})")
    if len({t.dtype for t in ops}) > 1:
        raise TypeError(f"einsum: operands have dtypes {[str(t.dtype) for t in ops]}; cast them to one")
    return Einsum.apply(*ops, subs=subs)
