"""`nr.jit` (alias `nr.function`): trace a Python function once per signature, replay the graph.

The rules, as in JAX's `jit` and TensorFlow's `tf.function`:
* The function runs as Python only while it is traced. Python side effects (printing,
  appending to a list, `self.t += 1`) happen at tracing time only; a replay runs the graph.
* Tensor arguments are the graph's inputs. Any other argument is static: part of the signature,
  so a new value traces again. The signature is the shapes and dtypes of the tensor arguments,
  the static arguments and the grad mode; each new one is a retrace, counted in `trace_count`
  and logged with `NEURONA_DEBUG=1`.
* Tensors the function reads from outside (parameters, optimiser state, data in a closure) are
  read live at each call; in-place updates of them (`p -= lr * p.grad`, `v *= mu`) and the
  `.grad` that `backward()` leaves on them are written back after each call, so a whole
  training step (forward, backward, update) is one graph.
* Branching on a traced value (`if loss > 0`, `float(x)`, `x.item()`) raises
  `ConcretizationError`: use `nr.where`, or do it outside.
* Random ops (`Function.random`, e.g. dropout) draw anew at every replay. Other random numbers
  drawn inside the function (`nr.randn`) are drawn once, at tracing time, and replayed as
  constants: pass them in as arguments. The same holds for any NumPy computation on a tensor's
  `.data` that is not a neurona op.
* The outputs carry no autograd graph: put `backward()` inside the traced function.
May import: neurona.tensor, neurona.autograd, neurona.graph.*.
"""
from __future__ import annotations

import functools
import sys

from ..autograd import tracing as _tracing
from ..autograd.grad_mode import is_grad_enabled, set_grad_enabled
from ..tensor import Tensor
from .executor import Program
from .ir import Graph
from .passes import MemoryPlan, debug_level, optimize
from .tracer import active, trace

_RETRACE = object()


def _flatten(obj, leaves):
    """Structure of `obj` with Tensor leaves moved to `leaves` (replaced by their index)."""
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return ("T", len(leaves) - 1)
    if isinstance(obj, (tuple, list)):
        return (type(obj), tuple(_flatten(o, leaves) for o in obj))
    if isinstance(obj, dict):
        return (dict, tuple((k, _flatten(v, leaves)) for k, v in obj.items()))
    return ("S", obj)


def _unflatten(spec, leaves):
    tag, body = spec
    if tag == "T":
        return leaves[body]
    if tag == "S":
        return body
    if tag is dict:
        return {k: _unflatten(v, leaves) for k, v in body}
    return tag(_unflatten(o, leaves) for o in body)


def _signature(spec):
    """The hashable part of an argument structure: tensor shapes/dtypes and static values."""
    tag, body = spec
    if tag == "T":
        return "T"
    if tag == "S":
        try:
            hash(body)
        except TypeError:
            raise TypeError(f"jit: argument {body!r} is neither a Tensor nor hashable; pass arrays "
                            "as nr.Tensor (static arguments must be hashable)") from None
        return ("S", type(body).__name__, body)
    if tag is dict:
        return ("dict", tuple((k, _signature(v)) for k, v in body))
    return (tag.__name__, tuple(_signature(o) for o in body))


