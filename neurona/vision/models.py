"""The course's convolutional architectures (topic 5), all NCHW: LeNet-5, AlexNet, VGG16/19 and a
small VGG for 32×32 images as `Sequential` models; ResNet-18/34 and the CIFAR ResNets of He et al.
as functional `Model`s (a residual connection is not a chain of layers).

Every builder takes `build=True`: False returns the model unbuilt (no weight allocated), and
`layer_plan(model, input_shape)` then gives each layer's output volume and parameter count from
the layers' settings alone, so VGG19's 144 M weights (575 MB in float32) need not exist to be
counted, and no builder or plan ever runs a forward pass. Classifiers end in softmax (Keras'
applications), so compile them with `sparse_categorical_crossentropy`; pass
`classifier_activation=None` for logits. `include_top=False` (Keras' name) returns the
feature extractor: the network without its classifier (the fully connected layers, and the
Flatten or global pooling before them), ending in the last convolutional block's maps;
`pooling='avg'` or `'max'` then adds a global pooling to give one vector per image, the input of
a new head in transfer learning.
May import: neurona.nn (layers), neurona.models (Sequential, Input, Model, defer_build).
"""
from __future__ import annotations

import math
from contextlib import nullcontext

from ..models import Input, Model, Sequential
from ..models.functional import InputLayer, defer_build
from ..nn.layer import get_registered
from ..nn.layers import (Activation, Add, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                         GlobalAveragePooling2D, GlobalMaxPooling2D, LocalResponseNormalization, MaxPooling2D)

