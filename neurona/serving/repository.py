"""The model repository and version manager.

On disk, TF Serving's layout: `BASE/<model name>/<integer version>/` holds a saved neurona model
folder (`model.save(path)`). A `Repository` polls every model's base path: a version the policy
wants is loaded and warmed up (one prediction on zeros) and only then marked AVAILABLE; versions
the policy no longer wants are unloaded after a wanted one is AVAILABLE, so a broken new version
(reported in the model's status) leaves the old one serving. Labels (`stable`, `canary`) point only
at AVAILABLE versions; a request naming no version goes to `stable` (else the latest version), or
with probability `canary_weight` to `canary`. Moving a label is the rollback (admin endpoint or
the config file, re-read when it changes).
May import: numpy, neurona (Tensor, no_grad, backend.thread_limit), neurona.models, neurona.serving.config, neurona.serving.batching,
neurona.serving.protocol, neurona.serving.metrics,
neurona.serving.schema_check.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path

import numpy as np

from ..autograd import no_grad
from ..backend import thread_limit
from ..tensor import Tensor
from .batching import Batcher
from .config import BatchingConfig, ModelConfig, load_model_config
from .protocol import InvalidInput, NotFound, Unavailable, v2_datatype
from .schema_check import SchemaCheck

log = logging.getLogger("neurona.serving")

# Without dynamic batching each request runs alone on this many threads, with this many waiting.
UNBATCHED = BatchingConfig(max_batch_size=1, batch_timeout_micros=0, num_batch_threads=2, max_enqueued_batches=256)


class TensorSpec:
    """One input or output of a served model: name, NumPy dtype, shape with None for the batch
    axis (and any other free axis)."""

    def __init__(self, name, dtype, shape):
        self.name, self.dtype, self.shape = name, np.dtype(dtype), tuple(shape)

    def v2(self) -> dict:
        return {"name": self.name, "datatype": v2_datatype(self.dtype),
                "shape": [-1 if d is None else int(d) for d in self.shape]}

    def tf(self) -> dict:
        dt = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "int32": "DT_INT32", "int64": "DT_INT64",
              "bool": "DT_BOOL", "uint8": "DT_UINT8", "float16": "DT_HALF"}.get(self.dtype.name, "DT_INVALID")
        return {"dtype": dt, "name": self.name,
                "tensor_shape": {"dim": [{"size": str(-1 if d is None else d), "name": ""} for d in self.shape],
                                 "unknown_rank": False}}


def _unique(names):
    seen, out = {}, []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n] - 1}")
    return out


class Signature:
    """A model's serving signature: its inputs and outputs as TensorSpecs. Sequential models have
    one input "input" and one output "output"; functional models name them after their input
    layers and output layers."""

    def __init__(self, inputs, outputs):
        self.inputs, self.outputs = inputs, outputs

    @classmethod
    def from_model(cls, model):
        if getattr(model, "_graph", False):
            ins = [TensorSpec(n, t.dtype or "float32", t.shape)
                   for n, t in zip(_unique([t.node.layer.name for t in model.inputs]), model.inputs)]
            outs = [TensorSpec(n, "float32", t.shape)
                    for n, t in zip(_unique([t.node.layer.name for t in model.outputs]), model.outputs)]
            return cls(ins, outs)
        try:
            in_shape, out_shape = model.input_shape, model.output_shape
        except (AttributeError, ValueError, NotImplementedError) as e:
            raise ValueError(f"{model.name}: cannot serve a model without a known input shape ({e})") from None
        if isinstance(in_shape, list) or isinstance(out_shape, list):
            raise ValueError(f"{model.name}: several inputs/outputs need a functional Model to be served")
        first = model.layers[0] if model.layers else None
        dtype = "int64" if type(first).__name__ == "Embedding" else "float32"
        return cls([TensorSpec("input", dtype, in_shape)], [TensorSpec("output", "float32", out_shape)])

    @property
    def input_names(self):
        return [s.name for s in self.inputs]

    @property
    def output_names(self):
        return [s.name for s in self.outputs]

    def check(self, arrays: dict, max_rows: int, strict_dtype: bool) -> list[np.ndarray]:
        """The inputs in signature order, each checked against its spec (names, rank, fixed
        dimensions, dtype, one shared batch size of 1..max_rows); InvalidInput names the input."""
        missing = [n for n in self.input_names if n not in arrays]
        extra = [n for n in arrays if n not in self.input_names]
        if missing or extra:
            raise InvalidInput(f"the model takes inputs {self.input_names}; missing {missing}, unexpected {extra}")
        out, rows = [], None
        for spec in self.inputs:
            a = arrays[spec.name]
            if a.ndim != len(spec.shape) or any(d is not None and d != g for d, g in zip(spec.shape[1:], a.shape[1:])):
                want = ["?" if d is None else d for d in spec.shape]
                raise InvalidInput(f"input {spec.name!r}: shape {list(a.shape)} does not match the model's {want} "
                                   "(? = any size; the first axis is the batch)")
            if a.dtype != spec.dtype:
                if strict_dtype and not np.can_cast(a.dtype, spec.dtype, "safe"):
                    raise InvalidInput(f"input {spec.name!r}: datatype {v2_datatype(a.dtype)} does not match the "
                                       f"model's {v2_datatype(spec.dtype)}")
                if spec.dtype.kind in "iu" and a.dtype.kind == "f":
                    if not np.all(np.isfinite(a) & (a == np.round(a))):
                        raise InvalidInput(f"input {spec.name!r}: the model takes integers ({spec.dtype})")
                if spec.dtype.kind == "f" and a.dtype.kind == "b":
                    raise InvalidInput(f"input {spec.name!r}: booleans given, the model takes {spec.dtype}")
                a = a.astype(spec.dtype)
            if rows is None:
                rows = a.shape[0]
            elif a.shape[0] != rows:
                raise InvalidInput(f"input {spec.name!r} has {a.shape[0]} rows, the other inputs {rows}")
            out.append(a)
        if not 1 <= rows <= max_rows:
            raise InvalidInput(f"the request holds {rows} rows; give 1 to {max_rows}")
        return out


class LoadedVersion:
    """One loaded version: the model, its signature and its batcher."""

    def __init__(self, name, version, path, model, batching: BatchingConfig | None, max_rows, metrics=None):
        self.name, self.version, self.path, self.model = name, version, path, model
        self.signature = Signature.from_model(model)
        self.schema_check = SchemaCheck.load(path)  # None without a schema.json in the version folder
        self.batched = batching is not None
        self.max_rows = batching.max_batch_size if batching else max_rows
        obs = dict(on_batch=metrics.batch_observer(name, version), on_depth=metrics.depth_observer(name, version)) \
            if metrics else {}
        self.batcher = Batcher(self.predict, batching or UNBATCHED, coalesce=batching is not None,
                               name=f"{name}-v{version}", **obs)

    def predict(self, xs):
        """The model's outputs (a list of arrays, in signature order) for inputs `xs` (signature
        order): one `predict_step` on the whole batch, what `model.predict` runs per batch, without
        its data-loader overhead (~0.7 ms a call). Eager only: grad mode is per thread, so batch
        threads may run side by side. Each on one kernel thread (`thread_limit(1)`, as DataLoader
        workers): the batch threads and requests give the parallelism, not neurona's kernel pool."""
        ts = [Tensor(np.ascontiguousarray(x)) for x in xs]
        with no_grad(), thread_limit(1):
            out = self.model.predict_step((ts if len(ts) > 1 else ts[0],))
        return [o.numpy() for o in (out if isinstance(out, (list, tuple)) else [out])]

    def warm_up(self):
        zeros = [np.zeros((1, *[1 if d is None else d for d in s.shape[1:]]), s.dtype) for s in self.signature.inputs]
        self.predict(zeros)

    def close(self):
        self.batcher.close()


