"""The data schema: inferred from training statistics, written as a reviewable YAML (or JSON)
file, versioned, and checked against new data (ExampleValidator), served traffic (the monitor)
and single requests (the serve-time check).

A schema file:

    version: 1
    label: weather
    features:
      temp_max: {type: float, presence: required, min: -1.6, max: 35.6, max_missing_fraction: 0.0,
                 bins: [...], drift: {metric: js, threshold: 0.1, severity: error}}
      weather: {type: categorical, domain: [drizzle, fog, rain, snow, sun], drift: {metric: linf, ...}}
      image: {type: tensor, shape: [28, 28], min: 0, max: 255, ...}

Anomalies are dicts {"feature", "kind", "severity" ('error' | 'warning'), "message", "value",
"threshold"}; an anomaly of severity 'error' blocks the pipeline run (the data gate).
May import: numpy, json, yaml, neurona.pipeline.stats, neurona.serving.schema_check (lazily).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from .stats import DRIFT_METRICS, distance

SEVERITIES = ("error", "warning")
FEATURE_FIELDS = {"type", "presence", "min", "max", "domain", "shape", "bins", "max_missing_fraction",
                  "max_out_of_range_fraction", "drift", "skew", "description", "example_mean_bins",
                  "example_std_bins"}
DEFAULT_OUT_OF_RANGE = 0.01


def infer_schema(stats: dict, label=None, drift=None, skew=None, max_domain=50) -> dict:
    """A schema from training statistics: types, presence, ranges, categorical domains (up to
    `max_domain` values), the histogram bin edges later samples are counted in, and the drift /
    skew checks (`drift={"numeric": {...}, "categorical": {...}}`, each {metric, threshold,
    severity}).

    >>> from neurona.pipeline.stats import compute_statistics
    >>> s = infer_schema(compute_statistics({"x": np.array([1.0, 3.0]), "c": np.array(["a", "b"])}))
    >>> s["features"]["c"]["domain"], s["features"]["x"]["min"], s["features"]["x"]["max"]
    (['a', 'b'], 1.0, 3.0)
    """
    drift, skew = drift or {}, skew or {}
    features = {}
    for name, fs in stats["features"].items():
        kind = fs["type"]
        spec = {"type": kind, "presence": "required",
                "max_missing_fraction": round(fs["missing"] / max(fs["count"], 1), 6)}
        family = "categorical" if kind == "categorical" else "numeric"
        if kind == "categorical":
            if fs["unique"] <= max_domain and fs["unique"] == len(fs["counts"]):
                spec["domain"] = sorted(fs["counts"])
        else:
            if "min" in fs:
                spec["min"], spec["max"] = fs["min"], fs["max"]
            spec["bins"] = fs["histogram"]["edges"]
            if kind == "tensor":
                spec["shape"] = fs["shape"]
                spec["example_mean_bins"] = fs["example_mean"]["histogram"]["edges"]
                spec["example_std_bins"] = fs["example_std"]["histogram"]["edges"]
        comparable = family == "numeric" or "domain" in spec  # an id-like column has no distribution to compare
        if drift.get(family) and comparable:  # the label drifts too (a labelling change shows here)
            spec["drift"] = dict(drift[family])
        if name != label and skew.get(family) and comparable:
            spec["skew"] = dict(skew[family])
        features[name] = spec
    return {"version": 1, "label": label, "features": features}


def check_schema(schema: dict, where="schema") -> dict:
    """Refuse a schema with unknown fields or values, naming them."""
    if not isinstance(schema, dict) or not isinstance(schema.get("features"), dict):
        raise ValueError(f"{where}: a schema needs a 'features' mapping")
    unknown = set(schema) - {"version", "label", "features", "description"}
    if unknown:
        raise ValueError(f"{where}: unknown top-level field(s) {sorted(unknown)}")
    for name, spec in schema["features"].items():
        bad = set(spec) - FEATURE_FIELDS
        if bad:
            raise ValueError(f"{where}: feature {name!r} has unknown field(s) {sorted(bad)}; "
                             f"known: {sorted(FEATURE_FIELDS)}")
        if spec.get("type") not in ("float", "int", "categorical", "tensor"):
            raise ValueError(f"{where}: feature {name!r} has type {spec.get('type')!r}; "
                             f"expected float, int, categorical or tensor")
        for key in ("drift", "skew"):
            check = spec.get(key)
            if check is None:
                continue
            if set(check) - {"metric", "threshold", "severity"}:
                raise ValueError(f"{where}: feature {name!r} {key} has unknown field(s) "
                                 f"{sorted(set(check) - {'metric', 'threshold', 'severity'})}")
            if check.get("metric") not in DRIFT_METRICS:
                raise ValueError(f"{where}: feature {name!r} {key}.metric is {check.get('metric')!r}; "
                                 f"known: {', '.join(DRIFT_METRICS)}")
            if check.get("metric") == "linf" and spec["type"] != "categorical":
                raise ValueError(f"{where}: feature {name!r} {key}.metric linf is for categorical features")
            if check.get("metric") != "linf" and spec["type"] == "categorical":
                raise ValueError(f"{where}: feature {name!r} {key}.metric {check['metric']} is for numeric features")
            if check.get("severity", "error") not in SEVERITIES:
                raise ValueError(f"{where}: feature {name!r} {key}.severity must be error or warning")
    return schema


def save_schema(schema: dict, path) -> Path:
    """Write the schema as YAML (.yaml/.yml) or JSON, keys in a stable order, for review in diffs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(schema, sort_keys=False, default_flow_style=None, width=110)
    else:
        text = json.dumps(schema, indent=1)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def load_schema(path) -> dict:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        schema = yaml.safe_load(text)
    else:
        schema = json.loads(text)
    return check_schema(schema, str(path))


