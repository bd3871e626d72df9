"""Memory planning: when each value dies, and which buffers can be reused.

Liveness: a value dies after its last reader. An op that may return a view of an input (reshape,
transpose, indexing; any op the executor does not allocate for) keeps that input alive as long
as its own output. Buffer reuse: the nodes that can write into a given array (fused kernels,
matmul, arithmetic ufuncs) get one from an arena; a buffer goes back to the arena when its value
dies and is handed to the next node that needs the same shape and dtype. The arena lives with
the compiled program, so a replayed training step allocates (almost) nothing. Values that leave
the program (outputs, write-backs to parameters) never live in the arena.
The plan reports its own accounting: peak bytes with reuse, with freeing but no reuse, and with
neither (every intermediate kept, as a naive interpreter would).
May import: numpy, neurona.graph.ir, neurona.graph.executor.
"""
from __future__ import annotations

import numpy as np

from ..executor import can_write_into, elementwise_out
from ..ir import Graph


class MemoryPlan:
    """`frees[i]`: values that die after node i; `buffer_for(node)`: its arena buffer or None."""

    def __init__(self, graph: Graph, reuse: bool = True):
        nodes = graph.nodes
        end = len(nodes)
        last: dict = {v.id: end for v in graph.roots()}
        for idx in range(end - 1, -1, -1):
            node = nodes[idx]
            out_last = max((last.get(o.id, idx) for o in node.outputs), default=idx)
            views = () if can_write_into(node) else node.alias
            for i, v in enumerate(node.inputs):
                alias = views is None or i in views
                last[v.id] = max(last.get(v.id, idx), out_last if alias else idx)
        self.frees: dict = {}
        for idx, node in enumerate(nodes):
            for v in node.outputs:
                die = last.get(v.id, idx)
                if die < end:
                    self.frees.setdefault(die, []).append(v)
        # a parameter update written straight into the parameter's array, as eager `p -= ...`
        # does, when nothing reads (or views) the old value afterwards
        index = {node.id: i for i, node in enumerate(nodes)}
        producer = {o.id: node for node in nodes for o in node.outputs}
        old = {(id(v.ref[0]), v.ref[1]): v for v in graph.states}
        self._assign: dict = {}
        multi: dict = {}  # node id -> per output: the input it is written over, or None
        for t, attr, v in graph.updates:
            node = producer.get(v.id) if v is not None else None
            s = old.get((id(t), attr))
            if (node is None or s is None or s.shape != v.shape or s.dtype != v.dtype or s not in node.inputs
                    or last.get(s.id, -1) > index[node.id]):
                continue
            if len(node.outputs) > 1:
                if hasattr(node.kernel, "bind"):  # a fused group with several outputs
                    spec = multi.setdefault(node.id, [None] * len(node.outputs))
                    spec[node.outputs.index(v)] = node.inputs.index(s)
                continue
            if not elementwise_out(node) or node.id in self._assign:
                continue
            self._assign[node.id] = node.inputs.index(s)
        in_place = len(self._assign) + sum(len(spec) - spec.count(None) for spec in multi.values())
        # the arena: byte buffers, best fit, any shape/dtype can reuse a dead value's buffer
        self.buffers: list = []
        sizes: list = []
        free: list = []
        owner: dict = {}
        live = peak = live_free = peak_free = 0
        total = 0
        for idx, node in enumerate(nodes):
            for v in node.outputs:
                total += v.nbytes
                live_free += v.nbytes
            v = node.outputs[0] if node.outputs else None
            if (reuse and node.id not in self._assign and can_write_into(node) and len(node.outputs) == 1
                    and last.get(v.id, idx) < end):
                fits = [b for b in free if sizes[b] >= v.nbytes]
                if fits:
                    b = min(fits, key=sizes.__getitem__)
                    free.remove(b)
                elif free:  # grow the largest free buffer rather than add one
                    b = max(free, key=sizes.__getitem__)
                    free.remove(b)
                    sizes[b] = v.nbytes
                else:
                    b = len(sizes)
                    sizes.append(v.nbytes)
                owner[v.id] = b
                self._assign[node.id] = (b, v.shape, v.dtype)
                live += sum(o.nbytes for o in node.outputs[1:])
            elif node.id in multi:  # the outputs not written over an input are new arrays
                live += sum(o.nbytes for o, t in zip(node.outputs, multi[node.id]) if t is None)
            elif node.id not in self._assign:
                live += sum(o.nbytes for o in node.outputs)
            peak, peak_free = max(peak, live), max(peak_free, live_free)
            for v in self.frees.get(idx, ()):
                live_free -= v.nbytes
                if v.id in owner:
                    free.append(owner[v.id])
                else:
                    live -= v.nbytes
        self.buffers = [np.empty(n, np.uint8) for n in sizes]
        for nid, a in self._assign.items():
            if type(a) is tuple:
                b, shape, dtype = a
                self._assign[nid] = self.buffers[b][: int(np.prod(shape, dtype=np.int64)) * dtype.itemsize].view(dtype).reshape(shape)
        for nid, spec in multi.items():
            self._assign[nid] = tuple(spec)
        arena = sum(sizes)
        self.stats = {"arena_bytes": arena, "peak_bytes": arena + peak,
                      "peak_bytes_no_reuse": peak_free, "all_intermediates_bytes": total,
                      "planned_nodes": len(self._assign) - in_place, "in_place_updates": in_place,
                      "buffers": len(sizes)}

    def buffer_for(self, node):
        """The array node's output goes into, an int (write into that input), a tuple (a kernel
        with several outputs: the input each is written into, or None), or None."""
        return self._assign.get(node.id)
