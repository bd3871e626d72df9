"""The executor: turns an optimised `Graph` into straight-line Python and runs it.

Each node becomes one line `v7 = K[3](v2, v5)` of a generated function; a value is deleted
right after its last reader (that is what frees memory early), and nodes that can write into a
given buffer (fused kernels, and the ops that declare a NumPy `ufunc` equal to their forward:
matmul, the arithmetic ones) write into the arena the memory planner assigned. When a kernel fails, the error gets a note naming the op and the user's
source line that recorded it (not the executor's).
May import: numpy, neurona.graph.ir, neurona.graph.passes.memory, neurona.backend.kernels (for MatMul).
"""
from __future__ import annotations

import itertools
from keyword import iskeyword
from operator import methodcaller

import numpy as np

from .ir import Graph, Slot

_program_ids = itertools.count()


def ufunc(node):
    """The NumPy ufunc a single op declares equal to its forward (`Function.ufunc`), or None. A
    MatMul of two 2-D float operands whose traced product has at least MIN_SECOND_BLAS_WORK
    multiply-adds gets `kernels.gemm` instead, so that graph mode uses the BLAS eager mode uses for
    it (MKL where chosen; backend/kernels/cblas.py); smaller ones keep `np.matmul`, whose call
    costs less (docs/performance.md, "A second BLAS")."""
    name = getattr(node.cls, "ufunc", None)
    if name == "matmul" and len(node.inputs) == 2 and all(len(getattr(v, "shape", ())) == 2 for v in node.inputs):
        from ..backend import kernels  # noqa: PLC0415 - below graph/; imported when a graph has a MatMul

        (m, k), (_, n) = node.inputs[0].shape, node.inputs[1].shape
        if m * k * n >= kernels.MIN_SECOND_BLAS_WORK and all(v.dtype in (np.float32, np.float64) for v in node.inputs):
            return kernels.gemm
    return getattr(np, name) if name else None


def fill(obj, arrays):
    """Params with each Slot(i) replaced by `arrays[i]`."""
    if type(obj) is Slot:
        return arrays[obj.i]
    if type(obj) in (tuple, list):
        return type(obj)(fill(o, arrays) for o in obj)
    if type(obj) is dict:
        return {k: fill(o, arrays) for k, o in obj.items()}
    return obj


def _has_slot(obj) -> bool:
    if type(obj) is Slot:
        return True
    if type(obj) in (tuple, list):
        return any(_has_slot(o) for o in obj)
    if type(obj) is dict:
        return any(_has_slot(o) for o in obj.values())
    return False


def can_write_into(node) -> bool:
    """Whether the node's kernel can take an `out=` buffer (the planner may give it one)."""
    if node.kernel is not None:
        return node.expr is not None
    if node.cls is None or len(node.outputs) != 1:
        return False
    return node.cls.ufunc is not None and len(node.inputs) == node.n_args


def elementwise_out(node) -> bool:
    """Whether the node may write its output over one of its inputs (elementwise kernels)."""
    return can_write_into(node) and (node.expr is not None or node.cls.elementwise is not None)


def make_kernel(node, out=None):
    """A callable taking the node's input arrays and returning its output(s).

    `out` is a buffer to write into, an int: write over that input (an in-place update), or for a
    kernel with several outputs a tuple: output k over input `out[k]` (None: a fresh array).
    """
    if type(out) is tuple:
        return node.kernel.bind(out)
    if type(out) is int:
        k = node.kernel if node.kernel is not None else ufunc(node)
        i = out
        return lambda *a: k(*a, out=a[i])
    if node.kernel is not None:
        k = node.kernel
        if out is None:
            return k
        return lambda *a: k(*a, out=out)
    if out is not None:
        f = ufunc(node)
        return lambda *a: f(*a, out=out)
    cls, n, params, aux, scalar = node.cls, node.n_args, node.params, tuple(node.aux), node.scalar_out
    f = ufunc(node)
    if (f is not None and not params and not aux and not scalar and len(node.inputs) == n
            and len(node.outputs) == 1 and node.outputs[0].shape != ()):
        # the op declares this ufunc equal to its forward (as for `out=` above): call it directly,
        # without building a Function object per call (its checks ran when the graph was traced)
        return f
    red = _reduction(node)
    if red is not None:
        axes, keepdims = params["axes"], params["keepdims"]
        return lambda a: red(a, axes, None, None, keepdims)
    new, fwd = cls.__new__, cls.forward
    slots = _has_slot(params)
    if not slots and not aux and not scalar:
        if cls.method is not None and len(node.inputs) == 1:  # the array method forward equals
            return methodcaller(cls.method, *params.values())
        return _direct(cls, len(node.inputs), params)

    def kernel(*a):
        f = new(cls)
        out = fwd(f, *a[:n], **(fill(params, a) if slots else params))
        if scalar:
            out = np.asarray(out)
        if aux:
            d = f.__dict__
            return (out,) + tuple(d[k] for k in aux)
        return out

    return kernel


def _reduction(node):
    """`np.<ufunc>.reduce` of an op that declares its forward one (`Function.reduction`), for a
    node with one array input, no Slot parameters and an array (not 0-d) result; else None."""
    r = getattr(node.cls, "reduction", None)
    if r is None or len(node.inputs) != 1 or node.aux or node.scalar_out or node.outputs[0].shape == ():
        return None
    params = node.params
    if "axes" not in params or "keepdims" not in params or _has_slot(params):
        return None
    name = r if isinstance(r, str) else r(**params)
    return getattr(np, name).reduce if name else None


