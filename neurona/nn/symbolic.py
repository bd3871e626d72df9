"""The functional API's symbolic side: `Input` gives a symbolic tensor; calling a layer on
symbolic tensors records a `Node` instead of computing (`SymbolicTensor._record_call`, which
`Layer.__call__` reaches by duck typing); `defer_build()` records without building. The models
that replay the recorded nodes (`neurona.models.Model`) live a rank above; the symbols live here
so that `neurona.layers` can offer `Input` without importing the training machinery.
May import: neurona.nn.layer.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from .layer import Layer, register

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