def schema_content(schema: dict) -> dict:
    """The schema without its version number: two schemas with the same content are one version."""
    out = copy.deepcopy(schema)
    out.pop("version", None)
    return out


def _anomaly(feature, kind, severity, message, value=None, threshold=None):
    return {"feature": feature, "kind": kind, "severity": severity, "message": message, "value": value,
            "threshold": threshold}


def validate_frame(frame: dict, stats: dict, schema: dict, severities=None) -> list[dict]:
    """Anomalies of a table of examples (with its statistics computed against `schema`):
    missing and new features, wrong types or shapes, NaNs and missing values beyond the schema's
    fraction, values out of range / out of domain. `severities` overrides the severity per
    anomaly kind ({"new_feature": "error", ...})."""
    sev = {"missing_feature": "error", "new_feature": "warning", "type": "error", "shape": "error",
           "missing_values": "error", "out_of_range": "warning", "out_of_domain": "warning", **(severities or {})}
    out = []
    specs = schema["features"]
    for name, spec in specs.items():
        if name not in frame:
            if spec.get("presence", "required") == "required":
                out.append(_anomaly(name, "missing_feature", sev["missing_feature"],
                                    f"feature {name!r} is in the schema but not in the data"))
            continue
        col = frame[name]
        fs = stats["features"][name]
        kind = spec["type"]
        if kind == "categorical":
            if col.dtype.kind not in "USOb":
                out.append(_anomaly(name, "type", sev["type"], f"feature {name!r} should be categorical (strings), "
                                                                 f"got dtype {col.dtype}"))
                continue
        elif col.dtype.kind not in "iufb":
            out.append(_anomaly(name, "type", sev["type"], f"feature {name!r} should be {kind} (numbers), "
                                                             f"got dtype {col.dtype}"))
            continue
        if kind == "tensor" and list(col.shape[1:]) != list(spec.get("shape", col.shape[1:])):
            out.append(_anomaly(name, "shape", sev["shape"], f"feature {name!r} should have shape {spec['shape']} "
                                                               f"per example, got {list(col.shape[1:])}"))
            continue
        if kind != "tensor" and col.ndim > 1:
            out.append(_anomaly(name, "shape", sev["shape"], f"feature {name!r} should be a scalar per example, "
                                                               f"got shape {list(col.shape[1:])}"))
            continue
        frac = fs["missing"] / max(fs["count"], 1)
        allowed = float(spec.get("max_missing_fraction", 0.0))
        if frac > allowed:
            what = "NaN" if kind != "categorical" else "missing"
            out.append(_anomaly(name, "missing_values", sev["missing_values"],
                                f"feature {name!r}: {frac:.2%} {what} values, the schema allows {allowed:.2%}",
                                frac, allowed))
        limit = float(spec.get("max_out_of_range_fraction", DEFAULT_OUT_OF_RANGE))
        if kind == "categorical" and "domain" in spec:
            dom = set(map(str, spec["domain"]))
            unseen = {v: c for v, c in fs["counts"].items() if v not in dom}
            frac = sum(unseen.values()) / max(fs["count"], 1)
            if frac > limit:
                out.append(_anomaly(name, "out_of_domain", sev["out_of_domain"],
                                    f"feature {name!r}: {frac:.2%} values outside the domain "
                                    f"(e.g. {sorted(unseen)[:3]}), limit {limit:.2%}", frac, limit))
        elif kind != "categorical" and "min" in spec:
            v = np.asarray(col, dtype=np.float64).ravel()
            v = v[~np.isnan(v)]
            frac = float(((v < spec["min"]) | (v > spec["max"])).mean()) if v.size else 0.0
            if frac > limit:
                out.append(_anomaly(name, "out_of_range", sev["out_of_range"],
                                    f"feature {name!r}: {frac:.2%} values outside [{spec['min']}, {spec['max']}], "
                                    f"limit {limit:.2%}", frac, limit))
    for name in frame:
        if name not in specs:
            out.append(_anomaly(name, "new_feature", sev["new_feature"],
                                f"feature {name!r} is in the data but not in the schema"))
    return out


