"""Feature statistics of a table of examples and the distances the validators and the monitor
compare them with. Formulas, written so they can be checked by hand:

- categorical drift, L∞ distance: with p, q the value frequencies of the two samples over the
  union of their values, L∞(p, q) = max_v |p(v) − q(v)| (TFDV's `infinity_norm`).
- numeric drift, Jensen–Shannon divergence on a shared histogram (the schema's bin edges plus an
  underflow and an overflow bin): m = (p + q)/2, JS(p, q) = ½ KL(p‖m) + ½ KL(q‖m) with
  KL(p‖m) = Σ p_i log₂(p_i / m_i) and 0·log 0 = 0, so 0 ≤ JS ≤ 1 (log base 2).
- numeric drift, Wasserstein-1 distance from the stored quantiles: with Q_p(u) the sample's
  quantile function (NumPy's 'inverted_cdf', the empirical one) at the K = 100 mid-points
  u_k = (k + ½)/K, W₁ ≈ (1/K) Σ_k |Q_p(u_k) − Q_q(u_k)|. It is exact for two samples whose sizes
  divide K (W₁ of two equal-size samples = the mean |difference| of their sorted values).

A table ("frame") is a dict {column name: NumPy array}, all of one length; a column whose
entries are arrays (images) has more than one dimension. Missing values: NaN in numeric
columns, "" in string columns.
May import: numpy.
"""
from __future__ import annotations

import numpy as np

QUANTILE_POINTS = 100
DEFAULT_BINS = 20
MAX_CATEGORIES = 1000  # a string column with more values than this is summarised, not enumerated


def feature_kind(column: np.ndarray) -> str:
    """'tensor' (one array per example), 'categorical' (strings, booleans), 'int' or 'float'.

    >>> feature_kind(np.array(["a", "b"])), feature_kind(np.array([1, 2])), feature_kind(np.zeros((2, 3)))
    ('categorical', 'int', 'tensor')
    """
    if column.ndim > 1:
        return "tensor"
    if column.dtype.kind in "USO" or column.dtype.kind == "b":
        return "categorical"
    if column.dtype.kind in "iu":
        return "int"
    if column.dtype.kind == "f":
        return "float"
    raise TypeError(f"statistics: column of dtype {column.dtype} is neither numeric nor strings")


def num_rows(frame: dict) -> int:
    lengths = {name: len(col) for name, col in frame.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"frame: columns differ in length: {lengths}")
    return next(iter(lengths.values()), 0)


def quantile_grid(values: np.ndarray) -> list:
    """The sample's quantiles at the K = 100 mid-points (k + ½)/K ('inverted_cdf')."""
    if values.size == 0:
        return []
    u = (np.arange(QUANTILE_POINTS) + 0.5) / QUANTILE_POINTS
    return np.quantile(values, u, method="inverted_cdf").astype(float).tolist()


def equal_width_edges(values: np.ndarray, bins=DEFAULT_BINS) -> list:
    if values.size == 0:
        return [0.0, 1.0]
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, bins + 1).tolist()


def histogram(values: np.ndarray, edges) -> list:
    """Counts in len(edges) + 1 bins: [< e₀], [e₀, e₁), ..., [e₋₂, e₋₁], [> e₋₁] (the last inner
    bin is closed, so the training maximum falls inside).

    >>> histogram(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), [0.0, 0.5, 1.0])
    [1, 1, 2, 1]
    """
    edges = np.asarray(edges, dtype=float)
    idx = np.searchsorted(edges, values, side="right")
    idx[values == edges[-1]] = len(edges) - 1
    # [< e0] is index 0 and [e_{k-1}, e_k) is index k; the overflow bin is index len(edges)
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return counts.astype(int).tolist()


def numeric_statistics(values: np.ndarray, edges=None) -> dict:
    values = np.asarray(values, dtype=np.float64).ravel()
    nan = np.isnan(values)
    v = values[~nan]
    if edges is None:
        edges = equal_width_edges(v)
    out = {"count": int(values.size), "missing": int(nan.sum()), "histogram": {"edges": list(map(float, edges)),
                                                                              "counts": histogram(v, edges)},
           "quantiles": quantile_grid(v)}
    if v.size:
        out.update(mean=float(v.mean()), std=float(v.std()), min=float(v.min()), max=float(v.max()),
                   zeros=int((v == 0).sum()))
    return out


def categorical_statistics(values: np.ndarray) -> dict:
    values = np.asarray(values).astype(str)
    missing = values == ""
    uniq, counts = np.unique(values[~missing], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]
    return {"count": int(values.size), "missing": int(missing.sum()), "unique": int(uniq.size),
            "counts": {str(uniq[i]): int(counts[i]) for i in order}}


def feature_statistics(column: np.ndarray, spec: dict | None = None) -> dict:
    """Statistics of one column; `spec` (the feature's schema entry) fixes the kind and the
    histogram's bin edges so that two samples can be compared bin by bin."""
    kind = (spec or {}).get("type") or feature_kind(column)
    if kind == "categorical":
        return {"type": kind, **categorical_statistics(column)}
    if column.dtype.kind in "USO":
        raise TypeError(f"statistics: feature of type {kind} holds strings ({column[:3].tolist()})")
    stats = {"type": kind, **numeric_statistics(column, (spec or {}).get("bins"))}
    if kind == "tensor":
        stats["shape"] = list(column.shape[1:])
        stats["count"] = int(column.shape[0])
        per_example = column.reshape(column.shape[0], -1).astype(np.float64)
        # brightness and contrast of each example: what a camera change moves
        stats["example_mean"] = numeric_statistics(per_example.mean(axis=1), (spec or {}).get("example_mean_bins"))
        stats["example_std"] = numeric_statistics(per_example.std(axis=1), (spec or {}).get("example_std_bins"))
    return stats


