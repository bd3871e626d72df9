"""`Sequential`: a plain stack of layers, each feeding the next (Keras' first model).
May import: neurona (Tensor, no_grad), neurona.nn (Layer, registry), neurona.models.functional.
"""
from __future__ import annotations

from ..nn._config import rebuild
from ..nn.layer import Layer, get_registered, register
from .functional import InputLayer, Model, SymbolicTensor


@register
class Sequential(Model):
    """A linear stack of layers. Give the first layer `input_dim=`/`input_shape=` (or `add(Input(...))`)
    to build it at once; otherwise it builds on the first batch it sees.

    >>> from neurona.models import Sequential
    >>> from neurona.layers import Dense
    >>> model = Sequential([Dense(64, activation="relu", input_dim=20), Dense(10, activation="softmax")])
    >>> model.output_shape, model.count_params()
    ((None, 10), 1994)
    """

    def __init__(self, layers=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._layers: list[Layer] = []
        self._shapes: list = []
        self._build_shape = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (or an `Input(...)`, which only fixes the input shape)."""
        if isinstance(layer, SymbolicTensor):
            if self._layers or not isinstance(layer.node.layer, InputLayer):
                raise ValueError(f"{self.name}.add: only an Input() can come first as a symbolic tensor")
            self._build_shape = layer.shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"{self.name}.add: expected a Layer, got {type(layer).__name__}")
        if any(la is layer for la in self._layers):
            raise ValueError(f"{self.name}.add: {layer.name} is already in the model")
        if not self._layers and self._build_shape is None and layer.batch_input_shape is not None:
            self._build_shape = layer.batch_input_shape
        self._layers.append(layer)
        self.built = False
        if self._build_shape is not None:
            self.build(self._build_shape)
            self.built = True

    def pop(self):
        """Remove the last layer."""
        if not self._layers:
            raise ValueError(f"{self.name}.pop: the model has no layers")
        layer = self._layers.pop()
        self._shapes = self._shapes[:len(self._layers)]
        return layer

    @property
    def layers(self):
        return list(self._layers)

    def _sublayer_items(self):
        return [(layer.name, layer) for layer in self._layers]  # saved weights are '<layer name>/<weight>'

    def build(self, input_shape):
        """Build every layer for inputs of `input_shape`, following the shapes down the stack."""
        if not self._layers:
            raise ValueError(f"{self.name}: add layers before building")
        shape = (None, *tuple(input_shape)[1:])
        self._build_shape, self._shapes = shape, []
        for layer in self._layers:
            if layer._device != self._device:
                layer.to(self._device)  # a layer added after model.to(device) follows the model
            if not layer.built:
                layer.build(shape)
                layer.built = True
            shape = layer.compute_output_shape(shape)
            self._shapes.append(shape)

    def call(self, x, training=None):
        for layer in self._layers:
            x = layer(x, training=training)
        return x

    def layer_outputs(self, x, training=False):
        trace = []
        for layer in self._layers:
            x = layer(x, training=training)
            trace.append((layer, [x]))
        return trace

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"{self.name}.{what}: the model is not built; give the first layer input_dim= or "
                             f"input_shape=, or call it on data first")

    @property
    def input_shape(self):
        self._require_built("input_shape")
        return self._build_shape

    @property
    def output_shape(self):
        self._require_built("output_shape")
        return self._shapes[-1]

    def compute_output_shape(self, input_shape):
        if not self.built:
            self.build(input_shape)
            self.built = True
        return (input_shape[0], *self._shapes[-1][1:])

    def _layer_shapes(self):
        self._require_built("summary")
        return list(zip(self._layers, self._shapes))

    def get_config(self):
        return {"name": self.name, "build_input_shape": None if self._build_shape is None else list(self._build_shape),
                "layers": [{"class_name": type(la).__name__, "config": la.get_config()} for la in self._layers]}

    @classmethod
    def from_config(cls, config):
        model = cls(name=config.get("name"))
        for spec in config["layers"]:
            config_ = dict(spec["config"])
            model._layers.append(rebuild(get_registered(spec["class_name"]), config_,
                                         f"{spec['class_name']} layer {config_.get('name')!r}"))
        if config.get("build_input_shape") is not None:
            model.build(tuple(config["build_input_shape"]))
            model.built = True
        return model
