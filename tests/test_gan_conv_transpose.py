"""Conv2DTranspose (the DCGAN generator's upsampling layer): output sizes, values and gradients
against torch.nn.functional.conv_transpose2d over a table of settings, 'same' padding,
channels_last, a float64 gradient check, config round trip and bad settings."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neurona as nr
from neurona.layers import Conv2DTranspose
from neurona.nn import get_registered
from neurona.ops import ShapeError

# N, C_in, H, W, filters, F, S, P, output_padding, dilation, groups
CASES = [
    (2, 3, 5, 5, 4, 3, 1, 0, 0, 1, 1),
    (2, 16, 7, 7, 8, 4, 2, 1, 0, 1, 1),     # DCGAN 7→14
    (1, 4, 4, 6, 2, 5, 2, 2, 1, 1, 1),      # output_padding, non-square input
    (2, 4, 3, 3, 6, 3, 3, 0, 2, 1, 2),      # groups, big stride
    (1, 2, 4, 4, 3, 3, 1, 1, 0, 2, 1),      # dilation
    (1, 100, 1, 1, 32, 7, 1, 0, 0, 1, 1),   # latent vector → 7×7 map
    (3, 8, 6, 6, 8, 3, 1, 1, 0, 1, 1),      # Winograd-sized shape (stride 1, 3×3)
]


@pytest.mark.parametrize("n,c,h,w,k,f,s,p,op,d,g", CASES)
def test_matches_torch_forward_and_backward(n, c, h, w, k, f, s, p, op, d, g):
    rng = np.random.default_rng(0)
    layer = Conv2DTranspose(k, f, strides=s, padding=p, output_padding=op, dilation_rate=d, groups=g)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    xt = nr.tensor(x, requires_grad=True)
    y = layer(xt)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.kernel.numpy(), requires_grad=True)
    tb = torch.tensor(rng.standard_normal(k).astype(np.float32), requires_grad=True)
    layer.bias.data[...] = tb.detach().numpy()
    y = layer(xt)
    ty = TF.conv_transpose2d(tx, tw, tb, stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    assert y.shape == tuple(ty.shape) == layer.compute_output_shape((n, c, h, w))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(nr.tensor(gy))
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(layer.kernel.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(layer.bias.grad.numpy(), tb.grad.numpy(), rtol=1e-4, atol=1e-3)


def test_gradcheck_float64_and_second_order():
    layer = Conv2DTranspose(2, 3, strides=2, padding=1, output_padding=1, dtype="float64")
    x = nr.tensor(np.random.default_rng(1).standard_normal((1, 3, 3, 3)), requires_grad=True)
    layer(x)
    assert nr.gradcheck(lambda a, k: _run(a, k, layer), [x, layer.kernel])
    assert nr.gradgradcheck(lambda a, k: _run(a, k, layer), [x, layer.kernel])


def _run(a, k, layer):
    from neurona.ops.conv import ConvTranspose2d, make_geometry

    geo = make_geometry("t", (a.shape[0], 2, 6, 6), (3, 3), (2, 2), (1, 1), (1, 1), "floor")
    return ConvTranspose2d.apply(a, k, geo=geo, n=a.shape[0]) ** 2


def test_same_padding_channels_last_and_config():
    assert Conv2DTranspose(4, 4, strides=2, padding="same")(nr.zeros((1, 3, 7, 7))).shape == (1, 4, 14, 14)
    assert Conv2DTranspose(4, 3, padding="same")(nr.zeros((1, 3, 5, 5))).shape == (1, 4, 5, 5)
    cl = Conv2DTranspose(4, 4, strides=2, padding=1, data_format="channels_last")
    cf = Conv2DTranspose(4, 4, strides=2, padding=1)
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 5)).astype(np.float32)
    cf(nr.tensor(x))
    cl(nr.tensor(x.transpose(0, 2, 3, 1)))
    cl.set_weights(cf.get_weights())
    np.testing.assert_allclose(cl(nr.tensor(x.transpose(0, 2, 3, 1))).numpy().transpose(0, 3, 1, 2),
                               cf(nr.tensor(x)).numpy(), rtol=1e-5, atol=1e-5)
    config = cf.get_config()
    clone = get_registered("Conv2DTranspose").from_config(config)
    assert clone.get_config() == config


def test_bad_settings_and_inputs():
    with pytest.raises(ValueError, match="output_padding"):
        Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="same"):
        Conv2DTranspose(2, 4, padding="same")
    layer = Conv2DTranspose(2, 3)
    layer(nr.zeros((1, 3, 4, 4)))
    with pytest.raises(ShapeError, match="channels"):
        layer(nr.zeros((1, 5, 4, 4)))
    with pytest.raises(ShapeError, match="not positive"):
        Conv2DTranspose(2, 1, padding=3).compute_output_shape((None, 3, 2, 2))


def test_one_training_step_lowers_a_loss():
    layer = Conv2DTranspose(1, 4, strides=2, padding=1)
    x = nr.tensor(np.random.default_rng(3).standard_normal((4, 2, 4, 4)).astype(np.float32))
    target = nr.zeros((4, 1, 8, 8))
    opt = nr.optim.SGD(layer(x) is not None and layer.trainable_weights, learning_rate=0.05)
    losses = []
    for _ in range(3):
        loss = nr.F.mse_loss(layer(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
