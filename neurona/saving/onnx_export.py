"""`export_onnx(model, path)`: the inference graph of a model as ONNX.

The exporter walks the model (a Sequential's layers, or a functional model's layer calls) and asks
each layer for its own nodes: a layer that can be exported has a method `_onnx(ctx, x)` next to
its `call`, which takes the ONNX name of its input (a list of names for a merge layer) and
returns the name of its output, building nodes with the `OnnxContext` it is given:

    def _onnx(self, ctx, x):                      # Dense
        y = ctx.op("MatMul", [x, ctx.const("kernel", self.kernel.numpy())])
        return ctx.activation(ctx.op("Add", [y, ctx.const("bias", self.bias.numpy())]), self.activation)

Layers with an export today: Dense, Activation, Dropout (identity at inference),
BatchNormalization (folded into one scale and shift from the moving statistics), Flatten,
Reshape, Softmax, LeakyReLU, ELU, PReLU, Conv2D (strides, padding, dilation, groups),
MaxPooling2D, AveragePooling2D (zero padding counted in the mean: count_include_pad=1),
GlobalAveragePooling2D, GlobalMaxPooling2D, LocalResponseNormalization and the merge layers Add,
Subtract, Multiply, Average, Maximum, Minimum and Concatenate (ONNX Add, Sub, Mul, Mean, Max,
Min, Concat), and the recurrent SimpleRNN, LSTM and GRU (ONNX RNN, LSTM, GRU; not stateful,
go_backwards, return_state nor Bidirectional). ONNX's image ops are NCHW: a `channels_last` layer wraps its nodes in two
Transposes (`ctx.nchw`), so the graph takes and gives the same layouts as `predict`.
Needs the `onnx` package (`pip install onnx onnxruntime`, or `pip install -e ".[onnx]"` in a
neurona checkout).
May import: numpy, onnx (lazily), neurona.nn.layer, neurona.nn.symbolic, neurona.saving.format.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..nn.layer import Layer
from .format import _atomic_write

# activation function (Keras name) -> (ONNX op, attributes); None: the identity
_ACTIVATIONS = {"relu": ("Relu", {}), "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}),
                "softmax": ("Softmax", {"axis": -1}), "log_softmax": ("LogSoftmax", {"axis": -1}),
                "softplus": ("Softplus", {}), "elu": ("Elu", {"alpha": 1.0}),
                "leaky_relu": ("LeakyRelu", {"alpha": 0.01}), "linear": None}


class OnnxContext:
    """What a layer's `_onnx(ctx, x)` builds its ONNX nodes with. Node and constant names start
    with the name of the layer being exported (`ctx.layer`), so the graph reads like the model."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers, self._count = [], [], 0
        self._const_names = set()
        self.layer = None

    def _who(self) -> str:
        return f"layer {self.layer.name} ({type(self.layer).__name__})"

    def op(self, op_type, inputs, **attrs) -> str:
        """Add node `op_type(*inputs, **attrs)`; returns the name of its output."""
        if not all(isinstance(i, str) for i in inputs):
            raise ValueError(f"export_onnx: {self._who()} takes one input; it was called on a list")
        self._count += 1
        out = f"{self.layer.name}__{self._count}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def const(self, name, array) -> str:
        """A constant (an initializer) named `<layer>/<name>`; a shared layer's is stored once."""
        full = f"{self.layer.name}/{name}"
        if full not in self._const_names:
            self._const_names.add(full)
            self.initializers.append(self.numpy_helper.from_array(np.asarray(array), full))
        return full

    def activation(self, x, fn) -> str:
        """The nodes of activation function `fn` (relu, softmax, ... or linear) applied to `x`."""
        name = getattr(fn, "__name__", None)
        if name not in _ACTIVATIONS:
            raise ValueError(f"export_onnx: {self._who()} uses activation {name or fn!r}, which has no ONNX "
                             f"mapping; supported: {sorted(_ACTIVATIONS)}")
        spec = _ACTIVATIONS[name]
        return x if spec is None else self.op(spec[0], [x], **spec[1])

    def nchw(self, x, data_format, emit, image_out=True) -> str:
        """`emit(x)` on NCHW images: for a channels_last layer, transposed there and back (not
        back when `image_out` is False: the result has no image axes left)."""
        if data_format != "channels_last":
            return emit(x)
        y = emit(self.op("Transpose", [x], perm=[0, 3, 1, 2]))
        return self.op("Transpose", [y], perm=[0, 2, 3, 1]) if image_out else y


