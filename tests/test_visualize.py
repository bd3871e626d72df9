"""neurona.vision.visualize: filter grids from known kernels, feature maps against the model's
layers run by hand (Sequential and functional Model), files written, errors."""
import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import neurona as nr  # noqa: E402
from neurona.layers import (AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,  # noqa: E402
                            MaxPooling2D)
from neurona.models import Input, Model, Sequential  # noqa: E402
from neurona.vision.visualize import feature_maps, plot_feature_maps, plot_filters  # noqa: E402


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def scaled(tiles):
    """Per-tile min-max scaling, written out once more for the check."""
    out = []
    for t in tiles:
        t = np.asarray(t, np.float64)
        out.append((t - t.min()) / (t.max() - t.min()))
    return np.array(out)


def test_gray_filters_are_the_channel_mean_scaled_per_filter():
    w = np.random.default_rng(0).normal(size=(10, 2, 3, 3)).astype(np.float32)
    fig = plot_filters(w, max_filters=8, cols=4)
    axes = image_axes(fig)
    assert len(axes) == len(fig.axes) == 8
    expected = scaled(w[:8].mean(axis=1))
    for ax, tile in zip(axes, expected):
        np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), tile, atol=1e-6)
        assert ax.images[0].get_cmap().name == "gray"
    title = fig._suptitle.get_text()
    assert "8 of 10 filters" in title and "mean over the 2 input channels" in title


def test_rgb_filters_and_a_chosen_channel():
    w = np.random.default_rng(1).normal(size=(5, 3, 2, 4))
    axes = image_axes(plot_filters(w))
    assert len(axes) == 5
    for ax, tile in zip(axes, scaled(w.transpose(0, 2, 3, 1))):
        assert ax.images[0].get_array().shape == (2, 4, 3)
        np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), tile, atol=1e-12)
    for ax, tile in zip(image_axes(plot_filters(w, channel=2)), scaled(w[:, 2])):
        np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), tile, atol=1e-12)


def test_filters_of_a_conv_layer_and_a_constant_filter():
    layer = Conv2D(4, 3, name="first_conv")
    layer(nr.zeros((1, 1, 6, 6)))
    w = layer.kernel.numpy().copy()
    w[2] = 0.7  # a constant filter cannot be min-max scaled: drawn mid-grey
    layer.kernel.data[...] = w
    fig = plot_filters(layer)
    axes = image_axes(fig)
    assert len(axes) == 4 and "first_conv" in fig._suptitle.get_text()
    np.testing.assert_allclose(np.asarray(axes[2].images[0].get_array()), np.full((3, 3), 0.5))
    np.testing.assert_allclose(np.asarray(axes[0].images[0].get_array()), scaled(w[:1, 0])[0], atol=1e-6)


