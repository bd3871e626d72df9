"""Model evaluation with slices, bootstrap confidence intervals and a blessing decision.

Every metric here is a mean of a per-example value (accuracy: 1 if the top class is right;
error_rate: 1 − that; log_loss: −log p(true class)), so a slice's metric and its bootstrap
resamples are means over index sets, and the candidate-minus-baseline difference is computed on
the same resampled examples for both models (a paired bootstrap).

The decision, for each threshold `{metric: {lower_bound | upper_bound, max_decrease |
max_increase, slices}}`:
- a value bound fails when the whole confidence interval lies beyond it (the metric is
  significantly worse than the bound), overall and, with `slices: true` (or `slices:
  [lower_bound, ...]` naming the bounds that apply per slice), on every judged slice;
- a change bound fails when the interval of (candidate − baseline) lies wholly beyond the
  allowed change (a significant regression against the last blessed model);
- a slice with fewer than `min_slice_size` examples is reported, not judged; a slice listed in
  `expected_slices` but absent from the evaluation data is reported as missing, and refuses the
  blessing when `on_missing_slice: refuse`.
May import: numpy, neurona.pipeline.stats.
"""
from __future__ import annotations

import numpy as np

from .stats import slice_masks

HIGHER_IS_BETTER = {"accuracy": True, "error_rate": False, "log_loss": False}
METRICS = tuple(HIGHER_IS_BETTER)
THRESHOLD_FIELDS = {"lower_bound", "upper_bound", "max_decrease", "max_increase", "slices"}


def per_example(metric: str, proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The per-example value whose mean is `metric`.

    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> per_example("accuracy", p, np.array([0, 1, 1])).tolist()
    [1.0, 1.0, 0.0]
    """
    if metric == "accuracy":
        return (proba.argmax(axis=1) == y).astype(np.float64)
    if metric == "error_rate":
        return (proba.argmax(axis=1) != y).astype(np.float64)
    if metric == "log_loss":
        return -np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0))
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")


def check_thresholds(thresholds: dict, where="Evaluator.thresholds"):
    for metric, spec in (thresholds or {}).items():
        if metric not in HIGHER_IS_BETTER:
            raise ValueError(f"{where}: threshold on metric {metric!r}, which does not exist; "
                             f"known: {', '.join(METRICS)}")
        bad = set(spec) - THRESHOLD_FIELDS
        if bad:
            raise ValueError(f"{where}.{metric}: unknown field(s) {sorted(bad)}; known: {sorted(THRESHOLD_FIELDS)}")


def bootstrap_indices(n: int, reps: int, rng) -> np.ndarray:
    return rng.integers(0, n, size=(reps, n))


def interval(samples: np.ndarray, confidence: float):
    a = (1 - confidence) / 2
    return float(np.quantile(samples, a)), float(np.quantile(samples, 1 - a))


def evaluate(values: dict, baseline_values: dict | None, frame: dict, slice_by=(), expected_slices=None,
             thresholds=None, min_slice_size=30, bootstrap=300, confidence=0.95, seed=0,
             on_missing_slice="refuse") -> dict:
    """values: {metric: per-example array} of the candidate (baseline_values: the same for the
    last blessed model, or None). Returns {"overall", "slices", "missing_slices", "checks",
    "blessed", "reasons"}."""
    check_thresholds(thresholds)
    rng = np.random.default_rng(seed)
    n = len(next(iter(values.values())))
    groups = {"overall": np.ones(n, dtype=bool), **slice_masks(frame, slice_by)}
    results = {}
    for key, mask in groups.items():
        idx = np.flatnonzero(mask)
        entry = {"size": int(idx.size), "judged": key == "overall" or idx.size >= min_slice_size, "metrics": {}}
        draws = bootstrap_indices(idx.size, bootstrap, rng) if idx.size else None
        for metric, v in values.items():
            vs = v[idx]
            m = {"value": float(vs.mean()) if idx.size else None}
            if idx.size:
                m["ci"] = interval(vs[draws].mean(axis=1), confidence)
            if baseline_values is not None and idx.size:
                b = baseline_values[metric][idx]
                m["baseline"] = float(b.mean())
                m["change"] = m["value"] - m["baseline"]
                m["change_ci"] = interval((vs[draws] - b[draws]).mean(axis=1), confidence)
            entry["metrics"][metric] = m
        results[key] = entry
    missing = []
    for col, wanted in (expected_slices or {}).items():
        for v in wanted:
            if f"{col}={v}" not in groups:
                missing.append(f"{col}={v}")
    checks, reasons = [], []
    for metric, spec in (thresholds or {}).items():
        if metric not in values:
            raise ValueError(f"Evaluator: threshold on {metric!r} but the metrics computed are {sorted(values)}")
        on_slices = spec.get("slices") or []
        on_slices = ["lower_bound", "upper_bound", "max_decrease", "max_increase"] if on_slices is True else on_slices
        for key, entry in results.items():
            m = entry["metrics"][metric]
            if m["value"] is None:
                continue

            def applies(kind):
                return kind in spec and (key == "overall" or kind in on_slices)

            lo, hi = m["ci"]
            for bound, op in (("lower_bound", "lower"), ("upper_bound", "upper")):
                if not applies(bound):
                    continue
                limit = float(spec[bound])
                failed = hi < limit if op == "lower" else lo > limit
                checks.append(_check(key, metric, bound, limit, m["value"], (lo, hi), failed, entry["judged"]))
            if "change_ci" in m:
                clo, chi = m["change_ci"]
                if applies("max_decrease"):
                    limit = -float(spec["max_decrease"])
                    checks.append(_check(key, metric, "max_decrease", float(spec["max_decrease"]), m["change"],
                                         (clo, chi), chi < limit, entry["judged"]))
                if applies("max_increase"):
                    limit = float(spec["max_increase"])
                    checks.append(_check(key, metric, "max_increase", limit, m["change"], (clo, chi), clo > limit,
                                         entry["judged"]))
    for c in checks:
        if c["failed"] and c["judged"]:
            reasons.append(c["message"])
    if missing:
        note = f"slices missing from the evaluation data: {', '.join(missing)}"
        if on_missing_slice == "refuse":
            reasons.append(note)
    small = [k for k, e in results.items() if not e["judged"]]
    return {"overall": results["overall"], "slices": {k: e for k, e in results.items() if k != "overall"},
            "missing_slices": missing, "too_small": small, "min_slice_size": min_slice_size,
            "confidence": confidence, "bootstrap": bootstrap, "checks": checks, "blessed": not reasons,
            "reasons": reasons, "has_baseline": baseline_values is not None}


def _check(key, metric, kind, limit, value, ci, failed, judged):
    what = {"lower_bound": f"{metric} ≥ {limit}", "upper_bound": f"{metric} ≤ {limit}",
            "max_decrease": f"{metric} drops by at most {limit} against the baseline",
            "max_increase": f"{metric} rises by at most {limit} against the baseline"}[kind]
    shown = "change" if kind.startswith("max_") else "value"
    msg = (f"{key}: {what}: {shown} {value:.4f}, interval [{ci[0]:.4f}, {ci[1]:.4f}]"
           f"{' — significantly beyond the bound' if failed else ''}"
           f"{' (slice too small to judge)' if not judged else ''}")
    return {"slice": key, "metric": metric, "kind": kind, "limit": limit, "value": value, "interval": list(ci),
            "failed": bool(failed), "judged": bool(judged), "message": msg}