class _Compiled:
    """One traced signature: the program and how to feed it and write its results back.

    `replay` is generated straight-line Python per signature, as the program is: it reads each
    state array, checks its shape and dtype (an array already seen at the previous call, the
    usual case once updates are written in place, is not checked again), checks the grad
    signature, runs the program, and writes the updates back (an update written in place into
    the state's own array needs no write)."""

    def __init__(self, traced: Graph, optimized: Graph, program: Program, grad_sig, out_spec, plan):
        self.traced, self.optimized, self.program, self.plan = traced, optimized, program, plan
        self.states = [(v.ref[0], v.ref[1], v.shape, v.dtype) for v in optimized.states]
        self.grad_sig = grad_sig
        self.writes = [(t, a, v is not None) for t, a, v in optimized.updates]
        self.out_spec = out_spec
        self.single_out = out_spec[0] == "T"  # the function returns one Tensor
        self.replay = self._build()
        self._replay_arrays = None

    @property
    def replay_arrays(self):
        """`replay` over backend arrays: arrays in, the output arrays out (no Tensor wrappers);
        generated on first use (`TracedFunction.array_function`)."""
        if self._replay_arrays is None:
            self._replay_arrays = self._build(arrays=True)
        return self._replay_arrays

    def _build(self, arrays=False):
        prog = self.program
        ns = {"RETRACE": _RETRACE, "make": Tensor._make, "spec": self.out_spec,
              "unflatten": _unflatten, "K": prog._kernels, "C": prog._consts, "annotate": prog._annotate}
        lines = ["def replay(tensors):"]
        # not recording here (`__call__` checked), so `_data`/`_grad` are read without the properties' hooks
        seen = [None] * len(self.states)
        ns["L"] = seen
        for i, (t, attr, shape, dtype) in enumerate(self.states):
            ns[f"T{i}"], ns[f"SH{i}"], ns[f"DT{i}"] = t, shape, dtype
            if attr == "data":
                lines.append(f"    s{i} = T{i}._data")
            else:
                lines += [f"    g = T{i}._grad", "    if g is None:", "        return RETRACE",
                          f"    s{i} = g._data"]
            lines += [f"    if s{i} is not L[{i}]:",
                      f"        if s{i}.shape != SH{i} or s{i}.dtype != DT{i}:", "            return RETRACE",
                      f"        L[{i}] = s{i}"]
        for i, (t, had_grad) in enumerate(self.grad_sig):
            ns[f"G{i}"] = t
            lines += [f"    if G{i}._grad is {'' if had_grad else 'not '}None:", "        return RETRACE"]
        # the program's own lines, inlined: no call into `Program.run`, no argument lists built
        line_node = {}
        n_args = len(self.optimized.args)
        if n_args == 1:
            lines.append("    a0 = tensors[0]" if arrays else "    a0 = tensors[0]._data")
        elif n_args:
            lines.append(f"    {''.join(f'a{i}, ' for i in range(n_args))}= "
                         + ("tensors" if arrays else "[t._data for t in tensors]"))
        ns["P"], ns["N_NODES"] = prog, prog.n_nodes
        lines.append("    P.launches += N_NODES  # what Program.run counts, for the inlined program too")
        lines.append("    try:")
        for text, node in prog.body:
            lines.append(f"        {text}")
            if node is not None:
                line_node[len(lines)] = node
        lines += ["    except Exception as e:", "        annotate(e, FILE, LINES)", "        raise"]
        k = 0
        for i, (t, attr, has) in enumerate(self.writes):
            ns[f"W{i}"] = t
            if attr == "data":
                lines += [f"    u = {prog.up_exprs[k]}", f"    if W{i}._data is not u:", f"        W{i}._data = u"]
            elif has:
                lines.append(f"    W{i}._grad = make({prog.up_exprs[k]}, False, None)")
            else:
                lines.append(f"    W{i}._grad = None")
            k += has
        if arrays and self.single_out:
            lines.append(f"    return {prog.out_exprs[0]}")
        elif arrays:
            lines.append(f"    return unflatten(spec, [{', '.join(prog.out_exprs)}])")
        elif self.single_out:
            lines.append(f"    return make({prog.out_exprs[0]}, False, None)")
        else:
            outs = ", ".join(f"make({o}, False, None)" for o in prog.out_exprs)
            lines.append(f"    return unflatten(spec, [{outs}])")
        ns["FILE"], ns["LINES"] = f"<neurona replay of {prog.name}>", line_node
        self.source = "\n".join(lines)
        exec(compile(self.source, ns["FILE"], "exec"), ns)  # noqa: S102
        return ns["replay"]


def _fallback(fn, grad, args):
    """`fn(*args)` under grad mode `grad` (a concrete function's signature)."""
    with set_grad_enabled(grad):
        return fn(*args)


def _fallback_arrays(fn, grad, arrays):
    """`_fallback` for an array function: arrays wrapped as Tensors in, the results' arrays out."""
    out = _fallback(fn, grad, tuple(Tensor._make(a, False, None) for a in arrays))
    leaves: list = []
    spec = _flatten(out, leaves)
    return _unflatten(spec, [t._data for t in leaves])


