"""The model folder format and weight files.

`config.json`: {"format": "neurona.model", "format_version": 2, "neurona_version" (of the
neurona that wrote it: what to install to reproduce a result), "class_name", "config",
"compile" (or null), "weights": {"file", "sha256", "names"}, "optimizer" (or null)}. The SHA-256
of the weights file ties the two files together, so a weights file from another save (or a
damaged one) is refused with a clear message instead of loading wrong numbers.

Version 2 adds the training state: when the model is compiled and its optimiser has taken steps,
`optimizer.safetensors` holds the optimiser's step count ('iterations'), its learning rate when
it is a number ('learning_rate', so a rate changed by ReduceLROnPlateau comes back) and one
array per slot named '<weight name>/<slot>' ('dense/kernel/m'): slots are matched to weights by
the weight's unique name in the model, never by position. The "optimizer" entry records the
file, its SHA-256, the optimiser's class, the weight names in the optimiser's order, the slot
names and the seed `fit` shuffled with ("shuffle_seed"), so `fit(initial_epoch=...)` on the
loaded model continues the same sequence of epochs. Version-1 folders (no training state) load.

Every file of a save is first written in full under a temporary name; only then are they renamed
into place, the config last. A crash while writing leaves the previous save untouched; a crash
between the renames (a window of microseconds) leaves files whose SHA-256 no longer match the
config, which `load_model` refuses, naming the file.
May import: numpy, json, hashlib, safetensors, neurona.__version__, neurona.backend, neurona.nn, neurona.optim.
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

FORMAT, FORMAT_VERSION = "neurona.model", 2
_READABLE_VERSIONS = (1, 2)  # version 1: no training state
CONFIG_FILE, WEIGHTS_FILE, OPTIMIZER_FILE = "config.json", "model.safetensors", "optimizer.safetensors"
_SCALARS = ("iterations", "learning_rate")  # the optimiser's entries that belong to no weight
_MAX_CONFIG_BYTES = 64 * 2**20  # a config is small; refuse to parse a huge crafted file


def _stage(path: Path, write) -> str:
    """Call `write(tmp_path)` on a new temporary file next to `path` and return its name (the
    caller renames it into place); nothing is left behind when `write` fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _commit(staged):
    """Rename each staged (temporary, final) pair into place, in order (atomic on one filesystem);
    on failure remove the temporaries not yet renamed."""
    try:
        for i, (tmp, path) in enumerate(staged):
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged[i:]:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise


def _atomic_write(path: Path, write):
    """Call `write(tmp_path)` then rename the temporary file onto `path`."""
    _commit([(_stage(path, write), path)])


def _named_weights(model) -> dict:
    """{unique name: Tensor} in the model's weight order; a shared weight appears once."""
    # Weights are named by where they are held: '<layer name>/<weight>' for a layer of the model,
    # '<layer name>/<attribute path>/<weight>' for a layer inside a layer (tracked attributes).
    names = {id(t): name for name, t in model._weights_by_path().items()}
    out, seen = {}, set()
    for t in model.weights:
        if id(t) in seen:
            continue
        seen.add(id(t))
        name = names.get(id(t), t.name)
        if name in out or not name:
            raise ValueError(f"{model.name}: two weights are named {name!r}; give layers unique names to save")
        out[name] = t
    return out


def _safetensors_writer(arrays: dict):
    from .safetensors_io import save_file  # the same bytes in every process (sorted metadata)

    # the weights' order is kept in the metadata: load_weights can then match a model of the same
    # structure whose layers were given other automatic names
    return lambda tmp: save_file(arrays, tmp, metadata={"format": FORMAT, "order": json.dumps(list(arrays))})


def _weight_arrays(model) -> dict:
    return {name: np.asarray(t.numpy(), order="C") for name, t in _named_weights(model).items()}


def _write_safetensors(path: Path, model):
    _atomic_write(path, _safetensors_writer(_weight_arrays(model)))


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


def _optimizer_names(model, opt) -> list:
    """The unique weight name of each parameter of `opt`, in the optimiser's order."""
    by_id = {id(t): name for name, t in _named_weights(model).items()}
    names = []
    for i, p in enumerate(opt.params):
        if id(p) not in by_id:
            raise ValueError(f"save_model: parameter {i} ({p.name or p.shape}) of {type(opt).__name__} is not a "
                             f"weight of {model.name}; the optimiser is bound to another model")
        names.append(by_id[id(p)])
    if len(set(names)) != len(names):
        raise ValueError(f"save_model: {type(opt).__name__} of {model.name} holds one weight twice "
                         f"({sorted(n for n in names if names.count(n) > 1)[:3]})")
    return names


