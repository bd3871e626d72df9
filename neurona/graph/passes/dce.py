"""Dead-code elimination: keep only the nodes that the outputs and write-backs need.

This is the course's first advantage of a graph: what a fetch does not need is not run.
May import: neurona.graph.ir.
"""
from __future__ import annotations

from ..ir import Graph


def dead_code_elimination(graph: Graph) -> Graph:
    """A copy of `graph` without the nodes no root depends on (and without unread states).

    >>> import neurona as nr
    >>> from neurona.graph import trace_graph
    >>> def f(x):
    ...     unused = nr.exp(x)
    ...     return x * 2
    >>> g = trace_graph(f, nr.ones(3))
    >>> g.op_types(), dead_code_elimination(g).op_types()
    (['Exp', 'Mul'], ['Mul'])
    """
    g = graph.copy()
    needed = {v.id for v in g.roots()}
    keep = []
    for node in reversed(g.nodes):
        if any(o.id in needed for o in node.outputs):
            keep.append(node)
            needed.update(v.id for v in node.inputs)
    g.nodes = keep[::-1]
    g.states = [v for v in g.states if v.id in needed]
    return g
