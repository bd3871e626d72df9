"""The teaching picture: a result's computation graph drawn as the course's circuits.

Every tensor in the graph is a box with its forward value in green and its gradient
d(output)/d(tensor) in red; every Function is a gate between its input and output boxes.
Drawing needs the PyPI `graphviz` package and, for SVG/PNG files, the `dot` program (Debian
`graphviz`); `import neurona` does not import this module until `nr.viz` is used.
May import: neurona (backend, Tensor, grad), graphviz, numpy (formatting host copies of values).
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy

# Both halves of graphviz: the PyPI package writes DOT, the system program `dot` renders it.
NEEDS_PACKAGE = ("the graphviz Python package is not installed: pip install graphviz (or, in a neurona "
                 "checkout, pip install -e '.[viz]')")
NEEDS_DOT = ("graphviz's `dot` program is not on PATH (it renders SVG/PNG/PDF): install the system package, "
             "`sudo apt-get install graphviz` on Debian/Ubuntu (`make setup` does it), `brew install graphviz` "
             "on macOS, `dnf install graphviz` on Fedora; or write the DOT text with a .dot suffix")

try:
    import graphviz
except ImportError as e:
    raise ImportError(f"neurona.viz: {NEEDS_PACKAGE}") from e

from . import backend as B
from .autograd import grad as _grad
from .tensor import Tensor

VALUE_COLOR = "darkgreen"
GRAD_COLOR = "red3"

# The gates of the course's figures; other ops show their lowercase class name.
_GATE_LABELS = {"Add": "+", "Sub": "−", "Mul": "×", "Div": "÷", "Neg": "−x", "MatMul": "@",
                "PowScalar": "x^p", "Pow": "x^y", "Maximum": "max", "Sum": "Σ"}


def _walk(y: Tensor):
    """Tensors and Functions reachable from `y`, outputs first."""
    tensors, functions = {id(y): y}, []
    seen = set()
    stack = [y]
    while stack:
        t = stack.pop()
        fn = t._ctx
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if fn.freed:
            raise RuntimeError(
                f"draw_graph: the graph was freed by backward (at {fn.name}); draw before "
                "calling backward(), or call backward(retain_graph=True)"
            )
        functions.append(fn)
        for inp in fn.inputs:
            if id(inp) not in tensors:
                tensors[id(inp)] = inp
                stack.append(inp)
    return list(tensors.values()), functions


def format_array(a, max_elements: int = 6, precision: int = 4) -> str:
    """A value as the picture shows it: a number compactly, a small array abbreviated,
    a big one as its shape and dtype.

    >>> format_array(numpy.float32(-12.0)), format_array(numpy.array([0.5, 1 / 3]))
    ('-12', '[0.5 0.3333]')
    >>> format_array(numpy.zeros((64, 10), dtype=numpy.float32))
    'float32 (64, 10)'
    """
    a = numpy.asarray(a)
    if a.size == 1:
        v = a.reshape(()).item()
        return f"{v:.{precision}g}" if isinstance(v, float) else str(v)
    if a.size <= max_elements:
        return numpy.array2string(a, precision=precision, suppress_small=True, separator=" ",
                                  floatmode="maxprec").replace("\n", "")
    return f"{a.dtype} {tuple(a.shape)}"


def _gradients(y: Tensor, tensors):
    wanted = [t for t in tensors if t.requires_grad]
    if not wanted or not y.requires_grad:
        return {}
    seed = None if y.size == 1 else Tensor._make(B.array_module(y.data).ones_like(y.data), False, None)
    grads = _grad(y, wanted, grad_outputs=seed, retain_graph=True, allow_unused=True)
    return {id(t): g for t, g in zip(wanted, grads) if g is not None}


def _gate_label(fn) -> str:
    """The circle's text: the course's symbol for a gate, `relu` or `leaky relu α` for the
    LeakyReLU op that implements both (read from the slope it applied), else the op's name."""
    if fn.name == "LeakyReLU":
        slope = getattr(fn, "slope", None)  # when the op keeps its parameter
        if slope is not None:
            return "relu" if slope == 0 else f"leaky relu {format_array(numpy.float32(slope), precision=3)}"
        scale = getattr(fn, "scale", None)
        slopes = set() if scale is None else set(numpy.unique(B.to_device(scale, "cpu")).tolist()) - {1.0}
        if slopes == {0.0}:
            return "relu"
        if len(slopes) == 1:
            return f"leaky relu {format_array(numpy.float32(slopes.pop()), precision=3)}"
        return "(leaky) relu"  # every input was positive: the slope never showed
    return _GATE_LABELS.get(fn.name, fn.name.lower())


def _only_unit_axes(a_shape, b_shape) -> bool:
    """Whether two shapes differ only by axes of size 1 (a reshape that moves no element)."""
    return tuple(d for d in a_shape if d != 1) == tuple(d for d in b_shape if d != 1)


def _tensor_label(t: Tensor, title: str, grad) -> str:
    rows = [f"<TR><TD><B>{html.escape(title)}</B></TD></TR>",
            f'<TR><TD><FONT COLOR="{VALUE_COLOR}">{html.escape(format_array(t.numpy()))}</FONT></TD></TR>']
    if grad is not None:
        rows.append(f'<TR><TD><FONT COLOR="{GRAD_COLOR}">{html.escape(format_array(grad.numpy()))}'
                    "</FONT></TD></TR>")
    return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0">' + "".join(rows) + "</TABLE>>"


