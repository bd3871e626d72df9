"""Pictures of a generator: image grids, the `SampleGrid` callback (a grid from the same fixed
noise after every epoch, as PNGs, and a GIF of the epochs at the end) and latent interpolation.
Images are (N, C, H, W) or (N, H, W) arrays, or flat (N, H·W) with `image_shape` given; values in
`value_range` ((−1, 1) for a tanh generator) are mapped to 0-255.
May import: numpy, neurona.callbacks, Pillow (lazily).
"""
from __future__ import annotations

import os

import numpy as np

from ..callbacks import Callback


def to_uint8(images, value_range=(-1.0, 1.0), image_shape=None):
    """(N, H, W) or (N, H, W, 3) uint8 images from generator outputs (see the module docstring)."""
    x = np.asarray(images, dtype=np.float32)
    if image_shape is not None:
        x = x.reshape(len(x), *image_shape)
    if x.ndim == 4:
        if x.shape[1] == 1:
            x = x[:, 0]
        elif x.shape[1] == 3:
            x = x.transpose(0, 2, 3, 1)
        else:
            raise ValueError(f"to_uint8: images must have 1 or 3 channels (N, C, H, W), got shape {x.shape}")
    elif x.ndim != 3:
        raise ValueError(f"to_uint8: images must be (N, H, W) or (N, C, H, W) (or flat with image_shape=), "
                         f"got shape {x.shape}")
    lo, hi = value_range
    return np.clip((x - lo) / (hi - lo) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def image_grid(images, nrow=None, value_range=(-1.0, 1.0), image_shape=None, padding=2, scale=2):
    """One uint8 picture holding the images in rows of `nrow` (default: a square), `padding`
    pixels apart, each enlarged `scale` times.

    >>> image_grid(np.zeros((6, 1, 4, 4)), nrow=3, scale=1).shape
    (14, 20)
    """
    x = to_uint8(images, value_range, image_shape)
    n, h, w = x.shape[:3]
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / nrow))
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, *x.shape[3:]), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        grid[padding + r * (h + padding):padding + r * (h + padding) + h,
             padding + c * (w + padding):padding + c * (w + padding) + w] = x[i]
    return np.kron(grid, np.ones((scale, scale) + (1,) * (grid.ndim - 2), np.uint8)) if scale > 1 else grid


def save_image_grid(images, path, **kwargs):
    """Save `image_grid(images, **kwargs)` as a PNG; returns the path."""
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(image_grid(images, **kwargs)).save(path)
    return path


def save_gif(frames, path, duration_ms=400):
    """Save uint8 pictures (all the same size) as a looping GIF; returns the path."""
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pictures = [Image.fromarray(f) for f in frames]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=duration_ms, loop=0)
    return path


def interpolate(z0, z1, steps=8, method="slerp"):
    """`steps` noise vectors from z0 to z1: 'linear', or 'slerp' (along the great circle, which
    keeps Gaussian noise at the norm the generator was trained on).

    >>> interpolate(np.array([1.0, 0.0]), np.array([0.0, 1.0]), steps=3).round(3).tolist()
    [[1.0, 0.0], [0.707, 0.707], [0.0, 1.0]]
    """
    z0, z1 = np.asarray(z0, dtype=np.float64), np.asarray(z1, dtype=np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if method == "linear":
        return (1 - t) * z0 + t * z1
    if method != "slerp":
        raise ValueError(f"interpolate: method must be 'linear' or 'slerp', got {method!r}")
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * z0 + t * z1
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def interpolation_grid(gan, rows=4, steps=8, seed=0, method="slerp"):
    """Generator outputs along `rows` interpolations between random noise pairs, (rows·steps, ...)."""
    rng = np.random.default_rng(seed)
    ends = rng.standard_normal((rows, 2, gan.latent_dim))
    z = np.concatenate([interpolate(a, b, steps, method) for a, b in ends]).astype(np.float32)
    return gan.generate(z=z)


class SampleGrid(Callback):
    """After every epoch, save a grid of the generator's samples from the same fixed noise as
    `out_dir/epoch_001.png`, ...; at the end of training, the epochs as `out_dir/epochs.gif`.

    n: samples per grid; seed: the fixed noise; image_shape: for generators with flat outputs.
    """

    def __init__(self, out_dir="out/gan", n=64, seed=0, image_shape=None, value_range=(-1.0, 1.0), nrow=None):
        super().__init__()
        self.out_dir, self.n, self.seed = os.fspath(out_dir), int(n), seed
        self.image_shape, self.value_range, self.nrow = image_shape, value_range, nrow
        self.frames, self.paths = [], []
        self.z = None

    def on_train_begin(self, logs=None):
        self.z = np.random.default_rng(self.seed).standard_normal((self.n, self.model.latent_dim)).astype(np.float32)
        if self.model.noise == "uniform":
            self.z = np.random.default_rng(self.seed).uniform(-1, 1, (self.n, self.model.latent_dim)).astype(np.float32)

    def on_epoch_end(self, epoch, logs=None):
        from PIL import Image

        grid = image_grid(self.model.generate(z=self.z), nrow=self.nrow, value_range=self.value_range,
                          image_shape=self.image_shape)
        os.makedirs(self.out_dir, exist_ok=True)
        path = os.path.join(self.out_dir, f"epoch_{epoch + 1:03d}.png")
        Image.fromarray(grid).save(path)
        self.frames.append(grid)
        self.paths.append(path)

    def on_train_end(self, logs=None):
        if self.frames:
            self.paths.append(save_gif(self.frames, os.path.join(self.out_dir, "epochs.gif")))
