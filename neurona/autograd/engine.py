"""The reverse-mode engine: walks the graph from outputs to inputs.

Order is Kahn's algorithm on the graph of Function nodes: a node runs its backward once every
node that consumed its output has passed its gradient down, so gradients of tensors used twice
are summed before they flow on. The walk is iterative (no recursion limit: a 100,000-op chain
backpropagates). Without `retain_graph` each node drops its inputs after use, which frees the
graph's memory and makes a second backward an error that says what to do.
May import: neurona.tensor, neurona.autograd.grad_mode, neurona.autograd.tracing,
neurona.backend.kernels.malloc.
"""
from __future__ import annotations

from ..backend.kernels.malloc import tune_malloc
from . import tracing as _tracing
from .grad_mode import set_grad_enabled


def _check_grad(fn, i, inp, g):
    if g.shape != inp.shape:
        raise RuntimeError(
            f"{fn.name}.backward returned a gradient of shape {g.shape} for input {i} "
            f"of shape {inp.shape}"
        )


def _accumulate(total, g):
    """total + g, where either may be a row-sparse gradient (neurona.ops.sparse.RowSparse, which
    knows how to add itself to a dense Tensor)."""
    return g + total if getattr(g, "is_sparse", False) else total + g


def _graph_dependencies(roots):
    """For each Function reachable from `roots`, how many graph edges consume its output, and
    a strong reference to that output: a node's backward may need its own output (`output()`)
    after every consumer has run and dropped its inputs, so the walk keeps it alive until then."""
    deps = {}
    outputs = {}
    stack = list(roots)
    seen = set(map(id, roots))
    while stack:
        fn = stack.pop()
        if fn.freed:
            raise RuntimeError(
                f"trying to backward through the graph a second time (at {fn.name}): its "
                "buffers were freed by the first backward. Pass retain_graph=True to the first "
                "backward() (or nr.grad) if you need to backward twice."
            )
        for inp in fn.inputs:
            parent = inp._ctx
            if parent is not None and inp.requires_grad:
                deps[parent] = deps.get(parent, 0) + 1
                if id(parent) not in seen:
                    seen.add(id(parent))
                    outputs[parent] = inp
                    stack.append(parent)
    return deps, outputs


def run_backward(outputs, grad_outputs, inputs=None, retain_graph=False, create_graph=False):
    """Backpropagate `grad_outputs` from `outputs`.

    With `inputs=None`, gradients accumulate into the `.grad` of leaves (and of tensors that
    called `retain_grad()`). Otherwise the gradients with respect to `inputs` (leaves or
    intermediate tensors) are returned in order, None for an input the outputs do not reach,
    and no `.grad` is touched.
    """
    tune_malloc()  # the first training step: keep freed memory for reuse (backend/kernels/malloc.py)
    wanted = None if inputs is None else {id(t): i for i, t in enumerate(inputs)}
    results = None if inputs is None else [None] * len(inputs)

    def deliver(t, g):
        if wanted is not None:
            i = wanted.get(id(t))
            if i is not None:
                results[i] = g if results[i] is None else _accumulate(results[i], g)
        elif t._ctx is None or t._retain_grad:
            if not create_graph:
                g = g.detach()
            if _tracing.recording:  # through the `grad` property: a tracer sees the read and write
                t.grad = g if t.grad is None else _accumulate(t.grad, g)
            else:  # the slot itself: W7's hot path
                t._grad = g if t._grad is None else _accumulate(t._grad, g)

    grads = {}
    roots = []
    with set_grad_enabled(create_graph):
        for out, g in zip(outputs, grad_outputs):
            fn = out._ctx
            if fn is None:
                deliver(out, g)
                continue
            if fn in grads:
                grads[fn] = grads[fn] + g
            else:
                grads[fn] = g
                roots.append(fn)
        deps, alive = _graph_dependencies(roots)
        ready = [fn for fn in roots if fn not in deps]
        while ready:
            fn = ready.pop()
            g = grads.pop(fn, None)
            if g is not None:
                out = fn.out_ref()
                if out is not None and (out._retain_grad or wanted is not None):
                    deliver(out, g)
                in_grads = fn.backward(g)
                if type(in_grads) is not tuple:
                    in_grads = (in_grads,)
            else:
                in_grads = (None,) * len(fn.inputs)
            for i, (inp, ig) in enumerate(zip(fn.inputs, in_grads)):
                if not inp.requires_grad:
                    continue
                parent = inp._ctx
                if ig is not None:
                    if ig.shape != inp.shape:  # tested inline: this loop is W7's hot path
                        _check_grad(fn, i, inp, ig)
                    if parent is None:
                        deliver(inp, ig)
                    elif parent in grads:
                        grads[parent] = grads[parent] + ig
                    else:
                        grads[parent] = ig
                if parent is not None:
                    deps[parent] -= 1
                    if deps[parent] == 0:
                        ready.append(parent)
            alive.pop(fn, None)
            if not retain_graph:
                fn.__dict__.clear()
                fn.freed = True
    return results
