"""The functional API: `Input` gives a symbolic tensor; calling a layer on symbolic tensors records
a `Node` instead of computing; `Model(inputs, outputs)` orders the recorded nodes once and replays
them on real tensors. Layers may be shared (one layer, several nodes), models may have several
inputs and outputs, and a model is itself a layer (models nest). Under `defer_build()` the calls
are recorded without building the layers (an unbuilt model, described without allocating it).
The symbols (`Input`, `InputLayer`, `SymbolicTensor`, `Node`, `defer_build`) live in
`neurona.nn.symbolic` and are re-exported here.
May import: neurona (Tensor, ops, no_grad), neurona.nn (Layer, registry, symbolic), neurona.models.trainer.
"""
from __future__ import annotations

from ..nn._config import rebuild
from ..nn.layer import Layer, get_registered, register
from ..nn.symbolic import Input, InputLayer, Node, SymbolicTensor, defer_build  # noqa: F401 - re-exported
from .trainer import Trainer

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
            return [(layer, (None, *layer._last_output_shape[1:]) if isinstance(getattr(layer, "_last_output_shape", None),
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
            config_ = dict(spec["config"])
            layer = rebuild(get_registered(spec["class_name"]), config_,
                            f"{spec['class_name']} layer {config_.get('name')!r}")
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
