"""The functional API: `Input` gives a symbolic tensor; calling a layer on symbolic tensors records
a `Node` instead of computing; `Model(inputs, outputs)` orders the recorded nodes once and replays
them on real tensors. Layers may be shared (one layer, several nodes), models may have several
inputs and outputs, and a model is itself a layer (models nest). Under `defer_build()` the calls
are recorded without building the layers (an unbuilt model, described without allocating it).
May import: neurona (Tensor, ops, no_grad), neurona.nn (Layer, registry), neurona.models.trainer.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from ..nn.layer import Layer, get_registered, register
from .trainer import Trainer

_state = threading.local()


@contextmanager
def defer_build():
    """Record layer calls on symbolic tensors without building the layers: no weight is created,
    output shapes come from each layer's `compute_output_shape`. A `Model` made from such calls is
    unbuilt (`model.built` is False, `model.weights` is empty) until `model.build()`, its first
    call on data, or `fit`. The model zoo uses it for `build=False`, so that big networks can be
    described (`neurona.vision.layer_plan`) without allocating them.

    >>> from neurona.models import Input, Model
    >>> from neurona.models.functional import defer_build
    >>> from neurona.layers import Dense
    >>> with defer_build():
    ...     x = Input(shape=(3,))
    ...     model = Model(x, Dense(2)(x))
    >>> model.built, model.weights, model.output_shape
    (False, [], (None, 2))
    >>> model.build(); model.count_params()
    8
    """
    before = getattr(_state, "defer", False)
    _state.defer = True
    try:
        yield
    finally:
        _state.defer = before


class SymbolicTensor:
    """A placeholder for a tensor of a known shape (batch axis None): what a layer call produced,
    recorded as (node, index into that node's outputs)."""

    def __init__(self, shape, dtype, node, index):
        self.shape, self.dtype = tuple(shape), dtype
        self.node, self.index = node, index

    def _record_call(self, layer, x, *args, training=None, **kwargs):
        inputs = list(x) if isinstance(x, (list, tuple)) else [x]
        if not all(isinstance(t, SymbolicTensor) for t in inputs):
            raise TypeError(f"{layer.name}: cannot mix symbolic tensors (from Input) with real tensors")
        shapes = [t.shape for t in inputs] if isinstance(x, (list, tuple)) else inputs[0].shape
        if not layer.built and not getattr(_state, "defer", False):
            layer.build(shapes)
            layer.built = True
        out_shape = layer.compute_output_shape(shapes)
        multi = isinstance(out_shape, list)
        node = Node(layer, inputs, isinstance(x, (list, tuple)), args, kwargs, training)
        node.outputs = [SymbolicTensor(s, layer.dtype, node, i)
                        for i, s in enumerate(out_shape if multi else [out_shape])]
        layer._inbound_nodes = [*getattr(layer, "_inbound_nodes", []), node]
        return node.outputs if multi else node.outputs[0]

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} from {self.node.layer.name}>"


class Node:
    """One call of `layer` on symbolic `inputs` (with the extra positional and keyword arguments).
    `training` given at the call (e.g. `bn(x, training=False)` to freeze a layer) overrides the
    model's mode when the node runs."""

    def __init__(self, layer, inputs, as_list, args, kwargs, training=None):
        self.layer, self.inputs, self.as_list = layer, inputs, as_list
        self.args, self.kwargs, self.training = args, kwargs, training
        self.outputs: list[SymbolicTensor] = []

    def run(self, values, training):
        xs = [values[id(t)] for t in self.inputs]
        mode = training if self.training is None else self.training
        out = self.layer(xs if self.as_list else xs[0], *self.args, training=mode, **self.kwargs)
        for t, v in zip(self.outputs, out if isinstance(out, (list, tuple)) else [out]):
            values[id(t)] = v


@register
class InputLayer(Layer):
    """The layer behind `Input`: it only states the shape of a model input."""

    def __init__(self, batch_input_shape=None, **kwargs):
        super().__init__(batch_input_shape=batch_input_shape, **kwargs)
        if self.batch_input_shape is None:
            raise ValueError("InputLayer: give shape= (without the batch axis) or batch_input_shape=")
        self.built = True
        node = Node(self, [], False, (), {})
        node.outputs = [SymbolicTensor(self.batch_input_shape, self.dtype, node, 0)]
        self._inbound_nodes = [node]

    def call(self, x, training=None):
        return x


