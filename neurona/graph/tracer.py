"""The tracer: runs Python code eagerly once while recording every op into a `Graph`.

Recording hooks `Function.apply` (one global check per op when nothing is traced), so every op
of the library, and every op that the eager autograd engine runs for a backward, becomes a node:
gradients come out of the same IR as graph nodes. While a trace is active (in the tracing thread
only) the tracer also patches a few Tensor methods:
* in-place updates (`p -= lr * g`, `v *= mu`, `t[i] = x`) become ordinary ops whose result is
  rebound to the tensor and, for a tensor from outside the trace, written back after each replay;
* `bool(t)`, `float(t)`, `t.item()`... on a traced value raise `ConcretizationError`: a branch
  on a traced value would be frozen into the graph, so it is an error that says so;
* `.grad` is watched: a tensor whose gradient the code assigns before reading it
  (`opt.zero_grad()` first) does not put its incoming gradient into the signature.
Comparisons (`a > b`) are `Compare` Functions and random ops (dropout) Functions with
`random = True`, recorded like any op. Tensors created before the trace (parameters, optimiser
state, data in a closure) are `state`: read live at every replay. Tensors created inside it that
no op made are constants.
May import: numpy, neurona.tensor, neurona.autograd, neurona.ops, neurona.graph.ir.
"""
from __future__ import annotations

import os
import sys
import threading
import weakref
import zlib

import numpy as np

from .. import ops as _ops
from ..autograd import function as _function, grad_mode as _grad_mode
from ..autograd.function import Function
from ..autograd.grad_mode import no_grad, state as _grad_state
from ..tensor import Tensor
from .ir import Graph, Node, Slot, Value

_slot = Tensor.__dict__["data"]  # the slot descriptor, bypassing the tracing property
_grad_slot = Tensor.__dict__["grad"]
_NEURONA_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_local = threading.local()


class ConcretizationError(RuntimeError):
    """A traced value was turned into a Python value (for an `if`, a `float()`...)."""


class SetItem(Function):
    """`a` with `a[key] = b`, as a new array: how the tracer records `t[key] = value`."""

    graph_nograd = True

    def forward(self, a, b, key):
        out = a.copy()
        out[key] = b
        return out


def require_host(arr, what):
    """Graph mode (tracing, fusion, the memory plan) works on NumPy arrays: anything else, a
    CuPy array above all, is refused here with the way out, before any NumPy call trips on it."""
    if not isinstance(arr, np.ndarray):
        raise NotImplementedError(
            f"graph mode (nr.jit, fit(jit=True), Session) runs on NumPy (CPU) arrays only; {what} "
            f"is a {type(arr).__module__}.{type(arr).__name__}: use eager mode on the GPU, or CPU tensors")


def _checksum(arr) -> int:
    a = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    return zlib.crc32(a.reshape(-1).view(np.uint8))


def _view_kernel(offset, shape, strides):
    """Re-make, on a new base array, a view that wrapper code took with raw NumPy."""

    def view(base):
        flat = base.reshape(-1)  # a copy only if a replay's base is not contiguous
        return np.lib.stride_tricks.as_strided(flat[offset:], shape, strides, writeable=False)

    return view


def active():
    """The tracer recording in this thread, or None."""
    return getattr(_local, "tracer", None)


