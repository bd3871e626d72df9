"""The course's convolutional architectures as `Sequential` models: LeNet-5, AlexNet, VGG16/19 and
a small VGG for 32×32 images (topic 5), all NCHW.

Every builder takes `build=True`: False returns the model unbuilt (no weight allocated), and
`layer_plan(model, input_shape)` then gives each layer's output volume and parameter count from
the layers' settings alone, so VGG19's 144 M weights (575 MB in float32) need not exist to be
counted. Classifiers end in softmax (Keras' applications), so compile them with
`sparse_categorical_crossentropy`; pass `classifier_activation=None` for logits.
May import: neurona.nn (layers), neurona.models (Sequential).
"""
from __future__ import annotations

import math

from ..models import Sequential
from ..nn.layer import get_registered
from ..nn.layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, LocalResponseNormalization,
                         MaxPooling2D)

# VGG configurations D (16 weight layers) and E (19) of Simonyan & Zisserman (2015): channels of
# each 3×3 convolution, "M" a 2×2 max pool.
VGG_BLOCKS = {
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def _model(layers, input_shape, build, name):
    model = Sequential(layers, name=name)
    if build:
        model.build((None, *input_shape))
        model.built = True
    return model


def lenet5(num_classes=10, input_shape=(1, 28, 28), activation="relu", classifier_activation="softmax", build=True):
    """LeNet-5 as in the course and benchmark W2 (LeCun et al. 1998, with ReLU and max pooling):
    CONV 6@5×5 pad 2 → 28×28×6, POOL 2 → 14×14×6, CONV 16@5×5 → 10×10×16, POOL 2 → 5×5×16,
    FC 120, FC 84, FC 10: 61,706 parameters. On the original 32×32 inputs pass
    `input_shape=(1, 32, 32)`: the first convolution then has no padding, same count.

    >>> lenet5().count_params()
    61706
    """
    pad = 2 if input_shape[-1] == 28 else 0
    layers = [Conv2D(6, 5, padding=pad, activation=activation), MaxPooling2D(2),
              Conv2D(16, 5, activation=activation), MaxPooling2D(2), Flatten(),
              Dense(120, activation=activation), Dense(84, activation=activation),
              Dense(num_classes, activation=classifier_activation)]
    return _model(layers, input_shape, build, "lenet5")


def alexnet(num_classes=1000, two_towers=False, dropout=0.5, lrn=True, classifier_activation="softmax", build=True):
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
              MaxPooling2D(3, strides=2, name="pool3"), Flatten(name="flatten"),
              *drop(6), Dense(4096, activation="relu", name="fc6"), *drop(7),
              Dense(4096, activation="relu", name="fc7"),
              Dense(num_classes, activation=classifier_activation, name="fc8")]
    return _model(layers, (3, 227, 227), build, "alexnet_two_towers" if two_towers else "alexnet")


def _vgg(depth, num_classes, input_shape, batch_norm, dropout, classifier_activation, build):
    layers = []
    for v in VGG_BLOCKS[depth]:
        if v == "M":
            layers.append(MaxPooling2D(2))
        elif batch_norm:
            layers += [Conv2D(v, 3, padding=1, use_bias=False), BatchNormalization(), Activation("relu")]
        else:
            layers.append(Conv2D(v, 3, padding=1, activation="relu"))
    layers.append(Flatten())
    for _ in range(2):
        layers += [Dense(4096, activation="relu"), *([Dropout(dropout)] if dropout else [])]
    layers.append(Dense(num_classes, activation=classifier_activation))
    return _model(layers, input_shape, build, f"vgg{depth}{'_bn' if batch_norm else ''}")


def vgg16(num_classes=1000, input_shape=(3, 224, 224), batch_norm=False, dropout=0.5,
          classifier_activation="softmax", build=True):
    """VGG16 (configuration D): 13 convolutions 3×3 pad 1 in five blocks (64, 128, 256, 512, 512
    channels) each closed by a 2×2 max pool, 224 → 7, then FC 4096, 4096, 1000: 138,357,544
    parameters (14,714,688 in the convolutions, 102,764,544 in FC6 alone).

    >>> sum(p for _, _, p in layer_plan(vgg16(build=False), (3, 224, 224)))
    138357544
    """
    return _vgg(16, num_classes, input_shape, batch_norm, dropout, classifier_activation, build)


def vgg19(num_classes=1000, input_shape=(3, 224, 224), batch_norm=False, dropout=0.5,
          classifier_activation="softmax", build=True):
    """VGG19 (configuration E): 16 convolutions (four in each of the last three blocks), then the
    same head as VGG16: 143,667,240 parameters.

    >>> sum(p for _, _, p in layer_plan(vgg19(build=False), (3, 224, 224)))
    143667240
    """
    return _vgg(19, num_classes, input_shape, batch_norm, dropout, classifier_activation, build)


def small_vgg(num_classes=10, input_shape=(3, 32, 32), widths=(64, 128, 256), dense_units=256, batch_norm=True,
              dropout=0.0, classifier_activation="softmax", build=True):
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
    layers += [Flatten(), Dense(dense_units, activation="relu"), *([Dropout(dropout)] if dropout else []),
               Dense(num_classes, activation=classifier_activation)]
    return _model(layers, input_shape, build, "small_vgg")


def layer_plan(model, input_shape):
    """[(layer, output_shape, parameter count)] for each layer of `model` (a Sequential or a list of
    layers) on samples of `input_shape` (no batch axis), worked out without allocating a weight:
    output shapes from `compute_output_shape`, counts from the weight shapes a copy of each layer
    asks for when it builds.

    >>> [(la.name.split("_")[0], shape, n) for la, shape, n in layer_plan(lenet5(build=False), (1, 28, 28))][:2]
    [('conv2d', (None, 6, 28, 28), 156), ('max', (None, 6, 14, 14), 0)]
    """
    shape = (None, *tuple(input_shape))
    rows = []
    for layer in getattr(model, "layers", model):
        n = _planned_params(layer, shape)
        shape = layer.compute_output_shape(shape)
        rows.append((layer, shape, n))
    return rows


def plan_summary(model, input_shape, print_fn=print):
    """`summary()` for an unbuilt model: the table of `layer_plan`, printed and returned.

    >>> text = plan_summary(vgg19(build=False), (3, 224, 224), print_fn=None)
    >>> text.splitlines()[-1]
    'Total params: 143,667,240'
    """
    rows = [(f"{la.name} ({type(la).__name__})", str(shape), f"{n:,}") for la, shape, n in
            layer_plan(model, input_shape)]
    header = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) + 2 for i in range(3)]
    lines = ["".join(c.ljust(w) for c, w in zip(header, widths)), "=" * sum(widths)]
    lines += ["".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    total = sum(n for _, _, n in layer_plan(model, input_shape))
    lines += ["=" * sum(widths), f"Total params: {total:,}"]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text


def _planned_params(layer, input_shape):
    if layer.built:
        return layer.count_params()
    shapes = []
    clone = get_registered(type(layer).__name__).from_config(layer.get_config())

    def record(name, shape, *args, **kwargs):
        shapes.append(tuple(shape))

    clone.add_weight = record  # the copy builds against this stand-in and is thrown away
    clone.build(input_shape)
    return sum(math.prod(s) for s in shapes)
