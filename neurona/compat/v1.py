"""TensorFlow 1 names over neurona's graph mode, so the course's TF1 listings run with one changed
line, `import neurona.compat.v1 as tf`.

TF1 builds a graph first and runs it later, with placeholders whose sizes may be unknown
(`shape=None`, `[None, 3]`). neurona's graph mode (`neurona.graph`) records real ops on arrays of
a known shape. This module joins the two: `tf.*` calls and the operators on their results build a
small symbolic graph here (each node a `Tensor` printed as `<tf.Tensor 'Add:0' shape=() dtype=int32>`);
`Session.run` turns the part the fetches need into a `neurona.graph.Graph` for the shapes of the
fed values (once per shape signature, then cached), and runs it with `neurona.graph.Session`.
Variables keep their values here, across runs and shape signatures.

>>> import neurona.compat.v1 as tf
>>> tf.reset_default_graph()
>>> a = tf.constant(2); b = tf.constant(3)
>>> x = tf.add(a, b); y = tf.multiply(a, b); z = tf.pow(y, x)
>>> z
<tf.Tensor 'Pow:0' shape=() dtype=int32>
>>> with tf.Session() as sess:
...     print(sess.run(z))
7776

May import: numpy, neurona (ops, creation, tensor, autograd), neurona.graph, neurona.optim.
"""
from __future__ import annotations

import threading

import numpy as np

from .. import ops as _ops
from ..tensor import Tensor as _NrTensor

float16, float32, float64 = np.float16, np.float32, np.float64
int8, int16, int32, int64, uint8, bool = np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_  # noqa: A001


class FailedPreconditionError(RuntimeError):
    """TF1's error for reading a variable before it was initialised."""


class InvalidArgumentError(ValueError):
    """TF1's error for a feed that does not fit its placeholder, or a missing feed."""


