"""ONNX export of convolutional models: Conv2D (strides, padding, dilation, groups), pooling,
global pooling, LRN (odd and even windows), BatchNorm/Dropout after convolutions, Flatten after
convolutions and channels_last layers, each run in onnxruntime and compared with `predict`."""
import numpy as np
import pytest

import neurona as nr
from neurona.layers import (AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                            GlobalAveragePooling2D, GlobalMaxPooling2D, LocalResponseNormalization, Maxout,
                            MaxPooling2D)
from neurona.models import Input, Model, Sequential
from neurona.vision import lenet5

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _check(model, x, tmp_path, name="m"):
    path = model.export_onnx(tmp_path / f"{name}.onnx")
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": x})
    want = model.predict(x)
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    return out


def _images(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_lenet5_exports_and_matches_predict(tmp_path):
    nr.manual_seed(0)
    model = lenet5()
    x = _images((5, 1, 28, 28))
    _check(model, x, tmp_path)
    _check(lenet5(input_shape=(1, 32, 32)), _images((3, 1, 32, 32)), tmp_path, "lenet32")


def _fit_a_little(model, x, num_classes):
    """A few steps so BatchNorm's moving statistics and every weight are not at their initial values."""
    y = np.arange(len(x)) % num_classes
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, seed=0)


def test_small_cnn_with_batchnorm_dropout_lrn_and_every_conv_setting(tmp_path):
    nr.manual_seed(1)
    model = Sequential([
        Conv2D(8, 3, padding="same", activation="relu", input_shape=(3, 17, 17)),
        BatchNormalization(axis=1),
        LocalResponseNormalization(size=5, alpha=1e-2, beta=0.75, k=2.0),
        MaxPooling2D(3, strides=2, padding=1, rounding="floor"),             # 17 -> 9
        Conv2D(8, 3, strides=2, padding=1, groups=2, activation="tanh"),     # 9 -> 5
        LocalResponseNormalization(size=4, alpha=0.3, beta=0.6, k=1.0),     # an even window
        Conv2D(12, 2, dilation_rate=2, padding=(1, 0), use_bias=False),      # 5x5 -> 5x3
        AveragePooling2D(2, strides=1, padding=1),                           # zero padding counts
        Dropout(0.5),
        Flatten(),
        Dense(10, activation="softmax"),
    ])
    x = _images((8, 3, 17, 17))
    _fit_a_little(model, x, 10)
    assert not np.allclose(model.layers[1].moving_mean.numpy(), 0.0)
    _check(model, x, tmp_path)


def test_global_pooling_and_channels_last(tmp_path):
    nr.manual_seed(2)
    model = Sequential([
        Conv2D(6, 3, activation="relu", data_format="channels_last", input_shape=(10, 10, 3)),
        BatchNormalization(axis=-1),
        MaxPooling2D(2, data_format="channels_last"),
        LocalResponseNormalization(size=3, alpha=0.1, data_format="channels_last"),
        AveragePooling2D(2, padding=1, rounding="floor", data_format="channels_last"),
        GlobalMaxPooling2D(data_format="channels_last", keepdims=True),
        Flatten(),
        Dense(4, activation="softmax"),
    ])
    x = _images((6, 10, 10, 3), seed=3)
    _fit_a_little(model, x, 4)
    _check(model, x, tmp_path)

    gap = Sequential([Conv2D(5, 3, input_shape=(2, 6, 6)), GlobalAveragePooling2D(), Dense(3)])
    _check(gap, _images((4, 2, 6, 6), seed=4), tmp_path, "gap")
    # channels_last conv feeding Flatten: the ONNX graph must flatten NHWC like predict
    flat = Sequential([Conv2D(4, 3, data_format="channels_last", input_shape=(6, 6, 2)), Flatten(), Dense(3)])
    _check(flat, _images((4, 6, 6, 2), seed=5), tmp_path, "flat")


def test_functional_cnn(tmp_path):
    nr.manual_seed(3)
    inp = Input(shape=(1, 12, 12))
    h = Conv2D(4, 3, padding="same", activation="relu")(inp)
    h = MaxPooling2D(2)(h)
    out = Dense(3, activation="softmax")(GlobalAveragePooling2D()(h))
    _check(Model(inp, out), _images((5, 1, 12, 12), seed=6), tmp_path)


def test_unsupported_layer_is_named_in_the_error(tmp_path):
    model = Sequential([Conv2D(4, 3, input_shape=(1, 6, 6)), Flatten(), Maxout(2, name="the_maxout")])
    with pytest.raises(ValueError, match=r"the_maxout \(Maxout\) has no ONNX export.*Conv2D"):
        model.export_onnx(tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_ceil_rounding_max_pool_exports_ceil_mode(tmp_path):
    # AlexNet-style 3x3 stride-2 pools that keep the last partial window: 6 -> 3, 7 -> 3
    nr.manual_seed(4)
    model = Sequential([Conv2D(3, 3, padding=1, input_shape=(2, 6, 7)), MaxPooling2D(3, strides=2, rounding="ceil"),
                        Flatten(), Dense(2)])
    assert model.output_shape == (None, 2) and model.layers[1].compute_output_shape((None, 3, 6, 7)) == (None, 3, 3, 3)
    _check(model, _images((3, 2, 6, 7), seed=7), tmp_path)


def test_a_custom_layer_exports_its_own_nodes(tmp_path):
    # the exporter only walks the model: a layer with an `_onnx(ctx, x)` method is exportable
    from neurona.layers import Layer

    class Swish(Layer):
        def call(self, x, training=None):
            return x * nr.sigmoid(x)

        def compute_output_shape(self, input_shape):
            return tuple(input_shape)

        def _onnx(self, ctx, x):
            return ctx.op("Mul", [x, ctx.op("Sigmoid", [x])])

    nr.manual_seed(5)
    model = Sequential([Dense(6, input_shape=(4,)), Swish(name="swish"), Dense(3)])
    x = _images((5, 4), seed=8)
    _check(model, x, tmp_path)
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert [n.op_type for n in proto.graph.node if n.name.startswith("swish")] == ["Sigmoid", "Mul"]
