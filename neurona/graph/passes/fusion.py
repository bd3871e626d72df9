"""Elementwise fusion: a chain of elementwise ops becomes one kernel that reads each input once
and writes one output, instead of one pass over memory (and one temporary array) per op.

Each elementwise op declares a scalar expression per output (`Function.elementwise`, next to
its forward in `neurona.ops`); an op that saves an array for its backward (relu's 0/1 scale,
abs's sign) declares one for that array too, so the
gradient's `g * scale` fuses into `g * (1 if x > 0 else 0)` and the scale is never stored.
A group is grown backwards from a node: a producer joins when it is elementwise, has the same
output shape, and every reader of its output is already in the group. A producer whose output
also leaves the graph (a write-back such as Adam's new `m` and `v`, or an output) joins too, as an
extra output of the group's kernel, when every input of the group has the group's shape or one
element: the group then computes all its outputs in one pass (Adam's update of a parameter,
its two moments and the parameter itself, is one kernel instead of three), and the memory plan
lets each write straight into the state it replaces. The group's expression
lines compile to a NumPy ufunc with `numba.vectorize` (broadcasting and `out=` come free).
A group whose inputs all have its output's shape, one element, or the last axis only (a bias
row), also gets a flat loop
compiled with `numba.njit`, which LLVM vectorises (NumPy's error model, no zero-division
checks); it runs whenever the arrays are C-contiguous, and the ufunc otherwise. An update in place
(the output is one of the inputs, as in `p -= lr * g`) runs a variant of the loop that writes
through the input itself, so LLVM sees one pointer and still vectorises it. The strided
loop of a `vectorize` ufunc is not vectorised: on a 784x512 float32 array Adam's update with its
`sqrt` and divisions took 1140 us as a ufunc and 82 us as the loop (NumPy's SIMD `np.sqrt`
alone takes 108 us).
The kernel builder is chosen by array backend; only NumPy/numba exists today: a CuPy builder
would turn the same expression lines into a `cupy.ElementwiseKernel`.
May import: math, numpy, numba (lazily), neurona.autograd.function, neurona.graph.ir,
neurona.graph.debug.
"""
from __future__ import annotations

import math
import sys

import numpy as np

from ...autograd.function import literal
from ..debug import debug_level
from ..ir import Graph, Node, Value

_kernels: dict = {}
SMALL_CONST = 4096  # a non-contiguous constant input of at most this many elements is copied once
SMALL_MULTI = 4096  # a group this small may also hand out values that later nodes read


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


def _apart(a, b):
    """Whether two flat contiguous arrays are the same memory or share none (numba-compiled
    inside the loops: a Python `np.may_share_memory` per input costs more than a small loop)."""
    pa, pb = a.ctypes.data, b.ctypes.data
    if pa == pb and a.size == b.size:
        return True
    return pa + a.size * a.itemsize <= pb or pb + b.size * b.itemsize <= pa


def _kind(shape, root):
    """How a flat loop over `root`'s elements reads an input of `shape`: FULL (element i), ONE
    (a single number, read once), ROW (the last axis only, as a bias: element i % row length,
    by a loop over rows), COL (one number per row, shape (..., 1): element i // row length), or
    None (other broadcasting: the ufunc)."""
    if shape == root:
        return FULL
    if math.prod(shape) == 1:
        return ONE
    if len(root) >= 2 and shape and shape[-1] == root[-1] and math.prod(shape) == root[-1]:
        return ROW
    if len(root) >= 2 and len(shape) == len(root) and shape[-1] == 1 and shape[:-1] == root[:-1]:
        return COL
    return None


FULL, ONE, ROW, COL = 0, 1, 2, 3


def _loops_by_target(make_loop):
    """loop(targets): make_loop(targets), compiled on first use and kept."""
    loops: dict = {}

    def loop(targets):
        k = loops.get(targets)
        if k is None:
            k = loops[targets] = make_loop(targets)
        return k
    return loop


