"""Pictures of what a CNN learnt (course topic 5): the filters of a convolution as a grid of small
images (`plot_filters`) and the activation maps of the layers for one input image
(`feature_maps`, `plot_feature_maps`).

Figures are built with `matplotlib.figure.Figure` directly, not pyplot: nothing is registered with
a GUI and no backend is switched, so they can be made by the hundred in scripts; they display in
a notebook and are saved as PNG or SVG by the path's suffix.
May import: neurona (Tensor, no_grad, backend), neurona.nn, neurona.models, numpy, matplotlib
(lazily, on first use).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import backend as B
from ..autograd.grad_mode import no_grad
from ..nn.layer import Layer
from ..nn.layers.conv import Conv2D
from ..nn.layers.pooling import AveragePooling2D, MaxPooling2D
from ..tensor import Tensor

SUFFIXES = (".png", ".svg")


def _host(a):
    """A NumPy copy-free view of a Tensor or array (a copy when it lives on a GPU)."""
    if isinstance(a, Tensor):
        return a.numpy()
    return B.to_device(a, "cpu") if B.is_array(a) else np.asarray(a)


def _scale01(tiles):
    """Min-max scale each tile (axis 0 indexes the tiles) to [0, 1]; a constant tile becomes 0.5."""
    tiles = np.asarray(tiles, dtype=np.float64)
    axes = tuple(range(1, tiles.ndim))
    lo, hi = tiles.min(axis=axes, keepdims=True), tiles.max(axis=axes, keepdims=True)
    span = hi - lo
    return np.where(span > 0, (tiles - lo) / np.where(span > 0, span, 1.0), 0.5)


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _save(fig, path, what, dpi):
    if path is None:
        return
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{what}: path must end in {' or '.join(SUFFIXES)}, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)


def _kernel(layer_or_weights):
    """(kernel as a NumPy (K, C, kh, kw) array, a name for titles)."""
    if isinstance(layer_or_weights, Layer):
        layer = layer_or_weights
        kernel = getattr(layer, "kernel", None)
        if kernel is None and isinstance(layer, Conv2D):
            raise ValueError(f"plot_filters: layer {layer.name!r} is not built yet: call it on data or "
                             "build its model first")
        if not isinstance(kernel, Tensor) or kernel.ndim != 4:
            shapes = ", ".join(f"{w.name} {tuple(w.tensor.shape)}" for w in layer._all_weights()) or "none"
            raise ValueError(f"plot_filters: layer {layer.name!r} ({type(layer).__name__}) is not a 2-D "
                             f"convolution with a (K, C, kh, kw) kernel; its weights: {shapes}")
        return _host(kernel), layer.name
    weights = _host(layer_or_weights)
    if weights.ndim != 4:
        raise ValueError(f"plot_filters: weights must be a Conv2D layer or a (K, C, kh, kw) kernel, got an "
                         f"array of shape {weights.shape}")
    return weights, "kernel"


def plot_filters(layer_or_weights, path=None, max_filters=64, cols=8, title=None, channel=None, dpi=100):
    """A grid of the first `max_filters` filters of a convolution, one small image per filter.

    `layer_or_weights` is a built `Conv2D` (any layer with a 4-D `kernel`) or its kernel
    (K, C, kh, kw) as a Tensor or array. With C == 3 input channels (an RGB input) each filter is
    drawn in colour, channels in R, G, B order; otherwise each filter is one grayscale tile: the
    mean over its C input channels (every channel counts, and for C == 1 it is the filter itself),
    or input channel `channel` when given (also for C == 3). Every tile is min-max scaled to [0, 1]
    on its own, so the pictures show each filter's pattern, not how large its weights are (a
    constant filter is drawn mid-grey). Returns the matplotlib Figure and saves it when `path`
    (.png or .svg) is given.

    >>> import neurona as nr
    >>> from neurona.layers import Conv2D
    >>> layer = Conv2D(6, 5)
    >>> _ = layer(nr.zeros((1, 3, 32, 32)))     # builds the kernel (6, 3, 5, 5)
    >>> fig = plot_filters(layer)
    >>> len(fig.axes), fig.axes[0].images[0].get_array().shape       # six RGB 5×5 tiles
    (6, (5, 5, 3))
    """
    weights, name = _kernel(layer_or_weights)
    k, c, kh, kw = weights.shape
    if max_filters < 1 or cols < 1:
        raise ValueError(f"plot_filters: max_filters ({max_filters}) and cols ({cols}) must be ≥ 1")
    n = min(k, int(max_filters))
    if channel is not None:
        if not 0 <= channel < c:
            raise ValueError(f"plot_filters: channel {channel} is out of range for a kernel with {c} input "
                             f"channels (shape {weights.shape})")
        tiles, how = _scale01(weights[:n, channel]), f"input channel {channel}"
    elif c == 3:
        tiles, how = _scale01(weights[:n].transpose(0, 2, 3, 1)), "RGB"
    else:
        tiles, how = _scale01(weights[:n].mean(axis=1)), "mean over the input channel" if c == 1 else \
            f"mean over the {c} input channels"
    cols = min(int(cols), n)
    rows = math.ceil(n / cols)
    fig = _figure(0.9 * cols, 0.9 * rows + 0.6)
    for i, tile in enumerate(tiles):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(tile, cmap=None if tile.ndim == 3 else "gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    if title is None:
        title = (f"{name}: {n} of {k} filters ({c}×{kh}×{kw}), {how}, each scaled to [0, 1]")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    _save(fig, path, "plot_filters", dpi)
    return fig


def _resolve_layers(model, layers):
    available = model.layers
    names = [la.name for la in available]
    if layers is None:
        chosen = [la for la in available if isinstance(la, (Conv2D, MaxPooling2D, AveragePooling2D))]
        if not chosen:
            raise ValueError(f"feature_maps: {model.name} has no Conv2D or pooling layer; pass layers= from "
                             f"{names}")
        return chosen
    chosen = []
    for item in [layers] if isinstance(layers, (str, Layer)) else list(layers):
        if isinstance(item, str):
            if item not in names:
                raise ValueError(f"feature_maps: {model.name} has no layer named {item!r}; layers: {names}")
            chosen.append(available[names.index(item)])
        elif isinstance(item, Layer):
            if not any(la is item for la in available):
                raise ValueError(f"feature_maps: layer {item.name!r} is not one of {model.name}'s layers: {names}")
            chosen.append(item)
        else:
            raise TypeError(f"feature_maps: layers must be layer names or Layer objects, got {type(item).__name__}")
    return chosen


def _one_image(x, what):
    x = _host(x)
    if x.ndim == 3:
        return x[None]
    if x.ndim == 4 and x.shape[0] == 1:
        return x
    if x.ndim == 4:
        raise ValueError(f"{what}: x holds a batch of {x.shape[0]} images (shape {x.shape}); give one image, "
                         f"(C, H, W) or (1, C, H, W), e.g. x[i]")
    raise ValueError(f"{what}: x must be one image (C, H, W) or (1, C, H, W), got shape {x.shape}")


def feature_maps(model, x, layers=None):
    """The activations of `layers` for the single image `x`: {layer name: (C, H, W) array}.

    `model` is a `Sequential` or a functional `Model` (its own layers, not those of a nested
    model: pass the nested model itself for those). `layers` are names or Layer objects (default:
    every Conv2D, MaxPooling2D and AveragePooling2D layer, in model order); a layer called more
    than once (shared) gives its first call's output. `x` is one image, (C, H, W) or
    (1, C, H, W), in the layout the model takes; a batch of more than one image is refused. The
    model runs in inference mode (dropout off, batch norm with its moving statistics) without
    gradients, so nothing in it changes. Outputs of `channels_last` layers are turned to (C, H, W).

    >>> import numpy as np
    >>> from neurona.layers import Conv2D, Flatten, MaxPooling2D
    >>> from neurona.models import Sequential
    >>> model = Sequential([Conv2D(4, 3, input_shape=(1, 8, 8), name="conv"), MaxPooling2D(2, name="pool"),
    ...                     Flatten()])
    >>> {name: a.shape for name, a in feature_maps(model, np.ones((1, 8, 8), np.float32)).items()}
    {'conv': (4, 6, 6), 'pool': (4, 3, 3)}
    """
    from ..models.functional import InputLayer, Model
    from ..models.sequential import Sequential

    if not isinstance(model, Model):
        raise TypeError(f"feature_maps: expected a Sequential or functional Model, got {type(model).__name__}")
    if not (isinstance(model, Sequential) or model._graph):
        raise TypeError(f"feature_maps: {model.name} is a subclassed Model (its call() is Python code), so its "
                        "layers' outputs cannot be replayed; use a Sequential or functional Model")
    if not model.built:
        raise ValueError(f"feature_maps: {model.name} is not built; give its first layer input_shape= or call "
                         "it on data first")
    chosen = _resolve_layers(model, layers)
    batch = _one_image(x, "feature_maps")
    device = getattr(model, "_device", "cpu")
    xt = Tensor(batch, device=None if device == "cpu" else device)
    with no_grad():
        trace = model.layer_outputs(xt, training=False)
    first = {}
    for layer in model.layers:
        if isinstance(layer, InputLayer):
            first[id(layer)] = xt
    for layer, outs in trace:
        first.setdefault(id(layer), outs[0])
    maps = {}
    for layer in chosen:
        out = _host(first[id(layer)])
        if out.ndim != 4:
            raise ValueError(f"feature_maps: layer {layer.name!r} ({type(layer).__name__}) gives shape {out.shape}, "
                             "not an image volume (1, C, H, W); choose convolution or pooling layers")
        out = out[0]
        if getattr(layer, "data_format", "channels_first") == "channels_last":
            out = out.transpose(2, 0, 1)
        maps[layer.name] = out
    return maps


def _display_image(image):
    """(H, W) or (H, W, 3) in [0, 1] for imshow, from (C, H, W) or, when only the last axis has 1
    or 3 channels, (H, W, C); the first channel unless C is 3; values already in [0, 1] are kept,
    others min-max scaled."""
    if image.shape[0] not in (1, 3) and image.shape[-1] in (1, 3):
        image = image.transpose(2, 0, 1)
    image = image.transpose(1, 2, 0) if image.shape[0] == 3 else image[0]
    if image.min() < 0 or image.max() > 1:
        image = _scale01(image[None])[0]
    return image


def plot_feature_maps(model, x, layers=None, path=None, max_maps=16, title=None, dpi=100):
    """Draw `feature_maps(model, x, layers)`: the input image on the first row, then one row per
    layer with its first `max_maps` channels (each map with its own colour scale, yellow = high),
    labelled with the layer's name and C×H×W. Returns the matplotlib Figure and saves it when
    `path` (.png or .svg) is given.

    >>> import numpy as np
    >>> from neurona.layers import Conv2D, MaxPooling2D
    >>> from neurona.models import Sequential
    >>> model = Sequential([Conv2D(4, 3, input_shape=(1, 8, 8)), MaxPooling2D(2)])
    >>> fig = plot_feature_maps(model, np.ones((1, 8, 8), np.float32))
    >>> sum(1 for ax in fig.axes if ax.images)          # the input and 4 + 4 maps
    9
    """
    if max_maps < 1:
        raise ValueError(f"plot_feature_maps: max_maps ({max_maps}) must be ≥ 1")
    maps = feature_maps(model, x, layers)
    image = _one_image(x, "plot_feature_maps")[0]
    cols = min(int(max_maps), max(a.shape[0] for a in maps.values()))
    rows = 1 + len(maps)
    fig = _figure(1.5 + 0.85 * cols, 0.9 * rows + 0.5)
    grid = fig.add_gridspec(rows, cols + 1, width_ratios=[1.6] + [1] * cols)

    def cell(r, col):
        ax = fig.add_subplot(grid[r, col + 1])
        ax.set_xticks([])
        ax.set_yticks([])
        return ax

    def label(r, text):
        ax = fig.add_subplot(grid[r, 0])
        ax.axis("off")
        ax.text(1.0, 0.5, text, ha="right", va="center", fontsize=7, transform=ax.transAxes)

    shown = _display_image(image)
    label(0, f"input\n{'×'.join(map(str, image.shape))}")
    cell(0, 0).imshow(shown, cmap=None if shown.ndim == 3 else "gray", vmin=0.0, vmax=1.0)
    for r, (name, volume) in enumerate(maps.items(), start=1):
        label(r, f"{name}\n{'×'.join(map(str, volume.shape))}")
        for ch in range(min(cols, volume.shape[0])):
            cell(r, ch).imshow(volume[ch], cmap="viridis", interpolation="nearest")
    if title is None:
        title = f"{model.name}: activation maps (first {cols} channels of each layer)"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path, "plot_feature_maps", dpi)
    return fig


__all__ = ["feature_maps", "plot_feature_maps", "plot_filters"]
