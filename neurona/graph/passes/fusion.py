"""Elementwise fusion: a chain of elementwise ops becomes one kernel that reads each input once
and writes one output, instead of one pass over memory (and one temporary array) per op.

Each elementwise op declares a scalar expression per output (`Function.elementwise`, next to
its forward in `neurona.ops`); an op that saves an array for its backward (relu's 0/1 scale,
abs's sign) declares one for that array too, so the
gradient's `g * scale` fuses into `g * (1 if x > 0 else 0)` and the scale is never stored.
A group is grown backwards from a node: a producer joins when it is elementwise, has the same
output shape, and every reader of its output is already in the group. The group's expression
lines compile to a NumPy ufunc with `numba.vectorize` (broadcasting and `out=` come free).
A group whose inputs all have its output's shape, or one element, also gets a flat loop
compiled with `numba.njit`, which LLVM vectorises (NumPy's error model, no zero-division
checks); it runs whenever the arrays are C-contiguous, and the ufunc otherwise. The strided
loop of a `vectorize` ufunc is not vectorised: on a 784x512 float32 array Adam's update with its
`sqrt` and divisions took 1140 us as a ufunc and 82 us as the loop (NumPy's SIMD `np.sqrt`
alone takes 108 us).
The kernel builder is chosen by array backend; only NumPy/numba exists today: a CuPy builder
would turn the same expression lines into a `cupy.ElementwiseKernel`.
May import: math, threading, numpy, numba (lazily), neurona.autograd.function, neurona.graph.ir,
neurona.graph.debug.
"""
from __future__ import annotations

import math
import sys
import threading

import numpy as np

from ...autograd.function import literal
from ..debug import debug_level
from ..ir import Graph, Node

_kernels: dict = {}
SMALL_IN_PLACE = 1024  # an in-place update of at most this many elements skips the scratch array
_scratch = threading.local()  # (shape, dtype) -> the scratch array of in-place fused loops


def expressions(node):
    """Scalar expression templates (`{0}` is input 0) for each output of `node`, or None: what
    the op's class declares as `Function.elementwise` (a string, a tuple, or a classmethod of
    the output dtype and the op's parameters)."""
    e = getattr(node.cls, "elementwise", None)
    if callable(e):
        e = e(node.outputs[0].dtype, **(node.params or {}))
    if e is None:
        return None
    return [e] if isinstance(e, str) else list(e)


def _elementwise(node, exprs) -> bool:
    if exprs is None or node.cls is None or len(exprs) < len(node.outputs):
        return False
    shape = node.outputs[0].shape
    if any(o.shape != shape or o.dtype.kind not in "biuf" for o in node.outputs):
        return False
    if any(v.dtype.kind not in "biuf" for v in node.inputs):
        return False
    try:
        return np.broadcast_shapes(*[v.shape for v in node.inputs], shape) == shape
    except ValueError:
        return False


def _split(graph: Graph):
    """Elementwise nodes split into one unit per used output: [(node, template or None)]."""
    used = {v.id for n in graph.nodes for v in n.inputs} | {v.id for v in graph.roots()}
    units = []
    for node in graph.nodes:
        exprs = expressions(node) if node.cls is not None else None
        if not _elementwise(node, exprs):
            units.append((node, None))
            continue
        for k, v in enumerate(node.outputs):
            if v.id in used or k == 0 and len(node.outputs) == 1:
                unit = node.clone()
                unit.outputs = [v]
                unit.op = node.op if k == 0 else f"{node.op}.{node.aux[k - 1]}"
                units.append((unit, exprs[k]))
    return units


def _compile(lines, in_dtypes, out_dtype):
    key = (tuple(lines), tuple(d.str for d in in_dtypes), out_dtype.str)
    k = _kernels.get(key)
    if k is None:
        import numba  # noqa: PLC0415 - only when a graph has something to fuse

        args = ", ".join(f"x{i}" for i in range(len(in_dtypes)))
        src = f"def fused({args}):\n" + "".join(f"    {ln}\n" for ln in lines)
        ns = {"math": math, "np": np}
        exec(src, ns)  # noqa: S102 - generated from the ops' declared expressions
        sig = numba.from_dtype(out_dtype)(*[numba.from_dtype(d) for d in in_dtypes])
        k = _kernels[key] = numba.vectorize([sig], nopython=True)(ns["fused"])
    return k


