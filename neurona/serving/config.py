"""Server and model settings: `ModelConfig` (one served model: its base path in TF Serving's layout,
version policy, labels, canary weight, batching) and `load_model_config` for the `--model-config`
file (JSON or YAML), which mirrors TF Serving's `model_config_list`:

    model_config_list:
      - name: fashion
        base_path: /models/fashion            # /models/fashion/<int version>/ = a saved model folder
        model_version_policy: {latest: {num_versions: 2}}   # or {specific: {versions: [1, 3]}}, {all: {}}
        version_labels: {stable: 1, canary: 2}
        canary_weight: 0.1                     # share of requests naming no version sent to `canary`
        batching: {max_batch_size: 32, batch_timeout_micros: 2000,
                   num_batch_threads: 1, max_enqueued_batches: 64}

May import: json, yaml (lazily, for .yaml files).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BatchingConfig:
    """TF Serving's batching parameters. `max_enqueued_batches * max_batch_size` rows may wait; a
    request beyond that is refused at once (Overloaded)."""
    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    num_batch_threads: int = 1
    max_enqueued_batches: int = 64

    def __post_init__(self):
        for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"batching.{name} must be an integer >= 1, got {v!r}")
        if not isinstance(self.batch_timeout_micros, int) or self.batch_timeout_micros < 0:
            raise ValueError(f"batching.batch_timeout_micros must be an integer >= 0, got {self.batch_timeout_micros!r}")


@dataclass
class ModelConfig:
    """One served model. `version_policy`: ("latest", N), ("specific", [versions]) or ("all", None)."""
    name: str
    base_path: str
    version_policy: tuple = ("latest", 1)
    version_labels: dict = field(default_factory=dict)
    canary_weight: float = 0.0
    batching: BatchingConfig | None = None
    max_batch_rows: int = 1024  # the largest batch one request may carry when batching is off

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or "/" in self.name or ":" in self.name:
            raise ValueError(f"model name must be a non-empty string without '/' or ':', got {self.name!r}")
        kind, arg = self.version_policy
        if kind == "latest" and not (isinstance(arg, int) and arg >= 1):
            raise ValueError(f"{self.name}: latest.num_versions must be an integer >= 1, got {arg!r}")
        if kind == "specific" and not (isinstance(arg, (list, tuple)) and arg and all(isinstance(v, int) for v in arg)):
            raise ValueError(f"{self.name}: specific.versions must be a non-empty list of integers, got {arg!r}")
        if kind not in ("latest", "specific", "all"):
            raise ValueError(f"{self.name}: version policy must be latest, specific or all, got {kind!r}")
        self.version_labels = {str(k): int(v) for k, v in (self.version_labels or {}).items()}
        if not 0.0 <= float(self.canary_weight) <= 1.0:
            raise ValueError(f"{self.name}: canary_weight must lie in [0, 1], got {self.canary_weight!r}")
        self.canary_weight = float(self.canary_weight)

    def wanted_versions(self, on_disk) -> list[int]:
        """The versions the policy serves out of those found on disk."""
        on_disk = sorted(on_disk)
        kind, arg = self.version_policy
        if kind == "latest":
            return on_disk[-arg:]
        if kind == "specific":
            return [v for v in on_disk if v in set(arg)]
        return on_disk


def _policy(spec, name):
    if spec is None:
        return ("latest", 1)
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"{name}: model_version_policy must be one of {{latest: {{num_versions: N}}}}, "
                         f"{{specific: {{versions: [...]}}}}, {{all: {{}}}}; got {spec!r}")
    (kind, arg), = spec.items()
    arg = arg or {}
    if kind == "latest":
        return ("latest", arg.get("num_versions", 1))
    if kind == "specific":
        return ("specific", list(arg.get("versions", [])))
    return (kind, None)


def model_config_from_dict(d: dict, root: Path | None = None) -> ModelConfig:
    if not isinstance(d, dict):
        raise ValueError(f"each model_config_list entry must be a mapping, got {d!r:.80}")
    unknown = set(d) - {"name", "base_path", "model_platform", "model_version_policy", "version_labels",
                        "canary_weight", "batching", "max_batch_rows"}
    if unknown:
        raise ValueError(f"model {d.get('name')!r}: unknown settings {sorted(unknown)}")
    for key in ("name", "base_path"):
        if key not in d:
            raise ValueError(f"a model_config_list entry lacks {key!r}: {d!r:.120}")
    base = Path(d["base_path"])
    if root is not None and not base.is_absolute():
        base = root / base  # relative to the config file, as users expect of a file they move around
    batching = d.get("batching")
    return ModelConfig(name=d["name"], base_path=str(base), version_policy=_policy(d.get("model_version_policy"), d["name"]),
                       version_labels=d.get("version_labels") or {}, canary_weight=d.get("canary_weight", 0.0),
                       batching=None if not batching else BatchingConfig(**batching),
                       max_batch_rows=d.get("max_batch_rows", 1024))


def load_model_config(path) -> list[ModelConfig]:
    """Read a `--model-config` file (.json, or .yaml/.yml) into ModelConfigs."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("model_config_list"), list):
        raise ValueError(f"{path}: expected a mapping with a 'model_config_list' list")
    models = [model_config_from_dict(d, path.parent) for d in data["model_config_list"]]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: a model name appears twice in {names}")
    return models
