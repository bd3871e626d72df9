"""Movement ops: reshape, transpose, broadcast, squeeze/expand, concatenate/stack/split, pad,
indexing (basic and integer-array; gradient by scatter-add) and gather.
May import: neurona.backend (and its kernels), neurona.tensor, neurona.autograd, neurona.ops._base.
"""
from __future__ import annotations

from .. import backend as B
from ..backend import kernels
from ..autograd.function import Function
from ..tensor import Tensor
from ._base import ShapeError, as_tensor, normalize_axes, unbroadcast


class Reshape(Function):
    method = "reshape"  # graph mode calls a.reshape(shape) (its shapes were checked when traced)

    def forward(self, a, shape):
        try:
            return a.reshape(shape)
        except ValueError:
            raise ShapeError(f"reshape: cannot reshape shape {a.shape} ({a.size} elements) into {shape}") from None

    def backward(self, g):
        return g.reshape(self.inputs[0].shape)


class Transpose(Function):
    method = "transpose"

    def forward(self, a, axes):
        self.axes = axes
        return a.transpose(axes)

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for i, ax in enumerate(self.axes):
            inverse[ax] = i
        return g.transpose(tuple(inverse))


class BroadcastTo(Function):
    # element i of the output is the input's element broadcast to i: graph mode's fusion folds
    # it into its elementwise readers (`g * mask` after a broadcast reads g as it is)
    elementwise = "{0}"

    def forward(self, a, shape):
        try:
            return B.array_module(a).broadcast_to(a, shape)
        except ValueError:
            raise ShapeError(f"broadcast_to: shape {a.shape} cannot be broadcast to {shape}") from None

    def backward(self, g):
        return unbroadcast(g, self.inputs[0].shape)


class Concatenate(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        try:
            return B.array_module(arrays[0]).concatenate(arrays, axis=axis)
        except ValueError:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ShapeError(f"concatenate: shapes {shapes} differ outside axis {axis}") from None

    def backward(self, g):
        out, start = [], 0
        for t in self.inputs:
            n = t.shape[self.axis]
            key = (slice(None),) * self.axis + (slice(start, start + n),)
            out.append(g[key] if t.requires_grad else None)
            start += n
        return tuple(out)


class Pad(Function):
    def forward(self, a, pad_width, value):
        self.pad_width = pad_width
        return B.array_module(a).pad(a, pad_width, constant_values=value)

    def backward(self, g):
        return g[tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(self.pad_width))]


def _is_basic(key) -> bool:
    return all(k is None or k is Ellipsis or isinstance(k, (int, slice)) for k in key)


class Index(Function):
    def forward(self, a, key):
        self.key = key
        try:
            return a[key]
        except IndexError as e:
            raise IndexError(f"index: {e} (tensor shape {a.shape})") from None

    def backward(self, g):
        return IndexAdd.apply(g, key=self.key, shape=self.inputs[0].shape)


class IndexAdd(Function):
    """zeros(shape) with `g` added at `key` (repeated indices add up): the adjoint of Index."""

    def forward(self, g, key, shape):
        self.key = key
        out = B.array_module(g).zeros(shape, dtype=g.dtype)
        if _is_basic(key):
            out[key] = g
        elif not kernels.index_add_rows(out, key, g):  # an embedding's backward, ~10x add.at's speed
            B.array_module(g).add.at(out, key, g)
        return out

    def backward(self, gg):
        return gg[self.key]


class Gather(Function):
    def forward(self, a, indices, axis):
        self.indices, self.axis = indices, axis
        return B.array_module(a).take_along_axis(a, indices, axis=axis)

    def backward(self, g):
        return ScatterAdd.apply(g, indices=self.indices, axis=self.axis, shape=self.inputs[0].shape)


class ScatterAdd(Function):
    """zeros(shape) with `g` added along `axis` at `indices`: the adjoint of Gather."""

    def forward(self, g, indices, axis, shape):
        self.indices, self.axis = indices, axis
        xp = B.array_module(g)
        out = xp.zeros(shape, dtype=g.dtype)
        grid = list(xp.ix_(*[xp.arange(n) for n in indices.shape]))
        grid[axis] = indices
        xp.add.at(out, tuple(grid), g)
        return out

    def backward(self, gg):
        return gather(gg, self.indices, self.axis)


def raw_key(key, like=None):
    """An indexing key with Tensors replaced by their arrays (bool masks become indices); lists
    and host index arrays go to the backend of array `like`, the array being indexed."""
    if not isinstance(key, tuple):
        key = (key,)
    xp = B.numpy if like is None else B.array_module(like)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            k = k.data
        if isinstance(k, list) or (xp is not B.numpy and isinstance(k, B.numpy.ndarray)):
            k = xp.asarray(k)
        if hasattr(k, "dtype") and k.dtype == bool:
            out.extend(k.nonzero())
        else:
            out.append(k)
    return tuple(out)