def _compile_loop(lines, in_types, out_types, kinds, targets):
    """The same expression as a plain loop, `loop(n, x0.., outs..)`, over C-contiguous arrays of
    the given (dtype, ndim) types, each read as a flat view of its n elements (`kinds[i]`, see
    `_kind`: ONE is read once, a ROW or COL input makes the loop run over rows and then along them). Output k goes to its own argument when `targets[k]` is
    -1, else into input `targets[k]`, in place. LLVM vectorises this loop (the NumPy error model
    drops the zero-division checks), which the strided loop of a `vectorize` ufunc is not (Adam's
    `p - lr*(m/b1)/(sqrt(v/b2)+eps)` on 784x512 float32 runs many times faster so).
    Writing in place through the input's own argument (not a second argument for the same
    array) keeps the loop vectorised: LLVM's runtime overlap check is between distinct pointers
    only. The loop first checks that no output overlaps an input other than itself and returns
    False, writing nothing, if one does. The signature takes C-contiguous arrays only, so a
    strided one raises TypeError at the call (the callers' cue to take another path) at no cost
    to the others: no Python-side flag checks or reshapes per call."""
    key = ("loop", tuple(lines), tuple((d.str, k) for d, k in in_types), tuple((d.str, k) for d, k in out_types),
           tuple(kinds), tuple(targets))
    k = _kernels.get(key)
    if k is None:
        import numba  # noqa: PLC0415

        n = len(in_types)
        body = "".join(f"    {ln}\n" for ln in lines)
        outs = [f"o{k}" for k, t in enumerate(targets) if t < 0]
        dest = [f"o{k}" if t < 0 else f"x{t}" for k, t in enumerate(targets)]
        checks = "".join(f"    if not apart(x{i}, {d}):\n        return False\n"
                         for d in dest for i in range(n) if f"x{i}" != d)
        views = "".join(f"    y{i} = x{i}.reshape(1)[0]\n" if kinds[i] == ONE
                        else f"    y{i} = x{i}.reshape({'n' if kinds[i] == FULL else f'x{i}.size'})\n"
                        for i in range(n))
        # an in-place output is written through its input's own view: one pointer for LLVM
        views += "".join(f"    w{k} = o{k}.reshape(n)\n" if t < 0 else f"    w{k} = y{t}\n"
                         for k, t in enumerate(targets))
        reads = ", ".join(f"y{i}" if kinds[i] == ONE else f"y{i}[i]" if kinds[i] == FULL
                          else f"y{i}[j]" if kinds[i] == ROW else f"y{i}[h]" for i in range(n))
        rows = [i for i in range(n) if kinds[i] == ROW]
        cols = [i for i in range(n) if kinds[i] == COL]
        pad = "    " if rows or cols else ""
        if len(targets) == 1:
            store = f"{pad}        w0[i] = fused({reads})\n"
        else:
            store = (f"{pad}        r = fused({reads})\n"
                     + "".join(f"{pad}        w{k}[i] = r[{k}]\n" for k in range(len(dest))))
        if rows or cols:  # over rows, then along each (the bias read contiguously with the row)
            c = f"y{rows[0]}.shape[0]" if rows else f"n // y{cols[0]}.shape[0]"
            head = (f"    c = {c}\n    for h in range(n // c):\n"
                    "        for j in range(c):\n            i = h * c + j\n")
        else:
            head = "    for i in range(n):\n"
        src = (f"def fused({', '.join(f'x{i}' for i in range(n))}):\n{body}"
               f"def loop(n, {''.join(f'x{i}, ' for i in range(n))}{', '.join(outs)}):\n"
               f"{checks}{views}{head}{store}    return True\n")
        ns = {"math": math, "np": np, "apart": numba.njit(inline="always")(_apart)}
        exec(src, ns)  # noqa: S102 - generated from the ops' declared expressions
        ns["fused"] = numba.njit(error_model="numpy", inline="always")(ns["fused"])
        arrays = [numba.types.Array(numba.from_dtype(d), k, "C") for d, k in in_types]
        out_arrays = [numba.types.Array(numba.from_dtype(out_types[k][0]), out_types[k][1], "C")
                      for k, t in enumerate(targets) if t < 0]
        k = _kernels[key] = numba.njit([numba.boolean(numba.intp, *arrays, *out_arrays)],
                                       error_model="numpy")(ns["loop"])
    return k


def _fast_kernel(make_ufunc, make_loop, shape, dtype):
    """Run the loop when every array is C-contiguous and the output overlaps no input but the
    one it updates in place; otherwise (a transposed view, say) the ufunc, which is compiled
    only if that ever happens (NumPy's ufuncs buffer overlapping operands).
    `make_loop(targets)` gives the loop writing its output to its own argument (targets (-1,))
    or over input j (targets (j,)), compiled on first use."""
    ufuncs: list = []
    loop = _loops_by_target(make_loop)
    n = math.prod(shape)
    empty = np.empty

    fresh = loop((-1,))

    def ufunc(*a, out=None):
        if not ufuncs:
            ufuncs.append(make_ufunc())
        return ufuncs[0](*a, out=out)

    careful: list = []  # set once an array did not fit the loop: check the flags from then on

    def kernel(*a, out=None):
        if careful:
            for x in a:
                if not _fits(x):
                    return ufunc(*a, out=out)
            if out is not None and not _fits(out):
                return ufunc(*a, out=out)
        if out is None:  # a fresh output: nothing can overlap it
            out = empty(shape, dtype)
            try:
                fresh(n, *a, out)
            except TypeError:  # a strided or read-only input (numba's error is slow to build)
                careful.append(True)
                return ufunc(*a)
            return out
        j = -1
        for i, x in enumerate(a):
            if x is out:
                j = i
                break
        try:  # in place: element i's inputs are read before it is written
            done = fresh(n, *a, out) if j < 0 else loop((j,))(n, *a)
        except TypeError:
            careful.append(True)
            done = False
        return out if done else ufunc(*a, out=out)

    return kernel


