"""Serve-time schema checks: a model version whose folder holds `schema.json` has each request's
inputs checked against the training schema before it is queued for prediction.

`BASE/<model>/<version>/schema.json` (the pipeline's Pusher writes it; any tool may):

    {"format": "neurona.serving.schema/1",
     "mode": "flag",                   # or "reject"
     "input": null,                    # the model input checked (null: the model's first input)
     "range_slack": 0.0,               # a value may pass min/max by this share of (max - min)
     "features": [                     # the input's columns, in order (axis 1 of an (N, F) input) ...
       {"name": "temp_max", "type": "float", "min": -1.6, "max": 35.6},
       {"name": "code", "type": "int", "domain": [0, 1, 2]}]}
                                       # ... or one {"type": "tensor", "shape": [28, 28], "min": 0,
                                       #   "max": 255} feature for the whole instance (an image)

Violations, one per (feature, kind) of a request, each naming the instances: `nan` (NaN or
infinite), `out_of_range` (beyond min/max), `domain` (a value outside `domain`), `shape` (the
instance does not have the feature's size). Mode `flag`: the request is served, the violation
counted (`neurona_serving_schema_violations_total{model, version, feature, kind, action}`) and
noted in the request log's record (`schema_violations`); mode `reject`: also counted, and the
request is answered HTTP 400 / gRPC INVALID_ARGUMENT with a message naming feature and violation.
May import: json, numpy.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SCHEMA_FILE = "schema.json"
FORMAT = "neurona.serving.schema/1"
MODES = ("flag", "reject")
_TYPES = ("float", "int", "bool", "tensor", "categorical")
_FEATURE_KEYS = {"name", "type", "min", "max", "domain", "shape", "description"}


class SchemaCheck:
    """The check of one model version: `violations(arrays)` lists what a request breaks (the
    server's `InferenceCore` counts them and, in reject mode, answers InvalidInput with `message`)."""

    def __init__(self, spec: dict, where="schema.json"):
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: expected a JSON object")
        unknown = set(spec) - {"format", "mode", "input", "range_slack", "features", "description"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        if spec.get("format", FORMAT) != FORMAT:
            raise ValueError(f"{where}: format {spec.get('format')!r} is not {FORMAT!r}")
        self.mode = spec.get("mode", "flag")
        if self.mode not in MODES:
            raise ValueError(f"{where}: mode must be 'flag' or 'reject', got {self.mode!r}")
        self.input = spec.get("input")
        self.range_slack = float(spec.get("range_slack", 0.0))
        feats = spec.get("features")
        if not isinstance(feats, list) or not feats:
            raise ValueError(f"{where}: 'features' must be a non-empty list")
        for i, f in enumerate(feats):
            if not isinstance(f, dict) or "name" not in f:
                raise ValueError(f"{where}: features[{i}] needs a 'name'")
            bad = set(f) - _FEATURE_KEYS
            if bad:
                raise ValueError(f"{where}: features[{i}] ({f['name']}): unknown field(s) {sorted(bad)}")
            if f.get("type", "float") not in _TYPES:
                raise ValueError(f"{where}: features[{i}] ({f['name']}): type {f.get('type')!r} is not one of {_TYPES}")
        self.tensor = feats[0].get("type") == "tensor"
        if self.tensor and len(feats) != 1:
            raise ValueError(f"{where}: a 'tensor' feature must be the only feature")
        self.features = feats
        shape = feats[0].get("shape") if self.tensor else None
        self._size = int(np.prod(shape)) if shape else None
        self._bounds()

    @classmethod
    def load(cls, version_dir) -> "SchemaCheck | None":
        """The check of a version folder, or None when it has no schema.json."""
        p = Path(version_dir) / SCHEMA_FILE
        if not p.is_file():
            return None
        try:
            spec = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not valid JSON: {e}") from None
        return cls(spec, where=str(p))

    def _bounds(self):
        """Per-feature lower/upper limits (with the slack; ±inf when absent) and domains, once."""
        lo, hi, domains = [], [], {}
        for j, f in enumerate(self.features):
            a, b = f.get("min"), f.get("max")
            slack = self.range_slack * (b - a) if a is not None and b is not None else 0.0
            lo.append(-np.inf if a is None else a - slack)
            hi.append(np.inf if b is None else b + slack)
            if f.get("domain") is not None:
                try:
                    domains[j] = np.asarray([float(d) for d in f["domain"]])
                except (TypeError, ValueError):
                    domains[j] = np.asarray([], dtype=np.float64)  # a string domain: numbers never match it
        self._lo, self._hi, self._domains = np.asarray(lo), np.asarray(hi), domains

    def violations(self, arrays: dict) -> list[dict]:
        """[{feature, kind, message, instances}] for a request's inputs {name: array} (empty
        when the request conforms). Vectorised over the batch and the features; the messages are
        only built when something is wrong."""
        name = self.input if self.input is not None else next(iter(arrays))
        if name not in arrays:
            return [{"feature": "*", "kind": "shape", "message": f"input {name!r} is missing", "instances": []}]
        x = np.asarray(arrays[name])
        if x.ndim == 0:
            return [{"feature": "*", "kind": "shape", "message": "a scalar input has no instances", "instances": []}]
        n = x.shape[0]
        flat = x.reshape(n, -1)
        if self.tensor:
            f = self.features[0]
            want = self._size or flat.shape[1]
            if flat.shape[1] != want:
                return [{"feature": f["name"], "kind": "shape", "instances": [],
                         "message": f"feature {f['name']!r}: each instance should hold {f.get('shape')} ({want} "
                                    f"values), got {list(x.shape[1:])}"}]
        elif flat.shape[1] != len(self.features):
            names = [f["name"] for f in self.features]
            return [{"feature": "*", "kind": "shape", "instances": [],
                     "message": f"expected {len(names)} columns {names}, got shape {list(x.shape)}"}]
        if flat.dtype.kind not in "biuf":
            return [{"feature": "*", "kind": "domain", "instances": [],
                     "message": f"values of dtype {flat.dtype} are not numbers"}]
        v = flat if flat.dtype.kind == "f" else flat.astype(np.float64)
        if self.tensor:  # one feature: a row is out of range when its smallest or largest value is;
            # min and max propagate NaN and show ±inf, so they alone tell a row with a non-finite value
            low, high = v.min(axis=1, keepdims=True), v.max(axis=1, keepdims=True)
            nan = ~(np.isfinite(low) & np.isfinite(high))
        else:
            nan = ~np.isfinite(v)
            low = high = v
        oor = ((low < self._lo) | (high > self._hi)) & ~nan
        outside = {}
        for j, allowed in self._domains.items():
            bad = ~np.isin(v[:, j], allowed) & ~nan[:, j]
            if bad.any():
                outside[j] = bad
        if not (outside or nan.any() or oor.any()):
            return []
        out = []
        for j, spec in enumerate(self.features):
            fname = spec["name"]
            if nan[:, j].any():
                out.append(_violation(fname, "nan", "is NaN or infinite", nan[:, j]))
            if oor[:, j].any():
                i = int(np.flatnonzero(oor[:, j])[0])
                shown = v[i, j] if not self.tensor else f"[{low[i, 0]}, {high[i, 0]}]"
                out.append(_violation(fname, "out_of_range", f"= {shown} (instance {i}) is outside the training "
                                      f"range [{spec.get('min')}, {spec.get('max')}]", oor[:, j]))
            if j in outside:
                i = int(np.flatnonzero(outside[j])[0])
                out.append(_violation(fname, "domain", f"= {v[i, j]} (instance {i}) is not in the training "
                                      f"domain {list(spec['domain'])[:10]}", outside[j]))
        return out

def _violation(feature, kind, what, mask):
    idx = np.flatnonzero(mask)
    shown = idx[:10].tolist()
    return {"feature": feature, "kind": kind, "instances": shown,
            "message": f"feature {feature!r} {what}" + ("" if kind != "nan" else f" (instances {shown})")
            + (f"; {len(idx)} instances in all" if len(idx) > 1 else "")}


def message(violations: list[dict]) -> str:
    """One line naming every violation, for the 400 / INVALID_ARGUMENT answer."""
    return "request violates the training schema: " + "; ".join(f"{v['kind']}: {v['message']}" for v in violations)


def summary(violations: list[dict]) -> list[dict]:
    """What the request log keeps of each violation."""
    return [{"feature": v["feature"], "kind": v["kind"], "instances": v["instances"]} for v in violations]