def _exportable():
    """Names of the layer classes that have an ONNX export (a `_onnx` method)."""
    found, stack = set(), [Layer]
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        if hasattr(cls, "_onnx") and not cls.__name__.startswith("_"):
            found.add(cls.__name__)
    return sorted(found)


def _emit(ctx, layer, x):
    export = getattr(layer, "_onnx", None)
    if export is None:
        raise ValueError(f"export_onnx: layer {layer.name} ({type(layer).__name__}) has no ONNX export; "
                         f"supported: {', '.join(_exportable())}")
    ctx.layer = layer
    return export(ctx, x)


def _value_info(helper, tensor_proto, name, shape):
    dims = ["batch" if d is None else int(d) for d in shape]
    return helper.make_tensor_value_info(name, tensor_proto.FLOAT, dims)


def export_onnx(model, path, opset=17):
    """Write `model`'s inference graph to the ONNX file `path` (opset ≥ 13); returns the path.

    Inputs are named `input` (or `input_0`, `input_1`, ... for several), outputs `output` (or
    `output_0`, ...); the batch axis is dynamic.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ImportError("export_onnx needs the onnx package: pip install onnx onnxruntime "
                          "(or, in a neurona checkout, pip install -e '.[onnx]')") from None
    from ..nn.symbolic import InputLayer  # noqa: PLC0415

    if not model.built:
        raise ValueError(f"export_onnx: {model.name} is not built")
    if opset < 13:
        raise ValueError(f"export_onnx: opset must be ≥ 13 (Squeeze/Unsqueeze with axes inputs), got {opset}")
    g = OnnxContext(helper, numpy_helper)
    if not getattr(model, "_graph", False):  # a Sequential stack (a functional model has a node graph)
        in_shapes, out_shapes = [model.input_shape], [model.output_shape]
        in_names = ["input"]
        x = in_names[0]
        for layer in model.layers:
            if not isinstance(layer, InputLayer):
                x = _emit(g, layer, x)
        results = [x]
    else:
        in_shapes = [t.shape for t in model.inputs]
        out_shapes = [t.shape for t in model.outputs]
        in_names = ["input"] if len(in_shapes) == 1 else [f"input_{i}" for i in range(len(in_shapes))]
        names = {id(t): nm for t, nm in zip(model.inputs, in_names)}
        for node in model._nodes:
            if isinstance(node.layer, InputLayer):
                continue
            if (len(node.outputs) != 1 or node.args or node.kwargs
                    or (not node.as_list and len(node.inputs) != 1)):
                raise ValueError(f"export_onnx: layer {node.layer.name} takes extra arguments or gives several "
                                 "outputs; only layers called on one tensor or on a list of tensors (the merge "
                                 "layers) are exported")
            xs = [names[id(t)] for t in node.inputs]
            names[id(node.outputs[0])] = _emit(g, node.layer, xs if node.as_list else xs[0])
        results = [names[id(t)] for t in model.outputs]
    out_names = ["output"] if len(results) == 1 else [f"output_{i}" for i in range(len(results))]
    for r, o in zip(results, out_names):
        g.nodes.append(helper.make_node("Identity", [r], [o], name=o))
    graph = helper.make_graph(g.nodes, model.name,
                              [_value_info(helper, TensorProto, nm, s) for nm, s in zip(in_names, in_shapes)],
                              [_value_info(helper, TensorProto, nm, s) for nm, s in zip(out_names, out_shapes)],
                              initializer=g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="neurona")
    onnx.checker.check_model(proto)
    path = Path(path)
    _atomic_write(path, lambda tmp: Path(tmp).write_bytes(proto.SerializeToString()))
    return path
