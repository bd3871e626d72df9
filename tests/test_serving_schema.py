"""Serve-time schema checks (neurona/serving/schema_check.py) in a real server on loopback ports:
a version whose folder carries the training schema (transform.json, as neurona.pipeline pushes
it) has each request checked after the signature check — 'flag' serves it, counts the problems
by feature in /metrics and writes them to the request log; 'reject' answers 400 (REST) and
INVALID_ARGUMENT (gRPC) naming the feature; 'off' and a folder without a schema check nothing."""
import json

import numpy as np
import pytest

pytest.importorskip("fastapi")  # the `serving` extra; make test installs it
import grpc  # noqa: E402
import httpx  # noqa: E402

from neurona.layers import Dense  # noqa: E402
from neurona.models import Sequential  # noqa: E402
from neurona.serving import ModelConfig, ModelServer  # noqa: E402
from neurona.serving import protocol as P  # noqa: E402
from neurona.serving.schema_check import SchemaCheck  # noqa: E402

SCHEMA = {"features": {"temp": {"type": "float", "min": -10.0, "max": 40.0},
                       "wind": {"type": "float", "min": 0.0, "max": 12.0},
                       "cloud": {"type": "categorical", "domain": [0, 1, 2]}}}
FEATURES = ["temp", "wind", "cloud"]


def _save(folder, with_schema=True):
    import neurona as nr

    nr.manual_seed(0)
    model = Sequential([Dense(4, activation="relu", input_dim=3), Dense(2, activation="softmax")])
    model.save(folder)
    if with_schema:
        (folder / "transform.json").write_text(json.dumps({"schema": SCHEMA, "input_features": FEATURES}))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    for name in ("flagged", "strict", "unchecked"):
        _save(base / name / "1")
    _save(base / "plain" / "1", with_schema=False)
    log = tmp_path_factory.mktemp("log") / "requests.jsonl"
    models = [ModelConfig("flagged", str(base / "flagged")), ModelConfig("strict", str(base / "strict"), schema_check="reject"),
              ModelConfig("unchecked", str(base / "unchecked"), schema_check="off"),
              ModelConfig("plain", str(base / "plain"), schema_check="reject")]
    srv = ModelServer(models, rest_port=0, grpc_port=0, poll_seconds=0, request_log=str(log))
    srv.start()
    srv.log_path = log
    yield srv
    srv.stop()


GOOD = [[20.0, 3.0, 1.0], [0.0, 0.5, 2.0]]
BAD = [[20.0, 3.0, 1.0], [55.0, 3.0, 1.0], [10.0, 1.0, 7.0]]  # temp too hot, cloud out of the domain


def _predict(server, model, rows):
    return httpx.post(f"{server.url}/v1/models/{model}:predict", json={"instances": rows}, timeout=10)


def _metric(server, model, feature, mode):
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    key = f'neurona_serving_schema_violations_total{{feature="{feature}",mode="{mode}",model="{model}",version="1"}}'
    for line in text.splitlines():
        if line.startswith(key):
            return float(line.split()[-1])
    return 0.0


def test_flag_serves_counts_and_logs(server):
    assert _predict(server, "flagged", GOOD).status_code == 200
    r = _predict(server, "flagged", BAD)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 3
    assert _metric(server, "flagged", "temp", "flag") == 1 and _metric(server, "flagged", "cloud", "flag") == 1
    assert _metric(server, "flagged", "wind", "flag") == 0
    records = [json.loads(line) for line in server.log_path.read_text().splitlines()]
    flagged = [rec for rec in records if rec["model"] == "flagged" and rec.get("schema_problems")]
    assert len(flagged) == 1 and flagged[0]["status"] == 200
    assert flagged[0]["schema_problems"] == ["instance 1: feature temp = 55.0 outside the training range [-10.0, 40.0]",
                                            "instance 2: feature cloud = 7.0 not in the training domain"]


def test_reject_answers_400_and_invalid_argument_naming_the_feature(server):
    assert _predict(server, "strict", GOOD).status_code == 200
    r = _predict(server, "strict", BAD)
    assert r.status_code == 400 and "violates the training schema" in r.json()["error"]
    assert "feature temp = 55.0" in r.json()["error"] and "feature cloud" in r.json()["error"]
    v2 = httpx.post(f"{server.url}/v2/models/strict/infer", timeout=10, json={
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [20.0, 30.0, 1.0]}]})
    assert v2.status_code == 400 and "feature wind = 30.0" in v2.json()["error"]
    m = P.messages()
    x = np.asarray([[20.0, 3.0, 5.0]], np.float32)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
        req = m["ModelInferRequest"](model_name="strict")
        req.inputs.add(name="input", datatype="FP32", shape=list(x.shape))
        req.raw_input_contents.append(x.tobytes())
        with pytest.raises(grpc.RpcError) as e:
            P.GRPCInferenceServiceStub(ch).ModelInfer(req, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "feature cloud = 5.0" in e.value.details()
    assert _metric(server, "strict", "temp", "reject") == 1 and _metric(server, "strict", "cloud", "reject") == 2


def test_off_and_folders_without_a_schema_check_nothing(server):
    assert _predict(server, "unchecked", BAD).status_code == 200
    assert _predict(server, "plain", BAD).status_code == 200  # reject, but the folder carries no schema
    assert _metric(server, "unchecked", "temp", "flag") == 0


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="schema_check must be 'off', 'flag' or 'reject'"):
        ModelConfig("m", str(tmp_path), schema_check="warn")
    with pytest.raises(ValueError, match="schema_check= goes with model_base_path="):
        ModelServer([ModelConfig("m", str(tmp_path))], schema_check="reject")
    (tmp_path / "transform.json").write_text("{not json")
    with pytest.raises(ValueError, match="transform.json: not a readable transform file"):
        SchemaCheck.from_model_dir(tmp_path)
