"""`Layer`: the Keras layer contract, and the registry that rebuilds layers from configs.

`__init__` takes hyperparameters only; `build(input_shape)` creates weights with `add_weight`;
`call(x, training=None)` does the math with neurona ops; `get_config()` returns
`{**super().get_config(), ...}` and `from_config(config)` rebuilds the layer. Shapes given to
`build` include the batch axis (None when unknown). A layer builds itself on its first call.
May import: neurona (Tensor, ops, no_grad, autograd.tracing), neurona.nn.initializers/regularizers/constraints.
"""
from __future__ import annotations

import re
import threading
import warnings

from .. import backend as B
from ..autograd.grad_mode import no_grad
from ..autograd.tracing import is_tracing
from ..tensor import Tensor

_REGISTRY: dict[str, type] = {}
_NAME_COUNTS: dict[str, int] = {}
_NAME_LOCK = threading.Lock()


def register(cls):
    """Class decorator: make a layer (or any configurable object) loadable by class name."""
    _REGISTRY[cls.__name__] = cls
    return cls


def get_registered(class_name: str):
    try:
        return _REGISTRY[class_name]
    except KeyError:
        raise ValueError(f"unknown layer class {class_name!r}; known: {sorted(_REGISTRY)}") from None


def _auto_name(cls_name: str) -> str:
    base = re.sub(r"(?<!^)(?=[A-Z])", "_", cls_name).lower()
    with _NAME_LOCK:  # layers may be made in several threads (a server loading models)
        n = _NAME_COUNTS.get(base, 0)
        _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def reset_names():
    """Start automatic layer names afresh (`dense`, `dense_1`, ...): `neurona.utils.clear_session`."""
    with _NAME_LOCK:
        _NAME_COUNTS.clear()


class Weight:
    """A layer weight: the Tensor plus how it is trained, regularised and constrained."""

    __slots__ = ("name", "tensor", "trainable", "regularizer", "constraint")

    def __init__(self, name, tensor, trainable, regularizer, constraint):
        self.name, self.tensor, self.trainable = name, tensor, trainable
        self.regularizer, self.constraint = regularizer, constraint


