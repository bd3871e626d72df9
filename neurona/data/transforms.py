"""Data augmentation (course topic 5): random, label-preserving changes of training images,
composable with `Compose` and applied on the fly by the `DataLoader`'s worker threads.

Every transform takes a batch (N, C, H, W) or one image (C, H, W) as a NumPy array, and also a
DataLoader batch tuple `(x, y, ...)`, in which case only `x` changes and the labels pass through.
Randomness comes from the `rng` argument (the DataLoader passes a generator private to each batch,
so batches are the same whatever the number of workers) or, when called without one, from the
transform's own generator seeded by `seed` (or by `nr.manual_seed` when `seed` is None). Each
sample of a batch draws its own parameters. Geometric transforms sample the input bilinearly
(all in NumPy, vectorised over the batch); points from outside the image get `fill`, or the
nearest edge pixel with `fill_mode='nearest'`.
May import: numpy, neurona.backend (the generator seeded by `nr.manual_seed`).

>>> import numpy as np
>>> t = Compose([RandomHorizontalFlip(), RandomCrop(padding=2)], seed=0)
>>> x, y = t((np.zeros((8, 1, 28, 28), dtype=np.float32), np.arange(8)))
>>> x.shape, x.dtype, y.tolist() == list(range(8))
((8, 1, 28, 28), dtype('float32'), True)
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend as B


def _generator(rng):
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _range(value, name, around=0.0):
    """A (low, high) pair from a pair, or from one number v meaning (around − v, around + v)."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{name}: a single value must be ≥ 0, got {value}")
        return (around - value, around + value)
    lo, hi = (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{name}: range ({lo}, {hi}) has low > high")
    return (lo, hi)


class Transform:
    """Base class: a subclass implements `apply(x, rng)` on a batch (N, C, H, W)."""

    def __init__(self, seed=None):
        # without a seed, draw one from the framework generator, so nr.manual_seed fixes it
        self.seed = int(B.generator(np).integers(2**63)) if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, x, rng=None):
        if isinstance(x, (tuple, list)):  # a DataLoader batch: augment the inputs, keep the labels
            return (self(x[0], rng), *x[1:])
        rng = _generator(rng) or self.rng
        a = np.asarray(x)
        if a.ndim not in (3, 4):
            raise ValueError(f"{type(self).__name__}: expects images (N, C, H, W) or (C, H, W), got shape {a.shape}")
        out = self.apply(a[None] if a.ndim == 3 else a, rng)
        if a.dtype.kind in "iu" and out.dtype != a.dtype:
            info = np.iinfo(a.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        out = out.astype(a.dtype, copy=False)
        return out[0] if a.ndim == 3 else out

    def apply(self, x, rng):
        raise NotImplementedError(f"{type(self).__name__}.apply")

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in ("rng", "seed"))
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms in order, sharing one generator (so the chain is reproducible as a whole).

    >>> import numpy as np
    >>> t = Compose([RandomBrightness(0.1), RandomContrast(0.1)], seed=1)
    >>> a = np.full((2, 3, 4, 4), 0.5, dtype=np.float32)
    >>> np.array_equal(t(a, rng=7), t(a, rng=7))
    True
    """

    def __init__(self, transforms, seed=None):
        super().__init__(seed)
        self.transforms = list(transforms)

    def apply(self, x, rng):
        for t in self.transforms:
            x = t(x, rng)
        return x


class Normalize(Transform):
    """(x − mean) / std per channel (not random; convenient at the end of a `Compose`).

    >>> import numpy as np
    >>> Normalize(0.5, 0.25)(np.ones((1, 1, 2, 2))).tolist()
    [[[[2.0, 2.0], [2.0, 2.0]]]]
    """

    def __init__(self, mean, std):
        super().__init__(seed=0)
        self.mean, self.std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)

    def apply(self, x, rng):
        shape = (1, -1, 1, 1)
        return (x - self.mean.reshape(shape).astype(x.dtype)) / self.std.reshape(shape).astype(x.dtype)


class RandomHorizontalFlip(Transform):
    """Mirror each image left–right with probability `p` (the course's mirror image).

    >>> import numpy as np
    >>> RandomHorizontalFlip(p=1.0)(np.arange(3.0).reshape(1, 1, 3)).tolist()
    [[[2.0, 1.0, 0.0]]]
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__(seed)
        self.p = float(p)

    def apply(self, x, rng):
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip][..., ::-1]
        return out


class RandomVerticalFlip(RandomHorizontalFlip):
    """Flip each image upside down with probability `p` (for images without a natural up)."""

    def apply(self, x, rng):
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip][..., ::-1, :]
        return out