def _optimizer_arrays(model, opt, names) -> dict:
    """The optimiser's `state_dict` with '<index>.<slot>' keys renamed '<weight name>/<slot>'."""
    out = {}
    for key, arr in opt.state_dict().items():
        if key not in _SCALARS:
            index, _, slot = key.partition(".")
            key = f"{names[int(index)]}/{slot}"
        out[key] = np.asarray(arr, order="C")  # ascontiguousarray would make the 0-d scalars 1-d
    return out


def _has_training_state(model) -> bool:
    opt = getattr(model, "optimizer", None)
    return opt is not None and opt.bound and opt.iterations > 0


def save_model(model, path, include_optimizer=True):
    """Write `model` to folder `path` (created if needed): config.json + model.safetensors, and
    optimizer.safetensors (the optimiser's step count, learning rate and slots, so that
    `load_model` + `fit(initial_epoch=...)` continues training exactly) when the model is
    compiled, its optimiser has taken steps and `include_optimizer` is true."""
    if not model.built:
        raise ValueError(f"save_model: {model.name} is not built; build it (input_shape=, or call it on data) first")
    folder = Path(path)
    compile_config = _compile_config(model)
    from .. import __version__  # noqa: PLC0415 - the package's own version, read when saving

    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "neurona_version": __version__,
              "class_name": type(model).__name__, "config": model.get_config(), "compile": compile_config}
    staged = []
    try:
        weights_tmp = _stage(folder / WEIGHTS_FILE, _safetensors_writer(_weight_arrays(model)))
        staged.append((weights_tmp, folder / WEIGHTS_FILE))
        config["weights"] = {"file": WEIGHTS_FILE, "sha256": _sha256(Path(weights_tmp)),
                             "names": list(_named_weights(model))}
        config["optimizer"] = None
        if include_optimizer and compile_config is not None and _has_training_state(model):
            opt = model.optimizer
            names = _optimizer_names(model, opt)
            opt_tmp = _stage(folder / OPTIMIZER_FILE, _safetensors_writer(_optimizer_arrays(model, opt, names)))
            staged.insert(0, (opt_tmp, folder / OPTIMIZER_FILE))
            config["optimizer"] = {"file": OPTIMIZER_FILE, "sha256": _sha256(Path(opt_tmp)),
                                   "class_name": type(opt).__name__, "names": names, "slots": list(opt.slots),
                                   "shuffle_seed": getattr(model, "_shuffle_seed", None)}
        text = json.dumps(config, indent=1)
        staged.append((_stage(folder / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf-8")),
                       folder / CONFIG_FILE))
    except BaseException:
        for tmp, _ in staged:
            os.unlink(tmp)
        raise
    _commit(staged)  # the training state first, the config (which vouches for the others) last
    if config["optimizer"] is None and (folder / OPTIMIZER_FILE).exists():
        os.unlink(folder / OPTIMIZER_FILE)  # a previous save's state no longer belongs to this folder


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
    """Load weights saved by `save_weights` (or a model folder's model.safetensors) into `model`.
    Weights match by name; when the names differ only in the layers' names (the same architecture
    built again, its layers named `dense_2` instead of `dense`), they match by position, provided
    every weight's own name (`kernel`, `bias`) and shape agree in order — as Keras matches
    architectures, not names."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    arrays = _read_safetensors(path)
    named = _named_weights(model)
    if set(arrays) != set(named):
        order = _saved_order(path)
        if order is not None and sorted(order) == sorted(arrays) and len(order) == len(named):
            pairs = list(zip(order, named.items()))
            if all(a.rpartition("/")[2] == n.rpartition("/")[2] and tuple(arrays[a].shape) == t.shape
                   for a, (n, t) in pairs):
                arrays = {n: arrays[a] for a, (n, _) in pairs}
    _assign(model, arrays, path)


def _saved_order(path: Path):
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        order = (f.metadata() or {}).get("order")
    return None if order is None else json.loads(order)


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
    if config.get("format_version") not in _READABLE_VERSIONS:
        raise ValueError(f"load_model: {path} has format_version {config.get('format_version')!r}; "
                         f"this neurona reads versions {', '.join(map(str, _READABLE_VERSIONS))}")
    for key in ("class_name", "config", "weights"):
        if key not in config:
            raise ValueError(f"load_model: {path} lacks the {key!r} entry")
    return config


def _check_sha(path: Path, entry: dict, folder: Path, what: str):
    if not path.is_file():
        raise FileNotFoundError(f"load_model: {path} is missing ({folder / CONFIG_FILE} lists it)")
    if _sha256(path) != entry.get("sha256"):
        raise ValueError(f"load_model: {path} does not match {folder / CONFIG_FILE} (SHA-256 differs): "
                         f"the two files come from different saves, or the {what} file is damaged")


def _restore_optimizer(model, folder: Path, entry: dict):
    """Load optimizer.safetensors into the freshly compiled `model.optimizer`, matching each slot to
    its weight by name; refuse a file that does not fit the model and optimiser exactly."""
    path = folder / OPTIMIZER_FILE
    if not isinstance(entry, dict) or not isinstance(entry.get("shuffle_seed", None), (int, type(None))):
        raise ValueError(f"load_model: the \"optimizer\" entry of {folder / CONFIG_FILE} is invalid: {entry!r:.200}")
    _check_sha(path, entry, folder, "optimizer")
    opt = model.optimizer
    if entry.get("class_name") != type(opt).__name__:
        raise ValueError(f"load_model: {path} holds the state of {entry.get('class_name')!r}, but the model is "
                         f"compiled with {type(opt).__name__}")
    arrays = _read_safetensors(path)
    names = _optimizer_names(model, opt)
    index = {name: i for i, name in enumerate(names)}
    weights = _named_weights(model)
    expected = {f"{name}/{slot}" for name in names for slot in opt.slots}
    given = set(arrays) - set(_SCALARS)
    missing, extra = sorted(expected - given), sorted(given - expected)
    if missing or extra or "iterations" not in arrays:
        raise ValueError(f"load_model: {path} does not match {type(opt).__name__} of {model.name} "
                         f"(slots {list(opt.slots)}): missing {missing[:5]}{'...' if len(missing) > 5 else ''}"
                         f"{'' if 'iterations' in arrays else ' and iterations'}, "
                         f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}")
    state = {key: arrays[key] for key in _SCALARS if key in arrays}
    for key, a in state.items():
        if a.shape != ():
            raise ValueError(f"load_model: {path}: {key} has shape {a.shape}, expected a scalar (shape ())")
    for key in sorted(expected):
        name, _, slot = key.rpartition("/")
        a, w = arrays[key], weights[name]
        if tuple(a.shape) != w.shape:
            raise ValueError(f"load_model: {path}: slot {key} has shape {tuple(a.shape)}, the weight {name} has "
                             f"shape {w.shape}")
        state[f"{index[name]}.{slot}"] = a
    opt.load_state_dict(state)
    model._shuffle_seed = entry.get("shuffle_seed")


def load_model(path, compile=True):  # noqa: A002 - Keras' name
    """Rebuild a model saved by `save_model` and load its weights; compile it again when the
    saved compile settings allow, and then restore the optimiser's state when the folder has one
    (compile=False ignores that state)."""
    from ..nn.layer import Layer, get_registered  # models are rebuilt through the registry: no import of models

    folder = Path(path)
    config = _read_config(folder)
    weights_path = folder / WEIGHTS_FILE
    _check_sha(weights_path, config["weights"], folder, "weights")
    cls = get_registered(config["class_name"])
    if not (isinstance(cls, type) and issubclass(cls, Layer) and hasattr(cls, "compile") and hasattr(cls, "fit")):
        raise ValueError(f"load_model: {config['class_name']!r} is not a model class")
    try:
        model = cls.from_config(config["config"])
    except (TypeError, KeyError, IndexError, ValueError) as e:
        detail = str(e) if isinstance(e, ValueError) else repr(e)
        raise ValueError(f"load_model: the architecture in {folder / CONFIG_FILE} is invalid: {detail}") from e
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
        if config.get("optimizer"):
            _restore_optimizer(model, folder, config["optimizer"])
    return model
