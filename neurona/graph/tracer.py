"""The tracer: runs Python code eagerly once while recording every op into a `Graph`.

The tracer is this thread's recorder (`neurona.autograd.tracing`, a context variable): every
`Function.apply` in the thread reports its call, so every op of the library, and every op that
the eager autograd engine runs for a backward, becomes a node: gradients come out of the same IR
as graph nodes. Nothing is patched, so other threads run eagerly, untouched, while one traces.
The Tensor hooks make the tracer see:
* in-place updates (`p -= lr * g`, `v *= mu`, `t[i] = x`) as ordinary ops whose result is
  rebound to the tensor and, for a tensor from outside the trace, written back after each replay;
* `bool(t)`, `float(t)`, `t.item()`... on a traced value: they raise `ConcretizationError`, since
  a branch on a traced value would be frozen into the graph;
* `.grad` reads and writes: a tensor whose gradient the code assigns before reading it
  (`opt.zero_grad()` first) does not put its incoming gradient into the signature;
* `.data` reads: the arrays are checksummed, so a raw NumPy update that a replay could not
  repeat is an error rather than a silently frozen value.
Comparisons (`a > b`) are `Compare` Functions and random ops (dropout) Functions with
`random = True`, recorded like any op. Tensors created before the trace (parameters, optimiser
state, data in a closure) are `state`: read live at every replay. Tensors created inside it that
no op made are constants.
May import: numpy, neurona.tensor, neurona.autograd, neurona.ops, neurona.graph.ir.
"""
from __future__ import annotations

import os
import sys
import zlib

import numpy as np

from .. import ops as _ops
from ..autograd import tracing as _tracing
from ..autograd.function import Function
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from .ir import Graph, Node, Slot, Value

_NEURONA_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConcretizationError(RuntimeError):
    """A traced value was turned into a Python value (for an `if`, a `float()`...)."""