def Input(shape=None, batch_size=None, name=None, dtype="float32", batch_shape=None):  # noqa: N802 - Keras name
    """A model input of per-sample `shape`: the symbolic tensor to call layers on.

    >>> from neurona.models import Input, Model
    >>> from neurona.layers import Dense
    >>> x = Input(shape=(3,))
    >>> Model(x, Dense(2)(x)).output_shape
    (None, 2)
    """
    if batch_shape is None:
        if shape is None:
            raise ValueError("Input: give shape= (without the batch axis) or batch_shape=")
        batch_shape = (batch_size, *((shape,) if isinstance(shape, int) else tuple(shape)))
    return InputLayer(batch_input_shape=tuple(batch_shape), name=name, dtype=dtype)._inbound_nodes[0].outputs[0]


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


@register
class Model(Trainer, Layer):
    """A network of layers: `Model(inputs, outputs)` from symbolic tensors (the functional API),
    or a subclass that defines `call`. Trained with compile/fit/evaluate/predict.

    >>> import numpy as np
    >>> from neurona.models import Input, Model
    >>> from neurona.layers import Dense
    >>> a, b = Input(shape=(4,)), Input(shape=(4,))
    >>> shared = Dense(3)
    >>> model = Model([a, b], [shared(a), shared(b)])
    >>> [y.shape for y in model.predict([np.ones((5, 4)), np.zeros((5, 4))])]
    [(5, 3), (5, 3)]
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._init_trainer()
        self._nodes: list[Node] = []
        self._graph = inputs is not None
        if not self._graph:
            return
        if outputs is None:
            raise ValueError("Model: give outputs= together with inputs=")
        self._multi_in, self._multi_out = isinstance(inputs, (list, tuple)), isinstance(outputs, (list, tuple))
        self.inputs, self.outputs = _as_list(inputs), _as_list(outputs)
        for t in self.inputs + self.outputs:
            if not isinstance(t, SymbolicTensor):
                raise TypeError("Model: inputs and outputs must be symbolic tensors (from Input), "
                                f"got {type(t).__name__}")
        for t in self.inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model: input {t} does not come from Input()")
        self._nodes = self._order_nodes()
        self.built = all(layer.built for layer in self.layers)  # False for layers recorded under defer_build

    def build(self, input_shape=None):
        """Build the layers that are not built yet (see `defer_build`) for the shapes recorded at
        their calls. `input_shape`, when given (batch axis included), must agree with the model's."""
        if not self._graph:
            return
        if input_shape is not None:
            given = [tuple(s) for s in input_shape] if self._multi_in else [tuple(input_shape)]
            if len(given) != len(self.inputs):
                raise ValueError(f"{self.name}: has {len(self.inputs)} inputs, got {len(given)} input shapes")
            for t, s in zip(self.inputs, given):
                if len(s) != len(t.shape) or any(a is not None and b is not None and a != b
                                                 for a, b in zip(s[1:], t.shape[1:])):
                    raise ValueError(f"{self.name}: was made for inputs of shape {t.shape}, got {s}")
        for node in self._nodes:
            layer = node.layer
            if not layer.built:
                shapes = [t.shape for t in node.inputs]
                layer.build(shapes if node.as_list else shapes[0])
                layer.built = True

    def _order_nodes(self):
        # Depth-first from the outputs with an explicit stack (no recursion limit); post-order puts
        # every node after the nodes whose outputs it reads.
        seen, order = set(), []
        input_ids = {id(t) for t in self.inputs}
        stack = [(t.node, False) for t in reversed(self.outputs)]  # popped in output order
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for t in reversed(node.inputs):
                if isinstance(t.node.layer, InputLayer) and id(t) not in input_ids:
                    raise ValueError(f"Model: output depends on {t.node.layer.name}, which is not among the inputs")
                stack.append((t.node, False))
        return [n for n in order if not isinstance(n.layer, InputLayer)]

    @property
    def layers(self) -> list[Layer]:
        """The model's layers (input layers first), each once even when shared."""
        if not self._graph:
            return Layer._sublayers(self)  # a subclassed model: the layers it holds (attributes, lists, dicts)
        out, seen = [t.node.layer for t in self.inputs], set()
        out += [n.layer for n in self._nodes]
        return [la for la in out if not (id(la) in seen or seen.add(id(la)))]

    def _sublayer_items(self):
        if not self._graph:
            return Layer._sublayer_items(self)
        return [(layer.name, layer) for layer in self.layers]  # names are unique in a saved model

    def _sublayers(self):
        return self.layers

    def get_layer(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{self.name}: no layer named {name!r}; layers: {[la.name for la in self.layers]}")

    def call(self, x, training=None):
        if not self._graph:
            raise NotImplementedError(f"{type(self).__name__}: subclasses of Model define call()")
        return self._run(x, training)[1]

    def _run(self, x, training, keep=False):
        xs = _as_list(x)
        if len(xs) != len(self.inputs):
            raise ValueError(f"{self.name}: expected {len(self.inputs)} inputs, got {len(xs)}")
        values = {id(t): v for t, v in zip(self.inputs, xs)}
        trace = []
        for node in self._nodes:
            node.run(values, training)
            if keep:
                trace.append((node.layer, [values[id(t)] for t in node.outputs]))
        outs = [values[id(t)] for t in self.outputs]
        return trace, (outs if self._multi_out else outs[0])

    def layer_outputs(self, x, training=False):
        """Run on `x` and return [(layer, [output tensors])] in execution order (for monitors)."""
        return self._run(x, training, keep=True)[0]

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes if self._multi_in else shapes[0]

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes if self._multi_out else shapes[0]

    def compute_output_shape(self, input_shape):
        return self.output_shape

    def _layer_shapes(self):
        if not self._graph:  # a subclassed model: the shapes of the last call, batch axis shown as None
            return [(layer, (None, *layer._output_shape[1:]) if isinstance(getattr(layer, "_output_shape", None),
                                                                          tuple) else "?")
                    for layer in self.layers]
        if not self.built:
            raise ValueError(f"{self.name}: the model is not built (made under defer_build); call "
                             "model.build(), or describe it with neurona.vision.plan_summary")
        shapes = {id(t.node.layer): t.shape for t in self.inputs}
        for node in self._nodes:
            out = [t.shape for t in node.outputs]
            shapes.setdefault(id(node.layer), out[0] if len(out) == 1 else out)
        return [(layer, shapes[id(layer)]) for layer in self.layers]

    def get_config(self):
        if not self._graph:
            raise NotImplementedError(f"{type(self).__name__}: subclassed models define get_config() to be saved")
        names = {}
        for layer in self.layers:
            if layer.name in names:
                raise ValueError(f"{self.name}: two layers are named {layer.name!r}; names must be unique to save")
            names[layer.name] = layer

        def ref(t):
            # Node numbers count this model's calls of the layer only (a layer may be shared with
            # other models in the process).
            layer = t.node.layer
            own = [t.node] if isinstance(layer, InputLayer) else [n for n in self._nodes if n.layer is layer]
            return [layer.name, own.index(t.node), t.index]

        layers = []
        for layer in self.layers:
            nodes = [n for n in self._nodes if n.layer is layer]
            layers.append({"class_name": type(layer).__name__, "config": layer.get_config(),
                           "inbound_nodes": [{"inputs": [ref(t) for t in n.inputs], "as_list": n.as_list,
                                              "kwargs": n.kwargs, "training": n.training} for n in nodes]})
        return {"name": self.name, "layers": layers,
                "input_layers": [ref(t) for t in self.inputs], "output_layers": [ref(t) for t in self.outputs],
                "multi_input": self._multi_in, "multi_output": self._multi_out}

    @classmethod
    def from_config(cls, config):
        made, outputs, pending = {}, {}, []
        for spec in config["layers"]:
            layer = get_registered(spec["class_name"]).from_config(dict(spec["config"]))
            made[layer.name] = layer
            if isinstance(layer, InputLayer):
                outputs[layer.name, 0] = layer._inbound_nodes[0].outputs
            pending.extend((layer.name, k, node) for k, node in enumerate(spec["inbound_nodes"]))

        def tensor(ref):
            name, node_index, index = ref
            if name not in made:
                raise ValueError(f"model config: unknown layer {name!r}")
            found = outputs.get((name, node_index))
            return None if found is None else found[index]

        # Replay the recorded calls in an order where every input already exists.
        while pending:
            ready = [p for p in pending if all(tensor(r) is not None for r in p[2]["inputs"])]
            if not ready:
                raise ValueError("model config: the layer graph has unresolved inputs")
            name, k, node = ready[0]
            xs = [tensor(r) for r in node["inputs"]]
            out = made[name](xs if node["as_list"] else xs[0], training=node.get("training"),
                             **node.get("kwargs", {}))
            outputs[name, k] = out.node.outputs if isinstance(out, SymbolicTensor) else out[0].node.outputs
            pending.remove(ready[0])
        ins = [tensor(r) for r in config["input_layers"]]
        outs = [tensor(r) for r in config["output_layers"]]
        return cls(ins if config.get("multi_input") else ins[0], outs if config.get("multi_output") else outs[0],
                   name=config.get("name"))
