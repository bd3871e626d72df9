"""Before/after pictures of every augmentation in `neurona.data.transforms` (docs/augmentation.md).

    python examples/augmentation_gallery.py --out docs/img

For each transform, one PNG `aug_<name>.png`: each row is one image, the original on the left and
five random draws of the transform after it. Images: three Fashion-MNIST test images and, when
scikit-learn's bundled photos can be read (Pillow), a colour crop of `china.jpg`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neurona import datasets  # noqa: E402
from neurona.data import transforms as T  # noqa: E402

TRANSFORMS = {
    "flip": ("RandomHorizontalFlip()", T.RandomHorizontalFlip()),
    "brightness": ("RandomBrightness(0.3)", T.RandomBrightness(0.3)),
    "contrast": ("RandomContrast(0.6)", T.RandomContrast(0.6)),
    "crop": ("RandomCrop(padding=4)", T.RandomCrop(padding=4)),
    "rotation": ("RandomRotation(25)", T.RandomRotation(25)),
    "translation": ("RandomTranslation(0.15, 0.15)", T.RandomTranslation(0.15, 0.15)),
    "scale": ("RandomScale((0.7, 1.3))", T.RandomScale((0.7, 1.3))),
    "stretch": ("RandomScale((0.8, 1.2), width_scale=(0.6, 1.4))",
                T.RandomScale((0.8, 1.2), width_scale=(0.6, 1.4))),
    "compose": ("Compose([flip, crop(padding=3), rotation(15), brightness(0.2), contrast(0.3)])",
                T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(padding=3), T.RandomRotation(15),
                           T.RandomBrightness(0.2), T.RandomContrast(0.3)])),
}


def sample_images():
    """A list of (C, H, W) float32 images in [0, 1]: Fashion-MNIST, plus a colour photo if available."""
    _, (x_test, _) = datasets.fashion_mnist()
    images = [x_test[i][None].astype(np.float32) / 255.0 for i in (0, 1, 2)]
    try:
        from sklearn.datasets import load_sample_image

        photo = load_sample_image("china.jpg")[40:360:5, 150:470:5]  # 64×64, every 5th pixel
        images.append(photo.transpose(2, 0, 1).astype(np.float32) / 255.0)
    except ImportError:
        pass
    return images


def gallery(title, transform, images, path, draws=5, seed=0):
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(images), draws + 1, figsize=(1.5 * (draws + 1), 1.5 * len(images) + 0.4))
    for row, img in enumerate(images):
        batch = np.repeat(img[None], draws, axis=0)  # each copy draws its own parameters
        for col, shown in enumerate([img, *transform(batch, rng=rng)]):
            ax = axes[row, col]
            if shown.shape[0] == 1:
                ax.imshow(shown[0], cmap="gray_r", vmin=0, vmax=1)
            else:
                ax.imshow(np.clip(shown.transpose(1, 2, 0), 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("original" if col == 0 else f"draw {col}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = sample_images()
    for name, (title, transform) in TRANSFORMS.items():
        path = out / f"aug_{name}.png"
        gallery(title, transform, images, path)
        print(f"saved {path}")


if __name__ == "__main__":
    main()