def reshape(a, shape):
    """`a` with a new shape (one entry may be -1); a view when the layout allows."""
    a = as_tensor(a)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if shape == a.shape:
        return a
    return Reshape.apply(a, shape=shape)


def transpose(a, axes=None):
    """Permute axes (reverse them when `axes` is None)."""
    a = as_tensor(a)
    axes = tuple(range(a.ndim))[::-1] if axes is None else tuple(ax % a.ndim for ax in axes)
    if sorted(axes) != list(range(a.ndim)):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of {a.ndim} dims")
    return Transpose.apply(a, axes=axes)


def swapaxes(a, axis1, axis2):
    """`a` with two axes exchanged."""
    a = as_tensor(a)
    axes = list(range(a.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(a, axes)


def broadcast_to(a, shape):
    """`a` broadcast to `shape` (a read-only view)."""
    a = as_tensor(a)
    shape = tuple(shape)
    return a if shape == a.shape else BroadcastTo.apply(a, shape=shape)


def squeeze(a, axis=None):
    """Drop axes of length 1 (all of them, or those in `axis`)."""
    a = as_tensor(a)
    axes = normalize_axes(axis, a.ndim, "squeeze") if axis is not None else [i for i, n in enumerate(a.shape) if n == 1]
    for i in axes:
        if a.shape[i] != 1:
            raise ShapeError(f"squeeze: axis {i} has length {a.shape[i]}, not 1 (shape {a.shape})")
    return reshape(a, [n for i, n in enumerate(a.shape) if i not in axes])


def expand_dims(a, axis):
    """Insert an axis of length 1 at `axis`."""
    a = as_tensor(a)
    axis = axis % (a.ndim + 1)
    return reshape(a, a.shape[:axis] + (1,) + a.shape[axis:])


unsqueeze = expand_dims  # PyTorch's name


def flatten(a, start_axis=0):
    """Collapse axes from `start_axis` on into one (start_axis=1 keeps the batch axis)."""
    a = as_tensor(a)
    return reshape(a, a.shape[:start_axis] + (-1,))


def concatenate(tensors, axis=0):
    """Join tensors along an existing axis."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    return Concatenate.apply(*tensors, axis=axis % tensors[0].ndim)


def stack(tensors, axis=0):
    """Join tensors of one shape along a new axis."""
    tensors = [as_tensor(t) for t in tensors]
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ShapeError(f"stack: all shapes must be equal, got {sorted(shapes)}")
    return concatenate([expand_dims(t, axis) for t in tensors], axis)


def split(a, indices_or_sections, axis=0):
    """Split into equal sections (an int) or at the given indices; a list of tensors."""
    a = as_tensor(a)
    n = a.shape[axis]
    if isinstance(indices_or_sections, int):
        if n % indices_or_sections:
            raise ShapeError(f"split: axis {axis} of length {n} does not split into {indices_or_sections} equal sections")
        step = n // indices_or_sections
        bounds = list(range(0, n + 1, step))
    else:
        bounds = [0, *indices_or_sections, n]
    lead = (slice(None),) * (axis % a.ndim)
    return [a[lead + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:])]


def pad(a, pad_width, value=0.0):
    """Constant padding; `pad_width` is ((before, after), ...) per axis, or one int for all."""
    a = as_tensor(a)
    if isinstance(pad_width, int):
        pad_width = ((pad_width, pad_width),) * a.ndim
    pad_width = tuple((int(lo), int(hi)) for lo, hi in pad_width)
    if len(pad_width) != a.ndim:
        raise ShapeError(f"pad: pad_width has {len(pad_width)} entries for a tensor with {a.ndim} dims")
    return Pad.apply(a, pad_width=pad_width, value=value)


def index(a, key):
    """`a[key]`: basic (ints, slices, None, ...) and integer-array/bool indexing.
    The gradient adds up at repeated indices (scatter-add)."""
    return Index.apply(a, key=raw_key(key, a.data))


def gather(a, indices, axis):
    """`take_along_axis`: out[..., i, ...] = a[..., indices[..., i, ...], ...] along `axis`."""
    a = as_tensor(a)
    idx = indices.data if isinstance(indices, Tensor) else B.array_module(a.data).asarray(indices)
    if idx.ndim != a.ndim:
        raise ShapeError(f"gather: indices shape {idx.shape} must have as many dims as a {a.shape}")
    return Gather.apply(a, indices=idx, axis=axis % a.ndim)