def _fits(x) -> bool:
    """Whether the loops' signatures take array x (C-contiguous and writeable)."""
    f = x.flags
    return f.c_contiguous and f.writeable


def _contiguous(x):
    return x if _fits(x) else x.copy()


def _multi_kernel(make_loop, shape, out_dtypes):
    """The kernel of a group with several outputs (a tuple of arrays). `kernel.bind(targets)`
    gives the one the executor runs: output k written over input `targets[k]` (None: a fresh
    array). When an input is not C-contiguous, or overlaps an output it is not, the inputs are
    copied first and the outputs copied into place after."""
    loop = _loops_by_target(make_loop)
    n = math.prod(shape)
    empty = np.empty

    every = (-1,) * len(out_dtypes)

    def kernel(*a):
        outs = [empty(shape, d) for d in out_dtypes]
        loop(every)(n, *[_contiguous(x) for x in a], *outs)
        return tuple(outs)

    def bind(targets):
        if all(t is None for t in targets):
            return kernel
        spec = tuple(-1 if t is None else t for t in targets)
        fresh_dtypes = [d for d, t in zip(out_dtypes, spec) if t < 0]
        into = loop(spec)

        def fallback(a):
            outs = kernel(*a)  # copies of the inputs, then the results copied into place
            for k, t in enumerate(spec):
                if t >= 0:
                    np.copyto(a[t], outs[k])
            return tuple(a[t] if t >= 0 else o for o, t in zip(outs, spec))

        careful: list = []  # set once an array did not fit the loop: check the flags from then on

        if not fresh_dtypes:  # every output over an input (an optimiser's update)
            def run(*a):
                if careful and not all(map(_fits, a)):
                    return fallback(a)
                try:
                    if into(n, *a):
                        return tuple([a[t] for t in spec])
                except TypeError:  # a strided or read-only input (numba's error is slow to build)
                    careful.append(True)
                return fallback(a)

            return run

        def run(*a):  # noqa: F811 - some outputs over inputs, some new
            if careful and not all(map(_fits, a)):
                return fallback(a)
            fresh = [empty(shape, d) for d in fresh_dtypes]
            try:
                if into(n, *a, *fresh):
                    it = iter(fresh)
                    return tuple(a[t] if t >= 0 else next(it) for t in spec)
            except TypeError:
                careful.append(True)
            return fallback(a)

        return run

    kernel.bind = bind
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
    small = SMALL_MULTI
    group_of: dict = {}
    groups = []

    def grow(i, extras):
        """Unit i and the producers that can join it; `extras` (a list, or None: none allowed)
        collects the members whose output is also needed outside the group: written back or
        returned (any size), or read by nodes after the group's place (groups of at most
        `SMALL_MULTI` elements: such an output is a new array at each run, not a planned one)."""
        node = units[i][0]
        members = {i}
        stack = [i]
        while stack:
            for v in units[stack.pop()][0].inputs:
                j = producer.get(v.id)
                if (j is None or j in group_of or j in members or units[j][1] is None
                        or units[j][0].outputs[0].shape != node.outputs[0].shape):
                    continue
                outside = readers[v.id] - members
                if outside or v.id in roots:  # the value is needed outside the group too
                    if extras is None or (outside and (min(outside) < i or small < math.prod(node.outputs[0].shape))):
                        continue
                    extras.append(j)
                members.add(j)
                stack.append(j)
        return members

    def loopable(members, shape):
        inside = {units[j][0].outputs[0].id for j in members}
        return math.prod(shape) > 1 and all(
            v.id in inside or _kind(v.shape, shape) is not None
            for j in members for v in units[j][0].inputs)

    for i in range(len(units) - 1, -1, -1):
        node, expr = units[i]
        if expr is None or i in group_of:
            continue
        extras: list = []
        members = grow(i, extras)
        if extras and not loopable(members, node.outputs[0].shape):
            extras = []  # several outputs need the flat loop: grow again without them
            members = grow(i, None)
        for j in members:
            group_of[j] = members
        groups.append((i, members, extras))
    fused_at = {i: members for i, members, _ in groups if len(members) >= min_ops}
    extra_of = {i: extras for i, _, extras in groups}
    absorbed = set().union(*fused_at.values()) if fused_at else set()
    siblings: dict = {}  # original node -> how many units were split from it
    for node, expr in units:
        if expr is not None:
            siblings[id(node.outputs[0].node)] = siblings.get(id(node.outputs[0].node), 0) + 1
    out_nodes = []
    for i, (node, expr) in enumerate(units):
        if i in fused_at:
            try:
                members = sorted(fused_at[i])
                extra = [units[j][0].outputs[0] for j in sorted(extra_of[i])]
                out_nodes.append(_fuse(g, [units[j] for j in members], extra))
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


