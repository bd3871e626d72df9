"""The model folder format and weight files.

`config.json`: {"format": "neurona.model", "format_version": 1, "class_name", "config",
"compile" (or null), "weights": {"file", "sha256", "names"}}. The SHA-256 of the weights file ties
the two files together, so a weights file from another save (or a damaged one) is refused with a
clear message instead of loading wrong numbers.
May import: numpy, json, hashlib, safetensors, neurona.backend, neurona.nn, neurona.optim.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..backend import to_device

FORMAT, FORMAT_VERSION = "neurona.model", 1
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
_MAX_CONFIG_BYTES = 64 * 2**20  # a config is small; refuse to parse a huge crafted file


def _atomic_write(path: Path, write):
    """Call `write(tmp_path)` then rename the temporary file onto `path` (atomic on one filesystem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _named_weights(model) -> dict:
    """{unique name: Tensor} in the model's weight order; a shared weight appears once."""
    out, seen = {}, set()
    for t in model.weights:
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t.name in out or not t.name:
            raise ValueError(f"{model.name}: two weights are named {t.name!r}; give layers unique names to save")
        out[t.name] = t
    return out


def _write_safetensors(path: Path, model):
    from safetensors.numpy import save_file

    arrays = {name: np.ascontiguousarray(t.numpy()) for name, t in _named_weights(model).items()}
    _atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata={"format": FORMAT}))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _compile_config(model):
    cfg = getattr(model, "_compile_config", None)
    if cfg is None:
        return None
    try:
        json.dumps(cfg)
    except (TypeError, ValueError):
        warnings.warn(f"{model.name}: compile settings hold objects JSON cannot store; saved without them",
                      stacklevel=3)
        return None
    return cfg


def save_model(model, path):
    """Write `model` to folder `path` (created if needed): config.json + model.safetensors."""
    if not model.built:
        raise ValueError(f"save_model: {model.name} is not built; build it (input_shape=, or call it on data) first")
    folder = Path(path)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "class_name": type(model).__name__,
              "config": model.get_config(), "compile": _compile_config(model)}
    weights_path = folder / WEIGHTS_FILE
    _write_safetensors(weights_path, model)
    config["weights"] = {"file": WEIGHTS_FILE, "sha256": _sha256(weights_path),
                         "names": list(_named_weights(model))}
    text = json.dumps(config, indent=1)
    _atomic_write(folder / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _read_safetensors(path: Path) -> dict:
    from safetensors.numpy import load_file

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no weights file")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error type for every malformed file
        raise ValueError(f"{path}: not a valid safetensors file (corrupt or truncated?): {e}") from e


def _assign(model, arrays: dict, source):
    named = _named_weights(model)
    missing, extra = sorted(set(named) - set(arrays)), sorted(set(arrays) - set(named))
    if missing or extra:
        raise ValueError(f"{source}: weights do not match the model {model.name}: "
                         f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}")
    for name, t in named.items():
        a = arrays[name]
        if tuple(a.shape) != t.shape:
            raise ValueError(f"{source}: weight {name} has shape {tuple(a.shape)}, the model expects {t.shape}")
        if a.dtype != t.dtype:
            raise ValueError(f"{source}: weight {name} has dtype {a.dtype}, the model expects {t.dtype}")
    for name, t in named.items():
        t.data[...] = to_device(arrays[name], t.device)  # a model on the GPU loads from host arrays


def save_weights(model, path):
    """Write only the weights, to one .safetensors file (atomically)."""
    if not model.built:
        raise ValueError(f"save_weights: {model.name} is not built")
    _write_safetensors(Path(path), model)


def load_weights(model, path):
    """Load weights saved by `save_weights` (or a model folder's model.safetensors) into `model`."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    _assign(model, _read_safetensors(path), path)


def _read_config(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise FileNotFoundError(f"load_model: {folder} is not a model folder "
                                f"(expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    if not path.is_file():
        raise FileNotFoundError(f"load_model: {path} is missing")
    if path.stat().st_size > _MAX_CONFIG_BYTES:
        raise ValueError(f"load_model: {path} is {path.stat().st_size} bytes, too large for a model config")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"load_model: {path} is not valid JSON (corrupt?): {e}") from e
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"load_model: {path} is not a neurona model config (no \"format\": \"{FORMAT}\")")
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"load_model: {path} has format_version {config.get('format_version')!r}; "
                         f"this neurona reads version {FORMAT_VERSION}")
    for key in ("class_name", "config", "weights"):
        if key not in config:
            raise ValueError(f"load_model: {path} lacks the {key!r} entry")
    return config


def load_model(path, compile=True):  # noqa: A002 - Keras' name
    """Rebuild a model saved by `save_model` and load its weights; compile it again when the
    saved compile settings allow."""
    from ..models.functional import Model
    from ..nn.layer import get_registered

    folder = Path(path)
    config = _read_config(folder)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise FileNotFoundError(f"load_model: {weights_path} is missing")
    if _sha256(weights_path) != config["weights"].get("sha256"):
        raise ValueError(f"load_model: {weights_path} does not match {folder / CONFIG_FILE} (SHA-256 differs): "
                         "the two files come from different saves, or the weights file is damaged")
    cls = get_registered(config["class_name"])
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ValueError(f"load_model: {config['class_name']!r} is not a model class")
    try:
        model = cls.from_config(config["config"])
    except (TypeError, KeyError, IndexError) as e:
        raise ValueError(f"load_model: the architecture in {folder / CONFIG_FILE} is invalid: {e!r}") from e
    if not model.built:
        raise ValueError(f"load_model: the saved {config['class_name']} has no input shape, so it cannot be rebuilt")
    _assign(model, _read_safetensors(weights_path), weights_path)
    if compile and config.get("compile"):
        from .. import optim
        from ..nn import losses, metrics

        c = config["compile"]
        model.compile(optimizer=optim.get(c["optimizer"]), loss=[losses.get(x) for x in c["loss"]],
                      metrics=[metrics.get(m) if isinstance(m, dict) else m for m in c["metrics"]],
                      loss_weights=c.get("loss_weights"), jit=c.get("jit", False))
    return model