def _direct(cls, n, params):
    """`forward` on a fresh Function with the node's parameters written in as keywords: no
    argument tuple or keyword dict built per call (about 0.4 us less per node than
    `lambda *a: fwd(new(cls), *a, **params)`)."""
    fwd, new = cls.forward, cls.__new__
    if not all(k.isidentifier() and not iskeyword(k) for k in params):  # `**{"from": 1}`: as it is
        return lambda *a: fwd(new(cls), *a, **params)
    ns = {"fwd": fwd, "new": new, "cls": cls}
    kws = []
    for i, (k, v) in enumerate(params.items()):
        ns[f"p{i}"] = v
        kws.append(f"{k}=p{i}")
    args = ", ".join(f"a{i}" for i in range(n))
    src = f"def kernel({args}):\n    return fwd(new(cls), {''.join(a + ', ' for a in args.split(', ') if a)}{', '.join(kws)})\n"
    exec(src, ns)  # noqa: S102 - generated from the node's own parameter names
    return ns["kernel"]


def run_node(node, arrays):
    """Execute one node now (constant folding uses this): a list of its output arrays."""
    r = make_kernel(node)(*arrays)
    return list(r) if len(node.outputs) > 1 else [r]


class Program:
    """A compiled graph: `run(args, feeds)` returns (outputs, update values)."""

    def __init__(self, graph: Graph, plan=None):
        self.graph = graph
        self.plan = plan
        self.name = f"<neurona graph {graph.name} #{next(_program_ids)}>"
        self.n_nodes = len(graph.nodes)
        self.launches = 0
        self._build()

    def _build(self):
        g = self.graph
        names: dict = {}
        lines = ["def program(A, P, S, K, C):"]
        consts: list = []
        kernels: list = []
        self.line_node: dict = {}

        def name(v):
            n = names.get(v.id)
            if n is None:
                if v.kind != "const":
                    raise RuntimeError(f"graph {g.name}: value {v!r} ({v.label}) is used before it is computed")
                n = names[v.id] = f"c{len(consts)}"
                consts.append(v.const)
                lines.append(f"    {n} = C[{len(consts) - 1}]")
            return n

        for i, v in enumerate(g.args):
            names.setdefault(v.id, f"a{i}")
        lines.append(f"    {''.join(f'a{i}, ' for i in range(len(g.args)))}= A" if g.args else "    pass")
        for i, v in enumerate(g.placeholders):
            names[v.id] = f"p{i}"
            lines.append(f"    p{i} = P[{i}]")
        for i, v in enumerate(g.states):
            names[v.id] = f"s{i}"
            lines.append(f"    s{i} = S[{i}]")
        plan = self.plan
        frees = plan.frees if plan is not None else {}
        start = len(lines)
        for idx, node in enumerate(g.nodes):
            buf = plan.buffer_for(node) if plan is not None else None
            kernels.append(make_kernel(node, buf))
            ins = ", ".join(name(v) for v in node.inputs)
            outs = []
            for v in node.outputs:
                names[v.id] = f"v{v.id}"
                outs.append(f"v{v.id}")
            target = outs[0] if len(outs) == 1 else ", ".join(outs)
            lines.append(f"    {target} = K[{idx}]({ins})")
            self.line_node[len(lines)] = node
            dead = [names[v.id] for v in frees.get(idx, ()) if v.id in names and names[v.id][0] == "v"]
            if dead:
                lines.append(f"    del {', '.join(dead)}")
        def fresh(v):  # a constant or an input handed out must not be aliased by its taker
            return f"{name(v)}.copy()" if v.kind != "node" else name(v)

        # what `nr.jit`'s generated replay inlines: the node lines (reading a{i}, s{i}, K, C), the
        # node of each, and the output and update expressions
        self.body = [(ln[4:], self.line_node.get(start + j + 1)) for j, ln in enumerate(lines[start:])]
        self.out_exprs = [fresh(v) for v in g.outputs]
        self.up_exprs = [fresh(v) for _, _, v in g.updates if v is not None]
        outs, ups = ", ".join(self.out_exprs), ", ".join(self.up_exprs)
        lines.append(f"    return ({outs}{',' if g.outputs else ''}), ({ups}{',' if ups else ''})")
        self.source = "\n".join(lines)
        code = compile(self.source, self.name, "exec")
        ns: dict = {}
        exec(code, ns)  # noqa: S102 - our own generated straight-line code
        self._fn = ns["program"]
        self._kernels, self._consts = kernels, consts

    def run(self, args=(), placeholders=(), states=()):
        """Execute the graph on input arrays; returns (outputs, update values) as tuples."""
        self.launches += self.n_nodes
        try:
            return self._fn(args, placeholders, states, self._kernels, self._consts)
        except Exception as e:
            self._annotate(e)
            raise

    def _annotate(self, e, filename=None, line_node=None):
        """Add a note naming the node whose line raised `e` (in this program's code, or in code
        compiled as `filename` whose line numbers map to nodes by `line_node`)."""
        filename = self.name if filename is None else filename
        line_node = self.line_node if line_node is None else line_node
        tb = e.__traceback__
        node = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == filename:
                node = line_node.get(tb.tb_lineno)
            tb = tb.tb_next
        if node is not None:
            where = node.source or "an unknown line"
            e.add_note(f"in graph op {node.name} ({node.op}), recorded while tracing at {where}")
