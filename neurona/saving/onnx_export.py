"""`export_onnx(model, path)`: the inference graph of a model as ONNX, for Dense, Activation,
Dropout (dropped: identity at inference), BatchNormalization (folded into one scale and shift from
the running statistics), Flatten, Reshape, Softmax, LeakyReLU, ELU and PReLU layers, and the
convolutional ones: Conv2D (strides, padding, dilation, groups), MaxPooling2D, AveragePooling2D
(zero padding counted in the mean: count_include_pad=1), GlobalAveragePooling2D,
GlobalMaxPooling2D and LocalResponseNormalization, in a Sequential or a functional model, and in
a functional model the merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum and
Concatenate (ONNX Add, Sub, Mul, Mean, Max, Min, Concat).
ONNX's image ops are NCHW: a `channels_last` layer is wrapped in two Transposes, so the graph
takes and gives the same layouts as `predict`. Needs the `onnx` package (`pip install onnx onnxruntime`, or `pip install -e ".[onnx]"` in a neurona checkout).
May import: numpy, onnx (lazily), neurona.saving.format, neurona.nn.symbolic.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .format import _atomic_write

# name -> (ONNX op, attributes)
_ACTIVATIONS = {"relu": ("Relu", {}), "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}),
                "softmax": ("Softmax", {"axis": -1}), "log_softmax": ("LogSoftmax", {"axis": -1}),
                "softplus": ("Softplus", {}), "elu": ("Elu", {"alpha": 1.0}),
                "leaky_relu": ("LeakyRelu", {"alpha": 0.01}), "linear": None}


class _Graph:
    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers, self._count = [], [], 0
        self._const_names = set()

    def fresh(self, hint):
        self._count += 1
        return f"{hint}__{self._count}"

    def const(self, name, array):
        if name not in self._const_names:  # a shared layer's weights are stored once
            self._const_names.add(name)
            self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, hint, **attrs):
        out = self.fresh(hint)
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _activation(g, x, fn, hint, who):
    name = getattr(fn, "__name__", None)
    if name not in _ACTIVATIONS:
        raise ValueError(f"export_onnx: {who} uses activation {name or fn!r}, which has no ONNX mapping; "
                         f"supported: {sorted(_ACTIVATIONS)}")
    spec = _ACTIVATIONS[name]
    return x if spec is None else g.op(spec[0], [x], hint, **spec[1])


def _emit(g, layer, x):
    kind, n = type(layer).__name__, layer.name
    w = {wt.name: wt.tensor.numpy() for wt in layer._weight_list}
    if kind == "Dense":
        y = g.op("MatMul", [x, g.const(f"{n}/kernel", w["kernel"])], n)
        if "bias" in w:
            y = g.op("Add", [y, g.const(f"{n}/bias", w["bias"])], n)
        return _activation(g, y, layer.activation, n, n)
    if kind == "Activation":
        return _activation(g, x, layer.activation, n, n)
    if kind in ("Dropout", "InputLayer"):
        return x
    if kind == "BatchNormalization":
        var, mean = w["moving_variance"].astype(np.float64), w["moving_mean"].astype(np.float64)
        scale = w.get("gamma", np.ones_like(var)) / np.sqrt(var + layer.epsilon)
        shift = w.get("beta", np.zeros_like(var)) - mean * scale
        shape = layer._bshape[1:]  # broadcast over the batch axis and every non-feature axis
        y = g.op("Mul", [x, g.const(f"{n}/scale", scale.reshape(shape).astype(np.float32))], n)
        return g.op("Add", [y, g.const(f"{n}/shift", shift.reshape(shape).astype(np.float32))], n)
    if kind == "Flatten":
        return g.op("Flatten", [x], n, axis=1)
    if kind == "Reshape":
        return g.op("Reshape", [x, g.const(f"{n}/shape", np.array([0, *layer.target_shape], np.int64))], n)
    if kind == "Softmax":
        return g.op("Softmax", [x], n, axis=layer.axis)
    if kind == "LeakyReLU":
        return g.op("LeakyRelu", [x], n, alpha=layer.alpha)
    if kind == "ELU":
        return g.op("Elu", [x], n, alpha=layer.alpha)
    if kind == "PReLU":
        return g.op("PRelu", [x, g.const(f"{n}/alpha", w["alpha"])], n)
    if kind in _IMAGE_LAYERS:
        last = getattr(layer, "data_format", "channels_first") == "channels_last"
        if last:
            x = g.op("Transpose", [x], n, perm=[0, 3, 1, 2])
        y = _IMAGE_LAYERS[kind](g, layer, x, w, n)
        keep_nchw = kind.startswith("Global") and not layer.keepdims  # (N, C): no image axes left
        return g.op("Transpose", [y], n, perm=[0, 2, 3, 1]) if last and not keep_nchw else y
    raise ValueError(f"export_onnx: layer {n} ({kind}) has no ONNX export; supported: "
                     f"{', '.join(_SUPPORTED)}")


def _conv(g, layer, x, w, n):
    ph, pw = layer._pads
    inputs = [x, g.const(f"{n}/kernel", w["kernel"])] + ([g.const(f"{n}/bias", w["bias"])] if "bias" in w else [])
    y = g.op("Conv", inputs, n, kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
             pads=[ph, pw, ph, pw], dilations=list(layer.dilation_rate), group=layer.groups)
    return _activation(g, y, layer.activation, n, n)


def _pool(op_type, **extra):
    def emit(g, layer, x, w, n):
        ph, pw = layer.padding
        # the layers floor a last partial window ('floor') or refuse it ('exact'): ceil_mode=0 either way
        return g.op(op_type, [x], n, kernel_shape=list(layer.pool_size), strides=list(layer.strides),
                    pads=[ph, pw, ph, pw], ceil_mode=0, **extra)
    return emit


def _global_pool(op_type):
    def emit(g, layer, x, w, n):
        y = g.op(op_type, [x], n)  # (N, C, 1, 1)
        return y if layer.keepdims else g.op("Flatten", [y], n, axis=1)
    return emit


def _lrn(g, layer, x, w, n):
    size, alpha, beta, k = layer.size, layer.alpha, layer.beta, layer.k
    if size % 2:
        # ONNX's LRN divides alpha by size like this layer (and torch); its window is centred for odd sizes
        return g.op("LRN", [x], n, size=size, alpha=alpha, beta=beta, bias=k)
    # An even window: ONNX puts the extra channel after c, this layer (and torch) before it. Average
    # the squares over the layer's window instead: a (size, 1, 1) average pool over a new axis whose
    # zero padding counts, so alpha/size · Σ a² = alpha · mean.
    axis = g.const(f"{n}/axis", np.array([1], np.int64))
    sq = g.op("Unsqueeze", [g.op("Mul", [x, x], n), axis], n)  # (N, 1, C, H, W)
    mean = g.op("AveragePool", [sq], n, kernel_shape=[size, 1, 1], count_include_pad=1,
                pads=[size // 2, 0, 0, (size - 1) // 2, 0, 0])
    scaled = g.op("Add", [g.op("Mul", [g.op("Squeeze", [mean, axis], n), g.const(f"{n}/alpha", np.float32(alpha))], n),
                          g.const(f"{n}/k", np.float32(k))], n)
    return g.op("Div", [x, g.op("Pow", [scaled, g.const(f"{n}/beta", np.float32(beta))], n)], n)


_IMAGE_LAYERS = {"Conv2D": _conv, "MaxPooling2D": _pool("MaxPool"),
                 "AveragePooling2D": _pool("AveragePool", count_include_pad=1),
                 "GlobalAveragePooling2D": _global_pool("GlobalAveragePool"),
                 "GlobalMaxPooling2D": _global_pool("GlobalMaxPool"),
                 "LocalResponseNormalization": _lrn}
# merge layer -> (ONNX op, whether the op takes any number of inputs; binary ones are chained)
_MERGES = {"Add": ("Add", False), "Subtract": ("Sub", False), "Multiply": ("Mul", False),
           "Average": ("Mean", True), "Maximum": ("Max", True), "Minimum": ("Min", True),
           "Concatenate": ("Concat", True)}


def _emit_merge(g, layer, xs):
    op_type, variadic = _MERGES[type(layer).__name__]
    n = layer.name
    if op_type == "Concat":
        return g.op("Concat", xs, n, axis=layer.axis)
    if variadic:
        return g.op(op_type, xs, n)
    y = xs[0]
    for x in xs[1:]:
        y = g.op(op_type, [y, x], n)
    return y


_SUPPORTED = ("Dense", "Activation", "Dropout", "BatchNormalization", "Flatten", "Reshape", "Softmax",
              "LeakyReLU", "ELU", "PReLU", *_IMAGE_LAYERS)


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
    from ..nn.symbolic import InputLayer

    if not model.built:
        raise ValueError(f"export_onnx: {model.name} is not built")
    if opset < 13:
        raise ValueError(f"export_onnx: opset must be ≥ 13 (Squeeze/Unsqueeze with axes inputs), got {opset}")
    g = _Graph(helper, numpy_helper)
    if not getattr(model, "_graph", False):  # a Sequential stack (a functional model has a node graph)
        in_shapes, out_shapes = [model.input_shape], [model.output_shape]
        in_names = ["input"]
        x = in_names[0]
        for layer in model.layers:
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
            if type(node.layer).__name__ in _MERGES and node.as_list and not (node.args or node.kwargs):
                names[id(node.outputs[0])] = _emit_merge(g, node.layer, [names[id(t)] for t in node.inputs])
                continue
            if len(node.inputs) != 1 or len(node.outputs) != 1 or node.args or node.kwargs:
                raise ValueError(f"export_onnx: layer {node.layer.name} takes several inputs or outputs; "
                                 f"only single-input layers and the merge layers ({', '.join(_MERGES)}) "
                                 "are exported")
            names[id(node.outputs[0])] = _emit(g, node.layer, names[id(node.inputs[0])])
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