def user_source():
    """`file:line: code` of the innermost caller outside the neurona package."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_NEURONA_DIR):
        f = f.f_back
    if f is None:
        return None
    import linecache  # noqa: PLC0415 - tracing only

    line = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
    return f"{f.f_code.co_filename}:{f.f_lineno}: {line}"


class Tracer:
    """Records ops into `graph`; `activate()`/`deactivate()` bracket the traced code."""

    def __init__(self, graph: Graph, unknown="state"):
        self.graph = graph
        self.values: dict = {}  # id(array) -> Value
        self.keep: list = []  # arrays and tensors kept alive so that their ids stay unique
        self.born: set = set()  # ids of Tensors created while tracing
        self.state_tensors: dict = {}  # id(tensor) -> (tensor, grad at first read)
        self.grad_owner: dict = {}  # id(grad tensor) -> the tensor it is the grad of
        self.mutated: dict = {}  # id(tensor) -> tensor whose data an in-place op rebound
        self.pinned: dict = {}  # id(tensor) -> Value: a TF1 Variable is its state, whatever its data
        self.unknown = unknown
        self.watched: dict = {}  # id(tensor) -> (tensor, array, checksum) of each `.data` read
        self.grad_read: set = set()  # ids of tensors whose incoming .grad traced code looked at
        self.grad_free: set = set()  # ids of tensors whose .grad was assigned before any read

    # -- values -----------------------------------------------------------------------------
    def register(self, arr, value: Value) -> Value:
        """Say that array `arr` is `value` from now on."""
        self.values[id(arr)] = value
        self.keep.append(arr)
        return value

    def const(self, arr) -> Value:
        """`arr` as a constant of the graph."""
        return self.register(arr, Value(arr.shape, arr.dtype, kind="const", const=arr))

    def array_value(self, arr):
        """The Value of a known array, of a view of one (a `View` node), or None."""
        v = self.values.get(id(arr))
        if v is not None:
            return v
        base = arr.base
        while isinstance(base, np.ndarray):
            bv = self.values.get(id(base))
            if bv is not None and base.flags.c_contiguous and base.dtype == arr.dtype:
                offset = (arr.__array_interface__["data"][0] - base.__array_interface__["data"][0])
                node = Node("View", None, {"offset": offset // arr.itemsize, "shape": arr.shape,
                                           "strides": arr.strides}, [bv], 1, user_source())
                node.kernel = _view_kernel(offset // arr.itemsize, arr.shape, arr.strides)
                self.graph.add_node(node)
                return self.register(arr, node.add_output(arr.shape, arr.dtype))
            base = base.base
        return None

    def value_of(self, t: Tensor) -> Value:
        """The Value a Tensor's data is: traced, a view of traced, state, or a constant."""
        v = self.pinned.get(id(t)) if self.pinned else None
        if v is not None:
            return v
        v = self.array_value(t.data)
        if v is not None:
            return v
        owner = self.grad_owner.get(id(t))
        if owner is not None:
            return self.state(owner, "grad", t.data)
        if id(t) in self.born or self.unknown == "const":
            return self.const(t.data)
        return self.state(t, "data", t.data)

    def state(self, t, attr, arr) -> Value:
        """`t.<attr>` (its data or grad) as live state, read at every run."""
        v = Value(arr.shape, arr.dtype, kind="state", ref=(t, attr), name=t.name)
        self.graph.states.append(v)
        if attr == "data" and id(t) not in self.state_tensors:
            grad = _grad_slot.__get__(t, Tensor)  # bookkeeping, not a read by the traced code
            self.state_tensors[id(t)] = (t, grad)
            if grad is not None:
                self.grad_owner[id(grad)] = t
        self.keep.append(t)
        return self.register(arr, v)

    def template(self, obj, extra: list, first: int):
        """`obj` (params) with every array replaced by a Slot into `first + len(extra)`."""
        if isinstance(obj, np.ndarray):
            v = self.array_value(obj)
            if v is None:
                v = self.const(obj)
            extra.append(v)
            return Slot(first + len(extra) - 1)
        if isinstance(obj, (tuple, list)):
            out = [self.template(o, extra, first) for o in obj]
            return type(obj)(out) if type(obj) in (tuple, list) else obj
        if isinstance(obj, dict):
            return {k: self.template(o, extra, first) for k, o in obj.items()}
        return obj

    # -- recording --------------------------------------------------------------------------
    def hook(self, cls, inputs, params):
        """Run the op eagerly, record it, and link its output for eager autograd as apply does."""
        arrays = [t.data for t in inputs]
        for a in arrays:
            require_host(a, f"an input of {cls.__name__}")
        fn = cls.__new__(cls)
        data = fn.forward(*arrays, **params)
        scalar = isinstance(data, np.generic)
        if scalar:
            data = np.asarray(data)
        self.record(cls, inputs, params, fn, data, scalar, arrays)
        if (_grad_state.enabled and not getattr(cls, "graph_nograd", False)
                and any(t.requires_grad for t in inputs)):
            fn.inputs = inputs
            out = Tensor._make(data, True, fn)
            fn.out_ref = weakref.ref(out)
            return out
        return Tensor._make(data, False, None)

    def record(self, cls, inputs, params, fn, data, scalar, arrays):
        """Add the node of one op call: inputs, params with Slots, output and saved arrays."""
        if any(data is a for a in arrays):  # the op handed its input back: same value
            return
        in_vals = [self.value_of(t) for t in inputs]
        extra: list = []
        tparams = self.template(params, extra, len(in_vals))
        node = Node(cls.__name__, cls, tparams, in_vals + extra, len(in_vals), user_source())
        node.scalar_out = scalar
        self.graph.add_node(node)
        self.register(data, node.add_output(data.shape, data.dtype))
        outs = [data]
        for k, a in fn.__dict__.items():
            if isinstance(a, np.ndarray) and id(a) not in self.values:
                node.aux.append(k)
                outs.append(a)
                self.register(a, node.add_output(a.shape, a.dtype))
        # which inputs an output is a view of (reshape, transpose...): the memory planner keeps
        # those alive as long as the view; params arrays are read, never returned
        node.alias = tuple(i for i, a in enumerate(arrays) if any(np.may_share_memory(o, a) for o in outs))

    def assign(self, t: Tensor, new: Tensor) -> None:
        """Rebind `t` to the value `new` (an in-place update, recorded functionally)."""
        self.value_of(t)  # a first write to outside state still makes it state
        t.data = new.data
        if id(t) not in self.born:
            self.mutated[id(t)] = t

    def watch(self, t, arr):
        """Remember a tensor's array (and a checksum of it) when traced code first reads it."""
        require_host(arr, f"tensor {t.name!r} of shape {arr.shape}" if t.name else f"a tensor of shape {arr.shape}")
        self.watched[id(t)] = (t, arr, _checksum(arr))
        self.keep.append(t)

    def finish(self):
        """Record the write-backs: rebound data of outside tensors and changed grads.

        An array whose contents changed although no traced op rebound it, or an outside tensor
        whose `.data` was replaced by an array no op made, was written by raw NumPy (an optimiser
        updating `p.data` in place, a layer's running statistics): a replay could not repeat
        that, so it is an error rather than a silently frozen update.
        """
        for t, arr, digest in self.watched.values():
            name = f"{t.name!r} " if t.name else ""
            now = _slot.__get__(t, Tensor)
            if now is not arr and id(t) not in self.born and id(now) not in self.values:
                raise RuntimeError(
                    f"jit: tensor {name}of shape {t.shape} had its .data replaced by an array "
                    "computed outside neurona ops while tracing; a replay cannot repeat that. "
                    "Update it with tensor in-place ops under nr.no_grad() instead.")
            if _checksum(arr) != digest:
                raise RuntimeError(
                    f"jit: tensor {name}of shape {t.shape} had its .data array changed in place by "
                    "code that is not a neurona op (NumPy on .data, e.g. an optimiser's update or "
                    "a layer's running statistics) while tracing; a replay cannot repeat that. "
                    "Update tensors with tensor in-place ops under nr.no_grad() (p -= lr * p.grad, "
                    "v *= mu) instead.")
        g = self.graph
        g.updates = []
        for t in self.mutated.values():
            g.updates.append((t, "data", self.value_of(t)))
        for t, grad0 in self.state_tensors.values():
            if t.grad is not grad0:
                g.updates.append((t, "grad", None if t.grad is None else self.value_of(t.grad)))

    def grad_signature(self):
        """For each state tensor: whether it had a grad when first read (replays must match).

        A tensor whose `.grad` the function assigned before reading it (`opt.zero_grad()` at the
        top of a training step) is left out: its incoming gradient cannot change the graph."""
        return [(t, g0 is not None) for i, (t, g0) in self.state_tensors.items() if i not in self.grad_free]

    # -- activation -------------------------------------------------------------------------
    def activate(self):
        """Start recording this thread's ops into the graph."""
        global _n_active, _saved_patches
        if active() is not None:
            raise RuntimeError("graph: already tracing in this thread")
        with _lock:
            if _n_active == 0:  # the first tracer (of any thread) installs the hook and patches
                _saved_patches = _install_patches()
                _function._trace_hook = _dispatch
            _n_active += 1
        _local.tracer = self
        _grad_mode.set_tracing(self)

    def deactivate(self):
        """Stop recording (the hook and patches go when the last tracer of any thread stops)."""
        global _n_active, _saved_patches
        _local.tracer = None
        _grad_mode.set_tracing(None)
        with _lock:
            _n_active -= 1
            if _n_active == 0:
                _function._trace_hook = None
                _remove_patches(_saved_patches)
                _saved_patches = None