def _fuse(graph, members, extra=()):
    """One node computing the members (in order); its outputs are the last member's and then
    the `extra` values (members' outputs that leave the graph)."""
    names: dict = {}
    ext, lines = [], []

    def name(v):
        n = names.get(v.id)
        if n is None:
            if v.kind == "const" and v.const.ndim == 0 and v.dtype.kind in "biuf":
                n = literal(v.const, v.dtype) if v.dtype.kind != "b" else repr(bool(v.const))
            else:
                n = f"x{len(ext)}"
                if v.kind == "const" and v.const.size <= SMALL_CONST and not _fits(v.const):
                    # a broadcast view (a gradient's seed): a small contiguous copy suits the loop
                    ext.append(Value(v.shape, v.dtype, kind="const", const=np.array(v.const, order="C"), name=v.name))
                else:
                    ext.append(v)
            names[v.id] = n
        return n

    for k, (node, expr) in enumerate(members):
        text = expr.format(*[name(v) for v in node.inputs])
        out = node.outputs[0]
        lines.append(f"t{k} = {_cast(text, out.dtype)}")
        names[out.id] = f"t{k}"
    root = members[-1][0].outputs[0]
    outputs = [root, *extra]
    lines.append(f"return {', '.join(names[v.id] for v in outputs)}")
    fused = Node("Fused", None, {}, ext, len(ext), members[-1][0].source)
    fused.name = graph.unique_name("Fused")
    fused.outputs = outputs
    fused.expr = lines
    fused.inner = tuple(n.op for n, _ in members)
    fused.alias = ()  # fresh arrays or the inputs it updates in place, never views
    dtypes = [v.dtype for v in ext]
    kinds = [_kind(v.shape, root.shape) for v in ext]
    out_dtypes = [v.dtype for v in outputs]
    in_types = [(v.dtype, len(v.shape)) for v in ext]
    out_types = [(v.dtype, len(v.shape)) for v in outputs]
    if extra:  # the group was grown only if the flat loop can run it
        fused.kernel = _multi_kernel(lambda t: _compile_loop(lines, in_types, out_types, kinds, t), root.shape,
                                     out_dtypes)
        return fused
    if math.prod(root.shape) > 1 and None not in kinds:
        # no broadcasting but of single numbers and rows: a flat loop that LLVM vectorises
        fused.kernel = _fast_kernel(lambda: _compile(lines, dtypes, root.dtype),
                                    lambda t: _compile_loop(lines, in_types, out_types, kinds, t),
                                    root.shape, root.dtype)
        return fused
    if root.shape == ():  # single numbers (a step count, a bias correction): NumPy scalars in Python
        fused.kernel = _scalar_kernel(lines, len(ext), root.dtype)
        return fused
    fused.kernel = _compile(lines, dtypes, root.dtype)
    return fused


class _NumPyMath:
    """`math.f` in an expression evaluated on NumPy scalars: NumPy's `f` (nan or inf where
    Python's `math` would raise, as the compiled kernels give), or math's where NumPy has none."""

    def __getattr__(self, name):
        return getattr(np, name, None) or getattr(math, name)


def _scalar_kernel(lines, n, dtype):
    """A 0-d group: its expression run as Python on NumPy scalars. Calling a compiled ufunc on
    0-d arrays costs more (a bias correction `1 - 0.9 ** t`: about 5 us against 1)."""
    src = f"def fused({', '.join(f'x{i}' for i in range(n))}):\n" + "".join(f"    {ln}\n" for ln in lines)
    ns = {"math": _NumPyMath(), "np": np}
    exec(src, ns)  # noqa: S102 - generated from the ops' declared expressions
    fn = ns["fused"]
    asarray = np.asarray

    def kernel(*a, out=None):
        r = fn(*[x[()] for x in a])
        if out is None:
            return asarray(r, dtype)
        out[()] = r
        return out

    return kernel