class ServedModel:
    """The versions of one model, their states, labels and routing."""

    def __init__(self, config: ModelConfig, metrics=None):
        self.config, self.metrics = config, metrics
        self.versions: dict[int, LoadedVersion] = {}
        self.states: dict[int, dict] = {}  # version -> {"state": ..., "error": ...}
        self.labels: dict[str, int] = {}
        self.pending_labels = dict(config.version_labels)
        self.label_errors: dict[str, str] = {}
        self.canary_weight = config.canary_weight
        self._failed: dict[int, float] = {}  # version -> config.json mtime of the failed attempt
        self._lock = threading.RLock()
        self._rng = random.Random()

    @property
    def name(self):
        return self.config.name

    # -- routing --------------------------------------------------------------------------------------
    def resolve(self, version=None, label=None) -> LoadedVersion:
        with self._lock:
            if label is not None:
                if label not in self.labels:
                    raise NotFound(f"model {self.name!r} has no label {label!r} (labels: {self.labels})")
                version = self.labels[label]
            if version is not None:
                try:
                    v = int(version)
                except (TypeError, ValueError):
                    raise InvalidInput(f"model version must be an integer, got {version!r:.40}") from None
                if v not in self.versions:
                    state = self.states.get(v, {}).get("state")
                    if state in ("START", "LOADING"):
                        raise Unavailable(f"model {self.name!r} version {v} is still loading")
                    raise NotFound(f"model {self.name!r} has no loaded version {v} "
                                   f"(loaded: {sorted(self.versions)})")
                return self.versions[v]
            if not self.versions:
                raise Unavailable(f"model {self.name!r} has no version ready")
            if "canary" in self.labels and self.canary_weight > 0 and self._rng.random() < self.canary_weight:
                return self.versions[self.labels["canary"]]
            if "stable" in self.labels:
                return self.versions[self.labels["stable"]]
            return self.versions[max(self.versions)]

    def set_label(self, label: str, version: int):
        """Point `label` at a loaded version (the rollback: move `stable` back)."""
        with self._lock:
            if int(version) not in self.versions:
                raise InvalidInput(f"label {label!r} can only point at a loaded version of {self.name!r}; "
                                   f"{version} is not loaded (loaded: {sorted(self.versions)})")
            self.labels[label] = int(version)
            self.pending_labels.pop(label, None)
            self.label_errors.pop(label, None)
        log.info("label moved", extra={"model": self.name, "label": label, "version": int(version)})

    def remove_label(self, label: str):
        with self._lock:
            if self.labels.pop(label, None) is None:
                raise NotFound(f"model {self.name!r} has no label {label!r}")
            self.pending_labels.pop(label, None)

    def set_canary_weight(self, weight: float):
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0 <= weight <= 1:
            raise InvalidInput(f"canary weight must be a number in [0, 1], got {weight!r:.40}")
        self.canary_weight = float(weight)

    def reconfigure(self, config: ModelConfig):
        """Take new settings from a re-read config file: policy, canary weight, and labels (applied
        as soon as their versions are loaded)."""
        with self._lock:
            self.config = config
            self.canary_weight = config.canary_weight
            self.pending_labels = {k: v for k, v in config.version_labels.items() if self.labels.get(k) != v}
            for label in set(self.labels) - set(config.version_labels):
                del self.labels[label]

    # -- loading --------------------------------------------------------------------------------------
    def _on_disk(self) -> dict[int, Path]:
        base = Path(self.config.base_path)
        if not base.is_dir():
            return {}
        return {int(p.name): p for p in base.iterdir() if p.is_dir() and p.name.isdigit()}

    def sync(self):
        """One poll: load wanted versions not loaded yet, then unload unwanted ones (only once some
        wanted version is serving), then apply pending labels."""
        from ..models import load_model

        on_disk = self._on_disk()
        wanted = self.config.wanted_versions(on_disk)
        for v in wanted:
            if v in self.versions:
                continue
            cfg = on_disk[v] / "config.json"
            stamp = cfg.stat().st_mtime if cfg.exists() else 0.0
            if self._failed.get(v) == stamp:
                continue  # failed before and unchanged since: do not retry every poll
            self.states[v] = {"state": "LOADING", "error": ""}
            t0 = time.perf_counter()
            try:
                model = load_model(on_disk[v], compile=False)
                lv = LoadedVersion(self.name, v, on_disk[v], model, self.config.batching, self.config.max_batch_rows,
                                   self.metrics)
                try:
                    lv.warm_up()
                except BaseException:
                    lv.close()
                    raise
            except Exception as e:  # any broken folder must leave the server running
                self._failed[v] = stamp
                self.states[v] = {"state": "END", "error": f"{type(e).__name__}: {e}"}
                if self.metrics:
                    self.metrics.load_failures.labels(self.name, str(v)).inc()
                log.error("version failed to load", extra={"model": self.name, "version": v, "error": str(e)})
                continue
            with self._lock:
                self.versions[v] = lv
                self.states[v] = {"state": "AVAILABLE", "error": ""}
                self._failed.pop(v, None)
            log.info("version available", extra={"model": self.name, "version": v,
                                                  "load_seconds": round(time.perf_counter() - t0, 3)})
        serving_wanted = any(v in self.versions for v in wanted)
        for v in sorted(self.versions):
            if v not in wanted and (serving_wanted or v not in on_disk):
                self.unload(v)
        with self._lock:
            for label, v in list(self.pending_labels.items()):
                if v in self.versions:
                    self.labels[label] = v
                    del self.pending_labels[label]
                    self.label_errors.pop(label, None)
                else:
                    self.label_errors[label] = f"version {v} is not loaded; label {label!r} not moved"
        if self.metrics:
            self.metrics.loaded_versions.labels(self.name).set(len(self.versions))

    def unload(self, v):
        with self._lock:
            lv = self.versions.pop(v)
            self.states[v] = {"state": "UNLOADING", "error": ""}
            for label in [k for k, x in self.labels.items() if x == v]:
                del self.labels[label]  # a label never points at an unloaded version
        lv.close()  # finishes the requests already queued for it
        self.states[v] = {"state": "END", "error": ""}
        log.info("version unloaded", extra={"model": self.name, "version": v})

    def close(self):
        for v in list(self.versions):
            self.unload(v)

    # -- descriptions -----------------------------------------------------------------------------------
    def status(self, version=None) -> list[dict]:
        with self._lock:
            items = sorted(self.states.items(), reverse=True)
        if version is not None:
            items = [(v, s) for v, s in items if str(v) == str(version)]
            if not items:
                raise NotFound(f"model {self.name!r} has no version {version!r:.40}")
        return [{"version": str(v), "state": s["state"],
                 "status": {"error_code": "UNKNOWN" if s["error"] else "OK", "error_message": s["error"]}}
                for v, s in items]


