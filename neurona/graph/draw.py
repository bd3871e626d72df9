"""Pictures of graphs: DOT (graphviz) to SVG/PNG, and TensorBoard's graph format.

Op nodes are boxes named as TensorFlow names them (`Add`, `Add_1`, a `Fused_2` box lists the ops
it fused); edges carry the tensor they hold, `Add:0` with its dtype and shape; inputs
(arguments, placeholders, variables/state, constants) are ellipses.
`write_tensorboard(graph, logdir)` writes a GraphDef event that `tensorboard --logdir` shows.
May import: numpy, graphviz and tensorboardX (lazily), neurona.graph.ir.
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from .ir import Graph

_SOURCE_STYLE = {"arg": "lightblue", "placeholder": "lightblue", "state": "khaki", "const": "grey90"}


def _source_label(v) -> str:
    if v.kind == "const" and v.const is not None and v.const.size <= 4:
        body = np.array2string(np.asarray(v.const), precision=4)
        return f"Const\n{body}\n{v.type_str}"
    if v.name:
        return f"{v.name}\n({v.kind})\n{v.type_str}"
    return f"{v.kind}\n{v.type_str}"


def to_dot(graph: Graph, title: str | None = None) -> str:
    """The DOT source of `graph`.

    >>> import neurona as nr
    >>> from neurona.graph import trace_graph
    >>> 'Add:0' in to_dot(trace_graph(lambda a: a + 1, nr.ones(2)))
    True
    """
    lines = ["digraph G {", '  rankdir=TB; node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8];']
    if title:
        lines.append(f'  labelloc=t; label="{html.escape(title)}";')
    drawn = set()

    def source(v):
        if v.id not in drawn:
            drawn.add(v.id)
            label = _source_label(v).replace('"', "'").replace("\n", "\\n")
            lines.append(f'  v{v.id} [shape=ellipse, style=filled, fillcolor={_SOURCE_STYLE.get(v.kind, "white")}, label="{label}"];')
        return f"v{v.id}"

    made = {}
    for node in graph.nodes:
        label = node.name if node.name == node.op or node.expr is not None else f"{node.name}\\n({node.op})"
        if node.expr is not None:  # a fused node
            label += "\\n" + " → ".join(node.inner)
        color = "palegreen" if node.expr is not None else "white"
        lines.append(f'  n{node.id} [shape=box, style="rounded,filled", fillcolor={color}, label="{label}"];')
        for v in node.outputs:
            made[v.id] = node
    for node in graph.nodes:
        for v in node.inputs:
            src = made.get(v.id)
            tail = f"n{src.id}" if src is not None else source(v)
            lines.append(f'  {tail} -> n{node.id} [label="{v.label}\\n{v.type_str}"];')
    for i, v in enumerate(graph.outputs):
        lines.append(f'  out{i} [shape=doublecircle, label="out{i}"];')
        src = made.get(v.id)
        lines.append(f'  {f"n{src.id}" if src else source(v)} -> out{i} [label="{v.label}\\n{v.type_str}"];')
    for i, (t, attr, v) in enumerate(graph.updates):
        if v is None:
            continue
        name = getattr(t, "name", None) or f"tensor{i}"
        lines.append(f'  up{i} [shape=cds, label="{name}.{attr} ←"];')
        src = made.get(v.id)
        lines.append(f'  {f"n{src.id}" if src else source(v)} -> up{i} [label="{v.label}"];')
    lines.append("}")
    return "\n".join(lines)


def draw(graph: Graph, path, title: str | None = None) -> Path:
    """Render `graph` to `path`; the suffix picks the format (.svg, .png, .pdf, .dot)."""
    path = Path(path)
    dot = to_dot(graph, title)
    if path.suffix == ".dot":
        path.write_text(dot)
        return path
    try:
        import graphviz  # noqa: PLC0415 - pictures only
    except ImportError as e:
        raise ImportError("nr.graph.draw: the graphviz Python package is not installed: pip install graphviz "
                          "(or, in a neurona checkout, pip install -e '.[viz]')") from e
    try:
        data = graphviz.Source(dot).pipe(format=path.suffix.lstrip(".") or "svg")
    except graphviz.ExecutableNotFound as e:
        raise RuntimeError("nr.graph.draw: graphviz's `dot` program is not on PATH: `sudo apt-get install graphviz` "
                           "on Debian/Ubuntu, `brew install graphviz` on macOS; or write a .dot file") from e
    path.write_bytes(data)
    return path


def graph_def(graph: Graph):
    """`graph` as a TensorFlow GraphDef protobuf (tensorboardX's copy of the protos)."""
    try:
        from tensorboardX.proto import (attr_value_pb2, graph_pb2, node_def_pb2,  # noqa: PLC0415
                                        tensor_shape_pb2, types_pb2, versions_pb2)
    except ImportError as e:
        raise RuntimeError("TensorBoard graphs need tensorboardX: pip install tensorboardX tensorboard "
                           "(or, in a neurona checkout, pip install -e '.[tb]')") from e

    def shape_attr(vals):
        shapes = [tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d)
                                                          for d in v.shape]) for v in vals]
        return attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(shape=shapes))

    def dtype_attr(v):
        name = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "int64": "DT_INT64",
                "int32": "DT_INT32", "bool": "DT_BOOL"}.get(v.dtype.name, "DT_INVALID")
        return attr_value_pb2.AttrValue(type=types_pb2.DataType.Value(name))

    nodes = []
    made = {}
    for node in graph.nodes:
        for v in node.outputs:
            made[v.id] = f"{node.name}:{v.index}" if v.index else node.name
    sources = {}
    for node in graph.nodes:
        for v in node.inputs:
            if v.id not in made and v.id not in sources:
                op = {"arg": "Placeholder", "placeholder": "Placeholder", "state": "VariableV2",
                      "const": "Const"}.get(v.kind, "Const")
                name = (v.name or f"{op}_{v.id}").replace(":", "_")
                sources[v.id] = name
                nodes.append(node_def_pb2.NodeDef(name=name, op=op, attr={
                    "_output_shapes": shape_attr([v]), "dtype": dtype_attr(v)}))
    for node in graph.nodes:
        inputs = [made.get(v.id) or sources[v.id] for v in node.inputs]
        attr = {"_output_shapes": shape_attr(node.outputs), "T": dtype_attr(node.outputs[0])}
        if node.expr is not None:  # a fused node
            attr["fused_ops"] = attr_value_pb2.AttrValue(s=" -> ".join(node.inner).encode())
        nodes.append(node_def_pb2.NodeDef(name=node.name, op=node.op.split(".")[0], input=inputs, attr=attr))
    return graph_pb2.GraphDef(node=nodes, versions=versions_pb2.VersionDef(producer=22))


def write_tensorboard(graph: Graph, logdir) -> Path:
    """Write `graph` as an event file in `logdir` for `tensorboard --logdir logdir`."""
    from tensorboardX.event_file_writer import EventFileWriter  # noqa: PLC0415
    from tensorboardX.proto import event_pb2  # noqa: PLC0415

    writer = EventFileWriter(str(logdir))
    writer.add_event(event_pb2.Event(graph_def=graph_def(graph).SerializeToString()))
    writer.close()
    return Path(logdir)
