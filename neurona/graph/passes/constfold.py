"""Constant folding: a node whose inputs are all constants is run once, at compile time.

`pow(mul(2, 3), add(2, 3))` folds to the constant 7776; in a training step, expressions of the
hyper-parameters (`1 - beta`, `lr / (1 - beta**t)` written with tensors) fold the same way.
A random op (`Function.random`, e.g. dropout) is never folded: it must draw at every run.
May import: neurona.graph.ir, neurona.graph.executor.
"""
from __future__ import annotations

from ..executor import run_node
from ..ir import Graph, Value

MAX_BYTES = 1 << 22  # do not bake huge arrays into the program


def constant_folding(graph: Graph) -> Graph:
    """A copy of `graph` where nodes computable from constants alone became constants.

    >>> import neurona as nr
    >>> from neurona.graph import trace_graph
    >>> g = trace_graph(lambda x: x * (nr.tensor(2.0) + 3.0), nr.ones(3))
    >>> g.op_types(), constant_folding(g).op_types()
    (['Add', 'Mul'], ['Mul'])
    """
    g = graph.copy()
    mapping: dict = {}
    keep = []
    for node in g.nodes:
        node.inputs = [mapping.get(v.id, v) for v in node.inputs]
        if (node.inputs and all(v.kind == "const" for v in node.inputs)
                and not getattr(node.cls, "random", False)  # dropout draws anew at every run
                and sum(v.nbytes for v in node.outputs) <= MAX_BYTES):
            for v, arr in zip(node.outputs, run_node(node, [v.const for v in node.inputs])):
                mapping[v.id] = Value(v.shape, v.dtype, kind="const", const=arr, name=f"{node.name}_folded")
        else:
            keep.append(node)
    g.nodes = keep
    g.replace_uses(mapping)
    return g