def safe_feature_statistics(column, spec=None) -> dict:
    """`feature_statistics`, or {"type": "invalid", "error"} for a column that does not fit its
    schema entry (strings in a numeric feature, say): the validator reports it as an anomaly."""
    try:
        return feature_statistics(column, spec)
    except (TypeError, ValueError) as e:
        return {"type": "invalid", "error": str(e), "count": int(len(column)), "missing": 0}


def compute_statistics(frame: dict, schema: dict | None = None, slice_by=()) -> dict:
    """{"num_examples", "features": {name: statistics}, "slices": {"col=value": {...}}}.

    >>> s = compute_statistics({"x": np.array([1.0, 2.0, np.nan]), "c": np.array(["a", "b", "a"])})
    >>> s["features"]["x"]["missing"], s["features"]["c"]["counts"]
    (1, {'a': 2, 'b': 1})
    """
    n = num_rows(frame)
    specs = (schema or {}).get("features", {})
    out = {"num_examples": n, "features": {name: safe_feature_statistics(col, specs.get(name))
                                           for name, col in frame.items()}}
    if slice_by:
        out["slices"] = {}
        for key, mask in slice_masks(frame, slice_by).items():
            sub = {name: col[mask] for name, col in frame.items()}
            out["slices"][key] = {"num_examples": int(mask.sum()),
                                  "features": {name: safe_feature_statistics(col, specs.get(name))
                                               for name, col in sub.items()}}
    return out


def slice_masks(frame: dict, slice_by) -> dict:
    """{"col=value" (or "a=x,b=y" for a cross slice): boolean mask} for each slice spec, a
    column name or a list of names."""
    out = {}
    for spec in slice_by:
        cols = [spec] if isinstance(spec, str) else list(spec)
        for c in cols:
            if c not in frame:
                raise KeyError(f"slice: no column {c!r} (columns: {sorted(frame)})")
        values = [np.asarray(frame[c]).astype(str) for c in cols]
        keys = np.array([",".join(f"{c}={v}" for c, v in zip(cols, row)) for row in zip(*values)]) if values else []
        for key in sorted(set(keys.tolist())):
            out[key] = keys == key
    return out


# -- distances -------------------------------------------------------------------------------------
def linf_distance(counts_a: dict, counts_b: dict) -> float:
    """L∞ distance of two categorical distributions given as {value: count}.

    >>> linf_distance({"a": 3, "b": 1}, {"a": 1, "b": 1})
    0.25
    """
    na, nb = sum(counts_a.values()), sum(counts_b.values())
    if na == 0 or nb == 0:
        return 0.0 if na == nb else 1.0
    return max(abs(counts_a.get(v, 0) / na - counts_b.get(v, 0) / nb) for v in set(counts_a) | set(counts_b))


def js_divergence(counts_a, counts_b) -> float:
    """Jensen–Shannon divergence (log base 2) of two histograms over the same bins.

    >>> round(js_divergence([1, 0], [0, 1]), 6), js_divergence([2, 2], [1, 1])
    (1.0, 0.0)
    """
    p, q = np.asarray(counts_a, dtype=np.float64), np.asarray(counts_b, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"js_divergence: histograms have {p.size} and {q.size} bins; compute both with the "
                         f"same schema bin edges")
    if p.sum() == 0 or q.sum() == 0:
        return 0.0 if p.sum() == q.sum() else 1.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def wasserstein_from_quantiles(q_a, q_b) -> float:
    """W₁ ≈ mean |Q_a(u_k) − Q_b(u_k)| over the shared quantile grid.

    >>> wasserstein_from_quantiles([0.0, 1.0], [1.0, 3.0])
    1.5
    """
    a, b = np.asarray(q_a, dtype=np.float64), np.asarray(q_b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return 0.0
    if a.shape != b.shape:
        raise ValueError(f"wasserstein: quantile grids of {a.size} and {b.size} points")
    return float(np.mean(np.abs(a - b)))


DRIFT_METRICS = ("linf", "js", "wasserstein")


def distance(metric: str, stats_a: dict, stats_b: dict) -> float:
    """The named drift/skew distance between two feature statistics (from `feature_statistics`)."""
    if metric == "linf":
        if stats_a["type"] != "categorical":
            raise ValueError(f"drift metric linf is for categorical features, not {stats_a['type']}")
        return linf_distance(stats_a["counts"], stats_b["counts"])
    if stats_a["type"] == "categorical":
        raise ValueError(f"drift metric {metric} is for numeric features; use linf for categorical ones")
    if metric == "js":
        return js_divergence(stats_a["histogram"]["counts"], stats_b["histogram"]["counts"])
    if metric == "wasserstein":
        return wasserstein_from_quantiles(stats_a["quantiles"], stats_b["quantiles"])
    raise ValueError(f"unknown drift metric {metric!r}; known: {', '.join(DRIFT_METRICS)}")