_lock = threading.Lock()
_n_active = 0
_saved_patches = None


def _dispatch(cls, inputs, params):
    """The Function.apply hook: record into this thread's tracer, or None (run eagerly)."""
    tr = getattr(_local, "tracer", None)
    return None if tr is None else tr.hook(cls, inputs, params)


# -- patches installed while tracing ----------------------------------------------------------
_INPLACE = {"__iadd__": ("+=", _ops.add), "__isub__": ("-=", _ops.sub),
            "__imul__": ("*=", _ops.mul), "__itruediv__": ("/=", _ops.div)}
_CONCRETE = ("__bool__", "__float__", "__int__", "item", "tolist", "numpy", "__array__")


def _traced_inplace(sym, op, orig):
    def method(self, o):
        tr = active()
        if tr is None:
            return orig(self, o)
        self._check_inplace(sym, o)
        with no_grad():
            new = op(self, o)
            if new.shape != self.shape:
                raise ValueError(f"{sym}: a result of shape {new.shape} cannot be written into a "
                                 f"tensor of shape {self.shape}")
            if new.dtype != self.dtype:
                new = _ops.cast(new, self.dtype)
        tr.assign(self, new)
        return self

    return method


def _traced_setitem(orig):
    def setitem(self, key, value):
        tr = active()
        if tr is None:
            return orig(self, key, value)
        self._check_inplace("__setitem__", value)
        with no_grad():
            value = _ops._base.as_tensor(value, self)
            new = SetItem.apply(self, value, key=_ops.raw_key(key))
        tr.assign(self, new)

    return setitem