class RandomBrightness(Transform):
    """Add one offset per image, uniform in ±`delta` times the width of `value_range`, then clip
    to `value_range` (None: no clipping). `delta` may also be a (low, high) pair."""

    def __init__(self, delta=0.2, value_range=(0.0, 1.0), seed=None):
        super().__init__(seed)
        self.delta = _range(delta, "RandomBrightness")
        self.value_range = None if value_range is None else tuple(float(v) for v in value_range)

    def apply(self, x, rng):
        width = 1.0 if self.value_range is None else self.value_range[1] - self.value_range[0]
        shift = rng.uniform(*self.delta, size=(len(x), 1, 1, 1)) * width
        out = x + shift.astype(x.dtype) if x.dtype.kind == "f" else x + shift
        return out if self.value_range is None else np.clip(out, *self.value_range)


class RandomContrast(Transform):
    """Scale each image's deviation from its per-channel mean by a factor uniform in 1 ± `factor`
    (or in a (low, high) pair), then clip to `value_range` (None: no clipping)."""

    def __init__(self, factor=0.2, value_range=(0.0, 1.0), seed=None):
        super().__init__(seed)
        self.factor = _range(factor, "RandomContrast", around=1.0)
        if self.factor[0] < 0:
            raise ValueError(f"RandomContrast: factors must be ≥ 0, got {self.factor}")
        self.value_range = None if value_range is None else tuple(float(v) for v in value_range)

    def apply(self, x, rng):
        c = rng.uniform(*self.factor, size=(len(x), 1, 1, 1))
        mean = x.mean(axis=(2, 3), keepdims=True)
        out = (x - mean) * c.astype(mean.dtype) + mean
        return out if self.value_range is None else np.clip(out, *self.value_range)


class RandomCrop(Transform):
    """Pad each side by `padding` pixels of `fill`, then cut a random `size` window (default: the
    input's size, the pad-and-crop recipe of CIFAR training: a shift of up to `padding` pixels).

    >>> import numpy as np
    >>> RandomCrop(size=2, seed=0)(np.arange(9.0).reshape(1, 3, 3)).shape
    (1, 2, 2)
    """

    def __init__(self, size=None, padding=0, fill=0.0, seed=None):
        super().__init__(seed)
        self.size = None if size is None else ((size, size) if isinstance(size, int) else tuple(size))
        self.padding, self.fill = int(padding), float(fill)

    def apply(self, x, rng):
        n, _, h, w = x.shape
        th, tw = self.size or (h, w)
        p = self.padding
        if th > h + 2 * p or tw > w + 2 * p:
            raise ValueError(f"RandomCrop: size {(th, tw)} is larger than the padded image {(h + 2 * p, w + 2 * p)}")
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.fill) if p else x
        top = rng.integers(0, h + 2 * p - th + 1, size=n)
        left = rng.integers(0, w + 2 * p - tw + 1, size=n)
        return np.stack([padded[i, :, t:t + th, s:s + tw] for i, (t, s) in enumerate(zip(top, left))])


def warp(x, matrices, shifts, fill=0.0, fill_mode="constant"):
    """Affine resampling of a batch (N, C, H, W): output pixel p (row, column) takes the input at
    A·(p − c) + c − t, with A = `matrices[i]` (2×2, output-to-input), t = `shifts[i]` (rows,
    columns) and c the image centre, interpolated bilinearly.

    >>> import numpy as np
    >>> a = np.arange(4.0).reshape(1, 1, 1, 4)
    >>> warp(a, np.eye(2)[None], np.array([[0.0, 1.0]]))[0, 0, 0].tolist()   # one pixel right
    [0.0, 0.0, 1.0, 2.0]
    """
    if fill_mode not in ("constant", "nearest"):
        raise ValueError(f"warp: fill_mode must be 'constant' or 'nearest', got {fill_mode!r}")
    n, c, h, w = x.shape
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64) - (h - 1) / 2,
                             np.arange(w, dtype=np.float64) - (w - 1) / 2, indexing="ij")
    m, t = np.asarray(matrices, dtype=np.float64), np.asarray(shifts, dtype=np.float64)
    src_r = m[:, 0, 0, None, None] * rows + m[:, 0, 1, None, None] * cols + (h - 1) / 2 - t[:, 0, None, None]
    src_c = m[:, 1, 0, None, None] * rows + m[:, 1, 1, None, None] * cols + (w - 1) / 2 - t[:, 1, None, None]
    # snap to the grid what rounding error put a hair off it, so flips, 90° turns and whole-pixel
    # shifts copy pixels exactly
    src_r = np.where(np.abs(src_r - np.rint(src_r)) < 1e-9, np.rint(src_r), src_r)
    src_c = np.where(np.abs(src_c - np.rint(src_c)) < 1e-9, np.rint(src_c), src_c)
    if fill_mode == "nearest":
        src_r, src_c = np.clip(src_r, 0, h - 1), np.clip(src_c, 0, w - 1)
    r0, c0 = np.floor(src_r).astype(np.int64), np.floor(src_c).astype(np.int64)
    fr, fc = src_r - r0, src_c - c0
    img = x.transpose(0, 2, 3, 1)  # (N, H, W, C): one gather fetches every channel of a pixel
    batch = np.arange(n)[:, None, None]
    out = np.zeros((n, h, w, c), dtype=np.float64)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        weight = (fr if dr else 1 - fr) * (fc if dc else 1 - fc)
        rr, cc = r0 + dr, c0 + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        vals = img[batch, np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1)]
        out += (weight * inside)[..., None] * vals + (weight * ~inside)[..., None] * fill
    out = out.transpose(0, 3, 1, 2)
    return out.astype(x.dtype) if x.dtype.kind == "f" else out


