"""Row-sparse gradients: `RowSparse` and the embedding lookup that produces one.

A lookup of a batch of ids in a (V, D) table touches a few rows, but its dense gradient is a
full (V, D) array, mostly zeros, built and then read by the optimiser at every step. With
`embedding(ids, weight, sparse=True)` the gradient delivered to the table is a `RowSparse`
(the ids and one gradient row per id, duplicates kept and summed by `coalesce`), which SGD,
Adagrad and Adam update row by row (`neurona.optim`). The lookup falls back to the dense
gradient wherever a sparse one could not be used: when the table is not a leaf (its gradient
flows on into other ops), when the backward records a graph (`create_graph=True`: the
gradient must be differentiable) and while `nr.jit` traces (a replay reads its ids live).
May import: neurona.backend, neurona.autograd, neurona.tensor, neurona.ops.
"""
from __future__ import annotations

from .. import backend as B
from ..autograd.grad_mode import state as _grad_state
from ..autograd.tracing import is_tracing
from ..tensor import Tensor
from .movement import Index


class RowSparse:
    """The gradient of a (V, ...) weight that is zero outside a few rows: `values[k]` is added to
    row `indices[k]` (repeated indices add up). It knows its dense `shape`, turns into a dense
    Tensor with `to_dense()` (or `numpy()`), adds to another gradient (`+`) and scales by a
    number or a 0-d Tensor (`*`).

    >>> import neurona as nr
    >>> g = RowSparse([2, 0, 2], nr.tensor([[1.0], [2.0], [3.0]]), (4, 1))
    >>> g.coalesce().indices.tolist(), g.coalesce().values.tolist(), g.numpy().ravel().tolist()
    ([0, 2], [[2.0], [4.0]], [2.0, 0.0, 4.0, 0.0])
    """

    __slots__ = ("indices", "values", "shape", "coalesced")
    is_sparse = True  # how the autograd engine, below ops, tells it from a Tensor

    def __init__(self, indices, values, shape, coalesced=False):
        values = values if isinstance(values, Tensor) else Tensor(values)
        self.indices = B.array_module(values.data).asarray(indices).reshape(-1)
        self.values, self.shape, self.coalesced = values, tuple(shape), coalesced
        if values.shape != (self.indices.size, *self.shape[1:]):
            raise ValueError(f"RowSparse: values shape {values.shape} must be (len(indices)={self.indices.size}, "
                             f"*{self.shape[1:]}) for a gradient of shape {self.shape}")

    dtype = property(lambda self: self.values.dtype)
    device = property(lambda self: self.values.device)
    ndim = property(lambda self: len(self.shape))

    def coalesce(self) -> RowSparse:
        """The same gradient with sorted, unique indices (the rows of duplicates summed)."""
        if self.coalesced:
            return self
        xp, values = B.array_module(self.indices), self.values.data
        rows, inverse = xp.unique(self.indices, return_inverse=True)
        width = int(B.numpy.prod(self.shape[1:]))
        summed = xp.zeros((rows.size, *self.shape[1:]), dtype=values.dtype)
        # add.at adds in id order, as the dense gradient does (so the sums are bitwise the same),
        # on flat indices: NumPy's fast path for 1-d indices, much faster than add.at on rows
        flat = (inverse.reshape(-1, 1) * width + xp.arange(width)).reshape(-1)
        xp.add.at(summed.reshape(-1), flat, values.reshape(-1))
        return RowSparse(rows, Tensor._make(summed, False, None), self.shape, coalesced=True)

    def to_dense(self) -> Tensor:
        """The (V, ...) gradient as a dense Tensor."""
        xp = B.array_module(self.indices)
        out = xp.zeros(self.shape, dtype=self.values.dtype)
        xp.add.at(out, self.indices, self.values.data)
        return Tensor._make(out, False, None)

    def numpy(self):
        return self.to_dense().numpy()

    def detach(self) -> RowSparse:
        return self  # its values never carry a graph

    def __add__(self, other):
        """Two row-sparse gradients concatenate (summed when coalesced); a dense one makes the
        sum dense."""
        if isinstance(other, RowSparse):
            if other.shape != self.shape:
                raise ValueError(f"RowSparse: cannot add gradients of shapes {self.shape} and {other.shape}")
            xp = B.array_module(self.indices)
            return RowSparse(xp.concatenate([self.indices, other.indices]),
                             Tensor._make(xp.concatenate([self.values.data, other.values.data]), False, None),
                             self.shape)
        if isinstance(other, Tensor):
            if other.shape != self.shape:
                raise ValueError(f"RowSparse: cannot add a gradient of shape {other.shape} to one of {self.shape}")
            xp = B.array_module(other.data)
            out = xp.array(other.data, dtype=xp.result_type(other.data, self.values.data))
            xp.add.at(out, self.indices, self.values.data)
            return Tensor._make(out, False, None)
        return NotImplemented

    __radd__ = __add__

    def __mul__(self, scale):
        return RowSparse(self.indices, self.values * scale, self.shape, self.coalesced)

    __rmul__ = __mul__

    def __repr__(self):
        return f"RowSparse(shape={self.shape}, rows={self.indices.size}, dtype={self.dtype})"


class EmbeddingLookup(Index):
    """`weight[ids]` whose gradient for a leaf table is a `RowSparse` (see the module docstring)."""

    def backward(self, g):
        weight = self.inputs[0]
        if weight._ctx is not None or _grad_state.enabled or is_tracing():
            return super().backward(g)
        return RowSparse(self.key, g.detach().reshape((-1, *weight.shape[1:])), weight.shape)