def _concrete(name, orig):
    def method(self, *args):
        tr = active()
        if tr is not None:
            v = tr.values.get(id(self.data))
            if v is not None and v.kind != "const":
                raise ConcretizationError(
                    f"{name}() of a traced tensor ({v.type_str}): inside nr.jit / a graph the "
                    "value is not known while tracing, so Python control flow (if, while, "
                    "float(), .item()) cannot depend on it. Use nr.where for data-dependent "
                    "choices, or compute it outside the traced function."
                )
        return orig(self, *args)

    return method


def _traced_repr(orig):
    def __repr__(self):
        tr = active()
        v = tr.values.get(id(self.data)) if tr is not None else None
        if v is not None and v.kind != "const":
            return f"Traced<{v.type_str} {v.label}>"
        return orig(self)

    return __repr__


def _install_patches():
    saved = []

    def patch(owner, name, new):
        saved.append((owner, name, owner.__dict__.get(name, _MISSING) if isinstance(owner, type)
                      else getattr(owner, name)))
        setattr(owner, name, new)

    for name, (sym, op) in _INPLACE.items():
        patch(Tensor, name, _traced_inplace(sym, op, getattr(Tensor, name)))
    patch(Tensor, "__setitem__", _traced_setitem(Tensor.__setitem__))
    for name in _CONCRETE:
        patch(Tensor, name, _concrete(name, getattr(Tensor, name)))
    patch(Tensor, "__repr__", _traced_repr(Tensor.__repr__))
    make, init = Tensor.__dict__["_make"].__func__, Tensor.__init__

    def traced_make(cls, data, requires_grad, ctx):
        t = make(cls, data, requires_grad, ctx)
        tr = active()
        if tr is not None:
            tr.born.add(id(t))
            tr.keep.append(t)
        return t

    def traced_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        tr = active()
        if tr is not None:
            tr.born.add(id(self))
            tr.keep.append(self)

    patch(Tensor, "_make", classmethod(traced_make))
    patch(Tensor, "__init__", traced_init)

    def get_data(self):
        arr = _slot.__get__(self, Tensor)
        tr = active()
        if tr is not None and id(self) not in tr.watched and arr is not None:
            tr.watch(self, arr)
        return arr

    patch(Tensor, "data", property(get_data, _slot.__set__, doc=_slot.__doc__))

    def get_grad(self):
        tr = active()
        if tr is not None and id(self) not in tr.grad_read:
            tr.grad_read.add(id(self))
            tr.keep.append(self)  # ids must stay unique while tracing
        return _grad_slot.__get__(self, Tensor)

    def set_grad(self, value):
        tr = active()
        if tr is not None and id(self) not in tr.grad_read:
            tr.grad_free.add(id(self))
            tr.keep.append(self)
        _grad_slot.__set__(self, value)

    patch(Tensor, "grad", property(get_grad, set_grad, doc=_grad_slot.__doc__))
    return saved


_MISSING = object()


def _remove_patches(saved):
    for owner, name, old in reversed(saved or ()):
        if old is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, old)


def trace(fn, args_tensors, call, graph: Graph, unknown="state"):
    """Run `call()` with `args_tensors` as graph arguments, recording into `graph`.

    Returns (tracer, result of the call).
    """
    tr = Tracer(graph, unknown)
    for t in args_tensors:
        require_host(t.data, f"an argument of shape {t.shape}")
        if id(t.data) not in tr.values:
            v = Value(t.shape, t.dtype, kind="arg", name=t.name)
            graph.args.append(v)
            tr.register(t.data, v)
        else:  # the same array passed twice: a second name for the same input
            graph.args.append(tr.values[id(t.data)])
        tr.keep.append(t)
    tr.activate()
    try:
        result = call()
    finally:
        tr.deactivate()
    tr.finish()
    return tr, result