class _Affine(Transform):
    def __init__(self, fill, fill_mode, seed):
        super().__init__(seed)
        if fill_mode not in ("constant", "nearest"):
            raise ValueError(f"{type(self).__name__}: fill_mode must be 'constant' or 'nearest', got {fill_mode!r}")
        self.fill, self.fill_mode = float(fill), fill_mode

    def apply(self, x, rng):
        matrices, shifts = self.draw(x.shape, rng)
        return warp(x, matrices, shifts, self.fill, self.fill_mode)


class RandomRotation(_Affine):
    """Rotate each image about its centre by an angle uniform in ±`degrees` (or a (low, high)
    pair), counter-clockwise for positive angles as `scipy.ndimage.rotate`."""

    def __init__(self, degrees=15.0, fill=0.0, fill_mode="constant", seed=None):
        super().__init__(fill, fill_mode, seed)
        self.degrees = _range(degrees, "RandomRotation")

    def draw(self, shape, rng):
        a = np.deg2rad(rng.uniform(*self.degrees, size=shape[0]))
        cos, sin = np.cos(a), np.sin(a)
        # output → input is the rotation by −angle; rows grow downwards, hence the signs
        return np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2), np.zeros((shape[0], 2))


class RandomTranslation(_Affine):
    """Shift each image by up to `height_factor`·H rows and `width_factor`·W columns (each a
    fraction, or a (low, high) pair of fractions; positive moves down and right)."""

    def __init__(self, height_factor=0.1, width_factor=0.1, fill=0.0, fill_mode="constant", seed=None):
        super().__init__(fill, fill_mode, seed)
        self.height_factor = _range(height_factor, "RandomTranslation")
        self.width_factor = _range(width_factor, "RandomTranslation")

    def draw(self, shape, rng):
        n, _, h, w = shape
        dr = rng.uniform(*self.height_factor, size=n) * h
        dc = rng.uniform(*self.width_factor, size=n) * w
        return np.broadcast_to(np.eye(2), (n, 2, 2)), np.stack([dr, dc], -1)


class RandomScale(_Affine):
    """Zoom each image about its centre by a factor uniform in `scale` (a (low, high) pair, or
    one number s meaning 1 ± s; > 1 enlarges). With `width_scale` given, the width draws its own
    factor from that range: the image is stretched (different factors along the two axes)."""

    def __init__(self, scale=(0.9, 1.1), width_scale=None, fill=0.0, fill_mode="constant", seed=None):
        super().__init__(fill, fill_mode, seed)
        self.scale = _range(scale, "RandomScale", around=1.0)
        self.width_scale = None if width_scale is None else _range(width_scale, "RandomScale", around=1.0)
        if min(self.scale[0], math.inf if self.width_scale is None else self.width_scale[0]) <= 0:
            raise ValueError(f"RandomScale: factors must be > 0, got {self.scale} and {self.width_scale}")

    def draw(self, shape, rng):
        n = shape[0]
        sr = rng.uniform(*self.scale, size=n)
        sc = sr if self.width_scale is None else rng.uniform(*self.width_scale, size=n)
        m = np.zeros((n, 2, 2))
        m[:, 0, 0], m[:, 1, 1] = 1 / sr, 1 / sc
        return m, np.zeros((n, 2))


__all__ = ["Compose", "Normalize", "RandomBrightness", "RandomContrast", "RandomCrop", "RandomHorizontalFlip",
           "RandomRotation", "RandomScale", "RandomTranslation", "RandomVerticalFlip", "Transform", "warp"]