def _compile_loop(lines, in_dtypes, out_dtype, scalar):
    """The same expression as a plain loop over C-contiguous 1-d arrays (`scalar[i]`: input i has
    one element, read as `x[0]`). LLVM vectorises this loop (the NumPy error model drops the
    zero-division checks), which the strided loop of a `vectorize` ufunc is not: on 784x512
    float32, Adam's `p - lr*(m/b1)/(sqrt(v/b2)+eps)` takes 82 us instead of 1140 us."""
    key = ("loop", tuple(lines), tuple(d.str for d in in_dtypes), out_dtype.str, tuple(scalar))
    k = _kernels.get(key)
    if k is None:
        import numba  # noqa: PLC0415

        n = len(in_dtypes)
        body = "".join(f"    {ln}\n" for ln in lines)
        reads = ", ".join(f"x{i}[0]" if scalar[i] else f"x{i}[i]" for i in range(n))
        src = (f"def fused({', '.join(f'x{i}' for i in range(n))}):\n{body}"
               f"def loop({''.join(f'x{i}, ' for i in range(n))}out):\n"
               f"    for i in range(out.shape[0]):\n"
               f"        out[i] = fused({reads})\n")
        ns = {"math": math, "np": np}
        exec(src, ns)  # noqa: S102 - generated from the ops' declared expressions
        ns["fused"] = numba.njit(error_model="numpy", inline="always")(ns["fused"])
        arrays = [numba.from_dtype(d)[::1] for d in in_dtypes]
        k = _kernels[key] = numba.njit([numba.void(*arrays, numba.from_dtype(out_dtype)[::1])],
                                       error_model="numpy")(ns["loop"])
    return k


def _fast_kernel(make_ufunc, loop, shape, dtype):
    """Run `loop` on flat views when every array is C-contiguous and the output overlaps no
    input but the one it updates in place; otherwise (a transposed view, say) the ufunc, which
    is compiled only if that ever happens.

    An in-place update (`out` is an input, as in `p -= lr * g`) goes through a scratch array
    and a copy: LLVM's runtime alias check sees the overlap and would run the scalar version
    of the loop (on Adam's update of a 784x512 kernel: 1180 us in place, about 140 us this way).
    The scratch array is shared by the kernels of one shape and dtype, per thread. Below
    `SMALL_IN_PLACE` elements the loop writes in place directly (each element reads its own
    inputs before it is written, so the result is the same; only the vectorisation is lost)."""
    may_share = np.may_share_memory
    ufuncs: list = []
    key = (tuple(shape), np.dtype(dtype).str)
    small = math.prod(shape) <= SMALL_IN_PLACE

    def ufunc(*a, out=None):
        if not ufuncs:
            ufuncs.append(make_ufunc())
        return ufuncs[0](*a, out=out)

    def kernel(*a, out=None):
        if out is None:  # a fresh output: nothing can overlap it
            for x in a:
                if not x.flags.c_contiguous:
                    return ufunc(*a)
            out = np.empty(shape, dtype)
            loop(*[x.reshape(-1) for x in a], out.reshape(-1))
            return out
        if not out.flags.c_contiguous:
            return ufunc(*a, out=out)
        for x in a:
            if not x.flags.c_contiguous or (x is not out and may_share(x, out)):
                return ufunc(*a, out=out)
        # in place over few elements: the scalar loop costs less than the scratch copy below
        if not small and any(x is out for x in a):
            buffers = _scratch.__dict__
            tmp = buffers.get(key)
            if tmp is None:
                tmp = buffers[key] = np.empty(shape, dtype)
            loop(*[x.reshape(-1) for x in a], tmp.reshape(-1))
            np.copyto(out, tmp)
            return out
        loop(*[x.reshape(-1) for x in a], out.reshape(-1))
        return out

    return kernel


def _cast(expr, dtype) -> str:
    return expr if dtype.kind == "b" else f"np.{dtype.name}({expr})"


