"""Helpers shared by the ops: turning constants into tensors, `unbroadcast`, shape errors.
May import: neurona.backend, neurona.tensor.
"""
from __future__ import annotations

from .. import backend as B
from ..tensor import Tensor


class ShapeError(ValueError):
    """Operands whose shapes do not fit the op; the message names the op and the shapes."""


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """`x` as a Tensor; a Python number takes the dtype (and device) of `like`."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float, bool)):
        xp = B.array_module(like.data)
        dtype = like.dtype if (B.is_floating(like.dtype) or isinstance(x, int)) else B.default_float
        return Tensor._make(xp.asarray(x, dtype=dtype), False, None)
    return Tensor(x)


def _float_if_int(t: Tensor, scalar) -> Tensor:
    # An integer tensor with a Python float gives float32, as in PyTorch (NumPy would give
    # float64: `images_uint8 / 255.0` would then slow every float32 model it feeds).
    if isinstance(scalar, float) and t.dtype.kind in "iub":
        return Tensor._make(t.data.astype(B.default_float), False, None)
    return t


def tensor_operands(a, b):
    """The two operands of a binary op as Tensors of one dtype (a Python number takes the other's)."""
    if isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            a = _float_if_int(a, b)
        return a, as_tensor(b, a)
    b = _float_if_int(as_tensor(b), a)
    return as_tensor(a, b), b


def unbroadcast(g: Tensor, shape: tuple) -> Tensor:
    """Sum `g` over the axes that broadcasting added or stretched, back to `shape`."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


def broadcast_error(op: str, *arrays) -> ShapeError:
    shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
    return ShapeError(f"{op}: shapes {shapes} cannot be broadcast together")


def normalize_axes(axis, ndim: int, op: str):
    """`axis` (None, int or tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ShapeError(f"{op}: axis {a} is out of range for a tensor with {ndim} dims")
        out.append(a % ndim if ndim else 0)
    return tuple(sorted(out))


def const(data) -> Tensor:
    """Wrap an array that takes no gradient (a mask, a scale)."""
    return Tensor._make(data, False, None)
