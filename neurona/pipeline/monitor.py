"""Training-serving skew and drift of served traffic, from the model server's request log.

The server (`neurona serve --request-log FILE`) writes one JSON line per sampled request:

    {"ts": "...", "request_id": "...", "model": "fashion", "version": 2, "status": 200,
     "latency_ms": 3.1, "inputs": {"input": {"shape": [4, 784], "dtype": "float32", "values": [...]}},
     "outputs": {"output": {"shape": [4, 10], "dtype": "float32", "values": [...]}}}

(a tensor too large to log in full carries only "mean/std/min/max": such records are counted,
not analysed). `read_request_log` turns the lines into per-instance rows; the served model's
folder says what the columns mean (`transform.json`: the feature order and the training schema)
and holds the training statistics (`training_statistics.json`, written by the Trainer with the
schema's bins). `monitor` computes, per model version, per feature and per slice (the predicted
class: a slice available for every request), the schema's skew distance between served and
training statistics, and exports them as Prometheus gauges plus one alert line per distance
beyond its threshold. With delayed labels ({"request_id", "labels": [...]} lines) it joins them to
the logged predictions and reports live accuracy per slice (the true class).

All of it is recomputed from the log files by one command:

    python -m neurona.pipeline monitor requests.jsonl --model-dir BASE/fashion/2 --prometheus skew.prom
May import: json, numpy, prometheus_client, neurona.pipeline.stats, neurona.pipeline.schema,
neurona.pipeline.training.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from .schema import compare_statistics
from .stats import compute_statistics
from .training import TRANSFORM_FILE

TRAINING_STATS_FILE = "training_statistics.json"


def _tensor(d):
    if not isinstance(d, dict) or "values" not in d:
        return None
    return np.asarray(d["values"], dtype=np.float64).reshape(d.get("shape", np.shape(d["values"])))


def read_request_log(paths, model=None) -> dict:
    """{"records": [{request_id, model, version, ts, status, inputs (N, ...), outputs (N, K)}],
    "skipped": {"error": n, "summarised": n, "other_model": n},
    "schema_violations": {(version, feature, kind, "flagged" | "rejected"): requests}} from
    JSON-lines logs (the server's serve-time schema check notes `schema_violations` in a record)."""
    records, skipped, violations = [], defaultdict(int), defaultdict(int)
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{i}: not a JSON line: {e}") from None
                if model is not None and rec.get("model") != model:
                    skipped["other_model"] += 1
                    continue
                for v in rec.get("schema_violations") or ():
                    action = "flagged" if rec.get("status", 200) == 200 else "rejected"
                    violations[(rec.get("version"), v.get("feature"), v.get("kind"), action)] += 1
                if rec.get("status", 200) != 200 or "error" in rec:
                    skipped["error"] += 1
                    continue
                ins = list((rec.get("inputs") or {}).values())
                outs = list((rec.get("outputs") or {}).values())
                x = _tensor(ins[0]) if len(ins) == 1 else None
                y = _tensor(outs[0]) if len(outs) == 1 else None
                if x is None:
                    skipped["summarised"] += 1
                    continue
                records.append({"request_id": rec.get("request_id"), "model": rec.get("model"),
                                "version": rec.get("version"), "ts": rec.get("ts"), "inputs": x, "outputs": y})
    return {"records": records, "skipped": dict(skipped), "schema_violations": dict(violations)}


def served_frame(records, info) -> dict:
    """The logged instances as a frame named by the model's features (+ `predicted` class)."""
    if not records:
        return {}
    x = np.concatenate([r["inputs"] for r in records])
    if info["kind"] == "image":
        frame = {info["input_features"][0]: x.reshape(x.shape[0], *_schema_shape(info))}
    else:
        x = x.reshape(x.shape[0], -1)
        frame = {f: x[:, j] for j, f in enumerate(info["input_features"])}
    if all(r["outputs"] is not None for r in records):
        proba = np.concatenate([r["outputs"] for r in records])
        frame["predicted"] = np.asarray(info["classes"])[proba.argmax(axis=1)]
    return frame


def _schema_shape(info):
    spec = info["schema"]["features"][info["input_features"][0]]
    return spec.get("shape") or info["input_shape"]


def training_statistics(frame: dict, info: dict) -> dict:
    """Statistics of the model's input features on the training split, overall and per class
    (the slice the monitor compares with the served traffic's predicted class)."""
    sub = {f: frame[f] for f in info["input_features"]}
    sub["predicted"] = np.asarray(frame[info["label"]]).astype(str)
    return compute_statistics(sub, _input_schema(info), slice_by=["predicted"])


def _input_schema(info):
    return {"features": {f: info["schema"]["features"][f] for f in info["input_features"]}}


def monitor(records, model_dir, min_slice=20) -> dict:
    """Skew per feature, overall and per predicted class, of served rows against training."""
    model_dir = Path(model_dir)
    info = json.loads((model_dir / TRANSFORM_FILE).read_text(encoding="utf-8"))
    train = json.loads((model_dir / TRAINING_STATS_FILE).read_text(encoding="utf-8"))
    schema = _input_schema(info)
    frame = served_frame(records, info)
    out = {"rows": 0 if not frame else len(next(iter(frame.values()))), "skew": [], "slices": {}}
    if not frame:
        return out
    served = compute_statistics(frame, schema, slice_by=["predicted"] if "predicted" in frame else ())
    out["skew"] = compare_statistics(served, train, schema, "skew", where=" (served vs training)")
    for key, st in served.get("slices", {}).items():
        if st["num_examples"] < min_slice or key not in train.get("slices", {}):
            continue
        out["slices"][key] = compare_statistics(st, train["slices"][key], schema, "skew",
                                                where=f" in slice {key} (served vs training)")
    return out


def read_labels(path) -> dict:
    """{request_id: [labels per instance]} from JSON lines {"request_id", "labels"}."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                rec = json.loads(line)
                if "request_id" not in rec or "labels" not in rec:
                    raise ValueError(f"{path}:{i}: a label line needs 'request_id' and 'labels'")
                out[rec["request_id"]] = [str(v) for v in rec["labels"]]
    return out


def live_quality(records, labels: dict, info) -> dict:
    """Accuracy of the logged predictions on the instances whose labels arrived, overall and per
    true class: {"overall": {"n", "accuracy"}, "label=c": {...}}."""
    correct = defaultdict(list)
    for r in records:
        got = labels.get(r["request_id"])
        if got is None or r["outputs"] is None:
            continue
        pred = np.asarray(info["classes"])[r["outputs"].argmax(axis=1)]
        for p, t in zip(pred.tolist(), got):
            correct["overall"].append(p == t)
            correct[f"label={t}"].append(p == t)
    return {k: {"n": len(v), "accuracy": float(np.mean(v))} for k, v in sorted(correct.items())}


def export(result_by_version: dict, model_name: str, path=None, quality=None, violations=None) -> tuple[str, list]:
    """Prometheus gauges (text format; written to `path` atomically when given) and alert lines."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    reg = CollectorRegistry()
    labels = ["model", "version", "feature", "metric", "slice"]
    dist = Gauge("neurona_pipeline_feature_skew", "skew distance of served traffic vs training", labels,
                 registry=reg)
    thr = Gauge("neurona_pipeline_feature_skew_threshold", "the schema's skew threshold", labels, registry=reg)
    alert = Gauge("neurona_pipeline_feature_skew_alert", "1 when the skew exceeds its threshold", labels,
                  registry=reg)
    rows = Gauge("neurona_pipeline_monitored_rows", "served instances analysed", ["model", "version"],
                 registry=reg)
    alerts = []
    for version, res in result_by_version.items():
        rows.labels(model_name, str(version)).set(res["rows"])
        for slice_key, checks in [("all", res["skew"]), *res["slices"].items()]:
            for c in checks:
                lv = (model_name, str(version), c["feature"], c["metric"], slice_key)
                dist.labels(*lv).set(c["value"])
                thr.labels(*lv).set(c["threshold"])
                alert.labels(*lv).set(1.0 if c["anomaly"] else 0.0)
                if c["anomaly"]:
                    alerts.append(f"ALERT skew model={model_name} version={version} feature={c['feature']} "
                                  f"slice={slice_key} {c['metric']}={c['value']:.4f} > {c['threshold']} "
                                  f"severity={c['severity']}")
    if quality:
        acc = Gauge("neurona_pipeline_live_accuracy", "accuracy on requests whose labels arrived",
                    ["model", "version", "slice"], registry=reg)
        n = Gauge("neurona_pipeline_live_labelled", "labelled instances", ["model", "version", "slice"],
                  registry=reg)
        for version, q in quality.items():
            for key, v in q.items():
                acc.labels(model_name, str(version), key).set(v["accuracy"])
                n.labels(model_name, str(version), key).set(v["n"])
    if violations:
        viol = Gauge("neurona_pipeline_schema_violations", "logged requests the server's schema check flagged or "
                     "rejected", ["model", "version", "feature", "kind", "action"], registry=reg)
        for (version, feature, kind, action), count in violations.items():
            viol.labels(model_name, str(version), str(feature), str(kind), action).set(count)
    text = generate_latest(reg).decode()
    if path:
        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
    return text, alerts


def run_monitor(log_paths, model_dir, labels_path=None, prometheus=None, min_slice=20) -> dict:
    """The whole monitor: read the logs, group by version, skew, live quality, gauges, alerts."""
    info = json.loads((Path(model_dir) / TRANSFORM_FILE).read_text(encoding="utf-8"))
    log = read_request_log(log_paths)
    by_version = defaultdict(list)
    for r in log["records"]:
        by_version[r["version"]].append(r)
    model_name = next((r["model"] for r in log["records"]), None) or "model"
    results = {v: monitor(rs, model_dir, min_slice) for v, rs in sorted(by_version.items(), key=lambda kv: str(kv[0]))}
    quality = None
    if labels_path:
        lab = read_labels(labels_path)
        quality = {v: live_quality(rs, lab, info) for v, rs in by_version.items()}
    text, alerts = export(results, model_name, prometheus, quality, log["schema_violations"])
    violations = [{"version": v, "feature": f, "kind": k, "action": a, "requests": n}
                  for (v, f, k, a), n in sorted(log["schema_violations"].items(), key=str)]
    return {"model": model_name, "versions": results, "skipped": log["skipped"], "quality": quality,
            "schema_violations": violations, "alerts": alerts, "prometheus": text}


def main_monitor(args) -> int:
    out = run_monitor(args.log, args.model_dir, args.labels, args.prometheus)
    for line in out["alerts"]:
        print(line)
    for v, res in out["versions"].items():
        print(f"version {v}: {res['rows']} instances; " +
              ", ".join(f"{c['feature']} {c['metric']}={c['value']:.4f}" for c in res["skew"]))
    for v in out["schema_violations"]:
        print(f"version {v['version']}: {v['requests']} requests {v['action']} by the serve-time schema check: "
              f"{v['feature']} {v['kind']}")
    if out["quality"]:
        for v, q in out["quality"].items():
            print(f"version {v} live accuracy: " + ", ".join(f"{k} {x['accuracy']:.3f} (n={x['n']})"
                                                            for k, x in q.items()))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({k: v for k, v in out.items() if k != "prometheus"}, indent=1,
                                                  default=str), encoding="utf-8")
    return 2 if out["alerts"] else 0
