"""neurona.pipeline.monitor: crafted request logs in the server's JSON-lines format — skewed traffic
is flagged (gauges and alert lines), unskewed traffic is not, results are reproducible from the
files by one command, delayed labels give live accuracy per slice. And the InfraValidator against
the real `neurona serve` when the serving package is present."""
import json
import uuid

import numpy as np
import pytest

pytest.importorskip("prometheus_client")

from neurona.pipeline import monitor as mon  # noqa: E402
from neurona.pipeline import training as tr  # noqa: E402
from neurona.pipeline.__main__ import main  # noqa: E402
from neurona.pipeline.schema import infer_schema  # noqa: E402
from neurona.pipeline.stats import compute_statistics  # noqa: E402


def _frame(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1.0, n), rng.normal(0.0, 1.0, n)
    return {"x1": x1, "x2": x2, "y": np.where(x1 + x2 > 0, "pos", "neg")}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    train = _frame(600, 0)
    schema = infer_schema(compute_statistics(train), label="y",
                          skew={"numeric": {"metric": "js", "threshold": 0.1, "severity": "warning"}})
    info = tr.fit_transform(train, ["x1", "x2"], "y", schema)
    model, _ = tr.train_model(info, {"type": "mlp"}, {"epochs": 5, "hidden": [8], "learning_rate": 0.05},
                              tr.encode_inputs(train, info), tr.encode_labels(train, info))
    folder = tr.save_with_transform(model, info, tmp_path_factory.mktemp("m") / "toy" / "1")
    (folder / mon.TRAINING_STATS_FILE).write_text(json.dumps(mon.training_statistics(train, info)))
    return folder


def _log(path, model_dir, frame, version=1, batch=4):
    """Requests as `neurona serve --request-log` writes them (values logged in full)."""
    info = tr.load_transform(model_dir)
    x = tr.encode_inputs(frame, info)
    proba, _ = tr.predict_proba(model_dir, frame)
    ids, labels = [], []
    with open(path, "a") as f:
        for i in range(0, len(x), batch):
            rid = uuid.uuid4().hex
            xs, ps = x[i:i + batch], proba[i:i + batch]
            f.write(json.dumps({"ts": "2025-01-01T00:00:00+00:00", "request_id": rid, "model": "toy",
                                "version": version, "protocol": "rest-tfs", "status": 200, "latency_ms": 1.0,
                                "inputs": {"input": {"shape": list(xs.shape), "dtype": "float32",
                                                     "values": xs.tolist()}},
                                "outputs": {"output": {"shape": list(ps.shape), "dtype": "float32",
                                                       "values": ps.tolist()}}}) + "\n")
            ids.append(rid)
            labels.append(frame["y"][i:i + batch].tolist())
        f.write(json.dumps({"request_id": "bad", "model": "toy", "version": version, "status": 400,
                            "error": "wrong shape"}) + "\n")
    return ids, labels


def test_unskewed_traffic_raises_no_alert(tmp_path, model_dir):
    _log(tmp_path / "req.jsonl", model_dir, _frame(400, 1))
    out = mon.run_monitor([tmp_path / "req.jsonl"], model_dir)
    assert out["alerts"] == [] and out["skipped"] == {"error": 1}
    assert out["versions"][1]["rows"] == 400
    assert all(not c["anomaly"] for c in out["versions"][1]["skew"])


def test_skewed_traffic_is_flagged_with_gauges_and_alerts(tmp_path, model_dir):
    _log(tmp_path / "req.jsonl", model_dir, _frame(400, 1), version=1)
    _log(tmp_path / "req.jsonl", model_dir, _frame(400, 2, shift=2.0), version=2)  # a new client shifts x1
    out = mon.run_monitor([tmp_path / "req.jsonl"], model_dir)
    x1 = {v: next(c for c in r["skew"] if c["feature"] == "x1") for v, r in out["versions"].items()}
    assert not x1[1]["anomaly"] and x1[2]["anomaly"] and x1[2]["value"] > 0.1
    assert any(a.startswith("ALERT skew model=toy version=2 feature=x1 slice=all js=") for a in out["alerts"])
    assert not any("feature=x2 slice=all" in a for a in out["alerts"])
    assert ('neurona_pipeline_feature_skew_alert{feature="x1",metric="js",model="toy",slice="all",version="2"} 1.0'
            in out["prometheus"])
    # one command reproduces it from the files
    prom = tmp_path / "skew.prom"
    assert main(["monitor", str(tmp_path / "req.jsonl"), "--model-dir", str(model_dir), "--prometheus",
                 str(prom)]) == 2
    assert prom.read_text() == out["prometheus"]


def test_schema_violations_noted_by_the_server_are_counted(tmp_path, model_dir):
    _log(tmp_path / "req.jsonl", model_dir, _frame(40, 1))
    flagged = {"feature": "x1", "kind": "out_of_range", "instances": [0]}
    with open(tmp_path / "req.jsonl", "a") as f:
        for status in (200, 200, 400):  # what the server's schema check writes: flag, flag, reject
            f.write(json.dumps({"request_id": uuid.uuid4().hex, "model": "toy", "version": 1, "status": status,
                                "schema_violations": [flagged], **({"error": "violates"} if status != 200 else {})})
                    + "\n")
    out = mon.run_monitor([tmp_path / "req.jsonl"], model_dir)
    assert [(v["feature"], v["kind"], v["action"], v["requests"]) for v in out["schema_violations"]] == [
        ("x1", "out_of_range", "flagged", 2), ("x1", "out_of_range", "rejected", 1)]
    assert ('neurona_pipeline_schema_violations{action="flagged",feature="x1",kind="out_of_range",model="toy",'
            'version="1"} 2.0') in out["prometheus"]


def test_live_quality_joins_delayed_labels(tmp_path, model_dir):
    ids, labels = _log(tmp_path / "req.jsonl", model_dir, _frame(200, 3))
    with open(tmp_path / "labels.jsonl", "w") as f:
        for rid, lab in list(zip(ids, labels))[:30]:  # only some labels have arrived
            f.write(json.dumps({"request_id": rid, "labels": lab}) + "\n")
    out = mon.run_monitor([tmp_path / "req.jsonl"], model_dir, labels_path=tmp_path / "labels.jsonl")
    q = out["quality"][1]
    assert q["overall"]["n"] == 120 and q["label=pos"]["n"] + q["label=neg"]["n"] == 120
    frame = {k: v[:120] for k, v in _frame(200, 3).items()}
    proba, info = tr.predict_proba(model_dir, frame)
    assert q["overall"]["accuracy"] == pytest.approx(float((proba.argmax(1) == tr.encode_labels(frame, info)).mean()))
    assert 'neurona_pipeline_live_accuracy{model="toy",slice="overall",version="1"}' in out["prometheus"]


def test_infra_validator_serves_the_candidate(tmp_path, model_dir):
    from neurona.pipeline.serving_io import infra_validate, serving_available

    if not serving_available():
        pytest.skip("neurona.serving (the model server, issue 16) is not in this checkout")
    out = tmp_path / "infra"
    out.mkdir()
    res = infra_validate(model_dir, _frame(40, 5), "toy", 16, 120.0, 1e-4, ["{python}", "-m", "neurona.serving"], out)
    assert res["passed"], res
    assert [c["passed"] for c in res["checks"]] == [True] * 5
