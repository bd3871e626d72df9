"""Serve-time schema checks: a request's instances against the schema of the data the model was
trained on (course topic 10: training-serving skew caught where it enters).

A model folder pushed by `neurona.pipeline` carries `transform.json` — the model's input features
in column order and the training schema (per feature: type, range, domain, tensor shape). The
server reads it when it loads the version and runs `SchemaCheck` on every request after the
signature check (shapes, dtypes):

- `flag` (the default when the folder has a schema): the request is served; each problem counts in
  `neurona_serving_schema_violations_total{model, version, feature}` and is written to the request
  log's record (`schema_problems`), which the pipeline's skew monitor reads;
- `reject`: the request is answered 400 / INVALID_ARGUMENT naming the feature and the value;
- `off`: no check.

The schema format (what `neurona.pipeline`'s SchemaGen writes): `{"features": {name: {"type":
"float" | "int" | "categorical" | "tensor", "min": .., "max": .., "domain": [..], "shape": [..]}}}`.
May import: numpy, json, pathlib.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MODES = ("off", "flag", "reject")
TRANSFORM_FILE = "transform.json"


class SchemaCheck:
    """The check of one model version: `schema` (the training schema), `feature_order` (the
    columns of the model's input, in order), `mode` ('flag' or 'reject').

    >>> schema = {"features": {"x": {"type": "float", "min": 0.0, "max": 1.0}}}
    >>> SchemaCheck(schema, ["x"]).check([[0.5], [7.0], [float("nan")]])
    ['instance 1: feature x = 7.0 outside the training range [0.0, 1.0]', 'instance 2: feature x is NaN']
    """

    def __init__(self, schema: dict, feature_order, mode="flag", range_slack=0.0):
        if mode not in ("flag", "reject"):
            raise ValueError(f"SchemaCheck: mode must be 'flag' or 'reject', got {mode!r}")
        if not isinstance(schema, dict) or not isinstance(schema.get("features"), dict):
            raise ValueError("SchemaCheck: the schema must be a mapping with a 'features' mapping")
        self.schema, self.features, self.mode = schema, list(feature_order), mode
        self.range_slack = float(range_slack)

    @classmethod
    def from_model_dir(cls, model_dir, mode="flag"):
        """From the `transform.json` of a saved model folder; None when the folder has none or
        `mode` is 'off'."""
        if mode not in MODES:
            raise ValueError(f"schema_check must be one of {MODES}, got {mode!r}")
        path = Path(model_dir) / TRANSFORM_FILE
        if mode == "off" or not path.exists():
            return None
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            return cls(info["schema"], info["input_features"], mode)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a readable transform file with 'schema' and 'input_features' "
                             f"({type(e).__name__}: {e})") from None

    def problems(self, instances) -> list[tuple[str, str]]:
        """(feature, message) for each problem of a batch (rows, or an array (N, F) / (N, *tensor
        shape)); empty when the batch conforms. Feature '*' is a problem of the whole batch."""
        x = np.asarray(instances)
        out = []
        specs = [self.schema["features"].get(f, {}) for f in self.features]
        if len(self.features) == 1 and specs[0].get("type") == "tensor":
            shape = list(specs[0].get("shape", []))
            got = list(x.shape[1:])
            if got != shape and int(np.prod(got)) != int(np.prod(shape)):
                return [(self.features[0], f"batch: feature {self.features[0]} should have shape {shape} per "
                                           f"instance, got {got}")]
            cols = {self.features[0]: x.reshape(x.shape[0], -1)}
        else:
            if x.ndim != 2 or x.shape[1] != len(self.features):
                return [("*", f"batch: expected shape (N, {len(self.features)}) for features {self.features}, "
                              f"got {list(x.shape)}")]
            cols = {f: x[:, j] for j, f in enumerate(self.features)}
        for name, spec in zip(self.features, specs):
            col = cols[name]
            if spec.get("type") == "categorical":
                dom = spec.get("domain")
                if dom is not None:
                    allowed = set(map(str, dom))
                    for i, v in enumerate(col.tolist()):
                        if v not in dom and str(v) not in allowed:
                            out.append((name, f"instance {i}: feature {name} = {v!r} not in the training domain"))
                continue
            try:
                values = np.asarray(col, dtype=np.float64)
            except (TypeError, ValueError):
                out.append((name, f"batch: feature {name} should be numeric"))
                continue
            values = values.reshape(values.shape[0], -1)
            lo, hi = spec.get("min"), spec.get("max")
            slack = self.range_slack * (hi - lo) if lo is not None and hi is not None else 0.0
            nan = np.isnan(values).any(axis=1)
            bad = nan.copy()
            if lo is not None and hi is not None:
                with np.errstate(invalid="ignore"):
                    bad |= (values.min(axis=1) < lo - slack) | (values.max(axis=1) > hi + slack)
            for i in np.flatnonzero(bad):  # vectorised test; a message only for the offending rows
                row = values[i]
                if nan[i]:
                    out.append((name, f"instance {i}: feature {name} is NaN"))
                else:
                    shown = row[0] if row.size == 1 else f"[{row.min()}, {row.max()}]"
                    out.append((name, f"instance {i}: feature {name} = {shown} outside the training range "
                                      f"[{lo}, {hi}]"))
        return out

    def check(self, instances) -> list[str]:
        """The problems' messages (empty when the batch conforms)."""
        return [msg for _, msg in self.problems(instances)]

    def __call__(self, instances):
        """Flag mode: the list of problems. Reject mode: raise ValueError naming them."""
        problems = self.check(instances)
        if problems and self.mode == "reject":
            raise ValueError(summary(problems))
        return problems


def summary(messages) -> str:
    """One line naming the first five problems."""
    messages = list(messages)
    return ("request violates the training schema: " + "; ".join(messages[:5]) +
            (f" (and {len(messages) - 5} more)" if len(messages) > 5 else ""))
