"""TensorFlow-1 style graph mode: placeholders, Variables, a Graph and a Session.

Inside `with Graph().as_default():` every op is recorded (and run once on the placeholders'
zero values, so shapes are known as the graph is built). `Session().run(fetches, feed_dict)`
compiles the part of the graph the fetches need (dead code is never run), feeds the
placeholders, reads the Variables and writes back what the fetched operations assign:

>>> import neurona as nr
>>> from neurona import graph as G
>>> with G.Graph().as_default() as g:
...     x = G.placeholder((), nr.float32, name="x")
...     w = G.Variable(3.0, name="w")
...     y = w * x + 1
>>> with G.Session(g) as sess:
...     float(sess.run(y, feed_dict={x: 2.0}))
7.0

May import: numpy, neurona (tensor, autograd, ops), neurona.graph.*.
"""
from __future__ import annotations

import numpy as np

from .. import backend as B
from ..autograd import grad as _grad
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from . import ir
from .executor import Program
from .passes import optimize
from .tracer import Tracer, active

_default = []  # the graphs entered with as_default(), innermost last


class Operation:
    """A fetchable action with no value: a set of assignments (an optimiser step, an init)."""

    def __init__(self, graph, updates, name):
        self.graph, self.updates, self.name = graph, list(updates), name

    def __repr__(self):
        return f"<Operation {self.name}: {len(self.updates)} assignments>"


class Graph(ir.Graph):
    """A graph built by running ops inside `with graph.as_default():`."""

    def __init__(self, name="graph"):
        super().__init__(name)
        self.tracer = Tracer(self)
        self.variables: list = []  # (Variable, its initial value)

    def as_default(self):
        """Context manager: ops run inside it are recorded into this graph."""
        return _Default(self)

    def value_of(self, t: Tensor) -> ir.Value:
        """The graph value a tensor built in this graph stands for (a Variable: its state)."""
        v = self.tracer.pinned.get(id(t)) or self.tracer.values.get(id(t.data))
        if v is None:
            raise ValueError(f"Tensor {t.name or ''} {t.shape} is not an element of graph {self.name}")
        return v


class _Default:
    def __init__(self, graph):
        self.graph = graph

    def __enter__(self):
        self.graph.tracer.activate()
        _default.append(self.graph)
        return self.graph

    def __exit__(self, *exc):
        _default.pop()
        self.graph.tracer.deactivate()
        return False


def get_default_graph() -> Graph:
    """The graph being built in this thread (inside `as_default()`)."""
    tr = active()
    if tr is None or not isinstance(tr.graph, Graph):
        raise RuntimeError("no graph is being built: use `with nr.graph.Graph().as_default():`")
    return tr.graph


def placeholder(shape, dtype=B.float32, name=None) -> Tensor:
    """An input of the graph, fed at `Session.run` time (`feed_dict={ph: value}`)."""
    g = get_default_graph()
    shape = tuple(shape)
    if any(d is None or d < 0 for d in shape):
        raise ValueError(f"placeholder {name!r}: give the full shape, got {shape}")
    name = g.unique_name(name or "Placeholder")
    t = Tensor(np.zeros(shape, dtype=B.as_dtype(dtype)), name=name)
    v = ir.Value(shape, t.dtype, kind="placeholder", name=name)
    g.placeholders.append(v)
    g.tracer.register(t.data, v)
    g.tracer.keep.append(t)
    return t


def Variable(initial_value, dtype=None, name=None, trainable=True) -> Tensor:  # noqa: N802 - TF's name
    """A Tensor whose value lives across `Session.run` calls; trainable ones get gradients."""
    g = get_default_graph()
    name = g.unique_name(name or "Variable")
    data = np.array(initial_value.data if isinstance(initial_value, Tensor) else initial_value,
                    dtype=B.as_dtype(dtype))
    if dtype is None and data.dtype == np.float64:
        data = data.astype(B.default_float)
    t = Tensor(data, name=name, requires_grad=trainable and data.dtype.kind == "f")
    g.tracer.pinned[id(t)] = g.tracer.state(t, "data", t.data)
    g.variables.append((t, data.copy()))
    return t


def global_variables_initializer() -> Operation:
    """An operation that sets every Variable of the graph back to its initial value."""
    g = get_default_graph()
    ups = [(t, "data", g.tracer.const(init.copy())) for t, init in g.variables]
    return Operation(g, ups, g.unique_name("init"))


class GradientDescentOptimizer:
    """`minimize(loss)` returns the operation `var <- var - learning_rate * d loss / d var`.

    The gradients are graph nodes: the backward pass is recorded into the same graph.
    """

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate

    def minimize(self, loss: Tensor, var_list=None) -> Operation:
        g = get_default_graph()
        variables = var_list or [t for t, _ in g.variables if t.requires_grad]
        seed = None if loss.size == 1 else Tensor._make(np.ones_like(loss.data), False, None)
        grads = _grad(loss, variables, grad_outputs=seed, retain_graph=True, allow_unused=True)
        ups = []
        with no_grad():
            for v, d in zip(variables, grads):
                if d is not None:
                    ups.append((v, "data", g.tracer.value_of(v - self.learning_rate * d)))
        return Operation(g, ups, g.unique_name("GradientDescent"))


