"""Pooling layers (course topic 5): MaxPooling2D, AveragePooling2D over F×F windows with stride
S, and their global forms that reduce each channel to one number.

NCHW by default, `data_format='channels_last'` for Keras' NHWC. Output sizes follow the course's
(W − F + 2P)/S + 1 without a forward pass; a size that does not divide raises a `ShapeError`
unless `rounding='floor'` (Keras' 'valid' pooling, which drops the last partial window) or, for
max pooling, `rounding='ceil'` (PyTorch's ceil_mode and Caffe's pooling, which keep it: AlexNet's
3×3 stride-2 pools on 55×55 and 27×27 maps).
May import: neurona (ops), neurona.nn (Layer, conv layer helpers).
"""
from __future__ import annotations

from ... import ops
from ...ops import ShapeError, output_size
from ..layer import Layer, register
from .conv import (default_rounding, check_format, from_nchw, join_shape, keras_name, hw_pair, split_shape, to_nchw,
                   with_layout_hint)


class _Pooling2D(Layer):
    _op = None  # the functional op, set by each subclass
    _onnx_op, _onnx_attrs = None, {}  # the ONNX op and its extra attributes
    _roundings = ("exact", "floor", "ceil")

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_first", rounding=None,
                 **kwargs):
        super().__init__(**keras_name(kwargs, type(self).__name__))
        name = f"{type(self).__name__} {self.name}"
        self.pool_size = hw_pair(pool_size, "pool_size", name)
        self.strides = self.pool_size if strides is None else hw_pair(strides, "strides", name)
        if min(*self.pool_size, *self.strides) < 1:
            raise ValueError(f"{name}: pool_size and strides must be ≥ 1")
        if padding == "valid":
            padding = (0, 0)
        elif isinstance(padding, str):
            raise ValueError(f"{name}: padding must be 'valid', an int or a pair, got {padding!r}")
        self.padding = hw_pair(padding, "padding", name)
        if any(2 * p > k for p, k in zip(self.padding, self.pool_size)):
            raise ValueError(f"{name}: padding {self.padding} must be at most half the pool size {self.pool_size}")
        rounding = default_rounding() if rounding is None else rounding
        allowed = self._roundings
        if rounding not in allowed:
            raise ValueError(f"{name}: rounding must be one of {', '.join(map(repr, allowed))}, got {rounding!r}")
        self.rounding = rounding
        self.data_format = check_format(data_format, name)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # a size that does not fit fails at build time

    def call(self, x, training=None):
        y = self._op(to_nchw(x, self.data_format), self.pool_size, self.strides, self.padding, self.rounding)
        return from_nchw(y, self.data_format)

    def _onnx(self, ctx, x):  # see neurona.saving.onnx_export
        ph, pw = self.padding
        # 'exact' refuses a last partial window and 'floor' drops it: ceil_mode=0; 'ceil' keeps it
        return ctx.nchw(x, self.data_format, lambda x: ctx.op(
            self._onnx_op, [x], kernel_shape=list(self.pool_size), strides=list(self.strides),
            pads=[ph, pw, ph, pw], ceil_mode=int(self.rounding == "ceil"), **self._onnx_attrs))

    def compute_output_shape(self, input_shape):
        n, c, h, w = split_shape(input_shape, self.data_format, self.name)
        try:
            size = [None if s is None else output_size(self.name, axis, s, k, st, p, 1, self.rounding)
                    for axis, s, k, st, p in zip(("height", "width"), (h, w), self.pool_size, self.strides,
                                                 self.padding)]
        except ShapeError as e:
            raise with_layout_hint(e, input_shape, self.data_format) from None
        return join_shape(n, c, *size, self.data_format)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": list(self.padding), "data_format": self.data_format, "rounding": self.rounding}


@register
class MaxPooling2D(_Pooling2D):
    """Maximum over each F×F window (stride defaults to F; padding counts as −∞).

    >>> import neurona as nr
    >>> MaxPooling2D(2)(nr.zeros((1, 6, 28, 28))).shape
    (1, 6, 14, 14)
    >>> MaxPooling2D(3, strides=2).compute_output_shape((None, 96, 55, 55))   # AlexNet's POOL1
    (None, 96, 27, 27)
    """

    _op = staticmethod(ops.max_pool2d)
    _onnx_op = "MaxPool"


@register
class AveragePooling2D(_Pooling2D):
    """Mean over each F×F window (stride defaults to F; zero padding counts in the mean).

    >>> import neurona as nr
    >>> AveragePooling2D(2)(nr.ones((1, 1, 4, 4))).tolist()
    [[[[1.0, 1.0], [1.0, 1.0]]]]
    """

    _op = staticmethod(ops.avg_pool2d)
    _onnx_op, _onnx_attrs = "AveragePool", {"count_include_pad": 1}
    # a window kept by 'ceil' would hang past the input; what its mean should divide by differs
    # between libraries, so average pooling offers only the two unambiguous roundings
    _roundings = ("exact", "floor")


class _GlobalPooling2D(Layer):
    def __init__(self, data_format="channels_first", keepdims=False, **kwargs):
        super().__init__(**keras_name(kwargs, type(self).__name__))
        self.data_format = check_format(data_format, f"{type(self).__name__} {self.name}")
        self.keepdims = bool(keepdims)

    def _axes(self):
        return (2, 3) if self.data_format == "channels_first" else (1, 2)

    def call(self, x, training=None):
        if x.ndim != 4:
            raise ShapeError(f"{self.name}: expects 4-D inputs, got shape {x.shape}")
        return self._reduce(x, axis=self._axes(), keepdims=self.keepdims)

    def _onnx(self, ctx, x):  # (N, C, 1, 1), flattened to (N, C) unless keepdims
        def emit(x):
            y = ctx.op(self._onnx_op, [x])
            return y if self.keepdims else ctx.op("Flatten", [y], axis=1)

        return ctx.nchw(x, self.data_format, emit, image_out=self.keepdims)

    def compute_output_shape(self, input_shape):
        n, c, _, _ = split_shape(input_shape, self.data_format, self.name)
        return join_shape(n, c, 1, 1, self.data_format) if self.keepdims else (n, c)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


@register
class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean of each channel over the whole image: (N, C, H, W) → (N, C).

    >>> import neurona as nr
    >>> GlobalAveragePooling2D()(nr.ones((2, 3, 4, 4))).shape
    (2, 3)
    """

    _reduce = staticmethod(ops.mean)
    _onnx_op = "GlobalAveragePool"


@register
class GlobalMaxPooling2D(_GlobalPooling2D):
    """Maximum of each channel over the whole image: (N, C, H, W) → (N, C).

    >>> import neurona as nr
    >>> GlobalMaxPooling2D(keepdims=True)(nr.ones((2, 3, 4, 4))).shape
    (2, 3, 1, 1)
    """

    _reduce = staticmethod(ops.max)
    _onnx_op = "GlobalMaxPool"