# -- graphs -------------------------------------------------------------------------------------
class Graph:
    """A TF1 graph: the symbolic nodes made while it is the default (`with g.as_default():`), and
    its variables."""

    def __init__(self):
        self.nodes: list[Tensor] = []
        self.variables: list[Variable] = []
        self._names: dict[str, int] = {}

    def unique_name(self, base):
        n = self._names.get(base, 0)
        self._names[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def as_default(self):
        return _AsDefault(self)

    def get_operations(self):
        return list(self.nodes)


class _AsDefault:
    def __init__(self, graph):
        self.graph = graph

    def __enter__(self):
        _stack().append(self.graph)
        return self.graph

    def __exit__(self, *exc):
        _stack().pop()
        return False


_local = threading.local()


def _stack():
    if not hasattr(_local, "stack"):
        _local.stack = [Graph()]
    return _local.stack


def get_default_graph() -> Graph:
    """The graph that `tf.*` calls add to in this thread (one is always there, as in TF1)."""
    return _stack()[-1]


def reset_default_graph():
    """Start a fresh default graph (TF1's `tf.reset_default_graph`)."""
    _stack()[0] = Graph()
    del _stack()[1:]


# -- symbolic tensors -------------------------------------------------------------------------------
def _dtype_name(dtype):
    return np.dtype(dtype).name


class Tensor:
    """A symbolic value of the TF1 graph: the output of `op` on `inputs` (other Tensors or
    constants). `shape` has None where a placeholder's size is unknown until it is fed."""

    def __init__(self, op, inputs, shape, dtype, name, attrs=None):
        self.op, self.inputs, self.attrs = op, list(inputs), dict(attrs or {})
        self.shape, self.dtype = None if shape is None else tuple(shape), np.dtype(dtype)
        self.graph = get_default_graph()
        self.name = f"{self.graph.unique_name(name)}:0"
        self.graph.nodes.append(self)

    def __repr__(self):
        shape = "<unknown>" if self.shape is None else str(self.shape).replace(",)", ",)")
        return f"<tf.Tensor '{self.name}' shape={shape} dtype={_dtype_name(self.dtype)}>"

    def get_shape(self):
        return self.shape

    # the operators of TF1 tensors
    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return subtract(self, other)

    def __rsub__(self, other):
        return subtract(other, self)

    def __mul__(self, other):
        return multiply(self, other)

    def __rmul__(self, other):
        return multiply(other, self)

    def __truediv__(self, other):
        return divide(self, other)

    def __rtruediv__(self, other):
        return divide(other, self)

    def __pow__(self, other):
        return pow(self, other)

    def __neg__(self):
        return negative(self)

    def __matmul__(self, other):
        return matmul(self, other)

    __hash__ = object.__hash__


class Variable(Tensor):
    """A value that lives across `Session.run` calls; `global_variables_initializer()` sets it to
    its initial value (reading it before raises FailedPreconditionError, as in TF1)."""

    def __init__(self, initial_value, dtype=None, name="Variable", trainable=True):
        value = np.array(_value_of(initial_value), dtype=dtype)
        if dtype is None and value.dtype == np.float64:
            value = value.astype(np.float32)
        if dtype is None and value.dtype == np.int64:
            value = value.astype(np.int32)
        super().__init__("Variable", [], value.shape, value.dtype, name)
        self.initial_value, self.trainable, self.value = value, trainable, None
        self.graph.variables.append(self)

    def __repr__(self):
        return f"<tf.Variable '{self.name}' shape={self.shape} dtype={_dtype_name(self.dtype)}>"


class Operation:
    """Something to run for its effect (an initialiser, an optimiser's step)."""

    def __init__(self, kind, name, **attrs):
        self.kind, self.attrs = kind, attrs
        self.graph = get_default_graph()
        self.name = self.graph.unique_name(name)

    def __repr__(self):
        return f"<tf.Operation '{self.name}' type={self.kind}>"


def _value_of(x):
    if isinstance(x, Tensor):
        raise TypeError(f"expected a value, got the symbolic {x!r}")
    return x.numpy() if isinstance(x, _NrTensor) else x


def _as_node(x, like=None):
    """A Tensor from a Tensor or a constant (Python numbers take the other operand's dtype, as TF1)."""
    if isinstance(x, Tensor):
        return x
    dtype = like.dtype if like is not None and np.asarray(x).dtype.kind in "biuf" and \
        not (like.dtype.kind in "iu" and np.asarray(x).dtype.kind == "f") else None
    return constant(x, dtype=dtype)


def _broadcast(a, b):
    if a is None or b is None:
        return None
    return tuple(np.broadcast_shapes(tuple(1 if d is None else d for d in a), tuple(1 if d is None else d for d in b)))


def _binary(op, name, a, b):
    a = a if isinstance(a, Tensor) else None if not isinstance(b, Tensor) else _as_node(a, b)
    if a is None:
        raise TypeError(f"tf.{op}: give at least one Tensor")
    b = _as_node(b, a)
    if a.dtype != b.dtype:
        raise TypeError(f"tf.{op}: both operands must have one dtype, got {_dtype_name(a.dtype)} ({a.name}) "
                        f"and {_dtype_name(b.dtype)} ({b.name}); cast one with tf.cast")
    return Tensor(op, [a, b], _broadcast(a.shape, b.shape), a.dtype, name)


# -- the ops ----------------------------------------------------------------------------------------
def constant(value, dtype=None, shape=None, name="Const"):
    """A constant (TF1 makes Python ints int32 and floats float32)."""
    arr = np.array(_value_of(value), dtype=dtype)
    if dtype is None and arr.dtype == np.int64:
        arr = arr.astype(np.int32)
    if dtype is None and arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    if shape is not None:
        arr = np.broadcast_to(arr, tuple(shape)).copy()
    return Tensor("Const", [], arr.shape, arr.dtype, name, {"value": arr})


def placeholder(dtype, shape=None, name="Placeholder"):
    """An input fed at `Session.run` (`feed_dict={ph: value}`); `shape=None` or None sizes are
    taken from the fed value, which must fit the sizes that are given."""
    return Tensor("Placeholder", [], shape if shape is None else tuple(shape), dtype, name)


def get_variable(name, shape=None, dtype=None, initializer=None, trainable=True):
    """A named Variable; `initializer` is a value, a Tensor-free array, or an initialiser such as
    `tf.zeros_initializer()` / `tf.constant_initializer(v)` / `tf.random_normal_initializer()`."""
    if callable(initializer):
        if shape is None:
            raise ValueError(f"get_variable {name!r}: give shape= with an initializer function")
        value = initializer(tuple(shape), dtype or np.float32)
    elif initializer is None:
        if shape is None:
            raise ValueError(f"get_variable {name!r}: give shape= or initializer=")
        value = glorot_uniform_initializer()(tuple(shape), dtype or np.float32)
    elif isinstance(initializer, Tensor):
        if initializer.op != "Const":
            raise ValueError(f"get_variable {name!r}: initializer must be a constant, got {initializer!r}")
        value = np.asarray(initializer.attrs["value"], dtype=dtype)
    else:
        value = np.asarray(_value_of(initializer), dtype=dtype)
    return Variable(value, dtype=dtype, name=name, trainable=trainable)


def zeros_initializer():
    return lambda shape, dtype: np.zeros(shape, dtype)


def ones_initializer():
    return lambda shape, dtype: np.ones(shape, dtype)


def constant_initializer(value=0):
    return lambda shape, dtype: np.broadcast_to(np.asarray(value, dtype), shape).copy()


def random_normal_initializer(mean=0.0, stddev=1.0, seed=None):
    rng = np.random.default_rng(seed)
    return lambda shape, dtype: rng.normal(mean, stddev, size=shape).astype(dtype)


def glorot_uniform_initializer(seed=None):
    rng = np.random.default_rng(seed)

    def init(shape, dtype):
        fan_in, fan_out = (shape[0] if shape else 1), (shape[-1] if shape else 1)
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape).astype(dtype)
    return init


