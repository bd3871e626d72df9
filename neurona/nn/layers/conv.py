"""Convolution layer: `Conv2D`, K filters of size F×F, stride S, zero-padding P (course topic 5).

Images are NCHW (N, C, H, W) like the `conv2d` op; `data_format='channels_last'` accepts Keras'
NHWC by transposing around the op. The kernel is stored as the op takes it, (K, C/groups, F, F),
in both formats. Output sizes follow the course's (W − F + 2P)/S + 1, computed from the layer's
settings alone (no forward pass), so `summary()` of a huge model is free; a size that does not
divide raises a `ShapeError` (from the op, or here when the shape is known in advance).
May import: neurona (ops), neurona.nn (Layer, initializers, regularizers, constraints, activations).
"""
from __future__ import annotations

import operator
import warnings

from ... import ops
from ...ops import ShapeError, output_size
from .. import activations, constraints, initializers, regularizers
from ..layer import Layer, _auto_name, register

_FORMATS = ("channels_first", "channels_last")


def keras_name(kwargs, cls_name):
    """kwargs with Keras' default layer name ('conv2d', 'max_pooling2d', ...) when none is given."""
    if kwargs.get("name") is None:
        kwargs["name"] = _auto_name(cls_name.replace("2D", "2d"))
    return kwargs


_default_rounding = ["exact"]


def set_default_rounding(rounding):
    """The `rounding` that convolution and pooling layers take when none is given: 'exact' (the
    course's formula, enforced: a size that does not fit is an error naming the layer) or 'floor'
    (Keras' and PyTorch's: the last partial window is dropped). One line switches a whole script:

    >>> from neurona.layers import Conv2D, MaxPooling2D, set_default_rounding
    >>> set_default_rounding("floor")
    >>> MaxPooling2D(2).compute_output_shape((None, 3, 11, 11))
    (None, 3, 5, 5)
    >>> set_default_rounding("exact")

    Layers keep the rounding they were made with (it is saved in their config)."""
    if rounding not in ("exact", "floor"):
        raise ValueError(f"set_default_rounding: rounding must be 'exact' or 'floor', got {rounding!r}")
    _default_rounding[0] = rounding


def default_rounding():
    return _default_rounding[0]


def hw_pair(v, what, layer):
    """An int or a pair of ints as a pair (the height and width settings of a 2-D layer)."""
    try:
        v = (operator.index(v),) * 2 if not hasattr(v, "__len__") else tuple(operator.index(u) for u in v)
    except TypeError:
        raise ValueError(f"{layer}: {what} must be a non-negative int or a pair of them, got {v!r}") from None
    if len(v) != 2 or min(v) < 0:
        raise ValueError(f"{layer}: {what} must be a non-negative int or a pair of them, got {v}")
    return v


def check_format(data_format, layer):
    if data_format not in _FORMATS:
        raise ValueError(f"{layer}: data_format must be one of {_FORMATS}, got {data_format!r}")
    return data_format


def to_nchw(x, data_format):
    return x.transpose((0, 3, 1, 2)) if data_format == "channels_last" else x


def from_nchw(y, data_format):
    return y.transpose((0, 2, 3, 1)) if data_format == "channels_last" else y


def split_shape(input_shape, data_format, layer):
    """(N, C, H, W) of a 4-D input shape in either format."""
    shape = tuple(input_shape)
    if len(shape) != 4:
        axes = "N, C, H, W" if data_format == "channels_first" else "N, H, W, C"
        raise ShapeError(f"{layer}: expects 4-D inputs ({axes}), got shape {shape}")
    return shape if data_format == "channels_first" else (shape[0], shape[3], shape[1], shape[2])


def layout_hint(shape, data_format, channels=None, square=False):
    """A hint for a 4-D shape that looks like the other layout ('' when it does not): NHWC images
    into a layer that takes NCHW (the default), or the reverse. `channels`: what the layer
    expects on its channel axis, when known; otherwise a small last (or second) axis, 1, 3 or 4,
    reads as channels. `square`: also ask for equal height and width in the other reading (for
    a warning about data that merely could be either layout)."""
    shape = tuple(shape)
    if len(shape) != 4 or None in shape[1:]:
        return ""
    _, a, b, c = shape
    if data_format == "channels_first":
        chan, other, spatial = c, a, (a, b)
        layout, fix, fmt = "channels-last (N, H, W, C)", "x.transpose(0, 3, 1, 2)", "channels_last"
    else:
        chan, other, spatial = a, c, (b, c)
        layout, fix, fmt = "channels-first (N, C, H, W)", "x.transpose(0, 2, 3, 1)", "channels_first"
    fits = chan == channels if channels else chan in (1, 3, 4)
    if not fits or other == chan or other <= 4 or (channels and other == channels):
        return ""
    if square and spatial[0] != spatial[1]:
        return ""
    return (f"; shape {shape} looks like {layout} data: transpose it ({fix}) or build the layers with "
            f"data_format='{fmt}'")


