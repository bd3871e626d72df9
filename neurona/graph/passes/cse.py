"""Common-subexpression elimination: the same op on the same inputs with the same parameters
is computed once. Small equal constants are merged first, so `x * 2` twice is one node.
Random ops (`Function.random`, e.g. dropout) are never merged: each call draws its own numbers.
May import: numpy, neurona.graph.ir.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Slot

SMALL = 64  # constants up to this many elements are compared by value


def _freeze(obj):
    """A hashable stand-in for a params value (arrays by identity)."""
    if isinstance(obj, np.ndarray):
        return ("array", id(obj))
    if isinstance(obj, Slot):
        return ("slot", obj.i)
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__,) + tuple(_freeze(o) for o in obj)
    if isinstance(obj, dict):
        return ("dict",) + tuple(sorted((k, _freeze(v)) for k, v in obj.items()))
    if isinstance(obj, slice):
        return ("slice", obj.start, obj.stop, obj.step)
    hash(obj)
    return obj


def common_subexpression_elimination(graph: Graph) -> Graph:
    """A copy of `graph` where duplicate nodes and equal small constants are merged.

    >>> import neurona as nr
    >>> from neurona.graph import trace_graph
    >>> g = trace_graph(lambda x: nr.exp(x) + nr.exp(x), nr.ones(3))
    >>> g.op_types(), common_subexpression_elimination(g).op_types()
    (['Exp', 'Exp', 'Add'], ['Exp', 'Add'])
    """
    g = graph.copy()
    mapping: dict = {}
    consts: dict = {}
    seen: dict = {}
    keep = []
    for node in g.nodes:
        inputs = []
        for v in node.inputs:
            v = mapping.get(v.id, v)
            if v.kind == "const" and v.const.size <= SMALL:
                key = (v.const.dtype.str, v.const.shape, v.const.tobytes())
                v = mapping[v.id] = consts.setdefault(key, v)
            inputs.append(v)
        node.inputs = inputs
        try:
            key = (node.op, node.cls, node.expr and tuple(node.expr), _freeze(node.params),
                   tuple(v.id for v in inputs))
        except TypeError:  # params that cannot be compared: keep the node
            keep.append(node)
            continue
        # two dropouts of x draw two masks (`cls` is None for a View or a fused node)
        other = seen.get(key) if not getattr(node.cls, "random", False) else None
        if other is None:
            seen[key] = node
            keep.append(node)
        else:
            for a, b in zip(node.outputs, other.outputs):
                mapping[a.id] = b
    g.nodes = keep
    g.replace_uses(mapping)
    return g
