"""`Tensor`: an array from the backend plus what autograd needs (grad, requires_grad, the
Function that made it). Operators and methods are sugar over `neurona.ops`.

Graph mode's hooks: while this thread traces (`neurona.autograd.tracing`), reading `.data` or
`.grad`, creating a tensor, an in-place update, `t[k] = v`, `bool(t)`/`float(t)`/`t.item()`...
and `repr(t)` tell the thread's recorder; in every other thread, and whenever nothing is traced,
each hook costs one check of a module attribute.
May import: neurona.backend, neurona.autograd, neurona.ops (at the bottom, for the sugar).
"""
from __future__ import annotations

from . import backend as B
from .autograd import tracing as _tracing
from .autograd.grad_mode import state as _grad_state


class Tensor:
    """An n-dimensional array that can record how it was computed.

    >>> import neurona as nr
    >>> x = nr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad.tolist()
    [2.0, 4.0, 6.0]
    """

    # `data` and `grad` are properties over the `_data` and `_grad` slots (defined below the class)
    __slots__ = ("_data", "_grad", "requires_grad", "_ctx", "_retain_grad", "name", "__weakref__")
    __array_priority__ = 1000  # numpy_array * tensor -> Tensor.__rmul__

    def __init__(self, data, dtype=None, requires_grad=False, device=None, name=None):
        if isinstance(data, Tensor):
            data = data.data
        dtype = B.as_dtype(dtype)
        if device is None:
            xp = B.array_module(data)
        else:
            xp = B.module_for(device)
            data = B.to_device(data, device) if B.is_array(data) else data
        arr = xp.asarray(data, dtype=dtype)
        if dtype is None and arr.dtype == B.float64 and not hasattr(data, "dtype"):
            arr = arr.astype(B.default_float)  # Python floats become float32, as in PyTorch
        self._data = arr
        self._grad = None
        self._ctx = None
        self._retain_grad = False
        self.name = name
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)
        if _tracing.recording:
            _born(self)

    @classmethod
    def _make(cls, data, requires_grad, ctx):
        t = cls.__new__(cls)
        t._data = data
        t._grad = None
        t.requires_grad = requires_grad
        t._ctx = ctx
        t._retain_grad = False
        t.name = None
        if _tracing.recording:
            _born(t)
        return t

    # -- facts ----------------------------------------------------------------------------
    shape = property(lambda self: self._data.shape)
    ndim = property(lambda self: self._data.ndim)
    dtype = property(lambda self: self._data.dtype)
    size = property(lambda self: self._data.size)
    device = property(lambda self: B.device_of(self._data))
    grad_fn = property(lambda self: self._ctx)
    is_leaf = property(lambda self: self._ctx is None)
    T = property(lambda self: _ops.transpose(self))

    def numpy(self):
        """The data as a NumPy array (shared memory on CPU, a copy from a GPU)."""
        if _tracing.recording:
            _concrete(self, "numpy")
        return self._data if self.device == "cpu" else self._data.get()

    def item(self):
        if _tracing.recording:
            _concrete(self, "item")
        return self._data.item()

    def tolist(self):
        if _tracing.recording:
            _concrete(self, "tolist")
        return self._data.tolist()

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        if _tracing.recording:
            _concrete(self, "__bool__")
        return bool(self._data)

    def __float__(self):
        if _tracing.recording:
            _concrete(self, "__float__")
        return float(self._data)

    def __int__(self):
        if _tracing.recording:
            _concrete(self, "__int__")
        return int(self._data)

    __hash__ = object.__hash__

    def __repr__(self):
        rec = _tracing.current()
        traced = rec.repr(self) if rec is not None else None
        if traced is not None:
            return traced
        body = repr(self.numpy()).replace("array(", "tensor(", 1)
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self._ctx is not None:
            extra = f", grad_fn={self._ctx.name}"
        return body[:-1] + extra + ")" if extra else body

    # -- autograd ---------------------------------------------------------------------------
    def requires_grad_(self, flag=True):
        if flag and not B.is_floating(self.dtype):
            raise TypeError(f"only floating-point tensors can require grad, not {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self):
        """Keep `.grad` on this non-leaf tensor after backward."""
        self._retain_grad = True
        return self

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor._make(self._data, False, None)

    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`.

        `grad` defaults to 1 for a scalar. `retain_graph` keeps the graph for another
        backward; `create_graph` records the backward itself, for higher-order gradients.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no graph")
        if grad is None:
            if self._data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be omitted only for a scalar output, not shape {self.shape}"
                )
            # asarray(1) + reshape: a fifth of ones_like's cost, which W7 pays on every iteration
            one = B.array_module(self._data).asarray(1, dtype=self._data.dtype)
            grad = Tensor._make(one.reshape(self._data.shape) if self._data.ndim else one, False, None)
        else:
            if not isinstance(grad, Tensor):
                grad = Tensor(grad, dtype=self.dtype, device=self.device)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad shape {grad.shape} must equal output shape {self.shape}")
        _run_backward([self], [grad], None, retain_graph or create_graph, create_graph)

    # -- conversion -------------------------------------------------------------------------
    def to(self, device=None, dtype=None):
        t = self if dtype is None else _ops.cast(self, dtype)
        if device is not None and device != t.device:
            t = _ops.to_device(t, device)
        return t

    def astype(self, dtype):
        return _ops.cast(self, dtype)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.astype(B.float32)

    def double(self):
        return self.astype(B.float64)

    def long(self):
        return self.astype(B.int64)

    # -- operators --------------------------------------------------------------------------
    def __add__(self, o):
        return _ops.add(self, o)

    def __radd__(self, o):
        return _ops.add(o, self)

    def __sub__(self, o):
        return _ops.sub(self, o)

    def __rsub__(self, o):
        return _ops.sub(o, self)

    def __mul__(self, o):
        return _ops.mul(self, o)

    def __rmul__(self, o):
        return _ops.mul(o, self)

    def __truediv__(self, o):
        return _ops.div(self, o)

    def __rtruediv__(self, o):
        return _ops.div(o, self)

    def __pow__(self, o):
        return _ops.pow(self, o)

    def __rpow__(self, o):
        return _ops.pow(o, self)

    def __matmul__(self, o):
        return _ops.matmul(self, o)

    def __rmatmul__(self, o):
        return _ops.matmul(o, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.abs(self)

    def __lt__(self, o):
        return _ops.less(self, o)

    def __le__(self, o):
        return _ops.less_equal(self, o)

    def __gt__(self, o):
        return _ops.greater(self, o)

    def __ge__(self, o):
        return _ops.greater_equal(self, o)

    def __eq__(self, o):
        return _ops.equal(self, o)

    def __ne__(self, o):
        return _ops.not_equal(self, o)

    def __getitem__(self, key):
        return _ops.index(self, key)

    def __setitem__(self, key, value):
        rec = _tracing.current()
        if rec is not None:
            return rec.setitem(self, key, value)
        self._check_inplace("__setitem__", value)
        key = _ops.raw_key(key, self._data)
        value = value._data if isinstance(value, Tensor) else value
        self._data[key] = B.to_device(value, self.device) if B.is_array(value) else value

    def _check_inplace(self, op, other=None):
        if _grad_state.enabled and (
            self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)
        ):
            raise RuntimeError(
                f"{op}: in-place update of a tensor while recording gradients would lose the "
                "graph; do parameter updates inside `with nr.no_grad():`"
            )

    def _inplace(self, ufunc, o, sym, op):
        rec = _tracing.current()
        if rec is not None:  # recorded as `self <- op(self, o)`
            return rec.inplace(self, sym, op, o)
        self._check_inplace(sym, o)
        getattr(B.array_module(self._data), ufunc)(self._data, o._data if isinstance(o, Tensor) else o,
                                                   out=self._data, casting="same_kind")
        return self

    def __iadd__(self, o):
        return self._inplace("add", o, "+=", _ops.add)

    def __isub__(self, o):
        return self._inplace("subtract", o, "-=", _ops.sub)

    def __imul__(self, o):
        return self._inplace("multiply", o, "*=", _ops.mul)

    def __itruediv__(self, o):
        return self._inplace("divide", o, "/=", _ops.div)

    # -- methods (see neurona.functional for the documentation of each) --------------------
    def sum(self, axis=None, keepdims=False):
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops.mean(self, axis, keepdims)

    def var(self, axis=None, keepdims=False, ddof=0):
        return _ops.var(self, axis, keepdims, ddof)

    def std(self, axis=None, keepdims=False, ddof=0):
        return _ops.std(self, axis, keepdims, ddof)

    def prod(self, axis=None, keepdims=False):
        return _ops.prod(self, axis, keepdims)

    def cumsum(self, axis=None):
        return _ops.cumsum(self, axis)

    def norm(self, ord=None, axis=None, keepdims=False):  # noqa: A002 - NumPy's name
        return _ops.norm(self, ord, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops.max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return _ops.min(self, axis, keepdims)

    def argmax(self, axis=None, keepdims=False):
        return _ops.argmax(self, axis, keepdims)

    def argmin(self, axis=None, keepdims=False):
        return _ops.argmin(self, axis, keepdims)

    def logsumexp(self, axis=None, keepdims=False):
        return _ops.logsumexp(self, axis, keepdims)

    def reshape(self, *shape):
        return _ops.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)

    def transpose(self, *axes):
        return _ops.transpose(self, axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else (axes or None))

    def swapaxes(self, a, b):
        return _ops.swapaxes(self, a, b)

    def flatten(self, start_axis=0):
        return _ops.flatten(self, start_axis)

    def squeeze(self, axis=None):
        return _ops.squeeze(self, axis)

    def expand_dims(self, axis):
        return _ops.expand_dims(self, axis)

    def unsqueeze(self, axis):
        return _ops.expand_dims(self, axis)

    def broadcast_to(self, shape):
        return _ops.broadcast_to(self, shape)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def sign(self):
        return _ops.sign(self)

    def floor(self):
        return _ops.floor(self)

    def round(self, decimals=0):
        return _ops.round(self, decimals)

    def clip(self, a_min=None, a_max=None):
        return _ops.clip(self, a_min, a_max)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def tanh(self):
        return _ops.tanh(self)

    def relu(self):
        return _ops.relu(self)

    def softmax(self, axis=-1):
        return _ops.softmax(self, axis)

    def log_softmax(self, axis=-1):
        return _ops.log_softmax(self, axis)

    def matmul(self, o):
        return _ops.matmul(self, o)

    def dot(self, o):
        return _ops.dot(self, o)


def _born(t):
    rec = _tracing._current.get()
    if rec is not None:
        rec.born(t)


def _concrete(t, what):
    rec = _tracing.current()
    if rec is not None:
        rec.concrete(t, what)


def _get_data(self):
    if _tracing.recording:
        rec = _tracing._current.get()
        if rec is not None:
            rec.read_data(self)
    return self._data


def _get_grad(self):
    if _tracing.recording:
        rec = _tracing._current.get()
        if rec is not None:
            rec.read_grad(self)
    return self._grad


def _set_grad(self, value):
    if _tracing.recording:
        rec = _tracing._current.get()
        if rec is not None:
            rec.write_grad(self)
    self._grad = value


# the setter is the slot's own (C) one: writing `.data` is not watched, reading is
Tensor.data = property(_get_data, Tensor._data.__set__, doc="The backend array (NumPy or CuPy).")
Tensor.grad = property(_get_grad, _set_grad, doc="The gradient accumulated by backward, or None.")

from . import ops as _ops  # noqa: E402  (ops build on Tensor)
from .autograd.engine import run_backward as _run_backward  # noqa: E402  (once here, not per backward call)
