"""Model zoo: output volumes and parameter counts of LeNet-5, AlexNet (one and two towers), VGG16/19
and the small VGG, checked against the course's volumes and against the same networks built in
torch on the meta device (no memory); the big ones are planned, never built."""
import numpy as np
import pytest
import torch
from torch import nn

import neurona as nr
from neurona.vision import alexnet, layer_plan, lenet5, plan_summary, small_vgg, vgg16, vgg19


def torch_count(model):
    return sum(p.numel() for p in model.parameters())


def torch_vgg(cfg, in_ch=3, bn=False, head=(4096, 4096), classes=1000, spatial=7):
    mods, c = [], in_ch
    for v in cfg:
        if v == "M":
            mods.append(nn.MaxPool2d(2))
        else:
            mods += [nn.Conv2d(c, v, 3, padding=1, bias=not bn), *([nn.BatchNorm2d(v)] if bn else []), nn.ReLU()]
            c = v
    mods.append(nn.Flatten())
    width = c * spatial * spatial
    for h in head:
        mods += [nn.Linear(width, h), nn.ReLU()]
        width = h
    mods.append(nn.Linear(width, classes))
    return nn.Sequential(*mods)


def torch_alexnet(groups):
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2), nn.LocalResponseNorm(5),
        nn.Conv2d(96, 256, 5, padding=2, groups=groups), nn.ReLU(), nn.MaxPool2d(3, 2), nn.LocalResponseNorm(5),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1, groups=groups), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=groups), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(9216, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))


def conv_volumes(rows):
    return [shape[1:] for layer, shape, _ in rows if type(layer).__name__ in ("Conv2D", "MaxPooling2D")]


@pytest.mark.parametrize("two_towers,total", [(False, 62_378_344), (True, 60_965_224)])
def test_alexnet_volumes_and_count(two_towers, total):
    model = alexnet(two_towers=two_towers, build=False)
    rows = layer_plan(model, (3, 227, 227))
    assert conv_volumes(rows) == [(96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13), (384, 13, 13),
                                  (384, 13, 13), (256, 13, 13), (256, 6, 6)]
    assert rows[-1][1] == (None, 1000)
    assert sum(n for _, _, n in rows) == total
    with torch.device("meta"):
        assert torch_count(torch_alexnet(2 if two_towers else 1)) == total
    assert not model.built and model.weights == []  # planning allocated nothing
    assert [la.name for la in model.layers][:4] == ["conv1", "pool1", "norm1", "conv2"]


@pytest.mark.parametrize("make,depth,total", [(vgg16, 16, 138_357_544), (vgg19, 19, 143_667_240)])
def test_vgg_counts_and_shapes(make, depth, total):
    from neurona.vision.models import VGG_BLOCKS

    rows = layer_plan(make(build=False), (3, 224, 224))
    assert sum(n for _, _, n in rows) == total
    pools = [shape[1:] for la, shape, _ in rows if type(la).__name__ == "MaxPooling2D"]
    assert pools == [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]
    assert rows[-1][1] == (None, 1000)
    with torch.device("meta"):
        assert torch_count(torch_vgg(VGG_BLOCKS[depth])) == total
    text = plan_summary(make(build=False), (3, 224, 224), print_fn=None)
    assert text.splitlines()[-1] == f"Total params: {total:,}"


def test_vgg_on_small_inputs_runs():
    model = vgg16(num_classes=5, input_shape=(3, 32, 32), batch_norm=True)  # 32 → 1 after five pools
    assert model.output_shape == (None, 5)
    assert model(nr.randn(2, 3, 32, 32)).shape == (2, 5)


def test_lenet5_matches_torch():
    model = lenet5(classifier_activation=None)
    assert model.count_params() == 61_706
    assert [s[1:] for s in model._shapes[:4]] == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5)]
    t = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                      nn.Linear(84, 10)).double()
    with torch.no_grad():
        params = [p for m in t if isinstance(m, (nn.Conv2d, nn.Linear)) for p in (m.weight, m.bias)]
        model.set_weights([p.numpy().T if p.ndim == 2 else p.numpy() for p in params])
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28))
    ours = model(nr.tensor(x.astype("float32"))).numpy()
    np.testing.assert_allclose(ours, t(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert lenet5(input_shape=(1, 32, 32)).count_params() == 61_706


def test_small_vgg_matches_w3_and_trains_a_step():
    model = small_vgg()
    with torch.device("meta"):
        peer = torch_vgg([64, 64, "M", 128, 128, "M", 256, 256, "M"], bn=True, head=(256,), classes=10, spatial=4)
    assert len(model.trainable_weights) == len(list(peer.parameters()))
    assert sum(t.size for t in model.trainable_weights) == torch_count(peer) == 2_197_706
    assert model.count_params() == 2_199_498  # + BatchNorm's moving mean and variance
    planned = layer_plan(small_vgg(build=False), (3, 32, 32))
    assert [n for _, _, n in planned] == [la.count_params() for la in model.layers]
    assert [s for _, s, _ in planned] == model._shapes
    small = small_vgg(input_shape=(1, 28, 28), widths=(8, 16), dense_units=32)
    small.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(1).standard_normal((16, 1, 28, 28)).astype("float32"), np.arange(16) % 10
    first = small.train_on_batch(x, y)
    for _ in range(5):
        last = small.train_on_batch(x, y)
    assert last < first


def test_zoo_sizes_that_do_not_fit_raise():
    with pytest.raises(nr.ops.ShapeError, match="not an integer"):
        layer_plan(small_vgg(build=False), (1, 28, 28))  # 28 → 14 → 7 → 3.5