def add(x, y, name="Add"):
    return _binary("add", name, x, y)


def subtract(x, y, name="Sub"):
    return _binary("subtract", name, x, y)


def multiply(x, y, name="Mul"):
    return _binary("multiply", name, x, y)


def divide(x, y, name="truediv"):
    return _binary("divide", name, x, y)


def pow(x, y, name="Pow"):  # noqa: A001 - TF's name
    return _binary("pow", name, x, y)


def maximum(x, y, name="Maximum"):
    return _binary("maximum", name, x, y)


def minimum(x, y, name="Minimum"):
    return _binary("minimum", name, x, y)


def _unary(op, name, x):
    x = _as_node(x)
    return Tensor(op, [x], x.shape, x.dtype, name)


def square(x, name="Square"):
    return _unary("square", name, x)


def sqrt(x, name="Sqrt"):
    return _unary("sqrt", name, x)


def exp(x, name="Exp"):
    return _unary("exp", name, x)


def log(x, name="Log"):
    return _unary("log", name, x)


def abs(x, name="Abs"):  # noqa: A001
    return _unary("abs", name, x)


def negative(x, name="Neg"):
    return _unary("negative", name, x)


def sigmoid(x, name="Sigmoid"):
    return _unary("sigmoid", name, x)


def tanh(x, name="Tanh"):
    return _unary("tanh", name, x)


def cast(x, dtype, name="Cast"):
    x = _as_node(x)
    return Tensor("cast", [x], x.shape, dtype, name)


def matmul(a, b, name="MatMul"):
    a, b = _as_node(a), _as_node(b)
    shape = None if a.shape is None or b.shape is None else (*a.shape[:-1], b.shape[-1])
    return Tensor("matmul", [a, b], shape, a.dtype, name)


def _reduction(op, name, x, axis, keepdims):
    x = _as_node(x)
    if x.shape is None:
        shape = None
    elif axis is None:
        shape = tuple(1 for _ in x.shape) if keepdims else ()
    else:
        axes = {a % len(x.shape) for a in ((axis,) if isinstance(axis, int) else axis)}
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keepdims or i not in axes)
    return Tensor(op, [x], shape, x.dtype, name, {"axis": axis, "keepdims": keepdims})


def reduce_sum(x, axis=None, keepdims=False, name="Sum"):
    return _reduction("reduce_sum", name, x, axis, keepdims)


def reduce_mean(x, axis=None, keepdims=False, name="Mean"):
    return _reduction("reduce_mean", name, x, axis, keepdims)


class nn:  # noqa: N801 - TF's namespace
    """`tf.nn`: the activations."""

    @staticmethod
    def relu(x, name="Relu"):
        return _unary("relu", name, x)

    @staticmethod
    def sigmoid(x, name="Sigmoid"):
        return _unary("sigmoid", name, x)

    @staticmethod
    def tanh(x, name="Tanh"):
        return _unary("tanh", name, x)

    @staticmethod
    def softmax(x, name="Softmax"):
        return _unary("softmax", name, x)


def global_variables_initializer():
    """An operation that sets every variable of the default graph to its initial value."""
    return Operation("init", "init", variables=list(get_default_graph().variables))


def variables_initializer(var_list, name="init"):
    return Operation("init", name, variables=list(var_list))


class _Optimizer:
    kind = ""

    def minimize(self, loss, var_list=None, name=None):
        """The operation that applies one update of every trainable variable from `loss`."""
        if not isinstance(loss, Tensor):
            raise TypeError(f"{type(self).__name__}.minimize: loss must be a tf.Tensor, got {type(loss).__name__}")
        variables = var_list or [v for v in loss.graph.variables if v.trainable and v.dtype.kind == "f"]
        if not variables:
            raise ValueError(f"{type(self).__name__}.minimize: there are no trainable float variables")
        return Operation("minimize", name or type(self).__name__.replace("Optimizer", ""), loss=loss,
                         variables=variables, optimizer=self)


