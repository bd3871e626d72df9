"""`include_top=False` in the model zoo (Keras' applications): the feature extractor, its
parameter counts against the same torch networks without their classifier on the meta device,
optional global pooling, and the use it is for (a new head, transfer learning)."""
import numpy as np
import pytest
import torch
from torch import nn

import neurona as nr
from neurona.layers import Dense
from neurona.models import Sequential
from neurona.vision import alexnet, layer_plan, lenet5, resnet18, resnet34, resnet_cifar, small_vgg, vgg16, vgg19
from neurona.vision.models import VGG_BLOCKS

from test_vision_models import TorchResNet, torch_alexnet, torch_count, torch_vgg


def _features_count(module, head_prefixes):
    """Parameters of a torch module without those of its classifier."""
    return sum(p.numel() for n, p in module.named_parameters() if not n.startswith(head_prefixes))


def _plan(model, shape):
    rows = layer_plan(model, shape)
    return rows[-1][1], sum(n for _, _, n in rows)


@pytest.mark.parametrize("make,depth,total", [(vgg16, 16, 14_714_688), (vgg19, 19, 20_024_384)])
def test_vgg_features(make, depth, total):
    out, count = _plan(make(include_top=False, build=False), (3, 224, 224))
    assert out == (None, 512, 7, 7) and count == total
    with torch.device("meta"):
        peer = torch_vgg(VGG_BLOCKS[depth])
        # the torch Sequential: features, then Flatten at index len(features) and the Linear layers
        head = tuple(f"{i}." for i, m in enumerate(peer) if isinstance(m, nn.Linear))
        assert _features_count(peer, head) == total
    assert _plan(make(include_top=False, pooling="avg", build=False), (3, 224, 224)) == ((None, 512), total)


@pytest.mark.parametrize("two_towers", [False, True])
def test_alexnet_features(two_towers):
    out, count = _plan(alexnet(two_towers=two_towers, include_top=False, build=False), (3, 227, 227))
    assert out == (None, 256, 6, 6)
    with torch.device("meta"):
        peer = torch_alexnet(2 if two_towers else 1)
        head = tuple(f"{i}." for i, m in enumerate(peer) if isinstance(m, nn.Linear))
        assert count == _features_count(peer, head)


def test_lenet5_and_small_vgg_features():
    features = lenet5(include_top=False)
    assert features.output_shape == (None, 16, 5, 5)
    assert features.count_params() == 61_706 - (400 * 120 + 120) - (120 * 84 + 84) - (84 * 10 + 10)
    x = nr.randn(2, 1, 28, 28)
    full = lenet5()
    full_out = full.layers[3](full.layers[2](full.layers[1](full.layers[0](x))))
    for mine, theirs in zip(features.layers, full.layers):
        mine.set_weights(theirs.get_weights())
    np.testing.assert_allclose(features(x).numpy(), full_out.numpy(), rtol=1e-6)
    assert small_vgg(include_top=False).output_shape == (None, 256, 4, 4)
    assert small_vgg(include_top=False, pooling="max").output_shape == (None, 256)


@pytest.mark.parametrize("make,blocks,trainable", [(resnet18, (2, 2, 2, 2), 11_176_512),
                                                   (resnet34, (3, 4, 6, 3), 21_284_672)])
def test_resnet_features_match_torchvision_without_fc(make, blocks, trainable):
    model = make(include_top=False, build=False)
    rows = layer_plan(model, (3, 224, 224))
    assert rows[-1][1] == (None, 512, 7, 7)
    assert not any(la.name in ("avgpool", "fc") for la, _, _ in rows)
    with torch.device("meta"):
        assert _features_count(TorchResNet(blocks, (64, 128, 256, 512), 1000), ("fc.",)) == trainable
    pooled = make(include_top=False, pooling="avg", input_shape=(3, 32, 32))
    assert pooled.output_shape == (None, 512) and pooled.name.endswith("_features")
    assert sum(w.size for w in pooled.trainable_weights) == trainable


def test_resnet_cifar_features_take_a_new_head_and_train():
    base = resnet_cifar(8, include_top=False, pooling="avg", input_shape=(3, 16, 16))
    for layer in base.layers:
        layer.trainable = False
    model = Sequential([base, Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 3, 16, 16), dtype=np.float32), rng.integers(0, 3, 8)
    frozen = [w.numpy().copy() for w in base.weights]
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(frozen, base.weights))
    assert model.predict(x).shape == (8, 3)


def test_pooling_needs_include_top_false():
    with pytest.raises(ValueError, match="pooling='avg' applies only with include_top=False"):
        vgg16(pooling="avg", build=False)
    with pytest.raises(ValueError, match="pooling must be None, 'avg' or 'max', got 'mean'"):
        lenet5(include_top=False, pooling="mean")
