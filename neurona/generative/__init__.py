"""Generative adversarial networks (course topic 11): the `GAN` model trained by Goodfellow et
al.'s Algorithm 1, its losses, generator/discriminator pairs (MLP, DCGAN), sample grids and GIFs,
latent interpolation, and an evaluation by a classifier of the real data.

>>> from neurona.generative import GAN, mlp_generator, mlp_discriminator
>>> gan = GAN(mlp_generator(16, (1, 8, 8), (32,)), mlp_discriminator((1, 8, 8), (32,)), latent_dim=16)
>>> gan.compile()
>>> gan.generate(4).shape
(4, 1, 8, 8)

May import: numpy, scipy (evaluation), Pillow (pictures, lazily), neurona, neurona.nn, neurona.optim,
neurona.data, neurona.callbacks, neurona.models.
"""
from .evaluate import class_shares, classifier_outputs, classifier_score, evaluate_samples, frechet_distance
from .gan import GAN
from .losses import discriminator_loss, generator_loss, value_function
from .models import dcgan_discriminator, dcgan_generator, mlp_discriminator, mlp_generator
from .samples import SampleGrid, image_grid, interpolate, interpolation_grid, save_gif, save_image_grid

__all__ = ["GAN", "SampleGrid", "class_shares", "classifier_outputs", "classifier_score", "dcgan_discriminator",
           "dcgan_generator", "discriminator_loss", "evaluate_samples", "frechet_distance", "generator_loss",
           "image_grid", "interpolate", "interpolation_grid", "mlp_discriminator", "mlp_generator", "save_gif",
           "save_image_grid", "value_function"]