class train:  # noqa: N801 - TF's namespace
    """`tf.train`: the optimisers neurona has, with TF1's names and defaults."""

    class GradientDescentOptimizer(_Optimizer):
        def __init__(self, learning_rate):
            self.learning_rate = float(learning_rate)

        def _optimizer(self):
            from ..optim import SGD
            return SGD(self.learning_rate)

    class MomentumOptimizer(_Optimizer):
        def __init__(self, learning_rate, momentum, use_nesterov=False):
            self.learning_rate, self.momentum, self.use_nesterov = float(learning_rate), float(momentum), use_nesterov

        def _optimizer(self):
            from ..optim import SGD
            return SGD(self.learning_rate, momentum=self.momentum, nesterov=self.use_nesterov)

    class AdamOptimizer(_Optimizer):
        def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
            self.args = dict(learning_rate=float(learning_rate), beta_1=beta1, beta_2=beta2, epsilon=epsilon)

        def _optimizer(self):
            from ..optim import Adam
            return Adam(**self.args)

    class RMSPropOptimizer(_Optimizer):
        def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10):
            self.args = dict(learning_rate=float(learning_rate), rho=decay, momentum=momentum, epsilon=epsilon)

        def _optimizer(self):
            from ..optim import RMSprop
            return RMSprop(**self.args)

    class AdagradOptimizer(_Optimizer):
        def __init__(self, learning_rate, initial_accumulator_value=0.1):
            self.args = dict(learning_rate=float(learning_rate), initial_accumulator_value=initial_accumulator_value)

        def _optimizer(self):
            from ..optim import Adagrad
            return Adagrad(**self.args)


# -- running ---------------------------------------------------------------------------------------
_EAGER = {
    "add": lambda a, b: a + b, "subtract": lambda a, b: a - b, "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b, "pow": lambda a, b: a ** b, "maximum": _ops.maximum, "minimum": _ops.minimum,
    "square": lambda a: a * a, "sqrt": _ops.sqrt, "exp": _ops.exp, "log": _ops.log, "abs": _ops.abs,
    "negative": lambda a: -a, "sigmoid": _ops.sigmoid, "tanh": _ops.tanh, "relu": _ops.relu,
    "softmax": _ops.softmax, "matmul": _ops.matmul,
}


