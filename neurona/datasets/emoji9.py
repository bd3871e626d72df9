"""`emoji9()`: "emoji-9", 1,906 colour 64×64 emoji images of 9 categories, from the npm package
`emoji-datasource-google@16.0.0` (docs/datasets.md). Not CIFAR: name it "emoji-9" in reports.

The package holds one RGBA PNG per emoji (`img/google/64/<image>`) and `emoji.json`, whose
`category` field is the label. Only the base images count (skin-tone variations share their base's
label and would leak between train and test); the "Component" category (5 skin-tone swatches) is
left out, which leaves the 9 categories. Transparent pixels are composited on white. The first
decode of the package in the cache is saved beside it as `emoji9.npz` (uint8, read back without
pickle), so later calls take a fraction of a second.
May import: numpy, the standard library, neurona.datasets.loaders; Pillow lazily (PNG decoding).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .loaders import cache_dir

PACKAGE = "emoji-datasource-google@16.0.0"
_PACKAGE_NAME = "emoji-datasource-google"
_LEFT_OUT = ("Component",)
_HOW = ("Run `python -m neurona.datasets get emoji9` (needs npm: it runs `npm install --prefix DIR "
        f"{PACKAGE}`) or pass path= to that DIR or to the package folder.")


def package_dir(path=None) -> Path:
    """The folder holding `emoji.json` and `img/`: `path` itself, `path/node_modules/<package>`,
    or (path None) the npm prefix in the cache, `cache_dir()/emoji9`."""
    root = Path(path) if path is not None else cache_dir() / "emoji9"
    for candidate in (root, root / "node_modules" / _PACKAGE_NAME):
        if (candidate / "emoji.json").is_file():
            return candidate
    raise FileNotFoundError(f"emoji9: no emoji.json in {root} or {root / 'node_modules' / _PACKAGE_NAME}. {_HOW}")


def _composite_on_white(rgba):
    """uint8 (H, W, 4) RGBA -> uint8 (3, H, W) RGB over a white background."""
    a = rgba[..., 3:].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.rint(rgb).astype(np.uint8).transpose(2, 0, 1)


def _decode(folder: Path):
    """(images uint8 (N, 3, 64, 64), labels int64, names, class_names) from a package folder."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("emoji9: decoding the PNGs needs Pillow (`pip install pillow`; matplotlib "
                          "installs it too)") from None
    entries = json.loads((folder / "emoji.json").read_text(encoding="utf-8"))
    entries = sorted((e for e in entries if e.get("has_img_google", True) and e["category"] not in _LEFT_OUT),
                     key=lambda e: (e.get("sort_order", 0), e["image"]))
    if not entries:
        raise ValueError(f"emoji9: {folder / 'emoji.json'} lists no images")
    class_names = sorted({e["category"] for e in entries})
    index = {c: i for i, c in enumerate(class_names)}
    images = []
    for e in entries:
        png = folder / "img" / "google" / "64" / e["image"]
        if not png.is_file():
            raise FileNotFoundError(f"emoji9: {png} is listed in emoji.json but missing. {_HOW}")
        with Image.open(png) as im:
            rgba = np.asarray(im.convert("RGBA"))
        if rgba.shape != (64, 64, 4):
            raise ValueError(f"emoji9: {png} is {rgba.shape[1]}×{rgba.shape[0]}, expected 64×64")
        images.append(_composite_on_white(rgba))
    labels = np.array([index[e["category"]] for e in entries], dtype=np.int64)
    names = np.array([e.get("short_name") or e["image"] for e in entries])
    return np.stack(images), labels, names, np.array(class_names)


def _load(path):
    folder = package_dir(path)
    cached = folder / "emoji9.npz" if path is None else None
    if cached is not None and cached.is_file() and cached.stat().st_mtime >= (folder / "emoji.json").stat().st_mtime:
        with np.load(cached, allow_pickle=False) as z:
            return z["images"], z["labels"], z["names"], z["class_names"]
    arrays = _decode(folder)
    if cached is not None:  # atomically: a run killed mid-write leaves no half file behind
        part = cached.with_suffix(".part")
        with open(part, "wb") as f:
            np.savez(f, images=arrays[0], labels=arrays[1], names=arrays[2], class_names=arrays[3])
        os.replace(part, cached)
    return arrays


def stratified_split(labels, test_split=0.2, seed=0):
    """A boolean test mask keeping `test_split` of each class (at least one image of every class
    with two or more) for testing, drawn by `seed`.

    >>> int(stratified_split(np.array([0, 0, 0, 0, 0, 1, 1]), 0.2).sum())
    2
    """
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = round(len(members) * test_split)
        if test_split > 0 and len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        test[rng.choice(members, size=k, replace=False)] = True
    return test


def emoji9(path=None, test_split=0.2, seed=0, size=64, return_names=False):
    """emoji-9: ((x_train, y_train), (x_test, y_test), class_names).

    x: float32 NCHW RGB in [0, 1] (transparency composited on white), (n, 3, size, size); `size`
    64, 32 or 16 (block means of the 64×64 images). y: int64 indices into `class_names` (the 9
    categories, sorted). The split is fixed and stratified: `test_split` of each category, drawn by
    `seed`. path: the npm prefix DIR or the package folder (default: the cache filled by
    `python -m neurona.datasets get emoji9`). return_names: also give the emoji names of the train
    and test images, ((x_train, y_train, names_train), (x_test, y_test, names_test), class_names).
    """
    if size not in (64, 32, 16):
        raise ValueError(f"emoji9: size must be 64, 32 or 16, got {size}")
    images, labels, names, class_names = _load(path)
    x = images.astype(np.float32) / 255.0
    if size != 64:
        f = 64 // size
        x = x.reshape(len(x), 3, size, f, size, f).mean(axis=(3, 5))
    test = stratified_split(labels, test_split, seed)
    train_part, test_part = (x[~test], labels[~test]), (x[test], labels[test])
    if return_names:
        train_part, test_part = (*train_part, names[~test]), (*test_part, names[test])
    return train_part, test_part, [str(c) for c in class_names]