def to_dot(y: Tensor, grads: bool = True, rankdir: str = "LR", simplify: bool = True) -> graphviz.Digraph:
    """The computation graph of `y` as a graphviz Digraph (`.source` is the DOT text).

    Tensors are boxes titled by their `name` (or the op that made them), with the value in
    green and, unless `grads=False`, the gradient of `y` with respect to it in red (for a
    non-scalar `y`, of `y.sum()`). Gates are circles. Call it before `y.backward()`, which
    frees the graph. `simplify` (default) leaves out reshapes that only add or drop axes of size
    1, such as the four that `w @ x` of two vectors makes to run as a matrix product.

    >>> import neurona as nr
    >>> x = nr.tensor(3.0, requires_grad=True, name="x")
    >>> dot = nr.viz.to_dot(x * x)
    >>> "Mul" in dot.source and ">6<" in dot.source   # d(x²)/dx = 6
    True
    >>> w = nr.tensor([1.0, 2.0], requires_grad=True)
    >>> src = nr.viz.to_dot(nr.relu(w @ nr.tensor([-3.0, 1.0]))).source
    >>> "label=relu" in src, "Reshape" in src
    (True, False)
    """
    tensors, functions = _walk(y)
    if simplify:
        tensors, functions = _skip_unit_reshapes(y, tensors, functions)
    else:
        functions = [(fn, list(fn.inputs)) for fn in functions]
    g = _gradients(y, tensors) if grads else {}
    dot = graphviz.Digraph("computation_graph", graph_attr={"rankdir": rankdir, "fontname": "Helvetica"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11"})
    if g:
        of = html.escape(y.name or "the output")
        dot.attr(label=f'<<FONT COLOR="{VALUE_COLOR}">value</FONT>   '
                       f'<FONT COLOR="{GRAD_COLOR}">gradient of {of}</FONT>>', labelloc="b")
    # Sequential node ids keep the DOT text the same from run to run.
    tid = {id(t): f"t{i}" for i, t in enumerate(tensors)}
    made_by = {id(out): fn for fn, _ in functions if (out := fn.out_ref()) is not None}
    for t in tensors:
        fn = made_by.get(id(t))
        if t.name:
            title = t.name
        elif fn is not None:
            title = f"{fn.name.lower()} out"
        else:
            title = "input" if t.requires_grad else "const"
        style = {"shape": "box", "style": "rounded"}
        if t is y:
            style["penwidth"] = "2"
        elif not t.requires_grad:
            style["color"] = "gray60"
        dot.node(tid[id(t)], _tensor_label(t, title, g.get(id(t))), **style)
    for k, (fn, inputs) in enumerate(functions):
        node = f"f{k}"
        dot.node(node, _gate_label(fn), shape="circle", tooltip=fn.name, comment=fn.name)
        for inp in inputs:
            dot.edge(tid[id(inp)], node)
        out = fn.out_ref()
        if out is not None and id(out) in tid:
            dot.edge(node, tid[id(out)])
    return dot


def _skip_unit_reshapes(y, tensors, functions):
    """The tensors and (function, drawn inputs) pairs left when reshapes that only add or drop
    unit axes are skipped: a consumer of such a reshape's output is drawn from its input."""
    source = {}  # id of a skipped reshape's output -> the tensor drawn in its place
    for fn in functions:
        out = fn.out_ref()
        if (fn.name == "Reshape" and out is not None and out is not y
                and _only_unit_axes(fn.inputs[0].shape, out.shape)):
            source[id(out)] = fn.inputs[0]

    def drawn(t):
        while id(t) in source:
            t = source[id(t)]
        return t

    kept = [(fn, [drawn(t) for t in fn.inputs]) for fn in functions
            if not (fn.out_ref() is not None and id(fn.out_ref()) in source)]
    return [t for t in tensors if id(t) not in source], kept


def draw_graph(y: Tensor, path, grads: bool = True, rankdir: str = "LR", simplify: bool = True) -> Path:
    """Draw the computation graph of `y` to `path`; the suffix picks the format (.svg, .png,
    .pdf, or .dot/.gv for the DOT text). Returns the path written.

    >>> import neurona as nr, tempfile, os
    >>> x = nr.tensor(-2.0, requires_grad=True, name="x")
    >>> p = nr.viz.draw_graph(x * x, os.path.join(tempfile.mkdtemp(), "square.svg"))
    >>> p.stat().st_size > 0
    True
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    dot = to_dot(y, grads=grads, rankdir=rankdir, simplify=simplify)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("dot", "gv"):
        path.write_text(dot.source)
    elif fmt in graphviz.FORMATS:
        try:
            path.write_bytes(dot.pipe(format=fmt))
        except graphviz.ExecutableNotFound as e:
            raise RuntimeError(f"draw_graph: {NEEDS_DOT}") from e
    else:
        raise ValueError(f"draw_graph: cannot tell the format from {path.name!r}; use .svg, .png, .pdf or .dot")
    return path