@register
class Layer:
    """Base class of every layer.

    >>> import neurona as nr
    >>> from neurona.nn.layer import Layer
    >>> class Scale(Layer):
    ...     def build(self, input_shape):
    ...         self.s = self.add_weight("s", (input_shape[-1],), initializer="ones")
    ...     def call(self, x, training=None):
    ...         return x * self.s
    >>> layer = Scale()
    >>> layer(nr.ones((2, 3))).shape, len(layer.trainable_weights)
    ((2, 3), 1)
    """

    #: where the weights live ('cpu' or 'cuda'): set by `to`, followed by weights created later
    _device = "cpu"

    def __init__(self, name=None, trainable=True, dtype="float32", input_shape=None, input_dim=None,
                 batch_input_shape=None):
        self.name = name or _auto_name(type(self).__name__)
        self._trainable = trainable
        self.dtype = dtype
        self.built = False
        self._weight_list: list[Weight] = []
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (None, *tuple(input_shape))
        self.batch_input_shape = None if batch_input_shape is None else tuple(batch_input_shape)

    # -- the contract -----------------------------------------------------------------------
    def build(self, input_shape):
        """Create the weights for inputs of `input_shape` (batch axis included)."""

    def call(self, x, training=None):
        raise NotImplementedError(f"{type(self).__name__}.call")

    def __call__(self, x, *args, training=None, **kwargs):
        first = x[0] if isinstance(x, (list, tuple)) and x else x
        if hasattr(first, "_record_call"):  # a symbolic tensor of neurona.models: record, do not compute
            return first._record_call(self, x, *args, training=training, **kwargs)
        if B.is_array(x):  # a NumPy/CuPy array from a hand-written loop
            x = first = Tensor(x)
        elif isinstance(x, (list, tuple)) and x and not any(isinstance(t, Tensor) or B.is_array(t) for t in x):
            x = first = Tensor(B.numpy.asarray(x))  # Python lists of numbers, as Keras accepts them
        if not self.built:
            if self._device == "cpu" and isinstance(first, Tensor) and first.device != "cpu":
                self.to(first.device)  # an unbuilt layer called on GPU data builds its weights there
            shapes = [t.shape for t in x] if isinstance(x, (list, tuple)) else x.shape
            self.build(shapes)
            self.built = True
        if self.autocast and self._weight_list:
            x = self._cast_inputs(x)
        out = self.call(x, *args, training=training, **kwargs)
        self._last_output_shape = out.shape if isinstance(out, Tensor) else "multiple"  # for summary()
        return out

    #: cast floating-point inputs of a layer with weights to the layer's dtype (Keras' autocast):
    #: float64 data into a float32 layer computes in float32 and gives its weights float32
    #: gradients, instead of silently promoting every result and gradient to float64. Layers
    #: without weights (activations, pooling, merges) compute in their inputs' dtype.
    autocast = True

    def _cast_inputs(self, x):
        if isinstance(x, Tensor):
            if x.dtype.kind == "f" and x.dtype != B.numpy.dtype(self.dtype):
                return x.astype(self.dtype)
            return x
        if isinstance(x, (list, tuple)):
            return type(x)(self._cast_inputs(t) for t in x)
        return x

    def compute_output_shape(self, input_shape):
        """Output shape for `input_shape` (batch axis may be None): by default, found by running
        the layer on zeros with a batch of 1."""
        from ..creation import zeros

        multi = isinstance(input_shape, list)
        shapes = input_shape if multi else [input_shape]
        probes = [zeros(*[1 if n is None else n for n in s], dtype=self.dtype, device=self._device) for s in shapes]
        with no_grad():
            out = self(probes if multi else probes[0], training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        result = [(shapes[0][0], *o.shape[1:]) for o in outs]
        return result if isinstance(out, (list, tuple)) else result[0]

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self._trainable, "dtype": self.dtype}
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = list(self.batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    # -- weights ------------------------------------------------------------------------------
    def add_weight(self, name, shape, initializer="glorot_uniform", regularizer=None, constraint=None,
                   trainable=True, dtype=None) -> Tensor:
        """Create, initialise and track a weight; returns its Tensor."""
        from . import constraints, initializers, regularizers

        if is_tracing():
            raise RuntimeError(
                f"{self.name}: creating weight {name!r} while graph mode records (inside an nr.jit function "
                f"being traced, or a Graph().as_default() block): the layer is being built on its first call "
                f"there, so its weights would be frozen into the graph as constants and never train. Build "
                f"it before tracing: call the model once on a batch (model(x[:1])), or give the first layer "
                f"input_shape=/input_dim=")
        init = initializers.get(initializer)
        if name == "kernel" and not getattr(init, "breaks_symmetry", True):
            warnings.warn(f"{self.name}: kernel initialiser {init!r} gives every unit the same weights, so "
                          "they get the same gradients and never become different (symmetry is not broken); "
                          "use a random initialiser such as 'glorot_uniform' or 'he_normal'", stacklevel=3)
        data = init(tuple(shape), dtype or self.dtype)  # drawn on the host: the same values on any device
        # C order whatever the initialiser returned (Orthogonal's q.T is Fortran-ordered): the
        # optimisers' fused updates take contiguous weights, slots and gradients of one layout
        data = B.array_module(data).ascontiguousarray(data)
        # a layer made with trainable=False creates its weights frozen
        t = Tensor(data, requires_grad=trainable and self._trainable, name=f"{self.name}/{name}",
                   device=None if self._device == "cpu" else self._device)
        self._weight_list.append(Weight(name, t, trainable, regularizers.get(regularizer),
                                        constraints.get(constraint)))
        return t

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool):
        """Freeze (False) or unfreeze this layer and every layer it owns, as Keras does."""
        stack, seen = [self], set()
        while stack:
            layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            layer._trainable = bool(value)
            stack.extend(layer._sublayers())
        for w in self._all_weights():
            w.tensor.requires_grad_(bool(value) and w.trainable)

    def _sublayer_items(self):
        """[(path, layer)] for the layers this layer owns: every Layer among its attributes, also
        inside lists, tuples and dicts (nested up to three levels), in attribute order, each once
        — Keras' attribute tracking. The path names where it is held (`cell`, `stack.0`,
        `heads.a`); saving names nested weights by it, so they load into a rebuilt layer whatever
        names its sublayers were given. Found when asked rather than recorded at assignment, so a
        list filled after it was assigned (`self.blocks = []; self.blocks.append(...)`) counts too."""
        found, seen = [], {id(self)}

        def visit(path, value, depth):
            if isinstance(value, Layer):
                if id(value) not in seen:
                    seen.add(id(value))
                    found.append((path, value))
            elif depth < 3 and isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    visit(f"{path}.{i}", item, depth + 1)
            elif depth < 3 and isinstance(value, dict):
                for key, item in value.items():
                    visit(f"{path}.{key}", item, depth + 1)

        for name, value in vars(self).items():
            visit(name.lstrip("_"), value, 0)
        return found

    def _sublayers(self):
        """The layers this layer owns (see `_sublayer_items`)."""
        return [layer for _, layer in self._sublayer_items()]

    def _weights_by_path(self):
        """{path: Tensor} of every weight, own weights by their name (`kernel`) and sublayers'
        under the sublayer's path (`stack.0/kernel`); a shared weight once, at its first path."""
        out, seen, visited = {}, set(), set()
        stack = [("", self)]
        while stack:
            prefix, layer = stack.pop(0)
            if id(layer) in visited:
                continue
            visited.add(id(layer))
            for w in layer._weight_list:
                if id(w.tensor) not in seen:
                    seen.add(id(w.tensor))
                    out[prefix + w.name] = w.tensor
            stack[0:0] = [(f"{prefix}{path}/", sub) for path, sub in layer._sublayer_items()]
        return out

    def _all_weights(self):
        """This layer's weights and its sublayers' (recursively), each weight once."""
        out, seen, layers, visited = [], set(), [self], set()
        while layers:
            layer = layers.pop(0)
            if id(layer) in visited:
                continue
            visited.add(id(layer))
            for w in layer._weight_list:
                if id(w.tensor) not in seen:
                    seen.add(id(w.tensor))
                    out.append(w)
            layers[0:0] = layer._sublayers()
        return out

    @property
    def trainable_weights(self) -> list[Tensor]:
        if not self._trainable:
            return []
        return [w.tensor for w in self._all_weights() if w.trainable and w.tensor.requires_grad]

    @property
    def non_trainable_weights(self) -> list[Tensor]:
        train = {id(t) for t in self.trainable_weights}
        return [w.tensor for w in self._all_weights() if id(w.tensor) not in train]

    @property
    def weights(self) -> list[Tensor]:
        return [w.tensor for w in self._all_weights()]

    @property
    def losses(self) -> list[Tensor]:
        """Regularisation penalties of this layer's weights (add them to the loss)."""
        return [w.regularizer(w.tensor) for w in self._all_weights() if w.regularizer is not None]

    def to(self, device):
        """Move every weight (and gradient) of this layer and of its sublayers to `device`
        ('cpu' or 'cuda') in place, and create weights built later there; returns the layer.

        >>> import neurona as nr
        >>> from neurona.layers import Dense
        >>> layer = Dense(2)
        >>> layer(nr.ones((1, 3))).shape, layer.to("cpu").kernel.device
        ((1, 2), 'cpu')
        """
        device = B.device_name(device)
        stack, seen = [self], set()
        while stack:
            layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            layer._device = device
            stack.extend(layer._sublayers())
        for w in self._all_weights():
            t = w.tensor
            t.data = B.to_device(t.data, device)
            if t.grad is not None:
                t.grad = Tensor._make(B.to_device(t.grad.data, device), False, None)
        return self

    def apply_constraints(self):
        """Project weights onto their constraints (called by the trainer after each update)."""
        with no_grad():
            for w in self._all_weights():
                if w.constraint is not None:
                    w.tensor[...] = w.constraint(w.tensor)  # a tensor op: nr.jit replays it

    def get_weights(self):
        """Weights as NumPy arrays, in creation order."""
        return [t.numpy().copy() for t in self.weights]

    def set_weights(self, arrays):
        weights = self.weights
        if len(arrays) != len(weights):
            raise ValueError(f"{self.name}.set_weights: expected {len(weights)} arrays, got {len(arrays)}")
        for t, a in zip(weights, arrays):
            if tuple(a.shape) != t.shape:
                raise ValueError(f"{self.name}.set_weights: {t.name} has shape {t.shape}, got {tuple(a.shape)}")
            t.data[...] = B.to_device(a, t.device) if B.is_array(a) else a

    def count_params(self) -> int:
        return sum(t.size for t in self.weights)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"

    def stateless_call(self, weights, inputs, training=False, **kwargs):
        """Run this layer (or model) on `inputs` with `weights` in place of its own, and return
        its output; its own weights are not changed, and gradients flow to `weights` (MAML's
        inner loop, with `neurona.optim.functional`).

        `weights`: a list in `self.weights` order or in `self.trainable_weights` order (told
        apart by length), or a dict holding any subset, by weight name (`w.name`, e.g.
        'dense/kernel') or by path in the layer (as saved: 'kernel', 'blocks.0/bias'); a weight
        not given is the layer's own. Each
        substitute is a Tensor (or array) of its weight's shape. With `training=True`, layers
        that update non-trainable weights in place (BatchNormalization's moving statistics)
        update the ones in use: the substitutes where given. The swap is undone when the call
        returns (not thread-safe: do not call the same layer from another thread meanwhile).

        >>> import neurona as nr
        >>> from neurona.layers import Dense
        >>> layer = Dense(1, use_bias=False)
        >>> _ = layer(nr.ones((1, 2)))
        >>> k = nr.tensor([[2.0], [3.0]], requires_grad=True)
        >>> y = layer.stateless_call([k], nr.tensor([[1.0, 10.0]]))
        >>> y.tolist(), nr.grad(y.sum(), [k])[0].tolist(), layer.kernel is layer.weights[0]
        ([[32.0]], [[1.0], [10.0]], True)
        """
        if not self.built:
            raise RuntimeError(f"{self.name}.stateless_call: the layer is not built; call it once on inputs "
                               "(or build it) so that it has the weights to substitute")
        own = self.weights
        if isinstance(weights, dict):
            names = {**self._weights_by_path(), **{t.name: t for t in own}}
            unknown = sorted(set(weights) - set(names))
            if unknown:
                raise KeyError(f"{self.name}.stateless_call: no weight named {unknown}; the weights are {sorted(names)}")
            pairs = [(names[k], v) for k, v in weights.items()]
        else:
            weights = list(weights)
            trainable = self.trainable_weights
            if len(weights) == len(own):
                pairs = list(zip(own, weights))
            elif len(weights) == len(trainable):
                pairs = list(zip(trainable, weights))
            else:
                raise ValueError(f"{self.name}.stateless_call: got {len(weights)} weights; expected {len(own)} "
                                 f"(self.weights) or {len(trainable)} (self.trainable_weights), or a dict by name")
        substitute = {}
        for old, new in pairs:
            if not isinstance(new, Tensor):
                new = Tensor(B.to_device(B.numpy.asarray(new) if not B.is_array(new) else new, old.device),
                             dtype=old.dtype)
            if new.shape != old.shape:
                raise ValueError(f"{self.name}.stateless_call: {old.name} has shape {old.shape}, its substitute "
                                 f"has shape {new.shape}")
            substitute[id(old)] = new
        undo = []  # (setter, old value), undone in reverse order
        found = set()
        layers, seen = [self], {id(self)}
        while layers:
            layer = layers.pop()
            for key, value in list(vars(layer).items()):
                if isinstance(value, Tensor) and id(value) in substitute:
                    found.add(id(value))
                    undo.append((layer.__dict__.__setitem__, key, value))
                    layer.__dict__[key] = substitute[id(value)]  # not setattr: tracking must not see it
                elif isinstance(value, (list, tuple)) and any(id(v) in substitute for v in value
                                                              if isinstance(v, Tensor)):
                    found.update(id(v) for v in value if id(v) in substitute)
                    undo.append((layer.__dict__.__setitem__, key, value))
                    layer.__dict__[key] = type(value)(substitute.get(id(v), v) if isinstance(v, Tensor) else v
                                                      for v in value)
            for w in layer._weight_list:  # so that `layer.weights` shows the substitutes meanwhile
                if id(w.tensor) in substitute:
                    undo.append((lambda key, value, w=w: setattr(w, key, value), "tensor", w.tensor))
                    w.tensor = substitute[id(w.tensor)]
            for sub in layer._sublayers():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    layers.append(sub)
        try:
            missing = [old.name for old, _ in pairs if id(old) not in found]
            if missing:
                raise RuntimeError(f"{self.name}.stateless_call: weights {missing} are not held in an attribute of "
                                   "their layer (self.<name> = self.add_weight(...)), so they cannot be substituted")
            return self(inputs, training=training, **kwargs)
        finally:
            for setter, key, value in reversed(undo):
                setter(key, value)