def compare_statistics(current: dict, baseline: dict, schema: dict, check="drift", where="") -> list[dict]:
    """Drift (between spans) or skew (training vs serving) anomalies: for each feature with a
    `drift`/`skew` entry in the schema, the distance between the two statistics against its
    threshold. Returns every comparison (also those within threshold) with 'anomaly' true/false."""
    out = []
    for name, spec in schema["features"].items():
        cfg = spec.get(check)
        if not cfg or name not in current["features"] or name not in baseline["features"]:
            continue
        if "invalid" in (current["features"][name]["type"], baseline["features"][name]["type"]):
            continue  # the type anomaly is reported by validate_frame
        d = distance(cfg["metric"], current["features"][name], baseline["features"][name])
        bad = d > float(cfg["threshold"])
        out.append({"feature": name, "kind": check, "metric": cfg["metric"], "value": d,
                    "threshold": float(cfg["threshold"]), "anomaly": bad,
                    "severity": cfg.get("severity", "error") if bad else None,
                    "message": (f"feature {name!r}{where}: {check} {cfg['metric']} = {d:.4f} "
                                f"{'>' if bad else '<='} threshold {cfg['threshold']}")})
    return out


def serving_schema(schema: dict, feature_order, mode="flag", range_slack=0.0) -> dict:
    """The serve-time check's `schema.json` (format in neurona/serving/schema_check.py) for a model
    whose input columns are `feature_order`: each feature's type, training range and domain.

    >>> serving_schema({"features": {"x": {"type": "float", "min": 0.0, "max": 1.0}}}, ["x"])["features"]
    [{'name': 'x', 'type': 'float', 'min': 0.0, 'max': 1.0}]
    """
    if mode not in ("flag", "reject"):
        raise ValueError(f"serve-time schema check: mode must be 'flag' or 'reject', got {mode!r}")
    feats = []
    for name in feature_order:
        spec = schema["features"].get(name)
        if spec is None:
            raise ValueError(f"serve-time schema check: model input feature {name!r} is not in the schema")
        f = {"name": name, "type": spec.get("type", "float")}
        for k in ("min", "max", "domain", "shape"):
            if spec.get(k) is not None:
                f[k] = spec[k]
        feats.append(f)
    return {"format": "neurona.serving.schema/1", "mode": mode, "input": None, "range_slack": float(range_slack),
            "features": feats}


class ServeTimeCheck:
    """The check a server runs on each request before predicting (neurona.serving.schema_check,
    which `neurona serve` applies to a version folder holding `schema.json`), built from a
    pipeline schema and the model's input columns `feature_order`. `mode='flag'` returns the
    problems, `'reject'` raises ValueError naming them.

    >>> schema = {"features": {"x": {"type": "float", "min": 0.0, "max": 1.0}}}
    >>> [p["kind"] for p in ServeTimeCheck(schema, ["x"]).check([[0.5], [7.0], [float("nan")]])]
    ['nan', 'out_of_range']
    """

    def __init__(self, schema: dict, feature_order, mode="flag", range_slack=0.0):
        from ..serving.schema_check import SchemaCheck

        self.mode = mode
        self.spec = serving_schema(schema, feature_order, mode, range_slack)
        self._check = SchemaCheck(self.spec)

    @classmethod
    def from_model_dir(cls, model_dir, mode="flag"):
        """From the `transform.json` the Transform writes into the saved model folder."""
        info = json.loads((Path(model_dir) / "transform.json").read_text(encoding="utf-8"))
        return cls(info["schema"], info["input_features"], mode)

    def check(self, instances) -> list[dict]:
        """The violations of a batch (rows, or an array of shape (N, F) / (N, *tensor shape)):
        [{feature, kind, message, instances}], empty when the batch conforms."""
        return self._check.violations({"input": np.asarray(instances)})

    def __call__(self, instances):
        """Flag mode: the violations. Reject mode: raise ValueError naming them."""
        from ..serving.schema_check import message

        found = self.check(instances)
        if found and self.mode == "reject":
            raise ValueError(message(found))
        return found