def trace_graph(fn, *args, **kwargs) -> Graph:
    """The raw (unoptimised) graph of `fn(*args, **kwargs)`.

    >>> import neurona as nr
    >>> g = trace_graph(lambda x: (x * 2).sum(), nr.ones(3))
    >>> g.op_types()
    ['Mul', 'Sum']
    """
    leaves: list = []
    _flatten((args, kwargs), leaves)
    graph = Graph(getattr(fn, "__name__", "graph"))
    tr, result = trace(fn, leaves, lambda: fn(*args, **kwargs), graph)
    out: list = []
    _flatten(result, out)
    graph.outputs = [tr.value_of(t) for t in out]
    return graph


class TracedFunction:
    """What `nr.jit(fn)` returns: call it like `fn`; `trace_count`, `graphs()`, `memory_stats()`."""

    def __init__(self, fn, fuse=True, plan_memory=True):
        functools.update_wrapper(self, fn)
        self.fn, self.fuse, self.plan_memory = fn, fuse, plan_memory
        self.cache: dict = {}
        self.trace_count = 0
        self._last = None

    def __call__(self, *args, **kwargs):
        if active() is not None:  # called while another trace records: inline it
            return self.fn(*args, **kwargs)
        if not kwargs and len(args) == 1 and type(args[0]) is Tensor:  # one Tensor (a batch to predict on)
            leaves = list(args)
            d = args[0]._data
            key = ("T*", ((d.shape, d.dtype),), is_grad_enabled())
        elif not kwargs and all(type(a) is Tensor for a in args):
            # the common case, only Tensors passed positionally: the key without walking a structure
            leaves = list(args)
            key = ("T*", tuple((a._data.shape, a._data.dtype) for a in args), is_grad_enabled())
        else:
            leaves = []
            spec = _flatten((args, kwargs), leaves)
            key = (_signature(spec), tuple((t.shape, t.dtype.str) for t in leaves), is_grad_enabled())
        entry = self.cache.get(key)
        if entry is not None:
            out = entry.replay(leaves)
            if out is not _RETRACE:
                self._last = entry
                return out
        return self._trace(key, args, kwargs, leaves)

    def _trace(self, key, args, kwargs, leaves):
        self.trace_count += 1
        name = getattr(self.fn, "__qualname__", "function")
        if debug_level() >= 1:
            shapes = ", ".join(f"{t.dtype}{list(t.shape)}" for t in leaves)
            print(f"[neurona.jit] tracing {name} (trace #{self.trace_count}) for ({shapes})",
                  file=sys.stderr)
        graph = Graph(name)
        tr, result = trace(self.fn, leaves, lambda: self.fn(*args, **kwargs), graph)
        out: list = []
        out_spec = _flatten(result, out)
        graph.outputs = [tr.value_of(t) for t in out]
        opt = optimize(graph, fuse=self.fuse)
        plan = MemoryPlan(opt) if self.plan_memory else None
        program = Program(opt, plan)
        if debug_level() >= 1:
            print(f"[neurona.jit] {name}: {len(graph.nodes)} ops traced, {len(opt.nodes)} after "
                  f"the passes", file=sys.stderr)
        entry = _Compiled(graph, opt, program, tr.grad_signature(), out_spec, plan)
        self.cache[key] = entry
        self._last = entry
        return _unflatten(out_spec, [Tensor._make(t.data, False, None) for t in out])

    def concrete_function(self, *tensors):
        """The graph of this signature (`tensors`' shapes and dtypes, the grad mode now), traced
        now if it is new, as a plain function of Tensors of exactly that signature, as TensorFlow's
        `get_concrete_function`: a call skips building the signature key and looking it up (the
        hot path of a loop that always calls with one shape, such as acting on one state). It
        replays the graph as traced whatever the grad mode at the call; inside another trace it
        runs the Python function; a state that changed shape or dtype retraces as a plain call.

        >>> import neurona as nr
        >>> f = nr.jit(lambda x: x * 2 + 1)
        >>> g = f.concrete_function(nr.ones(3))
        >>> g(nr.zeros(3)).numpy().tolist(), f.trace_count
        ([1.0, 1.0, 1.0], 1)
        >>> g(nr.zeros(4))
        Traceback (most recent call last):
        ...
        ValueError: concrete function <lambda>: argument 0 is float32[4], the signature is float32[3]
        """
        return self._concrete(tensors, arrays=False)

    def array_function(self, *tensors):
        """`concrete_function` over backend arrays (NumPy on CPU): arrays of exactly the
        signature's shapes and dtypes in, the output array (or the output structure of arrays)
        out — no Tensor wrapped around the arguments or the results. For the hottest loops
        outside autograd, such as a DQN agent acting on one state; the results are the graph's
        own arrays, as `.numpy()` of `concrete_function`'s results would be.

        >>> import numpy as np, neurona as nr
        >>> f = nr.jit(lambda x: x * 2 + 1)
        >>> g = f.array_function(nr.ones(3))
        >>> g(np.zeros(3, np.float32)).tolist()
        [1.0, 1.0, 1.0]
        >>> g(np.zeros(3))
        Traceback (most recent call last):
        ...
        ValueError: array function <lambda>: argument 0 is float64[3], the signature is float32[3]
        """
        return self._concrete(tensors, arrays=True)

    def _concrete(self, tensors, arrays):
        what = "array_function" if arrays else "concrete_function"
        if not tensors or any(type(t) is not Tensor for t in tensors):
            raise TypeError(f"jit.{what}: pass the Tensors of the signature positionally (one or more)")
        if active() is not None:
            raise RuntimeError(f"jit.{what}: called while a trace records; make it outside")
        shapes = tuple((t._data.shape, t._data.dtype) for t in tensors)
        grad = is_grad_enabled()
        key = ("T*", shapes, grad)
        entry = self.cache.get(key)
        if entry is None:
            self(*tensors)
            entry = self.cache[key]
        name = getattr(self.fn, "__name__", "function")
        kind = "array function" if arrays else "concrete function"
        ns = {"E": [entry], "RETRACE": _RETRACE, "tracing": _tracing, "fn": self, "grad": grad, "KEY": key,
              "fallback": _fallback_arrays if arrays else _fallback}
        args = ", ".join(f"x{i}" for i in range(len(tensors)))
        lines = [f"def concrete({args}):"]
        for i, (shape, dtype) in enumerate(shapes):
            ns[f"SH{i}"], ns[f"DT{i}"] = shape, dtype
            lines += [f"    d = x{i}" if arrays else f"    d = x{i}._data",
                      f"    if d.shape != SH{i} or (d.dtype is not DT{i} and d.dtype != DT{i}):",
                      f"        raise ValueError(f'{kind} {name}: argument {i} is "
                      f"{{d.dtype}}{{list(d.shape)}}, the signature is {dtype}{list(shape)}')"]
        if arrays:
            entry.replay_arrays  # noqa: B018 - generated now, read below without the property
        replay = "_replay_arrays" if arrays else "replay"
        lines += ["    if tracing.recording and tracing.current() is not None:",
                  f"        return fallback(fn, grad, ({args},))",
                  f"    out = E[0].{replay}(({args},))",
                  "    if out is RETRACE:  # the plain call retraces; replay its graph from then on",
                  f"        out = fallback(fn, grad, ({args},))",
                  "        E[0] = fn.cache.get(KEY, E[0])"]
        if arrays:
            lines.append("        E[0].replay_arrays  # generated for the new trace")
        lines.append("    return out")
        exec("\n".join(lines), ns)  # noqa: S102 - generated for this signature
        concrete = ns["concrete"]
        concrete.__doc__ = f"{name} traced for {', '.join(f'{d}{list(s)}' for s, d in shapes)} (grad mode {grad})"
        return concrete

    def graphs(self):
        """(traced graph, optimised graph) of the most recent call's signature."""
        if self._last is None:
            raise RuntimeError("jit: call the function once before asking for its graph")
        return self._last.traced, self._last.optimized

    def memory_stats(self) -> dict:
        """The memory planner's accounting for the most recent call's signature (bytes)."""
        if self._last is None or self._last.plan is None:
            raise RuntimeError("jit: no memory plan yet (call the function; plan_memory=True)")
        return dict(self._last.plan.stats)


def jit(fn=None, *, fuse=True, plan_memory=True):
    """Compile `fn` by tracing: `@nr.jit` or `nr.jit(fn, fuse=False)`.

    >>> import neurona as nr
    >>> @nr.jit
    ... def f(x):
    ...     return (x * 2 + 1).sum()
    >>> f(nr.ones(3)).item(), f(nr.zeros(3)).item(), f.trace_count
    (9.0, 3.0, 1)
    """
    if fn is None:
        return lambda f: TracedFunction(f, fuse=fuse, plan_memory=plan_memory)
    return TracedFunction(fn, fuse=fuse, plan_memory=plan_memory)


function = jit
