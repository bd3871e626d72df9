"""The model side of the pipeline: the Transform's preprocessing as neurona layers saved inside
the model, model builders, training, and per-example predictions for the Evaluator.

The preprocessing is made of built-in layers with fixed, non-trainable weights, so that any
neurona (the server included) loads it from the saved folder without importing this package
and applies exactly the training-time arithmetic, z = (x − mean) / std:

- tabular features (N, F): a `Dense(F)` with kernel diag(1/std) and bias −mean/std;
- an image feature (N, H, W) or (N, C, H, W): served as (N, C, H, W), a 1×1 `Conv2D(C,
  groups=C)` with weight 1/std and bias −mean/std per channel.

The saved folder also holds `transform.json` (feature order, label classes, the training
schema): what the monitor and the serve-time check need to read a request.
May import: numpy, json, importlib, neurona, neurona.models, neurona.layers, neurona.optimizers.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

TRANSFORM_FILE = "transform.json"
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")


def fit_transform(frame: dict, features, label, schema: dict) -> dict:
    """The Transform's parameters from the training frame: feature order, kind, mean/std, classes."""
    specs = schema["features"]
    for f in [*features, label]:
        if f not in frame:
            raise ValueError(f"Transform: feature {f!r} is not in the examples (columns: {sorted(frame)})")
    kinds = [specs.get(f, {}).get("type") for f in features]
    if "categorical" in kinds:
        bad = [f for f, k in zip(features, kinds) if k == "categorical"]
        raise ValueError(f"Transform: feature(s) {bad} are categorical; the model takes numbers (use them as "
                         f"slices, or encode them as numbers in the source)")
    if "tensor" in kinds:
        if len(features) != 1:
            raise ValueError(f"Transform: an image feature must be the only model input, got {features}")
        x = np.asarray(frame[features[0]], dtype=np.float64)
        shape = list(x.shape[1:]) if x.ndim == 4 else [1, *x.shape[1:]]
        xc = x.reshape(x.shape[0], shape[0], -1)
        mean = xc.mean(axis=(0, 2)).tolist()
        std = np.maximum(xc.std(axis=(0, 2)), 1e-6).tolist()
        kind = "image"
    else:
        x = np.stack([np.asarray(frame[f], dtype=np.float64) for f in features], axis=1)
        mean = np.nanmean(x, axis=0).tolist()
        std = np.maximum(np.nanstd(x, axis=0), 1e-6).tolist()
        shape, kind = [len(features)], "tabular"
    # the schema's label domain, so that every window's model has the same outputs (a class
    # absent from one window, like snow in a mild year, keeps its place)
    domain = specs.get(label, {}).get("domain")
    classes = sorted(map(str, domain)) if domain else sorted(set(np.asarray(frame[label]).astype(str).tolist()))
    return {"input_features": list(features), "label": label, "kind": kind, "input_shape": shape,
            "mean": mean, "std": std, "classes": classes, "schema": schema}


def encode_inputs(frame: dict, info: dict) -> np.ndarray:
    """The raw model input the server receives: features in order, float32; NaN → the training
    mean (so that it normalises to 0)."""
    if info["kind"] == "image":
        x = np.asarray(frame[info["input_features"][0]], dtype=np.float32)
        return x.reshape(x.shape[0], *info["input_shape"])
    x = np.stack([np.asarray(frame[f], dtype=np.float64) for f in info["input_features"]], axis=1)
    nan = np.isnan(x)
    if nan.any():
        x = np.where(nan, np.asarray(info["mean"])[None, :], x)
    return x.astype(np.float32)


def encode_labels(frame: dict, info: dict) -> np.ndarray:
    index = {c: i for i, c in enumerate(info["classes"])}
    labels = np.asarray(frame[info["label"]]).astype(str)
    unknown = sorted(set(labels.tolist()) - set(index))
    if unknown:
        raise ValueError(f"label {info['label']!r} has values {unknown[:5]} the model was not trained on "
                         f"(classes: {info['classes']})")
    return np.array([index[v] for v in labels.tolist()], dtype=np.int64)


def preprocessing_layer(info: dict):
    """The fixed normalisation layer (trainable=False); `set_preprocessing_weights` fills it
    once the model around it is built."""
    from ..layers import Conv2D, Dense

    if info["kind"] == "image":
        c = info["input_shape"][0]
        return Conv2D(c, 1, groups=c, trainable=False, name="transform_normalize")
    return Dense(len(info["mean"]), trainable=False, name="transform_normalize")


def set_preprocessing_weights(layer, info: dict):
    mean, std = np.asarray(info["mean"], np.float32), np.asarray(info["std"], np.float32)
    if info["kind"] == "image":
        layer.kernel.data[...] = (1.0 / std).reshape(-1, 1, 1, 1)
    else:
        layer.kernel.data[...] = np.diag(1.0 / std)
    layer.bias.data[...] = -mean / std