class Session:
    """Runs the parts of a graph that fetches need: `sess.run(fetches, feed_dict)`. Each new set of
    fetches and fed shapes becomes one `neurona.graph` program (cached); optimiser steps run
    eagerly on the variables' values, with the gradient from that program."""

    def __init__(self, graph=None):
        self.graph = graph or get_default_graph()
        self._cache: dict = {}
        self._slots: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self._cache.clear()

    def run(self, fetches, feed_dict=None):
        """NumPy values of `fetches` (a Tensor, an Operation, or nested lists/tuples/dicts of them;
        None for an Operation) for the placeholders' values in `feed_dict`."""
        flat: list = []
        spec = _flatten(fetches, flat)
        feeds = self._check_feeds(feed_dict or {})
        results = {}
        for item in flat:  # initialisers first, then values, then the updates (TF1 reads before it writes)
            if isinstance(item, Operation) and item.kind == "init":
                for v in item.attrs["variables"]:
                    v.value = v.initial_value.copy()
        tensors = [x for x in flat if isinstance(x, Tensor)]
        steps = [x for x in flat if isinstance(x, Operation) and x.kind == "minimize"]
        if tensors or steps:
            values, grads = self._evaluate(tensors, steps, feeds)
            results.update(zip(map(id, tensors), values))
            for op in steps:
                self._apply(op, grads[id(op)])
        return _unflatten(spec, [results.get(id(x)) if isinstance(x, Tensor) else None for x in flat])

    def _check_feeds(self, feed_dict):
        out = {}
        for ph, value in feed_dict.items():
            if not isinstance(ph, Tensor) or ph.op != "Placeholder":
                raise TypeError(f"Session.run: feed_dict keys must be placeholders, got {ph!r}")
            arr = np.asarray(_value_of(value), dtype=ph.dtype)
            if ph.shape is not None and (len(arr.shape) != len(ph.shape) or any(
                    d is not None and d != s for d, s in zip(ph.shape, arr.shape))):
                raise InvalidArgumentError(f"Session.run: the value fed to {ph.name} has shape {arr.shape}, "
                                           f"which does not fit the placeholder's shape {ph.shape}")
            out[id(ph)] = arr
        return out

    def _needed(self, roots):
        order, seen, stack = [], set(), [(r, False) for r in roots]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((i, False) for i in node.inputs)
        return order

    def _evaluate(self, tensors, steps, feeds):
        from .. import graph as G

        roots = tensors + [op.attrs["loss"] for op in steps]
        nodes = self._needed(roots)
        for n in nodes:
            if n.op == "Placeholder" and id(n) not in feeds:
                raise InvalidArgumentError(f"Session.run: you must feed a value for placeholder {n.name} "
                                           f"(dtype {_dtype_name(n.dtype)}, shape {n.shape})")
            if isinstance(n, Variable) and n.value is None:
                raise FailedPreconditionError(f"Attempting to use uninitialized value {n.name[:-2]}: run "
                                              f"tf.global_variables_initializer() first")
        key = (tuple(map(id, roots)), tuple(map(id, steps)),
               tuple((id(n), feeds[id(n)].shape) for n in nodes if n.op == "Placeholder"))
        entry = self._cache.get(key)
        if entry is None:
            entry = self._cache[key] = self._build(G, nodes, tensors, steps, feeds)
        graph, made, fetch, session = entry
        for n in nodes:  # variables read their current values
            if isinstance(n, Variable):
                made[id(n)].data = n.value.astype(n.dtype, copy=True)
        out = session.run(fetch, feed_dict={made[id(n)]: feeds[id(n)] for n in nodes if n.op == "Placeholder"})
        values = [np.asarray(v) for v in out[:len(tensors)]]
        grads, k = {}, len(tensors)
        for op in steps:
            n = len(op.attrs["variables"])
            grads[id(op)] = out[k:k + n]
            k += n
        return values, grads

    def _build(self, G, nodes, tensors, steps, feeds):
        from ..autograd import grad

        graph = G.Graph(name="tf_v1")
        made = {}
        with graph.as_default():
            for n in nodes:
                made[id(n)] = self._make(G, n, made, feeds)
            fetch = [made[id(t)] for t in tensors]
            for op in steps:
                variables = op.attrs["variables"]
                loss = made[id(op.attrs["loss"])]
                seed = None if loss.size == 1 else _NrTensor(np.ones(loss.shape, loss.dtype))
                gs = grad(loss, [made[id(v)] for v in variables], grad_outputs=seed, retain_graph=True,
                          allow_unused=True)
                fetch += [g if g is not None else _ops.mul(made[id(v)], 0.0) for g, v in zip(gs, variables)]
        return graph, made, fetch, G.Session(graph)

    @staticmethod
    def _make(G, n, made, feeds):
        if n.op == "Placeholder":
            return G.placeholder(feeds[id(n)].shape, n.dtype, name=n.name[:-2])
        if n.op == "Variable":
            return G.Variable(n.value, dtype=n.dtype, name=n.name[:-2], trainable=n.dtype.kind == "f")
        if n.op == "Const":
            return _NrTensor(n.attrs["value"])
        args = [made[id(i)] for i in n.inputs]
        if n.op == "cast":
            return args[0].astype(n.dtype)
        if n.op in ("reduce_sum", "reduce_mean"):
            fn = _ops.sum if n.op == "reduce_sum" else _ops.mean
            return fn(args[0], axis=n.attrs["axis"], keepdims=n.attrs["keepdims"])
        return _EAGER[n.op](*args)

    def _apply(self, op, grads):
        """One optimiser update of the variables, with neurona's optimiser of the same rule; its
        slots (momentum, Adam's moments) live with the session, one set per minimize op."""
        from ..autograd.grad_mode import no_grad

        variables = op.attrs["variables"]
        state = self._slots.get(id(op))
        if state is None:
            params = [_NrTensor(v.value.astype(v.dtype), requires_grad=True) for v in variables]
            opt = op.attrs["optimizer"]._optimizer()
            opt.bind(params)
            state = self._slots[id(op)] = (params, opt)
        params, opt = state
        with no_grad():
            for p, v, g in zip(params, variables, grads):
                p.data[...] = v.value
                p.grad = _NrTensor(np.asarray(g, dtype=v.dtype))
        opt.step()
        for p, v in zip(params, variables):
            v.value = p.data.copy()


def _flatten(fetches, out):
    from ..graph.session import flatten_fetches

    return flatten_fetches(fetches, out, (Tensor, Operation), "tf.Tensors or tf.Operations")


def _unflatten(spec, values):
    from ..graph.session import unflatten_fetches

    return unflatten_fetches(spec, values)
