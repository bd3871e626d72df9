"""Convolution and pooling layers: output shapes for a table of (N, C, H, W, K, F, S, P) with the
course's examples (computed by the formula and by running the layer), sizes that do not fit,
'same' padding, channels_last, values and gradients against torch.nn, LRN against its formula
and torch.nn.LocalResponseNorm, config round trips and freezing."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neurona as nr
from neurona.layers import (AveragePooling2D, Conv2D, GlobalAveragePooling2D, GlobalMaxPooling2D,
                            LocalResponseNormalization, MaxPooling2D)
from neurona.nn import get_registered
from neurona.ops import ShapeError

# N, C, H, W, K filters, F, S, P, expected output H (= W): the course's (W − F + 2P)/S + 1
SHAPES = [
    (2, 3, 32, 32, 6, 5, 1, 0, 28),    # 32×32×3 image, 5×5×3 filter → 28×28
    (1, 1, 7, 7, 1, 3, 1, 0, 5),       # 7×7 input, 3×3 filter, stride 1 → 5×5
    (1, 1, 7, 7, 1, 3, 2, 0, 3),       # stride 2 → 3×3
    (1, 3, 32, 32, 10, 5, 1, 2, 32),   # 10 filters 5×5, stride 1, pad 2 → 32×32×10
    (1, 3, 7, 7, 4, 3, 1, 1, 7),       # pad 1 with 3×3 keeps the size
    (2, 3, 227, 227, 96, 11, 4, 0, 55),  # AlexNet CONV1 → 55×55×96
    (1, 4, 9, 9, 2, 1, 1, 0, 9),       # 1×1 convolution
    (1, 2, 11, 11, 3, 3, 2, 1, 6),
]


@pytest.mark.parametrize("n,c,h,w,k,f,s,p,out", SHAPES)
def test_output_shape_formula_and_forward(n, c, h, w, k, f, s, p, out):
    layer = Conv2D(k, f, strides=s, padding=p)
    assert layer.compute_output_shape((None, c, h, w)) == (None, k, out, out)
    y = layer(nr.zeros((n, c, h, w)))
    assert y.shape == (n, k, out, out)
    assert layer.count_params() == k * (c * f * f + 1)


def test_sizes_that_do_not_fit_raise():
    # the course: 7×7 input with a 3×3 filter at stride 3 gives (7 − 3)/3 + 1 = 2.33
    layer = Conv2D(1, 3, strides=3)
    with pytest.raises(ShapeError, match="not an integer"):
        layer.compute_output_shape((None, 1, 7, 7))
    with pytest.raises(ShapeError, match="not an integer"):
        Conv2D(1, 3, strides=3)(nr.zeros((1, 1, 7, 7)))
    with pytest.raises(ShapeError, match="larger than the padded input"):
        Conv2D(1, 9)(nr.zeros((1, 1, 7, 7)))
    with pytest.raises(ShapeError, match="not an integer"):
        MaxPooling2D(2).compute_output_shape((None, 3, 7, 7))
    assert Conv2D(1, 3, strides=3, rounding="floor").compute_output_shape((None, 1, 7, 7)) == (None, 1, 2, 2)
    assert MaxPooling2D(2, rounding="floor")(nr.zeros((1, 3, 7, 7))).shape == (1, 3, 3, 3)


def test_same_padding_and_bad_settings():
    for f in (1, 3, 5, 7):
        assert Conv2D(4, f, padding="same")(nr.zeros((2, 3, 9, 11))).shape == (2, 4, 9, 11)
    assert Conv2D(4, 3, padding="same", dilation_rate=2)(nr.zeros((1, 3, 9, 9))).shape == (1, 4, 9, 9)
    with pytest.raises(ValueError, match="same"):
        Conv2D(4, 3, strides=2, padding="same")
    with pytest.raises(ValueError, match="same"):
        Conv2D(4, 2, padding="same")
    with pytest.raises(ValueError, match="padding"):
        Conv2D(4, 3, padding="full")
    with pytest.raises(ValueError, match="groups"):
        Conv2D(5, 3, groups=2)
    with pytest.raises(ValueError, match="data_format"):
        Conv2D(4, 3, data_format="NCHW")
    layer = Conv2D(4, 3)
    layer(nr.zeros((1, 3, 8, 8)))
    with pytest.raises(ShapeError, match="channels"):
        layer(nr.zeros((1, 2, 8, 8)))


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (1, 1, 1, 2)])
def test_conv2d_matches_torch_values_and_gradients(stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((2, 4, 9, 9))
    layer = Conv2D(6, 3, strides=stride, padding=padding, dilation_rate=dilation, groups=groups,
                   activation="tanh", dtype="float64", rounding="floor")
    layer.build((None, 4, 9, 9))
    layer.bias.data[...] = rng.standard_normal(6)
    x = nr.tensor(x_np, requires_grad=True)
    y = layer(x)
    (y * y).sum().backward()
    xt = torch.tensor(x_np, requires_grad=True)
    wt = torch.tensor(layer.kernel.numpy(), requires_grad=True)
    bt = torch.tensor(layer.bias.numpy(), requires_grad=True)
    yt = torch.tanh(TF.conv2d(xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups))
    (yt * yt).sum().backward()
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(layer.kernel.grad.numpy(), wt.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(layer.bias.grad.numpy(), bt.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_channels_last_equals_channels_first():
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype("float32")
    first = Conv2D(5, 3, padding=1)
    last = Conv2D(5, 3, padding=1, data_format="channels_last")
    first(nr.tensor(x))
    last(nr.zeros((1, 8, 8, 3)))
    last.set_weights(first.get_weights())
    y_last = last(nr.tensor(x.transpose(0, 2, 3, 1)))
    assert last.compute_output_shape((None, 8, 8, 3)) == (None, 8, 8, 5)
    np.testing.assert_allclose(y_last.numpy().transpose(0, 3, 1, 2), first(nr.tensor(x)).numpy(), rtol=1e-5, atol=1e-5)
    pool = MaxPooling2D(2, data_format="channels_last")
    assert pool.compute_output_shape((None, 8, 8, 5)) == (None, 4, 4, 5)
    np.testing.assert_array_equal(pool(y_last).numpy().transpose(0, 3, 1, 2),
                                  MaxPooling2D(2)(first(nr.tensor(x))).numpy())
    gap = GlobalAveragePooling2D(data_format="channels_last")
    np.testing.assert_allclose(gap(y_last).numpy(), y_last.numpy().mean(axis=(1, 2)), rtol=1e-6)


@pytest.mark.parametrize("layer_cls,torch_fn", [(MaxPooling2D, TF.max_pool2d), (AveragePooling2D, TF.avg_pool2d)])
@pytest.mark.parametrize("size,stride,padding", [(2, None, 0), (3, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_pooling_matches_torch(layer_cls, torch_fn, size, stride, padding):
    x_np = np.random.default_rng(3).permutation(2 * 3 * 9 * 9).reshape(2, 3, 9, 9).astype("float64")
    layer = layer_cls(size, strides=stride, padding=padding, rounding="floor")
    x = nr.tensor(x_np, requires_grad=True)
    y = layer(x)
    w = np.random.default_rng(4).standard_normal(y.shape)
    (y * nr.tensor(w)).sum().backward()
    xt = torch.tensor(x_np, requires_grad=True)
    yt = torch_fn(xt, size, stride=stride, padding=padding)
    (yt * torch.tensor(w)).sum().backward()
    assert layer.compute_output_shape((None, 3, 9, 9)) == tuple([None, *yt.shape[1:]])
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


def test_global_pooling():
    x_np = np.random.default_rng(5).standard_normal((2, 4, 5, 6))
    np.testing.assert_allclose(GlobalAveragePooling2D()(nr.tensor(x_np)).numpy(), x_np.mean(axis=(2, 3)))
    np.testing.assert_allclose(GlobalMaxPooling2D()(nr.tensor(x_np)).numpy(), x_np.max(axis=(2, 3)))
    assert GlobalMaxPooling2D().compute_output_shape((None, 4, 5, 6)) == (None, 4)
    assert GlobalAveragePooling2D(keepdims=True).compute_output_shape((None, 4, 5, 6)) == (None, 4, 1, 1)


def lrn_formula(a, n, alpha, beta, k):
    """b[c] = a[c] / (k + α/n Σ_{j = c − n//2}^{c + (n−1)//2} a[j]²)^β, written out with loops."""
    b = np.empty_like(a)
    C = a.shape[1]
    for c in range(C):
        lo, hi = max(0, c - n // 2), min(C, c + (n - 1) // 2 + 1)
        s = (a[:, lo:hi] ** 2).sum(axis=1)
        b[:, c] = a[:, c] / (k + alpha / n * s) ** beta
    return b


@pytest.mark.parametrize("n,alpha,beta,k", [(5, 1e-4, 0.75, 2.0), (4, 0.5, 0.75, 1.0), (3, 2.0, 0.5, 1.5),
                                            (1, 1.0, 1.0, 1.0)])
def test_lrn_matches_formula_and_torch(n, alpha, beta, k):
    a = np.random.default_rng(6).standard_normal((2, 7, 3, 4)) * 3
    layer = LocalResponseNormalization(size=n, alpha=alpha, beta=beta, k=k)
    x = nr.tensor(a, requires_grad=True)
    y = layer(x)
    np.testing.assert_allclose(y.numpy(), lrn_formula(a, n, alpha, beta, k), rtol=1e-12)
    g = np.random.default_rng(7).standard_normal(a.shape)
    (y * nr.tensor(g)).sum().backward()
    xt = torch.tensor(a, requires_grad=True)
    yt = torch.nn.LocalResponseNorm(n, alpha=alpha, beta=beta, k=k)(xt)
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    last = LocalResponseNormalization(size=n, alpha=alpha, beta=beta, k=k, data_format="channels_last")
    np.testing.assert_allclose(last(nr.tensor(a.transpose(0, 2, 3, 1))).numpy().transpose(0, 3, 1, 2), y.numpy(),
                               rtol=1e-12)


def test_lrn_gradcheck():
    layer = LocalResponseNormalization(size=3, alpha=0.3, beta=0.75, k=1.0)
    x = nr.tensor(np.random.default_rng(8).standard_normal((1, 4, 2, 2)), requires_grad=True)
    assert nr.gradcheck(lambda t: layer(t), (x,))


@pytest.mark.parametrize("make", [
    lambda: Conv2D(8, (3, 4), strides=(1, 2), padding=(1, 1), activation="relu", kernel_regularizer="l2"),
    lambda: Conv2D(4, 3, padding="same", use_bias=False, groups=2, data_format="channels_last"),
    lambda: MaxPooling2D(3, strides=2, padding=1, rounding="floor"),
    lambda: AveragePooling2D((2, 1)),
    lambda: GlobalMaxPooling2D(keepdims=True),
    lambda: LocalResponseNormalization(size=3, alpha=1e-3),
])
def test_config_round_trip(make):
    layer = make()
    fmt = getattr(layer, "data_format", "channels_first")
    x = nr.tensor(np.random.default_rng(9).standard_normal((2, 4, 8, 8) if fmt == "channels_first" else (2, 8, 8, 4)))
    config = layer.get_config()
    clone = get_registered(type(layer).__name__).from_config({**config, "name": layer.name + "_clone"})
    y = layer(x)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), y.numpy(), rtol=1e-6)
    assert clone.get_config() == {**config, "name": layer.name + "_clone"}
    assert layer.compute_output_shape((None, *x.shape[1:])) == (None, *y.shape[1:])


def test_frozen_conv_gets_no_gradient():
    layer = Conv2D(2, 3)
    x = nr.randn(1, 1, 5, 5)
    layer(x)
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    x.requires_grad_(True)
    layer(x).sum().backward()
    assert layer.kernel.grad is None and x.grad is not None


def test_frozen_layers_stay_fixed_through_fit_and_unfreeze():
    from neurona.layers import Dense, Flatten
    from neurona.models import Sequential

    conv = Conv2D(4, 3, padding="same", activation="relu", input_shape=(1, 8, 8))
    model = Sequential([conv, MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")])
    conv.trainable = False
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(10).random((32, 1, 8, 8)).astype("float32"), np.arange(32) % 3
    frozen, head = conv.get_weights(), model.layers[-1].get_weights()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for before, after in zip(frozen, conv.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert not np.array_equal(head[0], model.layers[-1].get_weights()[0])
    assert sum(t.size for t in model.trainable_weights) == 64 * 3 + 3  # only the Dense head
    conv.trainable = True
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(frozen[0], conv.get_weights()[0])


def test_max_pooling_layer_ceil_rounding_matches_torch():
    """AlexNet's 3×3 stride-2 pool on 55×55 keeps the last window with ceil rounding (27×27 either
    way there), and on 6×6 ceil gives 3×3 where floor gives 2×2."""
    layer = MaxPooling2D(3, strides=2, rounding="ceil")
    assert layer.compute_output_shape((None, 96, 55, 55)) == (None, 96, 27, 27)
    assert layer.compute_output_shape((None, 4, 6, 6)) == (None, 4, 3, 3)
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 6))
    ours = layer(nr.tensor(x)).numpy()
    theirs = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, ceil_mode=True).numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert MaxPooling2D.from_config(layer.get_config()).rounding == "ceil"


def test_average_pooling_layer_refuses_ceil():
    with pytest.raises(ValueError, match="AveragePooling2D.*rounding must be one of 'exact', 'floor'"):
        AveragePooling2D(3, strides=2, rounding="ceil")