class SetItem(Function):
    """`a` with `a[key] = b`, as a new array: how the tracer records `t[key] = value`."""

    differentiable = False

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
    return _tracing.current()


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
        self.born_ids: set = set()  # ids of Tensors created while tracing
        self.recording = False
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
        arr = t._data
        if self.recording and id(t) not in self.watched:
            self.watch(t, arr)
        v = self.array_value(arr)
        if v is not None:
            return v
        owner = self.grad_owner.get(id(t))
        if owner is not None:
            return self.state(owner, "grad", arr)
        if id(t) in self.born_ids or self.unknown == "const":
            return self.const(arr)
        return self.state(t, "data", arr)

    def state(self, t, attr, arr) -> Value:
        """`t.<attr>` (its data or grad) as live state, read at every run."""
        v = Value(arr.shape, arr.dtype, kind="state", ref=(t, attr), name=t.name)
        self.graph.states.append(v)
        if attr == "data" and id(t) not in self.state_tensors:
            grad = t._grad  # bookkeeping, not a read by the traced code
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

    # -- recording: the hooks of Function.apply and Tensor (neurona.autograd.tracing) ------
    def check_inputs(self, cls, inputs):
        """Before an op runs: graph mode takes NumPy arrays only; the inputs are watched."""
        for t in inputs:
            arr = t._data
            require_host(arr, f"an input of {cls.__name__}")
            if id(t) not in self.watched:
                self.watch(t, arr)

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
        t._data = new._data
        if id(t) not in self.born_ids:
            self.mutated[id(t)] = t

    def watch(self, t, arr):
        """Remember a tensor's array (and a checksum of it) when traced code first reads it."""
        require_host(arr, f"tensor {t.name!r} of shape {arr.shape}" if t.name else f"a tensor of shape {arr.shape}")
        self.watched[id(t)] = (t, arr, _checksum(arr))
        self.keep.append(t)

    def born(self, t):
        """A tensor created while tracing: a constant if no op made its array."""
        self.born_ids.add(id(t))
        self.keep.append(t)

    def read_data(self, t):
        arr = t._data
        if id(t) not in self.watched and arr is not None:
            self.watch(t, arr)

    def read_grad(self, t):
        if id(t) not in self.grad_read:
            self.grad_read.add(id(t))
            self.keep.append(t)  # ids must stay unique while tracing

    def write_grad(self, t):
        if id(t) not in self.grad_read:
            self.grad_free.add(id(t))
            self.keep.append(t)

    def inplace(self, t, sym, op, other):
        """`t <sym> other` (`+=`...): the op, and `t` rebound to its result."""
        t._check_inplace(sym, other)
        with no_grad():
            new = op(t, other)
            if new.shape != t.shape:
                raise ValueError(f"{sym}: a result of shape {new.shape} cannot be written into a "
                                 f"tensor of shape {t.shape}")
            if new.dtype != t.dtype:
                new = _ops.cast(new, t.dtype)
        self.assign(t, new)
        return t

    def setitem(self, t, key, value):
        """`t[key] = value` as a `SetItem` node whose result `t` is rebound to."""
        t._check_inplace("__setitem__", value)
        with no_grad():
            value = _ops._base.as_tensor(value, t)
            new = SetItem.apply(t, value, key=_ops.raw_key(key))
        self.assign(t, new)

    def concrete(self, t, what):
        """Refuse to turn a traced value into a Python value (`bool(t)`, `t.item()`...)."""
        v = self.values.get(id(t._data))
        if v is not None and v.kind != "const":
            raise ConcretizationError(
                f"{what}() of a traced tensor ({v.type_str}): inside nr.jit / a graph the "
                "value is not known while tracing, so Python control flow (if, while, "
                "float(), .item()) cannot depend on it. Use nr.where for data-dependent "
                "choices, or compute it outside the traced function."
            )

    def repr(self, t):
        v = self.values.get(id(t._data))
        if v is not None and v.kind != "const":
            return f"Traced<{v.type_str} {v.label}>"
        return None

    def finish(self):
        """Record the write-backs: rebound data of outside tensors and changed grads.

        An array whose contents changed although no traced op rebound it, or an outside tensor
        whose `.data` was replaced by an array no op made, was written by raw NumPy (an optimiser
        updating `p.data` in place, a layer's running statistics): a replay could not repeat
        that, so it is an error rather than a silently frozen update.
        """
        for t, arr, digest in self.watched.values():
            name = f"{t.name!r} " if t.name else ""
            now = t._data
            if now is not arr and id(t) not in self.born_ids and id(now) not in self.values:
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
            if t._grad is not grad0:
                g.updates.append((t, "grad", None if t._grad is None else self.value_of(t._grad)))

    def grad_signature(self):
        """For each state tensor: whether it had a grad when first read (replays must match).

        A tensor whose `.grad` the function assigned before reading it (`opt.zero_grad()` at the
        top of a training step) is left out: its incoming gradient cannot change the graph; so is
        one whose `.grad` the function neither read nor changed (a forward pass reading weights):
        traced code reads a grad through the property (watched) except the backward engine's
        accumulation, which always writes the sum back (a grad update)."""
        changed = {id(t) for t, attr, _ in self.graph.updates if attr == "grad"}
        return [(t, g0 is not None) for i, (t, g0) in self.state_tensors.items()
                if i not in self.grad_free and (i in self.grad_read or i in changed)]

    # -- activation -------------------------------------------------------------------------
    def activate(self):
        """Start recording this thread's ops into the graph."""
        self._token = _tracing.push(self)
        self.recording = True

    def deactivate(self):
        """Stop recording."""
        self.recording = False
        _tracing.pop(self._token)


def trace(fn, args_tensors, call, graph: Graph, unknown="state"):
    """Run `call()` with `args_tensors` as graph arguments, recording into `graph`.

    Returns (tracer, result of the call).
    """
    tr = Tracer(graph, unknown)
    for t in args_tensors:
        require_host(t._data, f"an argument of shape {t.shape}")
        if id(t._data) not in tr.values:
            v = Value(t.shape, t.dtype, kind="arg", name=t.name)
            graph.args.append(v)
            tr.register(t._data, v)
        else:  # the same array passed twice: a second name for the same input
            graph.args.append(tr.values[id(t._data)])
        tr.keep.append(t)
    tr.activate()
    try:
        result = call()
    finally:
        tr.deactivate()
    tr.finish()
    return tr, result
