"""Layers: output shape, weight count, config round trip and one training step for each (a
table, after Keras' `run_layer_test`); the maths against torch.nn; BatchNorm training vs
inference; Dropout off at inference."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neurona as nr
from neurona.layers import (ELU, Activation, BatchNormalization, Dense, Dropout, Embedding, Flatten, LeakyReLU,
                            Maxout, PReLU, Reshape, Softmax)
from neurona.nn import get_registered
from neurona.optim import SGD

# factory, input shape, output shape, parameter count, trainable tensors; integer inputs for Embedding
TABLE = [
    ("dense", lambda: Dense(7), (4, 5), (4, 7), 42, 2),
    ("dense-3d-softmax", lambda: Dense(3, activation="softmax", use_bias=False), (2, 4, 6), (2, 4, 3), 18, 1),
    ("dense-regularized", lambda: Dense(3, kernel_regularizer="l2", kernel_constraint="max_norm",
                                        kernel_initializer="he_normal"), (4, 5), (4, 3), 18, 2),
    ("activation", lambda: Activation("tanh"), (4, 5), (4, 5), 0, 0),
    ("flatten", lambda: Flatten(), (2, 3, 4, 5), (2, 60), 0, 0),
    ("reshape", lambda: Reshape((3, -1)), (2, 12), (2, 3, 4), 0, 0),
    ("embedding", lambda: Embedding(10, 4), (2, 6), (2, 6, 4), 40, 1),
    ("leaky_relu", lambda: LeakyReLU(0.2), (4, 5), (4, 5), 0, 0),
    ("prelu", lambda: PReLU(), (4, 5), (4, 5), 5, 1),
    ("prelu-shared", lambda: PReLU(alpha_initializer="constant", shared_axes=(2, 3)), (2, 3, 4, 4), (2, 3, 4, 4), 3, 1),
    ("elu", lambda: ELU(0.5), (4, 5), (4, 5), 0, 0),
    ("maxout", lambda: Maxout(3), (4, 9), (4, 3), 0, 0),
    ("softmax", lambda: Softmax(), (4, 5), (4, 5), 0, 0),
    ("batchnorm-1d", lambda: BatchNormalization(), (8, 5), (8, 5), 20, 2),
    ("batchnorm-2d", lambda: BatchNormalization(momentum=0.9), (4, 3, 5, 5), (4, 3, 5, 5), 12, 2),
    ("dropout", lambda: Dropout(0.5), (4, 5), (4, 5), 0, 0),
]
IDS = [row[0] for row in TABLE]


def _input(name, shape, seed=0):
    rng = np.random.default_rng(seed)
    if name == "embedding":
        return nr.tensor(rng.integers(0, 10, shape))
    return nr.tensor(rng.standard_normal(shape).astype(np.float32))


@pytest.mark.parametrize("name,make,in_shape,out_shape,n_params,n_trainable", TABLE, ids=IDS)
def test_shape_and_weight_count(name, make, in_shape, out_shape, n_params, n_trainable):
    layer = make()
    y = layer(_input(name, in_shape))
    assert y.shape == out_shape
    assert layer.count_params() == n_params
    assert len(layer.trainable_weights) == n_trainable
    assert layer.compute_output_shape((None, *in_shape[1:])) == (None, *out_shape[1:])


@pytest.mark.parametrize("name,make,in_shape,out_shape,n_params,n_trainable", TABLE, ids=IDS)
def test_config_round_trip(name, make, in_shape, out_shape, n_params, n_trainable):
    layer = make()
    x = _input(name, in_shape)
    layer(x, training=True)  # BatchNorm's moving statistics move away from their initial values
    config = layer.get_config()
    cls = get_registered(type(layer).__name__)
    clone = cls.from_config(config)
    assert type(clone) is type(layer) and clone.get_config() == config
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x, training=False).numpy(), layer(x, training=False).numpy())


@pytest.mark.parametrize("name,make,in_shape,out_shape,n_params,n_trainable", TABLE, ids=IDS)
def test_one_training_step_decreases_the_loss(name, make, in_shape, out_shape, n_params, n_trainable):
    layer = make()
    stack = [layer] if n_params else [Dense(in_shape[-1]), layer]  # something to train before a weightless layer
    x = _input(name, in_shape)
    target = nr.tensor(np.random.default_rng(1).standard_normal(out_shape).astype(np.float32))

    def loss():
        nr.manual_seed(5)  # the same dropout mask for both evaluations
        h = x
        for lay in stack:
            h = lay(h, training=True)
        return ((h - target) ** 2).mean() + sum(lay_loss for lay in stack for lay_loss in lay.losses)

    first = loss()
    opt = SGD([w for lay in stack for w in lay.trainable_weights], lr=0.05)
    first.backward()
    opt.step()
    for lay in stack:
        lay.apply_constraints()
    assert loss().item() < first.item()


# -- the maths against torch ---------------------------------------------------------------------
def test_dense_matches_torch_linear():
    layer = Dense(4, activation="relu")
    x = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    xt, xn = torch.tensor(x, requires_grad=True), nr.tensor(x, requires_grad=True)
    y = layer(xn)
    w, b = (torch.tensor(a, requires_grad=True) for a in layer.get_weights())
    yt = torch.relu(TF.linear(xt, w.T, b))
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    (y * y).sum().backward()
    (yt * yt).sum().backward()
    for ours, theirs in ((xn, xt), (layer.kernel, w), (layer.bias, b)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_input_dim_and_errors():
    layer = Dense(2, input_dim=3)
    assert layer.batch_input_shape == (None, 3)
    layer(nr.zeros((1, 3)))
    with pytest.raises(nr.ShapeError, match=r"dense.*\(1, 4\)"):
        layer(nr.zeros((1, 4)))
    with pytest.raises(nr.ShapeError, match="cannot reshape"):
        Reshape((5, -1))(nr.zeros((2, 12)))
    with pytest.raises(ValueError, match="unknown activation"):
        Dense(2, activation="swishy")


@pytest.mark.parametrize("ours,theirs", [
    (LeakyReLU(0.2), lambda x: TF.leaky_relu(x, 0.2)),
    (ELU(0.7), lambda x: TF.elu(x, 0.7)),
    (Softmax(), lambda x: torch.softmax(x, -1)),
    (Activation("sigmoid"), torch.sigmoid),
])
def test_activation_layers_match_torch(ours, theirs):
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    xn, xt = nr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = ours(xn), theirs(xt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    (y * y).sum().backward()
    (yt * yt).sum().backward()
    np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_prelu_per_channel_matches_torch():
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 4)).astype(np.float32)
    layer = PReLU(alpha_initializer="constant", shared_axes=(2, 3))
    xn = nr.tensor(x)
    layer(xn)
    alpha = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    layer.set_weights([alpha.reshape(3, 1, 1)])
    a = torch.tensor(alpha, requires_grad=True)
    y, yt = layer(xn), TF.prelu(torch.tensor(x), a)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-6)
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(layer.alpha.grad.numpy().reshape(-1), a.grad.numpy(), rtol=1e-5)


def test_maxout_is_the_course_unit():
    x = np.random.default_rng(4).standard_normal((5, 3)).astype(np.float32)
    dense = Dense(4)  # 2 outputs × 2 pieces
    y = Maxout(2)(dense(nr.tensor(x))).numpy()
    w, b = dense.get_weights()
    z = x @ w + b
    # max(w1·x + b1, w2·x + b2) over consecutive pairs of Dense outputs
    np.testing.assert_allclose(y, np.maximum(z[:, 0::2], z[:, 1::2]), rtol=1e-6)


def test_embedding_matches_torch_and_accepts_float_ids():
    ids = np.array([[1, 3, 3], [0, 9, 1]])
    layer = Embedding(10, 4)
    y = layer(nr.tensor(ids))
    w = torch.tensor(layer.get_weights()[0], requires_grad=True)
    yt = TF.embedding(torch.tensor(ids), w)
    np.testing.assert_array_equal(y.numpy(), yt.detach().numpy())
    (y * y).sum().backward()
    (yt * yt).sum().backward()
    np.testing.assert_allclose(layer.embeddings.grad.numpy(), w.grad.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(layer(nr.tensor(ids.astype(np.float32))).numpy(), y.numpy())


# -- batch normalisation -------------------------------------------------------------------------
@pytest.mark.parametrize("shape,torch_bn", [((16, 5), torch.nn.BatchNorm1d), ((6, 3, 4, 4), torch.nn.BatchNorm2d)])
def test_batchnorm_matches_torch_in_training_and_inference(shape, torch_bn):
    rng = np.random.default_rng(0)
    n_features = shape[1]
    ours = BatchNormalization(momentum=0.9, epsilon=1e-3, gamma_initializer="random_uniform",
                              beta_initializer="random_uniform")
    # Keras momentum m keeps m of the old average; PyTorch's momentum is the weight of the new batch.
    theirs = torch_bn(n_features, eps=1e-3, momentum=0.1)
    ours(nr.zeros(shape))  # build
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.gamma.numpy()))
        theirs.bias.copy_(torch.tensor(ours.beta.numpy()))
    theirs.train()
    for step in range(3):
        x = (rng.standard_normal(shape) * 3 + step).astype(np.float32)
        xn, xt = nr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y, yt = ours(xn, training=True), theirs(xt)
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        g = rng.standard_normal(shape).astype(np.float32)
        y.backward(nr.tensor(g))
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.gamma.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.beta.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.running_var.numpy(), rtol=1e-5)
    theirs.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    for training in (None, False):
        np.testing.assert_allclose(ours(nr.tensor(x), training=training).numpy(),
                                   theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_batchnorm_defaults_and_weights():
    bn = BatchNormalization()
    assert (bn.momentum, bn.epsilon, bn.axis) == (0.99, 1e-3, 1)
    bn(nr.zeros((4, 3, 2, 2)))
    assert [w.name for w in bn.trainable_weights] == [f"{bn.name}/gamma", f"{bn.name}/beta"]
    assert [w.name for w in bn.non_trainable_weights] == [f"{bn.name}/moving_mean", f"{bn.name}/moving_variance"]
    before = bn.moving_mean.numpy().copy()
    bn(nr.ones((4, 3, 2, 2)) * 5, training=False)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)  # inference leaves the averages alone
    bn(nr.ones((4, 3, 2, 2)) * 5, training=True)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.05, rtol=1e-5)


def test_batchnorm_moving_statistics_are_not_recorded():
    bn = BatchNormalization()
    x = nr.randn(8, 4, requires_grad=True)
    bn(x, training=True).sum().backward()
    assert bn.moving_mean.grad is None and not bn.moving_mean.requires_grad


# -- dropout -----------------------------------------------------------------------------------
def test_dropout_is_off_at_inference():
    x = nr.randn(50, 40)
    layer = Dropout(0.5)
    for training in (None, False):
        np.testing.assert_array_equal(layer(x, training=training).numpy(), x.numpy())


def test_dropout_in_training_drops_and_rescales():
    x = nr.ones((200, 100))
    y = Dropout(0.3)(x, training=True).numpy()
    kept = y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)


def test_frozen_layer_has_no_trainable_weights():
    layer = Dense(3)
    layer(nr.zeros((1, 2)))
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    assert not layer.kernel.requires_grad


def test_numpy_inputs_and_activation_callables():
    x = np.random.default_rng(6).standard_normal((4, 3)).astype(np.float32)
    layer = Dense(2, activation=nr.relu)
    np.testing.assert_array_equal(layer(x).numpy(), layer(nr.tensor(x)).numpy())
    assert layer.get_config()["activation"] == "relu"
    assert BatchNormalization()(x, training=True).shape == (4, 3)
    with pytest.raises(ValueError, match="cannot be saved"):
        Dense(2, activation=lambda t: t * 2).get_config()


def test_input_is_reexported_from_models():
    from neurona.layers import Input
    from neurona.models import Input as models_input

    assert Input is models_input