def flatten_fetches(fetches, out, leaves=None, what="Tensors or Operations"):
    """The structure of `fetches` (nested lists/tuples/dicts) with its leaves moved to `out`;
    `leaves`: the fetchable types (neurona.compat.v1 passes its own)."""
    if isinstance(fetches, leaves or (Tensor, Operation)):
        out.append(fetches)
        return ("L", len(out) - 1)
    if isinstance(fetches, (list, tuple)):
        return (type(fetches), [flatten_fetches(f, out, leaves, what) for f in fetches])
    if isinstance(fetches, dict):
        return (dict, [(k, flatten_fetches(f, out, leaves, what)) for k, f in fetches.items()])
    raise TypeError(f"Session.run: cannot fetch {type(fetches).__name__}; fetch {what}")



def unflatten_fetches(spec, values):
    """Rebuild the structure `flatten_fetches` described, with `values` at its leaves."""
    tag, body = spec
    if tag == "L":
        return values[body]
    if tag is dict:
        return {k: unflatten_fetches(s, values) for k, s in body}
    return tag(unflatten_fetches(s, values) for s in body)


class Session:
    """Runs (parts of) a graph: `run(fetches, feed_dict)` executes only what the fetches need.

    `last_run_nodes` is how many nodes the last `run` executed; `launches` counts them all.
    """

    def __init__(self, graph: Graph | None = None):
        if graph is None:
            if not _default:
                raise RuntimeError("Session: pass a graph or create it inside graph.as_default()")
            graph = _default[-1]
        self.graph = graph
        self._programs: dict = {}
        self.last_run_nodes = 0
        self.launches = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Drop the compiled programs (the Variables keep their values)."""
        self._programs.clear()

    def _compile(self, items):
        g = self.graph
        key = tuple(id(x) for x in items)
        entry = self._programs.get(key)
        if entry is not None:
            return entry
        sub = g.copy()
        sub.outputs = [g.value_of(x) for x in items if isinstance(x, Tensor)]
        sub.updates = [u for x in items if isinstance(x, Operation) for u in x.updates]
        opt = optimize(sub)
        used = {v.id for n in opt.nodes for v in n.inputs} | {v.id for v in opt.roots()}
        opt.placeholders = [v for v in g.placeholders if v.id in used]
        program = Program(opt)
        entry = self._programs[key] = (program, opt)
        return entry

    def run(self, fetches, feed_dict=None):
        """Values of `fetches` (NumPy arrays; None for an Operation), given `feed_dict`."""
        items: list = []
        spec = flatten_fetches(fetches, items)
        for x in items:
            if isinstance(x, Operation) and x.graph is not self.graph:
                raise ValueError(f"Session.run: operation {x.name} belongs to another graph")
        program, opt = self._compile(items)
        feeds = self._feeds(feed_dict or {}, opt.placeholders)
        states = []
        for v in opt.states:
            t, attr = v.ref
            states.append(t.data if attr == "data" else t.grad.data)
        outs, ups = program.run((), feeds, states)
        for (t, attr, v), a in zip(opt.updates, ups):
            setattr(t, attr, a)
        self.last_run_nodes = program.n_nodes
        self.launches += program.n_nodes
        outs = iter(outs)
        values = [None if isinstance(x, Operation) else next(outs) for x in items]
        return unflatten_fetches(spec, values)

    def _feeds(self, feed_dict, needed):
        by_id = {}
        for ph, value in feed_dict.items():
            if not isinstance(ph, Tensor):
                raise TypeError(f"Session.run: feed_dict keys must be placeholders, not {type(ph).__name__}")
            v = self.graph.tracer.values.get(id(ph.data))
            if v is None or v.kind != "placeholder":
                raise ValueError(f"Session.run: {ph.name or 'tensor'} {ph.shape} is not a placeholder of graph {self.graph.name}")
            arr = np.asarray(value.data if isinstance(value, Tensor) else value)
            if arr.shape != v.shape:
                raise ValueError(f"Session.run: feed for placeholder {v.name!r} has shape {arr.shape}, "
                                 f"but the placeholder's shape is {v.shape}")
            if arr.dtype != v.dtype:
                python_number = not isinstance(value, (np.ndarray, np.generic, Tensor))
                if not (np.can_cast(arr.dtype, v.dtype, "same_kind") or python_number
                        and arr.dtype.kind in "biuf" and v.dtype.kind in "f"):
                    raise TypeError(f"Session.run: feed for placeholder {v.name!r} has dtype "
                                    f"{arr.dtype}, but the placeholder's dtype is {v.dtype}")
                arr = arr.astype(v.dtype)
            by_id[v.id] = arr
        out = []
        for v in needed:
            if v.id not in by_id:
                raise ValueError(f"Session.run: placeholder {v.name!r} ({v.type_str}) is needed by the "
                                 "fetches: give it a value in feed_dict")
            out.append(by_id[v.id])
        return out