def _builtin_mlp(input_shape, num_classes, hp):
    from ..layers import Dense, Dropout, Flatten

    layers = [Flatten()] if len(input_shape) > 1 else []
    for units in hp.get("hidden", [32]):
        layers.append(Dense(int(units), activation=hp.get("activation", "relu")))
        if hp.get("dropout", 0.0):
            layers.append(Dropout(float(hp["dropout"])))
    layers.append(Dense(num_classes, activation="softmax"))
    return layers


def _builtin_cnn(input_shape, num_classes, hp):
    from ..layers import Conv2D, Dense, Flatten, MaxPooling2D

    f = int(hp.get("filters", 8))
    return [Conv2D(f, 3, padding="same", activation="relu"), MaxPooling2D(2), Flatten(),
            Dense(int(hp.get("units", 32)), activation="relu"), Dense(num_classes, activation="softmax")]


BUILDERS = {"mlp": _builtin_mlp, "cnn": _builtin_cnn}


def model_layers(model_cfg: dict, input_shape, num_classes, hp):
    """The trainable layers after the preprocessing: a built-in builder (`type: mlp | cnn`) or
    `fn: "module:function"`, a function (input_shape, num_classes, hparams) returning a list of
    layers or a Sequential (whose layers are taken)."""
    if "fn" in model_cfg:
        module, _, name = str(model_cfg["fn"]).partition(":")
        try:
            fn = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"Trainer: model.fn {model_cfg['fn']!r} cannot be imported: {e}") from e
        out = fn(tuple(input_shape), num_classes, hp)
        return list(getattr(out, "layers", out))
    kind = model_cfg.get("type", "mlp")
    if kind not in BUILDERS:
        raise ValueError(f"Trainer: model.type {kind!r} is not one of {sorted(BUILDERS)} (or give model.fn)")
    return BUILDERS[kind](tuple(input_shape), num_classes, hp)


def build_model(info: dict, model_cfg: dict, hp: dict):
    """A compiled Sequential: the Transform's layer, then the model's layers."""
    from ..models import Input, Sequential
    from .. import optimizers

    norm = preprocessing_layer(info)
    model = Sequential([Input(shape=tuple(info["input_shape"])), norm,
                        *model_layers(model_cfg, info["input_shape"], len(info["classes"]), hp)],
                       name=model_cfg.get("name", "model"))
    set_preprocessing_weights(norm, info)
    norm.trainable = False  # the setter also freezes the weight tensors the model's optimiser sees
    opt_name = str(hp.get("optimizer", "adam")).lower()
    if opt_name not in OPTIMIZERS:
        raise ValueError(f"Trainer: optimizer {opt_name!r} is not one of {OPTIMIZERS}")
    cls = {"adam": optimizers.Adam, "sgd": optimizers.SGD, "rmsprop": optimizers.RMSprop,
           "adagrad": optimizers.Adagrad}[opt_name]
    model.compile(optimizer=cls(learning_rate=float(hp.get("learning_rate", 1e-3))),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def warm_start(model, baseline_dir) -> bool:
    """Start from the weights of a saved model with the same layers after the preprocessing (the
    last blessed one): continuous training fine-tunes instead of starting afresh. The new
    preprocessing layer keeps this run's statistics. False (nothing copied) when the shapes differ."""
    from ..models import load_model

    base = load_model(baseline_dir, compile=False)
    ours, theirs = model.layers[1:], base.layers[1:]
    pairs = [(a, b) for la, lb in zip(ours, theirs) for a, b in zip(la.weights, lb.weights)]
    if len(ours) != len(theirs) or any(a.shape != b.shape for a, b in pairs) or \
            sum(len(la.weights) for la in ours) != len(pairs):
        return False
    for a, b in pairs:
        a.data[...] = b.data
    return True


def train_model(info, model_cfg, hp, x, y, validation=None, seed=0, init_from=None):
    import neurona as nr

    nr.manual_seed(int(seed))
    model = build_model(info, model_cfg, hp)
    if init_from is not None and not warm_start(model, init_from):
        import warnings

        warnings.warn(f"Trainer: {init_from} has other layer shapes; training from scratch", stacklevel=2)
    history = model.fit(x, y, epochs=int(hp.get("epochs", 10)), batch_size=int(hp.get("batch_size", 32)),
                        verbose=0, seed=int(seed), validation_data=validation)
    return model, history.history


def save_with_transform(model, info, folder) -> Path:
    folder = Path(folder)
    model.save(folder, include_optimizer=False)  # a served model needs no optimiser state
    tmp = folder / f".{TRANSFORM_FILE}.tmp"
    tmp.write_text(json.dumps(info, indent=1), encoding="utf-8")
    tmp.replace(folder / TRANSFORM_FILE)
    return folder


def load_transform(model_dir) -> dict:
    return json.loads((Path(model_dir) / TRANSFORM_FILE).read_text(encoding="utf-8"))


def predict_proba(model_dir, frame) -> tuple[np.ndarray, dict]:
    """(class probabilities, transform info) of a saved model on a frame."""
    from ..models import load_model

    info = load_transform(model_dir)
    model = load_model(model_dir, compile=False)
    return np.asarray(model.predict(encode_inputs(frame, info), batch_size=256)), info
