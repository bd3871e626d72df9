"""Generators and discriminators for 28×28 grey images (Fashion-MNIST, MNIST), as ordinary
`Sequential` models: a multilayer-perceptron pair (Goodfellow et al. 2014) and a DCGAN pair
(Radford et al. 2016: transposed convolutions with batch norm and ReLU in G, strided
convolutions with LeakyReLU(0.2) in D, no pooling, tanh output). The discriminators give logits.
May import: neurona.nn (layers), neurona.models.
"""
from __future__ import annotations

from ..models import Sequential
from ..nn.layers import (Activation, BatchNormalization, Conv2D, Conv2DTranspose, Dense, Dropout, Flatten,
                         LeakyReLU, Reshape)


def mlp_generator(latent_dim=64, image_shape=(1, 28, 28), hidden=(256, 512)):
    """z → Dense+LeakyReLU layers → tanh image of `image_shape`.

    >>> mlp_generator(8, (1, 4, 4), hidden=(16,)).output_shape
    (None, 1, 4, 4)
    """
    size = 1
    for s in image_shape:
        size *= int(s)
    layers = []
    for i, units in enumerate(hidden):
        layers += [Dense(units, input_dim=latent_dim) if i == 0 else Dense(units), LeakyReLU(0.2)]
    layers += [Dense(size, activation="tanh"), Reshape(tuple(image_shape))]
    return Sequential(layers, name="mlp_generator")


def mlp_discriminator(image_shape=(1, 28, 28), hidden=(512, 256), dropout=0.3):
    """image → Flatten → Dense+LeakyReLU(+Dropout) layers → one logit."""
    layers = [Flatten(input_shape=tuple(image_shape))]
    for units in hidden:
        layers += [Dense(units), LeakyReLU(0.2)] + ([Dropout(dropout)] if dropout else [])
    layers.append(Dense(1))
    return Sequential(layers, name="mlp_discriminator")


def dcgan_generator(latent_dim=64, channels=1, width=64):
    """z → Dense to (2·width, 7, 7) → ConvT 4×4/2 to (width, 14, 14) → ConvT 4×4/2 to
    (channels, 28, 28), tanh.

    >>> dcgan_generator(8, width=4).output_shape
    (None, 1, 28, 28)
    """
    return Sequential([
        Dense(2 * width * 7 * 7, input_dim=latent_dim, use_bias=False), BatchNormalization(axis=1),
        Activation("relu"), Reshape((2 * width, 7, 7)),
        Conv2DTranspose(width, 4, strides=2, padding=1, use_bias=False), BatchNormalization(axis=1),
        Activation("relu"),
        Conv2DTranspose(channels, 4, strides=2, padding=1, activation="tanh"),
    ], name="dcgan_generator")


def dcgan_discriminator(channels=1, width=64):
    """(channels, 28, 28) → Conv 4×4/2 to (width, 14, 14) → Conv 4×4/2 to (2·width, 7, 7) →
    one logit, LeakyReLU(0.2) throughout (no batch norm on the first layer, as in DCGAN)."""
    return Sequential([
        Conv2D(width, 4, strides=2, padding=1, input_shape=(channels, 28, 28)), LeakyReLU(0.2),
        Conv2D(2 * width, 4, strides=2, padding=1, use_bias=False), BatchNormalization(axis=1), LeakyReLU(0.2),
        Flatten(), Dense(1),
    ], name="dcgan_discriminator")
