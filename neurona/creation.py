"""Creating tensors: tensor, zeros, ones, full, arange, rand, randn, eye and the *_like forms.
Random ones draw from the backend generator seeded by `manual_seed`.
May import: neurona.backend, neurona.tensor.
"""
from __future__ import annotations

from . import backend as B
from .tensor import Tensor


def tensor(data, dtype=None, requires_grad=False, device=None, name=None):
    """A Tensor from a list, number or array. Python floats become float32; NumPy arrays keep
    their dtype and are wrapped without a copy when they are already on the target device and of
    the asked dtype (as `torch.as_tensor` does): in-place updates of the tensor (an optimiser
    step) show in the array. Pass `array.copy()` to keep the original.

    >>> import neurona as nr
    >>> nr.tensor([[1.0, 2.0]]).shape
    (1, 2)
    """
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, device=device, name=name)


def _shape(shape):
    if len(shape) == 1 and not isinstance(shape[0], int):
        return tuple(shape[0])
    return tuple(shape)


def _made(data, requires_grad):
    return Tensor._make(data, False, None).requires_grad_(requires_grad)


def _float(dtype):
    return B.default_float if dtype is None else B.as_dtype(dtype)


def zeros(*shape, dtype=None, requires_grad=False, device="cpu"):
    """A tensor of zeros; `zeros(2, 3)` and `zeros((2, 3))` both work (float32 by default)."""
    return _made(B.module_for(device).zeros(_shape(shape), _float(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad=False, device="cpu"):
    """A tensor of ones; `ones(2, 3)` and `ones((2, 3))` both work (float32 by default)."""
    return _made(B.module_for(device).ones(_shape(shape), _float(dtype)), requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False, device="cpu"):
    """A tensor of `shape` filled with `fill_value` (float32 by default)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return _made(B.module_for(device).full(shape, fill_value, _float(dtype)), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False, device="cpu"):
    """The n×m identity matrix (m defaults to n)."""
    return _made(B.module_for(device).eye(n, m, dtype=_float(dtype)), requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False, device="cpu"):
    """Like numpy.arange; integers give int64, floats float32 unless `dtype` says otherwise."""
    xp = B.module_for(device)
    if dtype is None and all(isinstance(v, int) for v in (start, stop or 0, step)):
        dtype = B.int64
    return _made(xp.arange(start, stop, step, dtype=_float(dtype)), requires_grad)


def linspace(start, stop, num=50, endpoint=True, dtype=None, requires_grad=False, device="cpu"):
    """`num` evenly spaced values from `start` to `stop` (included unless `endpoint=False`), as
    numpy.linspace; float32 by default.

    >>> import neurona as nr
    >>> nr.linspace(0, 1, 5).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if num < 0:
        raise ValueError(f"linspace: num must be >= 0, got {num}")
    xp = B.module_for(device)
    return _made(xp.linspace(start, stop, num, endpoint=endpoint).astype(_float(dtype)), requires_grad)


def rand(*shape, dtype=None, requires_grad=False, device="cpu"):
    """Uniform samples in [0, 1)."""
    xp = B.module_for(device)
    data = B.generator(xp).random(_shape(shape)).astype(_float(dtype))
    return _made(data, requires_grad)


def randn(*shape, dtype=None, requires_grad=False, device="cpu"):
    """Standard normal samples."""
    xp = B.module_for(device)
    data = B.generator(xp).standard_normal(_shape(shape)).astype(_float(dtype))
    return _made(data, requires_grad)


def randint(low, high, shape, dtype=None, device="cpu"):
    """Integers uniform in [low, high) (int64 by default)."""
    xp = B.module_for(device)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return _made(B.generator(xp).integers(low, high, shape).astype(dtype or B.int64), False)


def _like(fn):
    def like(t, dtype=None, requires_grad=False, **kw):
        return fn(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=t.device, **kw)

    like.__name__ = fn.__name__ + "_like"
    like.__doc__ = f"`{fn.__name__}` with the shape, dtype and device of `t`."
    return like


zeros_like, ones_like, rand_like, randn_like = _like(zeros), _like(ones), _like(rand), _like(randn)


def full_like(t, fill_value, dtype=None, requires_grad=False):
    """`full` with the shape, dtype and device of `t`."""
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad, device=t.device)
