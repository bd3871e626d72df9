"""Small-matmul fusion: a small 2-D `MatMul` and the elementwise op (or fused chain) that is its
only reader become one compiled loop, `out[i, j] = epilogue(Σ_k a[i, k]·b[k, j], ...)`.

For small products BLAS is all call overhead: on a single state of a 4-128-128-2 Q-network each
`x @ W` costs a NumPy call into sgemm (about 1.5 us) and the bias and ReLU another fused call,
for a few thousand multiply-adds. One numba loop per layer does the multiply-adds, the bias and
the activation in one call and never writes the pre-activation to memory. Only products of at
most `MAX_MACS` multiply-adds are taken (above that BLAS's blocked kernels win). The sum runs
over k in order for each output element, so results can differ from BLAS's in the last bits.
A product with few output columns (`NARROW`) is a dot product per output, a chain of dependent
additions that LLVM may not reorder: above `NARROW_MAX_MACS` multiply-adds it is slower than
sgemm (32x128 by 128x2: 7.6 us as the loop, 2.5 us in BLAS), so such a product stays a BLAS call
and only its epilogue is compiled, run in place over the product (same bits as the unfused ops).
May import: math, numpy, numba (lazily), neurona.graph.ir, neurona.graph.passes.fusion.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, Node
from .fusion import _cast, _elementwise, _kernels, expressions

MAX_MACS = 32768  # M·K·N of the largest product compiled as a loop
NARROW = 16  # fewer output columns than this: a dot product per output instead of row updates
NARROW_MAX_MACS = 2048  # larger narrow products: BLAS, then the epilogue loop


def _epilogue(node, mm_out):
    """(lines, inputs other than the product, index of the product among the inputs) of an
    elementwise reader of `mm_out`, or None."""
    if len(node.outputs) != 1 or node.outputs[0].shape != mm_out.shape or node.inputs.count(mm_out) != 1:
        return None
    if node.cls is None:
        if not node.expr:  # a fused elementwise group (its scalar expression lines), or no kernel to merge
            return None
        lines = list(node.expr)
    else:
        exprs = expressions(node)
        if node.aux or node.n_args != len(node.inputs) or not _elementwise(node, exprs):
            return None
        text = exprs[0].format(*[f"x{i}" for i in range(len(node.inputs))])
        lines = [f"t0 = {_cast(text, node.outputs[0].dtype)}", "return t0"]
    return lines, node.inputs.index(mm_out)


def _read(v, m, n):
    """How the loop reads input `v` at (i, j) after the wrapper reshapes it; None: unsupported."""
    if v.shape == (m, n):
        return "full"
    if math.prod(v.shape) == 1:
        return "one"
    if v.shape in ((n,), (1, n)):
        return "row"
    if v.shape == (m, 1):
        return "col"
    return None


def _compile(lines, dtypes, kinds, j_mm, narrow, blas=False):
    key = ("matmul", tuple(lines), tuple(d.str for d in dtypes), tuple(kinds), j_mm, narrow, blas)
    k = _kernels.get(key)
    if k is None:
        import numba  # noqa: PLC0415 - only when a graph has a small product

        n_epi = len(kinds)
        ext = [f"e{p}" for p in range(n_epi) if p != j_mm]
        idx = {"full": "[i, j]", "one": "[0]", "row": "[j]", "col": "[i]"}
        reads = ", ".join("out[i, j]" if p == j_mm else f"e{p}{idx[kinds[p]]}" for p in range(n_epi))
        body = "".join(f"    {ln}\n" for ln in lines)
        head = (f"def epi({', '.join(f'x{p}' for p in range(n_epi))}):\n{body}"
                f"def loop(a, b, {''.join(e + ', ' for e in ext)}out):\n")
        if blas:  # `out` holds the product (BLAS's): the epilogue, in place
            src = head + (
                "    for i in range(out.shape[0]):\n"
                "        for j in range(out.shape[1]):\n"
                f"            out[i, j] = epi({reads})\n")
        elif narrow:  # few columns: one dot product per output (a row of `a` against a column of `b`)
            src = head + (
                "    for i in range(a.shape[0]):\n"
                "        for j in range(b.shape[1]):\n"
                "            acc = a[i, 0] * b[0, j]\n"
                "            for k in range(1, a.shape[1]):\n"
                "                acc += a[i, k] * b[k, j]\n"
                "            out[i, j] = acc\n"
                f"            out[i, j] = epi({reads})\n")
        else:  # rows of `b` scaled and added: the inner loop runs along contiguous rows (vectorised)
            src = head + (
               "    for i in range(a.shape[0]):\n"
               "        for j in range(b.shape[1]):\n"
               "            out[i, j] = 0\n"
               "        for k in range(a.shape[1]):\n"
               "            aik = a[i, k]\n"
               "            for j in range(b.shape[1]):\n"
               "                out[i, j] += aik * b[k, j]\n"
               "        for j in range(b.shape[1]):\n"
               f"            out[i, j] = epi({reads})\n")
        ns = {"math": math, "np": np}
        exec(src, ns)  # noqa: S102 - generated from the ops' declared expressions
        ns["epi"] = numba.njit(error_model="numpy", inline="always")(ns["epi"])
        k = _kernels[key] = numba.njit(error_model="numpy")(ns["loop"])
    return k


def _kernel(loop, shape, dtype, flat, blas=False):
    empty = np.empty
    if blas:
        matmul = np.matmul

        def kernel(a, b, *e, out=None):
            out = matmul(a, b, out=out)
            loop(a, b, *[x.reshape(-1) if f else x for x, f in zip(e, flat)], out)
            return out

        return kernel
    if not any(flat):
        def kernel(a, b, *e, out=None):
            if out is None:
                out = empty(shape, dtype)
            loop(a, b, *e, out)
            return out

        return kernel

    def kernel(a, b, *e, out=None):  # noqa: F811 - the variant that flattens (1, n), (m, 1), (1, 1) inputs
        if out is None:
            out = empty(shape, dtype)
        loop(a, b, *[x.reshape(-1) if f else x for x, f in zip(e, flat)], out)
        return out

    return kernel


def small_matmul_fusion(graph: Graph, chains: bool = True) -> Graph:
    """A copy of `graph` where each small 2-D float MatMul whose only reader is elementwise is
    one `FusedMatMul` node with that reader (a product with no such reader becomes one alone),
    and with `chains` a run of such nodes that feed each other only (a small MLP's layers) is
    one node too.

    >>> import neurona as nr
    >>> from neurona.graph import trace_graph
    >>> g = trace_graph(lambda x, w, b: nr.relu(x @ w + b), nr.ones((1, 4)), nr.ones((4, 8)), nr.ones(8))
    >>> from neurona.graph.passes import elementwise_fusion
    >>> small_matmul_fusion(elementwise_fusion(g)).op_types()
    ['FusedMatMul']
    """
    g = graph.copy()
    readers = g.consumers()
    roots = {v.id for v in g.roots()}
    written = {v.id for _, _, v in g.updates if v is not None}
    replace: dict = {}  # id(node) -> new node, or None to drop
    loops: dict = {}  # id(FusedMatMul node) -> (its loop, which extra inputs the wrapper flattens)
    for node in g.nodes:
        # the op fact, not the class name: an op whose forward is NumPy's matmul
        if node.cls is None or node.cls.ufunc != "matmul" or node.kernel is not None or len(node.inputs) != 2:
            continue
        a, b = node.inputs
        out = node.outputs[0]
        if (len(a.shape) != 2 or len(b.shape) != 2 or a.dtype != b.dtype or a.dtype.kind != "f"
                or out.dtype != a.dtype or a.shape[0] * a.shape[1] * b.shape[1] > MAX_MACS or a.shape[1] == 0):
            continue
        m, n = out.shape
        blas = n < NARROW and a.shape[0] * a.shape[1] * n > NARROW_MAX_MACS
        users = readers.get(out.id, [])
        epi = None
        if (out.id not in roots and len(users) == 1 and id(users[0]) not in replace
                and users[0].outputs[0].id not in written):
            # (a reader that makes a write-back, such as `v = mu*v + dW`, stays as it is: the
            # memory planner runs that one in place over its input)
            epi = _epilogue(users[0], out)
        kinds = None
        if epi is not None:
            kinds = ["full" if p == epi[1] else _read(v, m, n) for p, v in enumerate(users[0].inputs)]
            if None in kinds or any(v.dtype.kind not in "biuf" for v in users[0].inputs):
                epi = None
        if epi is None:
            if blas:
                continue  # nothing to fuse: the BLAS call as it is
            lines, j_mm, kinds, extra, result = ["return x0"], 0, ["full"], [], out
        else:
            lines, j_mm = epi
            extra = [v for p, v in enumerate(users[0].inputs) if p != j_mm]
            result = users[0].outputs[0]
            blas = blas and result.dtype == out.dtype  # the epilogue writes over the product
        try:
            loop = _compile(lines, [a.dtype] + [v.dtype for v in extra], kinds, j_mm, n < NARROW, blas)
        except Exception:  # noqa: BLE001 - numba cannot build it: keep the BLAS call
            continue
        fused = Node("FusedMatMul", None, {}, [a, b] + extra, 2 + len(extra), node.source)
        fused.name = g.unique_name("FusedMatMul")
        fused.outputs = [result]
        fused.alias = ()  # a fresh array, never a view of an input
        fused.inner = ("MatMul",) + ((users[0].inner or (users[0].op,)) if epi is not None else ())
        flat = [kinds[p] != "full" and len(v.shape) != 1 for p, v in enumerate(users[0].inputs) if p != j_mm] \
            if epi is not None else []
        fused.kernel = _kernel(loop, result.shape, result.dtype, flat, blas)
        if not blas:
            loops[id(fused)] = (loop, flat)
        if epi is not None:
            replace[id(node)] = None
            replace[id(users[0])] = fused
        else:
            replace[id(node)] = fused
    if not replace:
        return g
    nodes = []
    for node in g.nodes:
        new = replace.get(id(node), node)
        if new is not None:
            nodes.append(new)
    g.nodes = nodes
    return _chains(g, loops) if chains else g


def _chains(g: Graph, loops: dict) -> Graph:
    """Merge runs of loop `FusedMatMul`s where each product's left operand is the previous one's
    result and nothing else reads it (a small MLP's layers) into one node whose kernel calls the
    layers' loops in a single compiled function: one call instead of one per layer, the same
    loops, so the same bits. The merged node takes the first layer's place; a layer whose other
    inputs are made between the two stays apart."""
    readers = g.consumers()
    keep = {v.id for v in g.roots()}
    pos = {id(n): i for i, n in enumerate(g.nodes)}
    made = {v.id: i for i, n in enumerate(g.nodes) for v in n.outputs}
    maker = {v.id: n for n in g.nodes for v in n.outputs}  # (a fused node's Value keeps its old `node`)
    runs: dict = {}  # id(first layer) -> [layers]
    last_of: dict = {}  # id(last layer of a run) -> id(its first layer)
    for node in g.nodes:
        if id(node) not in loops:
            continue
        a = node.inputs[0]
        prev = maker.get(a.id)
        head = last_of.get(id(prev)) if prev is not None else None
        if (head is not None and a.id not in keep and len(readers.get(a.id, [])) == 1
                and node.inputs.count(a) == 1
                and all(made.get(v.id, -1) < pos[head] for v in node.inputs[1:])):
            runs[head].append(node)
            del last_of[id(prev)]
            last_of[id(node)] = head
        else:
            runs[id(node)] = [node]
            last_of[id(node)] = id(node)
    replace: dict = {}
    for head, layers in runs.items():
        if len(layers) < 2:
            continue
        try:
            kernel = _chain_kernel([loops[id(n)] for n in layers], [n.inputs for n in layers], layers[-1].outputs[0])
        except Exception:  # noqa: BLE001 - numba cannot build it: the layers stay apart
            continue
        inputs = [layers[0].inputs[0]] + [v for n in layers for v in n.inputs[1:]]
        node = Node("FusedMatMul", None, {}, inputs, len(inputs), layers[0].source)
        node.name = g.unique_name("FusedMatMul")
        node.outputs = [layers[-1].outputs[0]]
        node.alias = ()
        node.inner = tuple(op for n in layers for op in n.inner)
        node.kernel = kernel
        replace[id(layers[0])] = node
        for n in layers[1:]:
            replace[id(n)] = None
    if not replace:
        return g
    g.nodes = [replace.get(id(n), n) for n in g.nodes if replace.get(id(n), n) is not None]
    return g


def _chain_kernel(parts, inputs, result):
    """One numba function calling each layer's loop on the previous one's result (intermediates
    allocated inside), wrapped like a single layer's kernel."""
    import numba  # noqa: PLC0415 - only when a graph has a chain of small products

    ns: dict = {"np": np}
    args, body, flat = ["x"], [], []
    prev = "x"
    for i, ((loop, fl), ins) in enumerate(zip(parts, inputs)):
        ns[f"loop{i}"] = loop
        mine = [f"l{i}_{p}" for p in range(1, len(ins))]
        args += mine
        flat += [False] + list(fl)  # the layer's weight, then its epilogue inputs
        if i == len(parts) - 1:
            body.append(f"    loop{i}({prev}, {', '.join(mine)}, out)")
        else:
            ns[f"dt{i}"] = getattr(np, str(inputs[i + 1][0].dtype))
            body.append(f"    h{i} = np.empty(({prev}.shape[0], l{i}_1.shape[1]), dt{i})")
            body.append(f"    loop{i}({prev}, {', '.join(mine)}, h{i})")
            prev = f"h{i}"
    ns["dtout"] = getattr(np, str(result.dtype))
    src = (f"def chain({', '.join(args)}, out=None):\n"
           f"    if out is None:\n        out = np.empty((x.shape[0], l{len(parts) - 1}_1.shape[1]), dtout)\n"
           + "\n".join(body) + "\n    return out\n")
    exec(src, ns)  # noqa: S102 - generated from the layers' own loops
    chain = numba.njit(error_model="numpy")(ns["chain"])
    if not any(flat):
        return chain  # called straight from the program: no Python wrapper
    # the wrapper, written out for this arity: flatten the (1, n)-style inputs the loops index flat
    wrap = {"loop": chain}
    call = ", ".join(f"{a}.reshape(-1)" if f else a for a, f in zip(args, [False] + flat))
    exec(f"def kernel({', '.join(args)}, out=None):\n    return loop({call}, out)\n", wrap)  # noqa: S102
    return wrap["kernel"]