def test_files_by_suffix(tmp_path):
    w = np.random.default_rng(2).normal(size=(3, 1, 3, 3))
    plot_filters(w, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    plot_filters(w, tmp_path / "sub" / "f.svg")
    assert "<svg" in (tmp_path / "sub" / "f.svg").read_text()[:1000]
    with pytest.raises(ValueError, match=r"plot_filters: path must end in .png or .svg, got '.*f\.jpg'"):
        plot_filters(w, tmp_path / "f.jpg")
    model = Sequential([Conv2D(2, 3, input_shape=(1, 6, 6)), MaxPooling2D(2)])
    plot_feature_maps(model, np.ones((1, 6, 6), np.float32), path=tmp_path / "maps.svg")
    assert "<svg" in (tmp_path / "maps.svg").read_text()[:1000]
    plot_feature_maps(model, np.ones((1, 6, 6), np.float32), path=tmp_path / "maps.png")
    assert (tmp_path / "maps.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_filters_errors():
    dense = Dense(2, name="head")
    dense(nr.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"layer 'head' \(Dense\) is not a 2-D convolution.*"
                                         r"kernel \(3, 2\), bias \(2,\)"):
        plot_filters(dense)
    with pytest.raises(ValueError, match="layer 'lazy' is not built yet"):
        plot_filters(Conv2D(2, 3, name="lazy"))
    with pytest.raises(ValueError, match=r"\(K, C, kh, kw\) kernel, got an array of shape \(4, 3, 3\)"):
        plot_filters(np.zeros((4, 3, 3)))
    with pytest.raises(ValueError, match="channel 1 is out of range for a kernel with 1 input channels"):
        plot_filters(np.zeros((4, 1, 3, 3)), channel=1)


def conv_by_loops(x, w, b):
    """Valid cross-correlation of one (C, H, W) image with (K, C, kh, kw) filters."""
    k, c, kh, kw = w.shape
    h, wd = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.empty((k, h, wd))
    for f in range(k):
        for i in range(h):
            for j in range(wd):
                out[f, i, j] = np.sum(x[:, i:i + kh, j:j + kw] * w[f]) + b[f]
    return out


def sequential_model():
    nr.manual_seed(0)
    model = Sequential([
        Conv2D(3, 3, activation="relu", input_shape=(2, 9, 9), name="c1"),
        BatchNormalization(axis=1, name="bn"),
        MaxPooling2D(2, rounding="floor", name="p1"),
        Conv2D(4, 3, padding="same", name="c2"),
        AveragePooling2D(2, rounding="floor", name="p2"),
        Flatten(name="flat"), Dropout(0.5, name="drop"), Dense(3, name="out")], name="seq")
    bn = model.layers[1]
    bn.moving_mean.data[...] = np.array([0.1, -0.2, 0.3], np.float32)  # inference mode must use these
    bn.moving_variance.data[...] = np.array([2.0, 0.5, 1.5], np.float32)
    return model


def test_sequential_feature_maps_equal_the_layers_run_by_hand():
    model = sequential_model()
    x = np.random.default_rng(3).normal(size=(2, 9, 9)).astype(np.float32)
    before = [w.numpy().copy() for w in model.weights]
    maps = feature_maps(model, x)
    assert list(maps) == ["c1", "p1", "c2", "p2"]
    h, expected = nr.tensor(x[None]), {}
    for layer in model.layers:
        h = layer(h, training=False)
        expected[layer.name] = h.numpy()[0]
    for name, a in maps.items():
        np.testing.assert_allclose(a, expected[name], rtol=1e-5, atol=1e-6)
    c1 = model.layers[0]
    np.testing.assert_allclose(maps["c1"], np.maximum(conv_by_loops(x, c1.kernel.numpy(), c1.bias.numpy()), 0),
                               rtol=1e-4, atol=1e-5)
    assert [a.shape for a in maps.values()] == [(3, 7, 7), (3, 3, 3), (4, 3, 3), (4, 1, 1)]
    # the model is left as it was: same weights and moving statistics, no gradients
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)
        assert w.grad is None
    same = feature_maps(model, x[None], layers=["bn", model.layers[0]])
    assert list(same) == ["bn", "c1"]
    np.testing.assert_allclose(same["bn"], expected["bn"], rtol=1e-5, atol=1e-6)


def test_functional_model_feature_maps_with_branches_and_a_shared_layer():
    nr.manual_seed(1)
    inp = Input(shape=(1, 6, 6), name="image")
    shared = Conv2D(1, 3, padding="same", name="shared")
    a = shared(inp)
    twice = shared(a)  # second call of the same layer
    pooled = MaxPooling2D(2, name="pool")(twice)
    side = Conv2D(2, 3, name="side")(inp)
    model = Model(inp, [pooled, side], name="branches")
    x = np.random.default_rng(4).normal(size=(1, 1, 6, 6)).astype(np.float32)
    maps = feature_maps(model, x, layers=["image", "shared", "pool", model.get_layer("side")])
    assert list(maps) == ["image", "shared", "pool", "side"]
    xt = nr.tensor(x)
    first = shared(xt)
    np.testing.assert_array_equal(maps["image"], x[0])
    np.testing.assert_allclose(maps["shared"], first.numpy()[0], rtol=1e-6)  # the first call's output
    np.testing.assert_allclose(maps["pool"], model.get_layer("pool")(shared(first)).numpy()[0], rtol=1e-6)
    np.testing.assert_allclose(maps["side"], model.get_layer("side")(xt).numpy()[0], rtol=1e-6)
    assert list(feature_maps(model, x)) == ["shared", "pool", "side"]


def test_channels_last_maps_come_back_as_chw():
    model = Sequential([Conv2D(3, 3, data_format="channels_last", input_shape=(5, 5, 2), name="nhwc")])
    x = np.random.default_rng(5).normal(size=(5, 5, 2)).astype(np.float32)
    maps = feature_maps(model, x)
    np.testing.assert_allclose(maps["nhwc"], model(nr.tensor(x[None])).numpy()[0].transpose(2, 0, 1), rtol=1e-6)


def test_plot_feature_maps_draws_the_input_and_one_row_per_layer():
    model = sequential_model()
    x = np.random.default_rng(6).uniform(size=(2, 9, 9)).astype(np.float32)
    fig = plot_feature_maps(model, x, max_maps=2)
    assert len(image_axes(fig)) == 1 + 2 * 4  # the input, then 2 channels of c1, p1, c2, p2
    maps = feature_maps(model, x)
    drawn = [np.asarray(ax.images[0].get_array()) for ax in image_axes(fig)]
    np.testing.assert_array_equal(drawn[0], x[0])  # neither 1 nor 3 channels: the first one
    np.testing.assert_allclose(drawn[1], maps["c1"][0])
    np.testing.assert_allclose(drawn[8], maps["p2"][1])
    labels = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "c1\n3×7×7" in labels and "input\n2×9×9" in labels
    rgb = Sequential([Conv2D(5, 3, input_shape=(3, 6, 6), name="rgb_conv")])
    fig = plot_feature_maps(rgb, np.random.default_rng(7).uniform(size=(3, 6, 6)).astype(np.float32))
    assert [ax.images[0].get_array().shape for ax in image_axes(fig)][:2] == [(6, 6, 3), (4, 4)]
    assert len(image_axes(fig)) == 1 + 5


def test_feature_map_errors():
    model = sequential_model()
    x = np.zeros((2, 9, 9), np.float32)
    with pytest.raises(ValueError, match=r"seq has no layer named 'conv9'; layers: \['c1', 'bn', 'p1'"):
        feature_maps(model, x, layers=["conv9"])
    with pytest.raises(ValueError, match=r"x holds a batch of 4 images \(shape \(4, 2, 9, 9\)\); give one image"):
        feature_maps(model, np.zeros((4, 2, 9, 9), np.float32))
    with pytest.raises(ValueError, match=r"x must be one image \(C, H, W\) or \(1, C, H, W\), got shape \(9, 9\)"):
        plot_feature_maps(model, np.zeros((9, 9), np.float32))
    with pytest.raises(ValueError, match=r"layer 'flat' \(Flatten\) gives shape \(1, 4\), not an image volume"):
        feature_maps(model, x, layers="flat")
    with pytest.raises(ValueError, match="layer 'stranger' is not one of seq's layers"):
        feature_maps(model, x, layers=[Conv2D(1, 1, name="stranger")])
    with pytest.raises(ValueError, match="not built"):
        feature_maps(Sequential([Conv2D(1, 3)]), x)
    with pytest.raises(ValueError, match=r"has no Conv2D or pooling layer; pass layers= from \['d'\]"):
        feature_maps(Sequential([Dense(2, input_shape=(3,), name="d")]), np.zeros((1, 1, 3), np.float32))
    with pytest.raises(TypeError, match="expected a Sequential or functional Model, got Conv2D"):
        feature_maps(Conv2D(1, 3), x)