def with_layout_hint(error, shape, data_format, channels=None):
    """`error` (a ShapeError) with the layout hint added to its message, when there is one."""
    hint = layout_hint(shape, data_format, channels)
    return ShapeError(f"{error}{hint}") if hint else error


def join_shape(n, c, h, w, data_format):
    return (n, c, h, w) if data_format == "channels_first" else (n, h, w, c)


@register
class Conv2D(Layer):
    """2-D convolution: `activation(conv2d(x, kernel) + bias)` with `filters` output channels.

    padding: 'valid' (0), 'same' (output as large as the input; stride 1 and an odd dilated
    kernel), an int P or a pair (Ph, Pw). rounding: 'exact' (default; see `set_default_rounding`) refuses sizes where
    (W − F + 2P)/S is not whole, 'floor' drops the last partial window (Keras/PyTorch behaviour).

    >>> import neurona as nr
    >>> layer = Conv2D(6, 5)                     # the course's 6 filters of 5×5×3
    >>> layer(nr.zeros((1, 3, 32, 32))).shape, layer.count_params()
    ((1, 6, 28, 28), 456)
    >>> Conv2D(10, 3, strides=2).compute_output_shape((None, 1, 7, 7))
    (None, 10, 3, 3)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", activation=None, use_bias=True,
                 dilation_rate=1, groups=1, data_format="channels_first", rounding=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**keras_name(kwargs, "Conv2D"))
        name = f"Conv2D {self.name}"
        if int(filters) <= 0 or int(groups) <= 0 or int(filters) % int(groups):
            raise ValueError(f"{name}: filters ({filters}) and groups ({groups}) must be positive, "
                             f"filters divisible by groups")
        self.filters, self.groups = int(filters), int(groups)
        self.kernel_size = hw_pair(kernel_size, "kernel_size", name)
        self.strides = hw_pair(strides, "strides", name)
        self.dilation_rate = hw_pair(dilation_rate, "dilation_rate", name)
        if min(*self.kernel_size, *self.strides, *self.dilation_rate) < 1:
            raise ValueError(f"{name}: kernel_size, strides and dilation_rate must be ≥ 1")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"{name}: padding must be 'valid', 'same', an int or a pair, got {padding!r}")
            self.padding = padding
        else:
            self.padding = hw_pair(padding, "padding", name)
        self._pads = self._explicit_padding(name)
        rounding = default_rounding() if rounding is None else rounding
        if rounding not in ("exact", "floor"):
            raise ValueError(f"{name}: rounding must be 'exact' or 'floor', got {rounding!r}")
        self.rounding = rounding
        self.data_format = check_format(data_format, name)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def _explicit_padding(self, name):
        if self.padding == "valid":
            return (0, 0)
        if self.padding != "same":
            return self.padding
        pads = []
        for k, s, d in zip(self.kernel_size, self.strides, self.dilation_rate):
            span = d * (k - 1)
            if s != 1 or span % 2:
                raise ValueError(f"{name}: padding='same' needs strides 1 and an odd (dilated) kernel, got "
                                 f"kernel_size {self.kernel_size}, strides {self.strides}, "
                                 f"dilation_rate {self.dilation_rate}; give the padding P as an int instead")
            pads.append(span // 2)
        return tuple(pads)

    def _in_channels(self, input_shape):
        c = split_shape(input_shape, self.data_format, self.name)[1]
        if c is None:
            raise ShapeError(f"{self.name}: the channel axis of the input must be known, "
                             f"got shape {tuple(input_shape)}")
        if c % self.groups:
            raise ShapeError(f"{self.name}: input channels ({c}) must divide by groups ({self.groups})")
        return c

    def kernel_shape(self, input_shape):
        """Shape of the kernel for inputs of `input_shape`: (K, C/groups, Fh, Fw)."""
        return (self.filters, self._in_channels(input_shape) // self.groups, *self.kernel_size)

    def build(self, input_shape):
        hint = layout_hint(input_shape, self.data_format, square=True)
        if hint:  # it may be right (a 28-channel map 28 wide and 3 high), so a warning, not an error
            warnings.warn(f"{self.name}: building for {split_shape(input_shape, self.data_format, self.name)[1]} "
                          f"input channels ({self.data_format}){hint}", stacklevel=3)
        self.kernel = self.add_weight("kernel", self.kernel_shape(input_shape), self.kernel_initializer,
                                      self.kernel_regularizer, self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer,
                                        self.bias_constraint)
        self.compute_output_shape(input_shape)  # a size that does not fit fails at build time

    def call(self, x, training=None):
        if x.ndim != 4 or split_shape(x.shape, self.data_format, self.name)[1] != self.kernel.shape[1] * self.groups:
            channels = self.kernel.shape[1] * self.groups
            raise ShapeError(f"{self.name}: input shape {x.shape} ({self.data_format}) must have "
                             f"{channels} channels (kernel shape {self.kernel.shape})"
                             f"{layout_hint(x.shape, self.data_format, channels)}")
        y = ops.conv2d(to_nchw(x, self.data_format), self.kernel, self.bias, stride=self.strides, padding=self._pads,
                       dilation=self.dilation_rate, groups=self.groups, rounding=self.rounding)
        return self.activation(from_nchw(y, self.data_format))

    def _onnx(self, ctx, x):  # see neurona.saving.onnx_export
        ph, pw = self._pads
        inputs = [ctx.const("kernel", self.kernel.numpy())]
        if self.bias is not None:
            inputs.append(ctx.const("bias", self.bias.numpy()))

        def emit(x):
            y = ctx.op("Conv", [x, *inputs], kernel_shape=list(self.kernel_size), strides=list(self.strides),
                       pads=[ph, pw, ph, pw], dilations=list(self.dilation_rate), group=self.groups)
            return ctx.activation(y, self.activation)

        return ctx.nchw(x, self.data_format, emit)

    def compute_output_shape(self, input_shape):
        n, c, h, w = split_shape(input_shape, self.data_format, self.name)
        try:
            size = [None if s is None else output_size(self.name, axis, s, k, st, p, d, self.rounding)
                    for axis, s, k, st, p, d in zip(("height", "width"), (h, w), self.kernel_size, self.strides,
                                                    self._pads, self.dilation_rate)]
        except ShapeError as e:
            raise with_layout_hint(e, input_shape, self.data_format) from None
        return join_shape(n, self.filters, *size, self.data_format)

    def get_config(self):
        padding = self.padding if isinstance(self.padding, str) else list(self.padding)
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": padding, "dilation_rate": list(self.dilation_rate),
                "groups": self.groups, "data_format": self.data_format, "rounding": self.rounding,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


@register
class Conv2DTranspose(Layer):
    """Transposed 2-D convolution ("deconvolution"), the generator's upsampling layer in a DCGAN.

    It is the adjoint of `Conv2D`: the op is conv2d's input gradient `ConvTranspose2d` (see
    neurona.ops.conv), so an (H, W) input becomes (H − 1)·S − 2P + D·(F − 1) + 1 + output_padding
    per axis. The kernel is (C_in, filters/groups, F, F), PyTorch's ConvTranspose2d layout
    (the transpose of the Conv2D it undoes). padding: 'valid' (0), 'same' (output = input·S,
    for F − S even; Keras' rule), an int or a pair.

    >>> import neurona as nr
    >>> layer = Conv2DTranspose(8, 4, strides=2, padding=1)    # DCGAN's 7×7 → 14×14
    >>> layer(nr.zeros((2, 16, 7, 7))).shape, layer.count_params()
    ((2, 8, 14, 14), 2056)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=0, activation=None,
                 use_bias=True, dilation_rate=1, groups=1, data_format="channels_first",
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**keras_name(kwargs, "Conv2DTranspose"))
        name = f"Conv2DTranspose {self.name}"
        if int(filters) <= 0 or int(groups) <= 0 or int(filters) % int(groups):
            raise ValueError(f"{name}: filters ({filters}) and groups ({groups}) must be positive, "
                             f"filters divisible by groups")
        self.filters, self.groups = int(filters), int(groups)
        self.kernel_size = hw_pair(kernel_size, "kernel_size", name)
        self.strides = hw_pair(strides, "strides", name)
        self.dilation_rate = hw_pair(dilation_rate, "dilation_rate", name)
        self.output_padding = hw_pair(output_padding, "output_padding", name)
        if min(*self.kernel_size, *self.strides, *self.dilation_rate) < 1:
            raise ValueError(f"{name}: kernel_size, strides and dilation_rate must be ≥ 1")
        if any(op >= s for op, s in zip(self.output_padding, self.strides)):
            raise ValueError(f"{name}: output_padding {self.output_padding} must be smaller than strides "
                             f"{self.strides}")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"{name}: padding must be 'valid', 'same', an int or a pair, got {padding!r}")
            self.padding = padding
            if padding == "same":
                for k, s, d in zip(self.kernel_size, self.strides, self.dilation_rate):
                    if (d * (k - 1) + 1 - s) % 2 or d * (k - 1) + 1 < s:
                        raise ValueError(f"{name}: padding='same' needs (dilated) kernel − strides even and "
                                         f"≥ 0, got kernel_size {self.kernel_size}, strides {self.strides}; "
                                         f"give the padding P as an int instead")
        else:
            self.padding = hw_pair(padding, "padding", name)
        self.data_format = check_format(data_format, name)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def _pads(self):
        if self.padding == "valid":
            return (0, 0)
        if self.padding == "same":
            return tuple((d * (k - 1) + 1 - s) // 2 for k, s, d in
                         zip(self.kernel_size, self.strides, self.dilation_rate))
        return self.padding

    def _out_size(self, size, axis):
        if size is None:
            return None
        k, s, d, p, op = (self.kernel_size[axis], self.strides[axis], self.dilation_rate[axis],
                          self._pads()[axis], self.output_padding[axis])
        out = (size - 1) * s - 2 * p + d * (k - 1) + 1 + op
        if out < 1:
            raise ShapeError(f"{self.name}: output {('height', 'width')[axis]} ({size} − 1)·{s} − 2·{p} + "
                             f"{d}·({k} − 1) + 1 + {op} = {out} is not positive")
        return out

    def _in_channels(self, input_shape):
        c = split_shape(input_shape, self.data_format, self.name)[1]
        if c is None:
            raise ShapeError(f"{self.name}: the channel axis of the input must be known, "
                             f"got shape {tuple(input_shape)}")
        if c % self.groups:
            raise ShapeError(f"{self.name}: input channels ({c}) must divide by groups ({self.groups})")
        return c

    def build(self, input_shape):
        shape = (self._in_channels(input_shape), self.filters // self.groups, *self.kernel_size)
        self.kernel = self.add_weight("kernel", shape, self.kernel_initializer, self.kernel_regularizer,
                                      self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer,
                                        self.bias_constraint)
        self.compute_output_shape(input_shape)

    def call(self, x, training=None):
        from ...ops.conv import ConvTranspose2d, make_geometry

        if x.ndim != 4 or split_shape(x.shape, self.data_format, self.name)[1] != self.kernel.shape[0]:
            raise ShapeError(f"{self.name}: input shape {x.shape} ({self.data_format}) must have "
                             f"{self.kernel.shape[0]} channels (kernel shape {self.kernel.shape})")
        x = to_nchw(x, self.data_format)
        out_hw = (self._out_size(x.shape[2], 0), self._out_size(x.shape[3], 1))
        # the geometry of the forward convolution this layer is the adjoint of: from the output
        # size back to the input size ('floor' absorbs output_padding's extra rows)
        geo = make_geometry(self.name, (x.shape[0], self.filters, *out_hw), self.kernel_size, self.strides,
                            self._pads(), self.dilation_rate, "floor", self.groups)
        y = ConvTranspose2d.apply(x, self.kernel, geo=geo, n=x.shape[0])
        if self.bias is not None:
            y = y + self.bias.reshape(1, -1, 1, 1)
        return self.activation(from_nchw(y, self.data_format))

    def compute_output_shape(self, input_shape):
        n, c, h, w = split_shape(input_shape, self.data_format, self.name)
        return join_shape(n, self.filters, self._out_size(h, 0), self._out_size(w, 1), self.data_format)

    def get_config(self):
        padding = self.padding if isinstance(self.padding, str) else list(self.padding)
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": padding, "output_padding": list(self.output_padding),
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                "data_format": self.data_format, "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}
