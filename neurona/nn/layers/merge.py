"""Merge layers (course topic 5, for residual networks): Add, Subtract, Multiply, Average, Maximum,
Minimum and Concatenate, called Keras-style on a list of tensors (`Add()([a, b])`), in the
functional API or eagerly. They have no weights.

The elementwise ones take tensors of one shape and do not broadcast (Keras broadcasts axes of size
1; a residual sum whose two branches disagree is a bug worth an error, not a silent broadcast).
`Concatenate(axis=1)` joins along the channel axis of NCHW images (the feature axis of (N, F));
negative axes count from the end, and the batch axis cannot be joined. Shapes are checked when the
layer is called, symbolically or on real tensors, and errors name the layer and every shape.
May import: neurona (ops), neurona.nn.layer.
"""
from __future__ import annotations

import operator
from functools import reduce

from ... import ops
from ...ops import ShapeError
from ..layer import Layer, register


def _fmt(shapes):
    return ", ".join(str(tuple(s)) for s in shapes)


class _Merge(Layer):
    """Base of the merge layers: checks that the input is a list of tensors of fitting shapes."""

    _exactly = None  # Subtract takes exactly two inputs
    # the ONNX op, and whether it takes any number of inputs (a binary one is chained)
    _onnx_op, _onnx_variadic = None, False

    def _shapes(self, input_shape):
        """The list of input shapes, or a clear error when the layer was not given a list."""
        kind = type(self).__name__
        nested = isinstance(input_shape, (list, tuple)) and all(isinstance(s, (list, tuple)) for s in input_shape)
        if not nested or not input_shape:
            got = "an empty list" if nested else f"a single input of shape {tuple(input_shape)}"
            raise ValueError(f"{kind} {self.name}: call it on a list of tensors, as in {kind}()([a, b]); got {got}")
        n = len(input_shape)
        if self._exactly is not None and n != self._exactly:
            raise ValueError(f"{kind} {self.name}: takes exactly {self._exactly} inputs, got {n} "
                             f"(shapes {_fmt(input_shape)})")
        if n < 2:
            raise ValueError(f"{kind} {self.name}: takes at least 2 inputs, got {n} (shape {_fmt(input_shape)})")
        return [tuple(s) for s in input_shape]

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # shapes that do not fit fail at build time

    def call(self, inputs, training=None):
        if not isinstance(inputs, (list, tuple)):
            self._shapes(getattr(inputs, "shape", inputs))  # raises: not a list
        self.compute_output_shape([t.shape for t in inputs])
        return self._merge(list(inputs))

    def _onnx(self, ctx, xs):  # see neurona.saving.onnx_export
        if self._onnx_variadic:
            return ctx.op(self._onnx_op, xs)
        y = xs[0]
        for x in xs[1:]:
            y = ctx.op(self._onnx_op, [y, x])
        return y

    def compute_output_shape(self, input_shape):
        shapes = self._shapes(input_shape)
        if len({len(s) for s in shapes}) > 1:
            raise ShapeError(f"{type(self).__name__} {self.name}: inputs must have the same number of axes, "
                             f"got shapes {_fmt(shapes)}")
        return self._output_shape(shapes)

    def _output_shape(self, shapes):
        out = []
        for axis, sizes in enumerate(zip(*shapes)):
            known = {s for s in sizes if s is not None}
            if len(known) > 1:
                raise ShapeError(f"{type(self).__name__} {self.name}: inputs must have the same shape (no "
                                 f"broadcasting); axis {axis} differs, shapes {_fmt(shapes)}")
            out.append(known.pop() if known else None)
        return tuple(out)


@register
class Add(_Merge):
    """Sum of the inputs: the join of a residual block, y = F(x) + x.

    >>> import neurona as nr
    >>> Add()([nr.ones((2, 3)), nr.ones((2, 3))]).tolist()
    [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    """

    _onnx_op = "Add"

    def _merge(self, xs):
        return reduce(ops.add, xs)


