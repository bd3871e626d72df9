"""Pictures of what a trained CNN learnt (course topic 5): the filters of its first convolution and
the activation maps of its convolution and pooling layers for one test image.

    python examples/fashion_mnist_cnn.py --epochs 15 --out out    # train and save the CNN first
    python examples/visualize_cnn.py                              # out/cnn_filters.png, out/cnn_feature_maps.png
    python examples/visualize_cnn.py --label Shirt                # another test image
    python examples/visualize_cnn.py --model out/emoji9_cnn       # the colour CNN of examples/emoji_cnn.py

Without --model it loads `<out>/fashion_mnist_cnn` (saved by examples/fashion_mnist_cnn.py) and,
when there is none, trains that example's `build_cnn` for --epochs (1) on the first --limit
training images. A model with 1×28×28 inputs is shown a Fashion-MNIST test image, one with
3×S×S inputs an emoji-9 test image (`python -m neurona.datasets get emoji9`; without it only the
filters are drawn). The image is the --index-th test image of class --label. Files are named
`cnn_*.png` without --model, `<model folder name>_*.png` with it, and printed as they are saved.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import neurona as nr
from neurona import datasets
from neurona.layers import Conv2D
from neurona.models import load_model
from neurona.optimizers import Adam
from neurona.vision.visualize import plot_feature_maps, plot_filters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fashion_mnist_cnn import build_cnn, load  # noqa: E402

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def train_quickly(epochs, limit, seed):
    """The Fashion-MNIST CNN of examples/fashion_mnist_cnn.py, trained briefly."""
    nr.manual_seed(seed)
    (x_train, y_train), _ = load("fashion_mnist", limit)
    model = build_cnn()
    model.compile(optimizer=Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=128, verbose=2, seed=seed)
    print(f"trained build_cnn() for {epochs} epoch(s) on {len(x_train)} Fashion-MNIST images")
    return model


def test_images(input_shape):
    """(images, labels, class names) of a test set that fits `input_shape` (C, H, W), or None."""
    if tuple(input_shape) == (1, 28, 28):
        _, (x_test, y_test) = load("fashion_mnist")
        return x_test, y_test, FASHION_CLASSES
    c, h, w = input_shape
    if c == 3 and h == w and h in (16, 32, 64):
        try:
            _, (x_test, y_test), names = datasets.emoji9(size=h)
        except (FileNotFoundError, ImportError) as e:
            print(f"no emoji-9 images ({e}): feature maps skipped")
            return None
        return x_test, y_test, names
    print(f"no test images for inputs of shape {tuple(input_shape)}: feature maps skipped")
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="a folder saved by model.save (default: <out>/fashion_mnist_cnn)")
    parser.add_argument("--label", default=None, help="class of the test image (default: Ankle boot, or the "
                                                       "emoji-9 class Smileys & Emotion)")
    parser.add_argument("--index", type=int, default=0, help="which test image of that class")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs when there is no saved model")
    parser.add_argument("--limit", type=int, default=None, help="training images when there is no saved model")
    parser.add_argument("--max-filters", type=int, default=64)
    parser.add_argument("--max-maps", type=int, default=16, help="channels drawn per layer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)

    out = Path(args.out)
    model_path = Path(args.model) if args.model else out / "fashion_mnist_cnn"
    if model_path.is_dir():
        model = load_model(model_path, compile=False)
        print(f"loaded {model_path}")
    elif args.model:
        parser.error(f"--model {args.model}: no such folder")
    else:
        print(f"no saved model at {model_path}")
        model = train_quickly(args.epochs, args.limit, args.seed)
    stem = Path(args.model).name if args.model else "cnn"
    out.mkdir(parents=True, exist_ok=True)

    convs = [la for la in model.layers if isinstance(la, Conv2D)]
    if not convs:
        raise SystemExit(f"{model.name} has no Conv2D layer; layers: {[la.name for la in model.layers]}")
    filters_path = out / f"{stem}_filters.png"
    plot_filters(convs[0], filters_path, max_filters=args.max_filters,
                 title=f"{model.name}, first convolution {convs[0].name}: {convs[0].kernel.shape[0]} filters "
                       f"{'×'.join(map(str, convs[0].kernel.shape[1:]))} (each scaled to [0, 1])")
    print(f"saved {filters_path}")

    data = test_images(model.input_shape[1:])
    if data is None:
        return None
    x_test, y_test, class_names = data
    label = args.label or ("Ankle boot" if class_names is FASHION_CLASSES else "Smileys & Emotion")
    if label not in class_names:
        parser.error(f"--label {label!r}: the classes are {class_names}")
    picks = np.flatnonzero(y_test == class_names.index(label))
    if not 0 <= args.index < len(picks):
        parser.error(f"--index {args.index}: there are {len(picks)} test images of class {label!r}")
    i = int(picks[args.index])
    probs = model.predict(x_test[i:i + 1])[0]
    guess = int(np.argmax(probs))
    print(f"test image {i}: {label}, predicted {class_names[guess]} ({probs[guess]:.0%})")
    maps_path = out / f"{stem}_feature_maps.png"
    plot_feature_maps(model, x_test[i], path=maps_path, max_maps=args.max_maps,
                      title=f"{model.name}: activation maps for test image {i} ({label}; predicted "
                            f"{class_names[guess]}, {probs[guess]:.0%})")
    print(f"saved {maps_path}")
    return maps_path


if __name__ == "__main__":
    main()
