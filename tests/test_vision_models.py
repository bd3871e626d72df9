"""Model zoo: output volumes and parameter counts of LeNet-5, AlexNet (one and two towers), VGG16/19,
the small VGG and the ResNets, checked against the course's volumes and against the same networks
built in torch on the meta device (no memory); the big ones are planned, never built. ResNet blocks
and a whole CIFAR ResNet are compared with hand-written torch modules holding the same weights."""
import numpy as np
import pytest
import torch
from torch import nn

import neurona as nr
from neurona.models import Input, Model, load_model
from neurona.vision import (alexnet, basic_block, layer_plan, lenet5, plan_summary, resnet18, resnet34, resnet_cifar,
                            small_vgg, vgg16, vgg19)


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
    assert text.splitlines()[-3:] == [f"Total params: {total:,}", f"Trainable params: {total:,}",
                                      "Non-trainable params: 0"]


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


# -- ResNet ------------------------------------------------------------------------------------------
class TorchBasicBlock(nn.Module):
    """torchvision's BasicBlock, written out: conv-BN-ReLU-conv-BN, plus the identity or a
    conv 1×1/stride + BN projection, then ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchResNet(nn.Module):
    """torchvision's ResNet of basic blocks (imagenet=True) or He et al.'s CIFAR ResNet."""

    def __init__(self, blocks, widths, num_classes, imagenet=True):
        super().__init__()
        c = widths[0]
        self.conv1 = nn.Conv2d(3, c, 7, 2, 3, bias=False) if imagenet else nn.Conv2d(3, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if imagenet else nn.Identity()
        for i, (w, n) in enumerate(zip(widths, blocks), 1):
            stride = 1 if i == 1 else 2
            layers = []
            for j in range(n):
                layers.append(TorchBasicBlock(c, w, stride if j == 0 else 1))
                c = w
            setattr(self, f"layer{i}", nn.Sequential(*layers))
        self.stages = len(blocks)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        for i in range(1, self.stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(x.mean(dim=(2, 3)))


def _our_name(torch_name):
    return torch_name.replace(".", "_").replace("downsample_0", "downsample_conv").replace("downsample_1",
                                                                                          "downsample_bn")


def copy_torch_weights(model, module):
    """Put the torch module's (random) weights into the neurona model, layer by torch layer name."""
    count = 0
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            model.get_layer(_our_name(name)).set_weights([m.weight.detach().numpy()])
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():  # not the initial 1/0, so γ and β are checked
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            model.get_layer(_our_name(name)).set_weights(
                [t.detach().numpy() for t in (m.weight, m.bias, m.running_mean, m.running_var)])
        elif isinstance(m, nn.Linear):
            model.get_layer(name).set_weights([m.weight.detach().numpy().T, m.bias.detach().numpy()])
        else:
            continue
        count += 1
    return count


def _forward_backward_both(model, module, x):
    """Train-mode outputs and input/weight gradients of Σ out·v, in neurona and in torch."""
    v = np.random.default_rng(5).standard_normal((len(x), *model.output_shape[1:]))
    xt = torch.tensor(x, requires_grad=True)
    out_t = module.train()(xt)
    (out_t * torch.tensor(v, dtype=torch.float32)).sum().backward()
    xn = nr.tensor(x, requires_grad=True)
    out_n = model(xn, training=True)
    (out_n * nr.tensor(v.astype(np.float32))).sum().backward()
    return out_n, out_t, xn, xt