class Repository:
    """All served models; `start()` loads them once (blocking) and then polls every
    `poll_seconds` (base paths, and the config file when it changes)."""

    def __init__(self, configs, poll_seconds=1.0, config_path=None, metrics=None):
        self.metrics = metrics
        self.models = {c.name: ServedModel(c, metrics) for c in configs}
        self.poll_seconds, self.config_path = poll_seconds, config_path
        self._config_mtime = Path(config_path).stat().st_mtime if config_path else None
        self._stop = threading.Event()
        self._thread = None
        self._sync_lock = threading.Lock()

    def get(self, name) -> ServedModel:
        try:
            return self.models[name]
        except KeyError:
            raise NotFound(f"no model named {name!r:.80} (serving: {sorted(self.models)})") from None

    def ready(self) -> bool:
        return bool(self.models) and all(m.versions for m in self.models.values())

    def sync(self):
        with self._sync_lock:
            self._reload_config()
            for m in list(self.models.values()):
                m.sync()

    def _reload_config(self):
        if not self.config_path:
            return
        try:
            mtime = Path(self.config_path).stat().st_mtime
            if mtime == self._config_mtime:
                return
            self._config_mtime = mtime
            configs = {c.name: c for c in load_model_config(self.config_path)}
        except Exception as e:  # a half-edited config must not take the server down
            log.error("model config not reloaded", extra={"path": str(self.config_path), "error": str(e)})
            return
        for name in set(self.models) - set(configs):
            self.models.pop(name).close()
        for name, c in configs.items():
            if name in self.models:
                self.models[name].reconfigure(c)
            else:
                self.models[name] = ServedModel(c, self.metrics)
        log.info("model config reloaded", extra={"path": str(self.config_path)})

    def start(self):
        self.sync()
        if self.poll_seconds and self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll, name="neurona-serving-poll", daemon=True)
            self._thread.start()

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.sync()
            except Exception:  # keep polling whatever one pass met
                log.exception("repository poll failed")

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for m in self.models.values():
            m.close()