def elementwise_fusion(graph: Graph, min_ops: int = 2) -> Graph:
    """A copy of `graph` where chains of at least `min_ops` elementwise ops are `Fused` nodes.

    >>> import neurona as nr
    >>> from neurona.graph import trace_graph
    >>> g = trace_graph(lambda x, b: nr.relu(x * 2.0 + b), nr.ones((2, 3)), nr.ones(3))
    >>> g.op_types(), elementwise_fusion(g).op_types()
    (['Mul', 'Add', 'LeakyReLU'], ['Fused'])
    """
    g = graph.copy()
    units = _split(g)
    producer = {}
    for i, (node, _) in enumerate(units):
        for v in node.outputs:
            producer[v.id] = i
    readers: dict = {}
    for i, (node, _) in enumerate(units):
        for v in node.inputs:
            readers.setdefault(v.id, set()).add(i)
    roots = {v.id for v in g.roots()}
    group_of: dict = {}
    groups = []
    for i in range(len(units) - 1, -1, -1):
        node, expr = units[i]
        if expr is None or i in group_of:
            continue
        members = {i}
        group_of[i] = members
        stack = [i]
        while stack:
            for v in units[stack.pop()][0].inputs:
                j = producer.get(v.id)
                if (j is None or j in group_of or units[j][1] is None or v.id in roots
                        or units[j][0].outputs[0].shape != node.outputs[0].shape
                        or not readers[v.id] <= members):
                    continue
                members.add(j)
                group_of[j] = members
                stack.append(j)
        groups.append((i, members))
    fused_at = {i: members for i, members in groups if len(members) >= min_ops}
    absorbed = set().union(*fused_at.values()) if fused_at else set()
    siblings: dict = {}  # original node -> how many units were split from it
    for node, expr in units:
        if expr is not None:
            siblings[id(node.outputs[0].node)] = siblings.get(id(node.outputs[0].node), 0) + 1
    out_nodes = []
    for i, (node, expr) in enumerate(units):
        if i in fused_at:
            try:
                out_nodes.append(_fuse(g, [units[j] for j in sorted(fused_at[i])]))
            except Exception as e:  # noqa: BLE001 - a kernel numba cannot build: keep the graph unfused
                if debug_level() >= 1:
                    print(f"[neurona.graph] fusion skipped: {type(e).__name__}: {e}", file=sys.stderr)
                return graph.copy()
        elif i in absorbed:
            continue
        elif expr is None or len(node.aux) == 0:
            out_nodes.append(node)
        elif node.outputs[0].index == 0 and siblings[id(node.outputs[0].node)] == 1:
            full = node.clone()  # the only output used is the main one: run the op as it is
            full.op, full.outputs = node.outputs[0].node.op, list(node.outputs[0].node.outputs)
            out_nodes.append(full)
        else:  # one output of a multi-output op, computed on its own
            try:
                out_nodes.append(_fuse(g, [units[i]]))
            except Exception:  # noqa: BLE001 - as above
                return graph.copy()
    g.nodes = out_nodes
    return g


def _fuse(graph, members):
    names: dict = {}
    ext, lines = [], []

    def name(v):
        n = names.get(v.id)
        if n is None:
            if v.kind == "const" and v.const.ndim == 0 and v.dtype.kind in "biuf":
                n = literal(v.const, v.dtype) if v.dtype.kind != "b" else repr(bool(v.const))
            else:
                n = f"x{len(ext)}"
                ext.append(v)
            names[v.id] = n
        return n

    for k, (node, expr) in enumerate(members):
        text = expr.format(*[name(v) for v in node.inputs])
        out = node.outputs[0]
        lines.append(f"t{k} = {_cast(text, out.dtype)}")
        names[out.id] = f"t{k}"
    root = members[-1][0].outputs[0]
    lines.append(f"return t{len(members) - 1}")
    fused = Node("Fused", None, {}, ext, len(ext), members[-1][0].source)
    fused.name = graph.unique_name("Fused")
    fused.outputs = [root]
    fused.expr = lines
    fused.inner = tuple(n.op for n, _ in members)
    dtypes = [v.dtype for v in ext]
    if math.prod(root.shape) > 1 and all(v.shape == root.shape or math.prod(v.shape) == 1 for v in ext):
        # no broadcasting but of single numbers: a flat loop that LLVM vectorises
        loop = _compile_loop(lines, dtypes, root.dtype, [v.shape != root.shape for v in ext])
        fused.kernel = _fast_kernel(lambda: _compile(lines, dtypes, root.dtype), loop, root.shape, root.dtype)
        return fused
    kernel = _compile(lines, dtypes, root.dtype)
    if root.shape == ():  # a ufunc returns a NumPy scalar for 0-d inputs; the graph wants arrays
        fused.kernel = lambda *a, **kw: np.asarray(kernel(*a, **kw))
    else:
        fused.kernel = kernel
    return fused