@pytest.mark.parametrize("cin,cout,stride", [(64, 64, 1), (64, 128, 2), (16, 32, 1)])
def test_basic_block_matches_torch_in_train_mode(cin, cout, stride):
    x = np.random.default_rng(0).standard_normal((4, cin, 8, 8)).astype(np.float32)
    inp = Input(shape=(cin, 8, 8))
    block = Model(inp, basic_block(inp, cout, stride, name="b"))
    peer = TorchBasicBlock(cin, cout, stride)
    names = {la.name for la in block.layers}
    assert ("b_downsample_conv" in names) == (peer.downsample is not None)
    assert sum(w.size for w in block.trainable_weights) == torch_count(peer)
    for name, m in peer.named_modules():  # the copy goes through the b_ prefix
        if isinstance(m, nn.Conv2d):
            block.get_layer("b_" + _our_name(name)).set_weights([m.weight.detach().numpy()])
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            block.get_layer("b_" + _our_name(name)).set_weights(
                [t.detach().numpy() for t in (m.weight, m.bias, m.running_mean, m.running_var)])
    out_n, out_t, xn, xt = _forward_backward_both(block, peer, x)
    assert out_n.shape == (4, cout, 8 // stride, 8 // stride)
    np.testing.assert_allclose(out_n.numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    kernel = block.get_layer("b_conv1").kernel
    np.testing.assert_allclose(kernel.grad.numpy(), peer.conv1.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    bn = block.get_layer("b_bn2")  # the moving averages follow torch's running statistics (momentum 0.1)
    np.testing.assert_allclose(bn.moving_mean.numpy(), peer.bn2.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), peer.bn2.running_var.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make,blocks,total,trainable", [(resnet18, (2, 2, 2, 2), 11_699_112, 11_689_512),
                                                         (resnet34, (3, 4, 6, 3), 21_814_696, 21_797_672)])
def test_resnet_counts_and_volumes_match_torchvision(make, blocks, total, trainable):
    model = make(build=False)
    rows = layer_plan(model, (3, 224, 224))
    assert not model.built and model.weights == []  # planned from the settings: no weight, no activation
    with torch.device("meta"):
        assert torch_count(TorchResNet(blocks, (64, 128, 256, 512), 1000)) == trainable
    assert sum(n for _, _, n in rows) == total
    text = plan_summary(model, (3, 224, 224), print_fn=None)
    assert text.splitlines()[-3:] == [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                                      f"Non-trainable params: {total - trainable:,}"]
    shapes = {la.name: s[1:] for la, s, _ in rows}
    assert [shapes["conv1"], shapes["maxpool"]] == [(64, 112, 112), (64, 56, 56)]
    assert [shapes[f"layer{i}_{n - 1}_relu2"] for i, n in enumerate(blocks, 1)] == [
        (64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]
    assert shapes["avgpool"] == (512,) and shapes["fc"] == (1000,)
    projections = [la.name for la, _, _ in rows if la.name.endswith("downsample_conv")]
    assert projections == ["layer2_0_downsample_conv", "layer3_0_downsample_conv", "layer4_0_downsample_conv"]


def test_resnet18_on_small_images_runs():
    model = resnet18(num_classes=10, input_shape=(3, 32, 32))  # 32 → 16 → 8 → 8, 4, 2, 1
    assert sum(w.size for w in model.trainable_weights) == 11_689_512 - 513_000 + 5_130
    assert model.output_shape == (None, 10)
    out = model.predict(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("depth,trainable", [(8, 78_042), (20, 272_474), (56, 855_770)])
def test_resnet_cifar_counts(depth, trainable):
    n = (depth - 2) // 6
    with torch.device("meta"):
        assert torch_count(TorchResNet((n, n, n), (16, 32, 64), 10, imagenet=False)) == trainable
    rows = layer_plan(resnet_cifar(depth, build=False), (3, 32, 32))
    convs = [la for la, _, _ in rows if type(la).__name__ == "Conv2D" and "downsample" not in la.name]
    assert len(convs) + 1 == depth  # 6n + 2 weight layers: the convolutions and the FC layer
    trainable_planned = plan_summary(resnet_cifar(depth, build=False), (3, 32, 32), print_fn=None)
    assert f"Trainable params: {trainable:,}" in trainable_planned


def test_resnet_cifar_matches_torch_forward_and_backward():
    model = resnet_cifar(8, classifier_activation=None)
    peer = TorchResNet((1, 1, 1), (16, 32, 64), 10, imagenet=False)
    assert copy_torch_weights(model, peer) == sum(1 for la in model.layers if la.weights) == 19  # every one
    x = np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32)
    out_n, out_t, xn, xt = _forward_backward_both(model, peer, x)
    assert out_n.shape == (4, 10)
    np.testing.assert_allclose(out_n.numpy(), out_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-5)
    for ours, theirs in [("conv1", peer.conv1), ("layer3_0_downsample_conv", peer.layer3[0].downsample[0])]:
        np.testing.assert_allclose(model.get_layer(ours).kernel.grad.numpy(), theirs.weight.grad.numpy(),
                                   rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(model.get_layer("fc").kernel.grad.numpy(), peer.fc.weight.grad.numpy().T,
                               rtol=1e-4, atol=1e-5)


def test_resnet_cifar_plan_trains_saves_and_exports(tmp_path):
    planned = layer_plan(resnet_cifar(8, build=False), (3, 32, 32))
    model = resnet_cifar(8, widths=(8, 16, 16))
    assert [s for _, s, _ in layer_plan(resnet_cifar(8, widths=(8, 16, 16), build=False), (3, 32, 32))] == \
        [s for _, s in model._layer_shapes()]
    assert [(la.name, n) for la, _, n in planned][:3] == [("input", 0), ("conv1", 432), ("bn1", 64)]
    unbuilt = resnet_cifar(8, build=False)
    unbuilt.build()
    assert unbuilt.count_params() == sum(n for _, _, n in planned)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((8, 3, 32, 32)).astype(np.float32), np.arange(8) % 10
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    first = model.train_on_batch(x, y)
    for _ in range(4):
        last = model.train_on_batch(x, y)
    assert last < first
    model.save(tmp_path / "r")
    np.testing.assert_array_equal(load_model(tmp_path / "r").predict(x), model.predict(x))
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path = model.export_onnx(tmp_path / "r.onnx")
    (out,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    np.testing.assert_allclose(out, model.predict(x), rtol=1e-5, atol=1e-5)


def test_resnet_cifar_refuses_other_depths():
    with pytest.raises(ValueError, match=r"depth must be 6n \+ 2 .* got 18"):
        resnet_cifar(18)
