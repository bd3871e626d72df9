"""The graph IR: `Value`s (typed edges) produced by `Node`s (ops), collected in a `Graph`.

A node is one recorded `Function` call: its class, its parameters (arrays among them replaced by
`Slot`s that point at extra inputs, so a mask or an index array computed inside the graph stays a
graph value), the values it reads and the values it makes. Output 0 is the op's result; outputs
1.. are the arrays the op saved for its backward (`aux`), so gradient nodes can read them.
Values that no node makes are graph inputs (`arg`, `placeholder`), live state read from a Tensor
at run time (`state`: a parameter's data or grad) or constants (`const`).
May import: the standard library only.
"""
from __future__ import annotations

import itertools

_ids = itertools.count()


class Slot:
    """Stands for a node's input `i` inside its parameters (an array the op takes as a param)."""

    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i

    def __repr__(self):
        return f"Slot({self.i})"


class Value:
    """One array in the graph: shape, dtype, and where it comes from."""

    __slots__ = ("id", "shape", "dtype", "node", "index", "kind", "const", "ref", "name")

    def __init__(self, shape, dtype, kind="node", node=None, index=0, const=None, ref=None, name=None):
        self.id = next(_ids)
        self.shape, self.dtype = tuple(shape), dtype
        self.kind, self.node, self.index = kind, node, index
        self.const, self.ref, self.name = const, ref, name

    @property
    def label(self) -> str:
        """TensorFlow-style name: `Add:0` for a node's first output."""
        if self.node is not None:
            return f"{self.node.name}:{self.index}"
        return f"{self.name}:0" if self.name else f"{self.kind}{self.id}:0"

    @property
    def type_str(self) -> str:
        return f"{self.dtype}[{','.join(map(str, self.shape))}]"

    @property
    def nbytes(self) -> int:
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        return n

    def __repr__(self):
        return f"%{self.id}"


class Node:
    """One op: `cls.forward(*inputs[:n_args], **params)` with Slots filled from `inputs[n_args:]`.

    A fused node has `cls=None` and a `kernel` built by the fusion pass from its `expr` lines.
    """

    __slots__ = ("id", "op", "name", "cls", "params", "inputs", "n_args", "outputs", "aux",
                 "source", "scalar_out", "expr", "kernel", "inner", "alias")

    def __init__(self, op, cls, params, inputs, n_args, source=None):
        self.id = next(_ids)
        self.op, self.cls, self.params = op, cls, params
        self.inputs, self.n_args = list(inputs), n_args
        self.outputs, self.aux = [], []
        self.name = op
        self.source = source
        self.scalar_out = False
        self.expr = None
        self.kernel = None
        self.inner = ()
        self.alias = None  # indices of inputs an output may be a view of; None: any of them

    def clone(self) -> "Node":
        """The same op over the same values, with its own input list (passes rewrite it)."""
        n = Node.__new__(Node)
        for k in Node.__slots__:
            setattr(n, k, getattr(self, k))
        n.inputs = list(self.inputs)
        return n

    def add_output(self, shape, dtype) -> Value:
        """A new Value made by this node (its next output)."""
        v = Value(shape, dtype, node=self, index=len(self.outputs))
        self.outputs.append(v)
        return v

    def __repr__(self):
        outs = ", ".join(f"{v!r}:{v.type_str}" for v in self.outputs)
        ins = ", ".join(map(repr, self.inputs))
        extra = f" {self.params}" if self.params else ""
        extra += f" [{'; '.join(self.expr)}]" if self.expr else ""
        return f"{outs} = {self.name}({ins}){extra}"


class Graph:
    """Nodes in execution order plus what goes in and comes out.

    `args` are the traced function's tensor arguments, `placeholders` the TF1-style feeds,
    `states` the live Tensors read at run time, `outputs` what a call returns, and `updates`
    the `(tensor, attr, value)` write-backs (a parameter's new data, a new grad, or None).
    """

    def __init__(self, name="graph"):
        self.name = name
        self.nodes: list[Node] = []
        self.args: list[Value] = []
        self.placeholders: list[Value] = []
        self.states: list[Value] = []
        self.outputs: list[Value] = []
        self.updates: list[tuple] = []
        self._names: dict = {}

    def unique_name(self, op: str) -> str:
        """`Add`, then `Add_1`, `Add_2`... as TensorFlow names its nodes."""
        n = self._names.get(op, 0)
        self._names[op] = n + 1
        return op if n == 0 else f"{op}_{n}"

    def add_node(self, node: Node) -> Node:
        """Append `node`, giving it a unique TensorFlow-style name."""
        node.name = self.unique_name(node.op)
        self.nodes.append(node)
        return node

    def roots(self):
        """Values the graph must compute: its outputs and the values it writes back."""
        return list(self.outputs) + [v for _, _, v in self.updates if v is not None]

    def consumers(self) -> dict:
        """id(value) -> list of nodes that read it."""
        uses: dict = {}
        for node in self.nodes:
            for v in node.inputs:
                uses.setdefault(v.id, []).append(node)
        return uses

    def op_types(self) -> list:
        """The op names of the nodes, in order."""
        return [n.op for n in self.nodes]

    def copy(self) -> "Graph":
        """A copy that passes may rewrite: cloned nodes over the same values."""
        g = Graph(self.name)
        g.nodes = [n.clone() for n in self.nodes]
        g.args, g.placeholders = list(self.args), list(self.placeholders)
        g.states, g.outputs, g.updates = list(self.states), list(self.outputs), list(self.updates)
        g._names = dict(self._names)
        return g

    def replace_uses(self, mapping: dict) -> None:
        """Make every reader of value `a` read `mapping[a.id]` instead."""
        if not mapping:
            return
        for node in self.nodes:
            node.inputs = [mapping.get(v.id, v) for v in node.inputs]
        self.outputs = [mapping.get(v.id, v) for v in self.outputs]
        self.updates = [(t, a, None if v is None else mapping.get(v.id, v)) for t, a, v in self.updates]

    def __str__(self):
        lines = [f"graph {self.name}("]
        for kind, vals in (("arg", self.args), ("placeholder", self.placeholders), ("state", self.states)):
            lines += [f"  {kind} {v!r}: {v.type_str} {v.name or ''}".rstrip() for v in vals]
        lines.append(") {")
        lines += [f"  {n!r}" for n in self.nodes]
        lines.append(f"  return {self.outputs}")
        lines += [f"  {getattr(t, 'name', None) or 'tensor'}.{a} <- {v!r}" for t, a, v in self.updates]
        lines.append("}")
        return "\n".join(lines)
