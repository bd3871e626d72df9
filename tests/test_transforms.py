"""Augmentation: each transform keeps labels, shapes and dtype, is reproducible from its seed and
varies across samples; geometric ones are checked against exact answers (flips, 90° turns,
whole-pixel shifts) and against scipy.ndimage; the DataLoader gives the same augmented batches
with and without worker threads."""
import numpy as np
import pytest

import neurona as nr
from neurona.data import DataLoader
from neurona.data.transforms import (Compose, Normalize, RandomBrightness, RandomContrast, RandomCrop,
                                     RandomHorizontalFlip, RandomRotation, RandomScale, RandomTranslation,
                                     RandomVerticalFlip, warp)

ALL = [
    lambda s: RandomHorizontalFlip(seed=s),
    lambda s: RandomVerticalFlip(seed=s),
    lambda s: RandomBrightness(0.3, seed=s),
    lambda s: RandomContrast(0.5, seed=s),
    lambda s: RandomCrop(padding=3, seed=s),
    lambda s: RandomRotation(30, seed=s),
    lambda s: RandomTranslation(0.2, 0.2, seed=s),
    lambda s: RandomScale((0.7, 1.3), seed=s),
    lambda s: RandomScale((0.8, 1.2), width_scale=(0.6, 1.4), fill_mode="nearest", seed=s),
    lambda s: Compose([RandomHorizontalFlip(), RandomRotation(10), RandomBrightness(0.1)], seed=s),
]


def images(n=16, c=3, h=12, w=10, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32)


@pytest.mark.parametrize("make", ALL)
def test_keeps_labels_shape_dtype_and_is_seeded(make):
    x, y = images(), np.arange(16)
    xa, ya = make(5)((x, y))
    assert xa.shape == x.shape and xa.dtype == x.dtype
    assert ya is y  # labels pass through untouched
    np.testing.assert_array_equal(make(5)((x, y))[0], xa)           # same seed, same result
    assert not np.array_equal(make(6)((x, y))[0], xa)               # another seed, another one
    t = make(5)
    first, second = t(x), t(x)                                      # the generator moves on
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(t(x, rng=3), make(9)(x, rng=3))   # an explicit rng decides alone
    changed = [not np.array_equal(xa[i], x[i]) for i in range(16)]
    assert 0 < sum(changed)                                         # per-sample draws
    assert make(5)(x[0]).shape == x[0].shape                        # a single image (C, H, W)


def test_manual_seed_fixes_unseeded_transforms():
    nr.manual_seed(11)
    a = RandomRotation(20)(images())
    nr.manual_seed(11)
    np.testing.assert_array_equal(RandomRotation(20)(images()), a)


def test_flips():
    x = images()
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(RandomVerticalFlip(p=1.0)(x), x[..., ::-1, :])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x), x)
    out = RandomHorizontalFlip(seed=0)(x)
    flipped = [np.array_equal(out[i], x[i, :, :, ::-1]) for i in range(16)]
    kept = [np.array_equal(out[i], x[i]) for i in range(16)]
    assert all(f or k for f, k in zip(flipped, kept)) and 0 < sum(flipped) < 16


def test_brightness_and_contrast():
    x = images() * 0.5 + 0.25
    out = RandomBrightness(0.1, seed=0)(x)
    shift = (out - x).reshape(16, -1)
    np.testing.assert_allclose(shift, shift[:, :1].repeat(shift.shape[1], 1), atol=1e-6)  # one offset per image
    assert np.all(np.abs(shift) <= 0.1 + 1e-6) and shift[:, 0].std() > 0
    assert RandomBrightness((0.9, 0.9), seed=0)(x).max() == 1.0  # clipped to the value range
    out = RandomContrast(0.5, value_range=None, seed=0)(x)
    np.testing.assert_allclose(out.mean(axis=(2, 3)), x.mean(axis=(2, 3)), atol=1e-6)  # per-channel mean kept
    ratio = out.std(axis=(2, 3)) / x.std(axis=(2, 3))
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(3, 1), rtol=1e-4)  # one factor per image
    assert np.all((ratio >= 0.5 - 1e-5) & (ratio <= 1.5 + 1e-5))
    u8 = (x * 255).astype(np.uint8)
    out8 = RandomBrightness(0.2, value_range=(0, 255), seed=0)(u8)
    assert out8.dtype == np.uint8