# VGG configurations D (16 weight layers) and E (19) of Simonyan & Zisserman (2015): channels of
# each 3×3 convolution, "M" a 2×2 max pool.
VGG_BLOCKS = {
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def _top_or_pooling(include_top, pooling, top):
    """The layers after the feature extractor: `top` (a list, or a function making it) when
    `include_top`, else the global pooling that `pooling` asks for (None: none)."""
    if include_top:
        if pooling is not None:
            raise ValueError(f"pooling={pooling!r} applies only with include_top=False (the classifier has its own)")
        return top() if callable(top) else top
    if pooling is None:
        return []
    if pooling not in ("avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    return [(GlobalAveragePooling2D if pooling == "avg" else GlobalMaxPooling2D)(name=f"global_{pooling}_pool")]


def _model(layers, input_shape, build, name):
    model = Sequential(layers, name=name)
    if build:
        model.build((None, *input_shape))
        model.built = True
    return model


def lenet5(num_classes=10, input_shape=(1, 28, 28), activation="relu", classifier_activation="softmax", build=True,
           include_top=True, pooling=None):
    """LeNet-5 as in the course and benchmark W2 (LeCun et al. 1998, with ReLU and max pooling):
    CONV 6@5×5 pad 2 → 28×28×6, POOL 2 → 14×14×6, CONV 16@5×5 → 10×10×16, POOL 2 → 5×5×16,
    FC 120, FC 84, FC 10: 61,706 parameters. On the original 32×32 inputs pass
    `input_shape=(1, 32, 32)`: the first convolution then has no padding, same count.

    >>> lenet5().count_params()
    61706
    >>> lenet5(include_top=False).output_shape          # the feature extractor
    (None, 16, 5, 5)
    """
    pad = 2 if input_shape[-1] == 28 else 0
    layers = [Conv2D(6, 5, padding=pad, activation=activation), MaxPooling2D(2),
              Conv2D(16, 5, activation=activation), MaxPooling2D(2)]
    layers += _top_or_pooling(include_top, pooling, lambda: [
        Flatten(), Dense(120, activation=activation), Dense(84, activation=activation),
        Dense(num_classes, activation=classifier_activation)])
    return _model(layers, input_shape, build, "lenet5" if include_top else "lenet5_features")


def alexnet(num_classes=1000, two_towers=False, dropout=0.5, lrn=True, classifier_activation="softmax", build=True,
            include_top=True, pooling=None):
    """AlexNet (Krizhevsky, Sutskever & Hinton 2012) on 227×227×3 inputs, the course's layer list:

    CONV1 96@11×11 s4 → 55×55×96, POOL1 3×3 s2 → 27×27×96, NORM1, CONV2 256@5×5 p2 → 27×27×256,
    POOL2 → 13×13×256, NORM2, CONV3 384@3×3 p1, CONV4 384@3×3 p1, CONV5 256@3×3 p1 → 13×13×256,
    POOL3 → 6×6×256, FC6 4096, FC7 4096, FC8 `num_classes` (dropout 0.5 before FC6 and FC7).

    Parameters (weights + biases), one tower (default, what a single device trains):
    CONV1 34,944 + CONV2 614,656 + CONV3 885,120 + CONV4 1,327,488 + CONV5 884,992 +
    FC6 37,752,832 + FC7 16,781,312 + FC8 4,097,000 = 62,378,344. The paper split the network over
    two GPUs, and CONV2, CONV4 and CONV5 only saw the half of the channels on their own GPU:
    `two_towers=True` builds that as convolutions with groups=2 (CONV2 307,456, CONV4 663,936,
    CONV5 442,624), 60,965,224 parameters, the "60 M" of the paper. The FC layers hold 94% either way.
    LRN: size 5, k 2, β 0.75, α 1e-4 in the paper's convention (alpha=5e-4 in ours, see
    `LocalResponseNormalization`).

    >>> layer_plan(alexnet(build=False), (3, 227, 227))[-1][1]
    (None, 1000)
    """
    g = 2 if two_towers else 1

    def norm(i):
        return [LocalResponseNormalization(size=5, alpha=5 * 1e-4, beta=0.75, k=2.0, name=f"norm{i}")] if lrn else []

    def drop(i):
        return [Dropout(dropout, name=f"dropout{i}")] if dropout else []

    layers = [Conv2D(96, 11, strides=4, activation="relu", name="conv1"), MaxPooling2D(3, strides=2, name="pool1"),
              *norm(1), Conv2D(256, 5, padding=2, groups=g, activation="relu", name="conv2"),
              MaxPooling2D(3, strides=2, name="pool2"), *norm(2),
              Conv2D(384, 3, padding=1, activation="relu", name="conv3"),
              Conv2D(384, 3, padding=1, groups=g, activation="relu", name="conv4"),
              Conv2D(256, 3, padding=1, groups=g, activation="relu", name="conv5"),
              MaxPooling2D(3, strides=2, name="pool3")]
    layers += _top_or_pooling(include_top, pooling, lambda: [
        Flatten(name="flatten"), *drop(6), Dense(4096, activation="relu", name="fc6"), *drop(7),
        Dense(4096, activation="relu", name="fc7"), Dense(num_classes, activation=classifier_activation, name="fc8")])
    name = "alexnet_two_towers" if two_towers else "alexnet"
    return _model(layers, (3, 227, 227), build, name if include_top else f"{name}_features")


def _vgg(depth, num_classes, input_shape, batch_norm, dropout, classifier_activation, build, include_top=True,
         pooling=None):
    layers = []
    for v in VGG_BLOCKS[depth]:
        if v == "M":
            layers.append(MaxPooling2D(2))
        elif batch_norm:
            layers += [Conv2D(v, 3, padding=1, use_bias=False), BatchNormalization(), Activation("relu")]
        else:
            layers.append(Conv2D(v, 3, padding=1, activation="relu"))
    def top():
        head = [Flatten()]
        for _ in range(2):
            head += [Dense(4096, activation="relu"), *([Dropout(dropout)] if dropout else [])]
        return head + [Dense(num_classes, activation=classifier_activation)]

    layers += _top_or_pooling(include_top, pooling, top)
    name = f"vgg{depth}{'_bn' if batch_norm else ''}"
    return _model(layers, input_shape, build, name if include_top else f"{name}_features")


def vgg16(num_classes=1000, input_shape=(3, 224, 224), batch_norm=False, dropout=0.5,
          classifier_activation="softmax", build=True, include_top=True, pooling=None):
    """VGG16 (configuration D): 13 convolutions 3×3 pad 1 in five blocks (64, 128, 256, 512, 512
    channels) each closed by a 2×2 max pool, 224 → 7, then FC 4096, 4096, 1000: 138,357,544
    parameters (14,714,688 in the convolutions, 102,764,544 in FC6 alone).

    >>> sum(p for _, _, p in layer_plan(vgg16(build=False), (3, 224, 224)))
    138357544
    >>> layer_plan(vgg16(include_top=False, build=False), (3, 224, 224))[-1][1]   # the features
    (None, 512, 7, 7)
    """
    return _vgg(16, num_classes, input_shape, batch_norm, dropout, classifier_activation, build, include_top,
                pooling)


def vgg19(num_classes=1000, input_shape=(3, 224, 224), batch_norm=False, dropout=0.5,
          classifier_activation="softmax", build=True, include_top=True, pooling=None):
    """VGG19 (configuration E): 16 convolutions (four in each of the last three blocks), then the
    same head as VGG16: 143,667,240 parameters.

    >>> sum(p for _, _, p in layer_plan(vgg19(build=False), (3, 224, 224)))
    143667240
    """
    return _vgg(19, num_classes, input_shape, batch_norm, dropout, classifier_activation, build, include_top,
                pooling)


def small_vgg(num_classes=10, input_shape=(3, 32, 32), widths=(64, 128, 256), dense_units=256, batch_norm=True,
              dropout=0.0, classifier_activation="softmax", build=True, include_top=True, pooling=None):
    """A VGG for small images, benchmark W3 by default: per width w, two 3×3 pad-1 convolutions of w
    channels (each followed by BatchNorm and ReLU, convolutions without bias) and a 2×2 max pool;
    then FC `dense_units` + ReLU and FC `num_classes`. On 3×32×32: 32 → 16 → 8 → 4, 4×4×256 into
    the head. For 28×28 inputs use two widths (28 → 14 → 7).

    >>> small_vgg().count_params()
    2199498
    """
    layers = []
    for w in widths:
        for _ in range(2):
            if batch_norm:
                layers += [Conv2D(w, 3, padding=1, use_bias=False), BatchNormalization(), Activation("relu")]
            else:
                layers.append(Conv2D(w, 3, padding=1, activation="relu"))
        layers.append(MaxPooling2D(2))
    layers += _top_or_pooling(include_top, pooling, lambda: [
        Flatten(), Dense(dense_units, activation="relu"), *([Dropout(dropout)] if dropout else []),
        Dense(num_classes, activation=classifier_activation)])
    return _model(layers, input_shape, build, "small_vgg" if include_top else "small_vgg_features")


def _bn(name):
    # PyTorch's BatchNorm2d defaults (momentum 0.1 there is 0.9 in Keras' convention, eps 1e-5), as
    # torchvision's ResNets use them
    return BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def _conv(filters, size, stride, name):
    # padding size//2 keeps the side at stride 1 and halves it at stride 2; 'floor' rounding makes
    # even sides halve exactly (56 → 28: (56 − 3 + 2)/2 + 1 = 28.5, the last half window dropped)
    return Conv2D(filters, size, strides=stride, padding=size // 2, use_bias=False, rounding="floor",
                  kernel_initializer="he_normal", name=name)


def basic_block(x, filters, stride=1, name="block"):
    """The basic residual block of He et al. (2015) on a symbolic tensor `x` (from `Input`):

        x ─┬─ conv 3×3/stride → BN → ReLU → conv 3×3 → BN ─┐
           └──────────────── shortcut ────────────────────(+)→ ReLU

    The shortcut is the identity when the shape stays; where it changes (stride 2, or more
    channels) it is a projection, conv 1×1/stride + BN (the paper's option B, torchvision's
    `downsample`). Convolutions have no bias: the BN after each one has its own shift.

    >>> from neurona.models import Input, Model
    >>> x = Input(shape=(64, 56, 56))
    >>> block = Model(x, basic_block(x, 128, stride=2, name="layer2_0"))
    >>> block.output_shape, sum(w.size for w in block.trainable_weights)
    ((None, 128, 28, 28), 230144)
    """
    y = _conv(filters, 3, stride, f"{name}_conv1")(x)
    y = Activation("relu", name=f"{name}_relu1")(_bn(f"{name}_bn1")(y))
    y = _bn(f"{name}_bn2")(_conv(filters, 3, 1, f"{name}_conv2")(y))
    shortcut = x
    if stride != 1 or x.shape[1] != filters:
        shortcut = _bn(f"{name}_downsample_bn")(_conv(filters, 1, stride, f"{name}_downsample_conv")(x))
    return Activation("relu", name=f"{name}_relu2")(Add(name=f"{name}_add")([y, shortcut]))


def _resnet(name, input_shape, stem, stages, num_classes, classifier_activation, build, include_top=True,
            pooling=None):
    """A ResNet of basic blocks: `stem(input)`, then per (filters, blocks, stride) a stage whose first
    block has that stride, global average pooling and one FC layer."""
    with nullcontext() if build else defer_build():
        inputs = Input(shape=input_shape, name="input")
        x = stem(inputs)
        for i, (filters, blocks, stride) in enumerate(stages, 1):
            for j in range(blocks):
                x = basic_block(x, filters, stride if j == 0 else 1, name=f"layer{i}_{j}")
        top = _top_or_pooling(include_top, pooling, lambda: [GlobalAveragePooling2D(name="avgpool"),
                                                             Dense(num_classes, activation=classifier_activation,
                                                                   name="fc")])
        for layer in top:
            x = layer(x)
    return Model(inputs, x, name=name if include_top else f"{name}_features")


def _imagenet_stem(x):
    # conv 7×7/2 → BN → ReLU → max pool 3×3/2 pad 1: 224 → 112 → 56 ('floor': (112 − 3 + 2)/2 + 1 = 56.5)
    x = Activation("relu", name="relu")(_bn("bn1")(_conv(64, 7, 2, "conv1")(x)))
    return MaxPooling2D(3, strides=2, padding=1, rounding="floor", name="maxpool")(x)


def _imagenet_resnet(depth, blocks, num_classes, input_shape, classifier_activation, build, include_top, pooling):
    stages = list(zip((64, 128, 256, 512), blocks, (1, 2, 2, 2)))
    return _resnet(f"resnet{depth}", input_shape, _imagenet_stem, stages, num_classes, classifier_activation, build,
                   include_top, pooling)


def resnet18(num_classes=1000, input_shape=(3, 224, 224), classifier_activation="softmax", build=True,
             include_top=True, pooling=None):
    """ResNet-18 (He et al. 2015) in torchvision's layout: conv 7×7/2 (64) → BN → ReLU → max pool
    3×3/2 → four stages of two basic blocks (64, 128, 256, 512 channels; the last three start
    with stride 2 and a projection shortcut) → global average pool → FC. On 224×224: 112 → 56 →
    56 → 28 → 14 → 7 → 1. 11,689,512 trainable parameters, torchvision's count (11,699,112 with
    BatchNorm's moving statistics). Layer names follow torchvision's (`layer2_0_conv1` is its
    `layer2.0.conv1`). Any side the stem and the three halvings divide works: 32×32 gives 1×1
    maps after the last stage.

    >>> rows = layer_plan(resnet18(build=False), (3, 224, 224))
    >>> sum(n for _, _, n in rows), rows[-1][1]
    (11699112, (None, 1000))
    """
    return _imagenet_resnet(18, (2, 2, 2, 2), num_classes, input_shape, classifier_activation, build, include_top,
                            pooling)


def resnet34(num_classes=1000, input_shape=(3, 224, 224), classifier_activation="softmax", build=True,
             include_top=True, pooling=None):
    """ResNet-34: ResNet-18's layout with 3, 4, 6 and 3 basic blocks per stage (32 convolutions
    + FC = 34 weight layers, the projections aside): 21,797,672 trainable parameters,
    torchvision's count (21,814,696 with BatchNorm's moving statistics).

    >>> plan_summary(resnet34(build=False), (3, 224, 224), print_fn=None).splitlines()[-2]
    'Trainable params: 21,797,672'
    """
    return _imagenet_resnet(34, (3, 4, 6, 3), num_classes, input_shape, classifier_activation, build, include_top,
                            pooling)


def resnet_cifar(depth=20, num_classes=10, input_shape=(3, 32, 32), widths=(16, 32, 64),
                 classifier_activation="softmax", build=True, include_top=True, pooling=None):
    """The CIFAR-10 ResNets of He et al. (2015, section 4.2): 6n + 2 weight layers for depth =
    20, 32, 44, 56, 110 (n = 3, 5, 7, 9, 18; any depth ≡ 2 mod 6 works, depth 8 is n = 1). A
    3×3 convolution (16 channels) → BN → ReLU, three stages of n basic blocks on 32×32, 16×16
    and 8×8 maps with `widths` channels, global average pool, FC. Shortcuts where the shape
    changes (the first block of the second and third stage) are projections, conv 1×1/2 + BN:
    option B of the paper, which used the parameter-free option A (strided identity padded with
    zero channels) on CIFAR; the two projections add 512 + 64 + 2,048 + 128 = 2,752 parameters
    to the paper's 269,722, so ResNet-20 here has 272,474 trainable parameters ("0.27 M").

    >>> model = resnet_cifar(20)
    >>> sum(w.size for w in model.trainable_weights), model.output_shape
    (272474, (None, 10))
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"resnet_cifar: depth must be 6n + 2 with n ≥ 1 (8, 14, 20, 32, 44, 56, 110), got {depth}")
    if len(widths) != 3:
        raise ValueError(f"resnet_cifar: widths must give the channels of the three stages, got {widths}")
    n = (depth - 2) // 6

    def stem(x):
        return Activation("relu", name="relu")(_bn("bn1")(_conv(widths[0], 3, 1, "conv1")(x)))

    stages = list(zip(widths, (n, n, n), (1, 2, 2)))
    return _resnet(f"resnet{depth}_cifar", input_shape, stem, stages, num_classes, classifier_activation, build,
                   include_top, pooling)


def layer_plan(model, input_shape):
    """[(layer, output_shape, parameter count)] for each layer of `model` on samples of
    `input_shape` (no batch axis), worked out without allocating a weight or an activation:
    output shapes from `compute_output_shape`, counts from the weight shapes a copy of each layer
    asks for when it builds (BatchNorm's moving statistics included, as in `count_params`).
    `model` is a Sequential, a list of layers, or a functional `Model`: then one row per input
    and per layer call, in execution order (a shared layer's weights counted at its first call),
    and `input_shape` is a list of shapes for a model with several inputs.

    >>> [(la.name.split("_")[0], shape, n) for la, shape, n in layer_plan(lenet5(build=False), (1, 28, 28))][:2]
    [('conv2d', (None, 6, 28, 28), 156), ('max', (None, 6, 14, 14), 0)]
    """
    return [row[:3] for row in _plan(model, input_shape)]


def _plan(model, input_shape):
    """layer_plan's rows with a fourth entry: the trainable part of the count."""
    if getattr(model, "_graph", False):
        return _graph_plan(model, input_shape)
    shape = (None, *tuple(input_shape))
    rows = []
    for layer in getattr(model, "layers", model):
        n, trainable = _planned_params(layer, shape)
        shape = layer.compute_output_shape(shape)
        rows.append((layer, shape, n, trainable))
    return rows


def _graph_plan(model, input_shape):
    given = list(input_shape) if len(model.inputs) > 1 else [input_shape]
    if len(given) != len(model.inputs):
        raise ValueError(f"layer_plan: {model.name} has {len(model.inputs)} inputs, got {len(given)} input shapes")
    shapes, rows, counted = {}, [], set()
    for t, s in zip(model.inputs, given):
        shapes[id(t)] = (None, *tuple(s))
        rows.append((t.node.layer, shapes[id(t)], 0, 0))
    for node in model._nodes:
        ins = [shapes[id(t)] for t in node.inputs]
        arg = ins if node.as_list else ins[0]
        n, trainable = (0, 0) if id(node.layer) in counted else _planned_params(node.layer, arg)
        counted.add(id(node.layer))
        out = node.layer.compute_output_shape(arg)
        for t, o in zip(node.outputs, out if isinstance(out, list) else [out]):
            shapes[id(t)] = tuple(o)
        rows.append((node.layer, out, n, trainable))
    return rows


def plan_summary(model, input_shape, print_fn=print):
    """`summary()` for an unbuilt model: the table of `layer_plan`, printed and returned.

    >>> text = plan_summary(vgg19(build=False), (3, 224, 224), print_fn=None)
    >>> text.splitlines()[-3:]
    ['Total params: 143,667,240', 'Trainable params: 143,667,240', 'Non-trainable params: 0']
    """
    plan = _plan(model, input_shape)
    rows = [(f"{la.name} ({type(la).__name__})", str(shape), f"{n:,}") for la, shape, n, _ in plan]
    header = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) + 2 for i in range(3)]
    lines = ["".join(c.ljust(w) for c, w in zip(header, widths)), "=" * sum(widths)]
    lines += ["".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    total, trainable = sum(row[2] for row in plan), sum(row[3] for row in plan)
    lines += ["=" * sum(widths), f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}"]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text


def _planned_params(layer, input_shape):
    """(weights, trainable weights) that `layer` has, or would create when built for `input_shape`."""
    if isinstance(layer, InputLayer):
        return 0, 0
    if layer.built:
        return layer.count_params(), sum(t.size for t in layer.trainable_weights)
    sizes = []
    clone = get_registered(type(layer).__name__).from_config(layer.get_config())

    def record(name, shape, initializer=None, regularizer=None, constraint=None, trainable=True, dtype=None):
        sizes.append((math.prod(shape), trainable))

    clone.add_weight = record  # the copy builds against this stand-in and is thrown away
    clone.build(input_shape)
    return sum(n for n, _ in sizes), sum(n for n, t in sizes if t) if clone.trainable else 0
