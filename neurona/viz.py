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


def _tensor_label(t: Tensor, title: str, grad) -> str:
    rows = [f"<TR><TD><B>{html.escape(title)}</B></TD></TR>",
            f'<TR><TD><FONT COLOR="{VALUE_COLOR}">{html.escape(format_array(t.numpy()))}</FONT></TD></TR>']
    if grad is not None:
        rows.append(f'<TR><TD><FONT COLOR="{GRAD_COLOR}">{html.escape(format_array(grad.numpy()))}'
                    "</FONT></TD></TR>")
    return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0">' + "".join(rows) + "</TABLE>>"


def to_dot(y: Tensor, grads: bool = True, rankdir: str = "LR") -> graphviz.Digraph:
    """The computation graph of `y` as a graphviz Digraph (`.source` is the DOT text).

    Tensors are boxes titled by their `name` (or the op that made them), with the value in
    green and, unless `grads=False`, the gradient of `y` with respect to it in red (for a
    non-scalar `y`, of `y.sum()`). Gates are circles. Call it before `y.backward()`, which
    frees the graph.

    >>> import neurona as nr
    >>> x = nr.tensor(3.0, requires_grad=True, name="x")
    >>> dot = nr.viz.to_dot(x * x)
    >>> "Mul" in dot.source and ">6<" in dot.source   # d(x²)/dx = 6
    True
    """
    tensors, functions = _walk(y)
    g = _gradients(y, tensors) if grads else {}
    dot = graphviz.Digraph("computation_graph", graph_attr={"rankdir": rankdir, "fontname": "Helvetica"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11"})
    if g:
        of = html.escape(y.name or "the output")
        dot.attr(label=f'<<FONT COLOR="{VALUE_COLOR}">value</FONT>   '
                       f'<FONT COLOR="{GRAD_COLOR}">gradient of {of}</FONT>>', labelloc="b")
    # Sequential node ids keep the DOT text the same from run to run.
    tid = {id(t): f"t{i}" for i, t in enumerate(tensors)}
    made_by = {id(out): fn for fn in functions if (out := fn.out_ref()) is not None}
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
    for k, fn in enumerate(functions):
        node = f"f{k}"
        dot.node(node, _GATE_LABELS.get(fn.name, fn.name.lower()), shape="circle", tooltip=fn.name,
                 comment=fn.name)
        for inp in fn.inputs:
            dot.edge(tid[id(inp)], node)
        out = fn.out_ref()
        if out is not None and id(out) in tid:
            dot.edge(node, tid[id(out)])
    return dot


def draw_graph(y: Tensor, path, grads: bool = True, rankdir: str = "LR") -> Path:
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
    dot = to_dot(y, grads=grads, rankdir=rankdir)
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