def test_crop_is_a_window_of_the_padded_image():
    x = images(n=8, c=2, h=7, w=7)
    out = RandomCrop(size=5, padding=2, fill=-1.0, seed=0)(x)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    for i in range(8):
        windows = [(t, s) for t in range(7) for s in range(7) if np.array_equal(padded[i, :, t:t + 5, s:s + 5], out[i])]
        assert windows
    np.testing.assert_array_equal(RandomCrop(seed=0)(x), x)
    with pytest.raises(ValueError, match="larger"):
        RandomCrop(size=12, padding=1)(x)


def test_geometric_exact_cases():
    x = images(n=4, c=2, h=9, w=9)
    np.testing.assert_array_equal(RandomRotation((90, 90))(x), np.rot90(x, 1, axes=(2, 3)))
    np.testing.assert_array_equal(RandomRotation((0, 0))(x), x)
    np.testing.assert_array_equal(RandomScale((1, 1))(x), x)
    out = RandomTranslation((2 / 9, 2 / 9), (-1 / 9, -1 / 9))(x)   # 2 rows down, 1 column left
    expected = np.zeros_like(x)
    expected[:, :, 2:, :-1] = x[:, :, :-2, 1:]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    near = RandomTranslation((0.5, 0.5), (0, 0), fill_mode="nearest")(x)
    np.testing.assert_allclose(near[:, :, :5], np.broadcast_to(x[:, :, :1], near[:, :, :5].shape), atol=1e-6)


def test_rotation_and_zoom_match_scipy():
    ndi = pytest.importorskip("scipy.ndimage")
    x = images(n=3, c=2, h=11, w=8).astype(np.float64)
    for deg in (30.0, -17.0):
        ours = RandomRotation((deg, deg))(x)
        ref = np.stack([ndi.rotate(im, deg, axes=(1, 2), reshape=False, order=1, mode="grid-constant") for im in x])
        np.testing.assert_allclose(ours, ref, atol=1e-12)
    out = RandomScale((2.0, 2.0), width_scale=(0.5, 0.5))(x)
    m = np.diag([1.0, 0.5, 2.0])
    centre = (np.array(x.shape[1:]) - 1) / 2
    ref = np.stack([ndi.affine_transform(im, m, offset=centre - m @ centre, order=1, mode="grid-constant")
                    for im in x])
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_warp_and_normalize_errors_and_values():
    with pytest.raises(ValueError, match="fill_mode"):
        warp(images(), np.eye(2)[None], np.zeros((1, 2)), fill_mode="wrap")
    with pytest.raises(ValueError, match="images"):
        RandomHorizontalFlip()(np.zeros((4, 4)))
    out = Normalize([0.5, 0.0, 1.0], [0.5, 1.0, 2.0])(np.ones((1, 3, 2, 2), dtype=np.float32))
    np.testing.assert_allclose(out[0, :, 0, 0], [1.0, 1.0, 0.0])


@pytest.mark.parametrize("workers,prefetch", [(1, 1), (3, 2), (4, 0)])
def test_dataloader_workers_give_the_same_batches(workers, prefetch):
    x, y = images(n=50, c=1, h=8, w=8), np.arange(50)
    aug = Compose([RandomHorizontalFlip(), RandomCrop(padding=1), RandomRotation(15), RandomContrast(0.3)])

    def batches(**kw):
        loader = DataLoader((x, y), batch_size=8, shuffle=True, seed=123, transform=aug, **kw)
        return [b for _ in range(2) for b in loader]  # two epochs

    plain = batches(num_workers=0, prefetch=0)
    threaded = batches(num_workers=workers, prefetch=prefetch)
    assert len(plain) == len(threaded) == 14
    for (xa, ya), (xb, yb) in zip(plain, threaded):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    # labels still belong to their images: undo nothing, just check the permutation is consistent
    ys = np.concatenate([yb for _, yb in plain[:7]])
    assert sorted(ys.tolist()) == list(range(50))
    assert not np.array_equal(plain[0][0], x[plain[0][1]])  # the images were augmented