@register
class Subtract(_Merge):
    """First input minus the second (exactly two inputs).

    >>> import neurona as nr
    >>> Subtract()([nr.ones((1, 2)), nr.full((1, 2), 3.0)]).tolist()
    [[-2.0, -2.0]]
    """

    _onnx_op = "Sub"
    _exactly = 2

    def _merge(self, xs):
        return ops.sub(xs[0], xs[1])


@register
class Multiply(_Merge):
    """Elementwise product of the inputs (a gate, as in squeeze-and-excitation or an LSTM).

    >>> import neurona as nr
    >>> Multiply()([nr.full((1, 2), 2.0), nr.full((1, 2), 3.0)]).tolist()
    [[6.0, 6.0]]
    """

    _onnx_op = "Mul"

    def _merge(self, xs):
        return reduce(ops.mul, xs)


@register
class Average(_Merge):
    """Elementwise mean of the inputs (an ensemble of branches).

    >>> import neurona as nr
    >>> Average()([nr.zeros((1, 2)), nr.ones((1, 2))]).tolist()
    [[0.5, 0.5]]
    """

    _onnx_op, _onnx_variadic = "Mean", True

    def _merge(self, xs):
        return reduce(ops.add, xs) * (1.0 / len(xs))


@register
class Maximum(_Merge):
    """Elementwise maximum of the inputs; on a tie the gradient is shared (as `nr.maximum`).

    >>> import neurona as nr
    >>> Maximum()([nr.tensor([[1.0, 5.0]]), nr.tensor([[3.0, 2.0]])]).tolist()
    [[3.0, 5.0]]
    """

    _onnx_op, _onnx_variadic = "Max", True

    def _merge(self, xs):
        return reduce(ops.maximum, xs)


@register
class Minimum(_Merge):
    """Elementwise minimum of the inputs; on a tie the gradient is shared (as `nr.minimum`).

    >>> import neurona as nr
    >>> Minimum()([nr.tensor([[1.0, 5.0]]), nr.tensor([[3.0, 2.0]])]).tolist()
    [[1.0, 2.0]]
    """

    _onnx_op, _onnx_variadic = "Min", True

    def _merge(self, xs):
        return reduce(ops.minimum, xs)


@register
class Concatenate(_Merge):
    """Join the inputs along `axis`: 1 by default, the channels of NCHW images (DenseNet, Inception)
    and the features of (N, F) rows; negative axes count from the end. Every other axis must agree.

    >>> import neurona as nr
    >>> Concatenate()([nr.zeros((2, 3, 4, 4)), nr.zeros((2, 5, 4, 4))]).shape
    (2, 8, 4, 4)
    >>> Concatenate(axis=-1).compute_output_shape([(None, 3), (None, 4)])
    (None, 7)
    """

    def __init__(self, axis=1, **kwargs):
        super().__init__(**kwargs)
        try:
            self.axis = operator.index(axis)
        except TypeError:
            raise ValueError(f"Concatenate {self.name}: axis must be an int, got {axis!r}") from None

    def _onnx(self, ctx, xs):
        return ctx.op("Concat", xs, axis=self.axis)

    def _output_shape(self, shapes):
        ndim = len(shapes[0])
        where = f"Concatenate {self.name}: axis {self.axis}"
        if not -ndim <= self.axis < ndim:
            raise ShapeError(f"{where} is out of range for inputs with {ndim} axes, shapes {_fmt(shapes)}")
        axis = self.axis % ndim
        if axis == 0:
            raise ShapeError(f"{where} is the batch axis; join along another axis (shapes {_fmt(shapes)})")
        out = []
        for i, sizes in enumerate(zip(*shapes)):
            if i == axis:
                out.append(None if None in sizes else sum(sizes))
                continue
            known = {s for s in sizes if s is not None}
            if len(known) > 1:
                raise ShapeError(f"{where}: inputs must agree on every other axis; axis {i} differs, "
                                 f"shapes {_fmt(shapes)}")
            out.append(known.pop() if known else None)
        return tuple(out)

    def _merge(self, xs):
        return ops.concatenate(xs, axis=self.axis % xs[0].ndim)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
