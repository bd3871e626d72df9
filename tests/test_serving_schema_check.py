"""Serve-time schema checks (neurona/serving/schema_check.py): a version folder holding
`schema.json` has each request checked against the training schema; `flag` serves the request,
counts it by feature and kind and notes it in the request log, `reject` answers HTTP 400 / gRPC
INVALID_ARGUMENT naming the feature and the violation. A real server on a loopback port."""
import json

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("grpc")

import neurona as nr  # noqa: E402
from neurona.layers import Dense  # noqa: E402
from neurona.models import Sequential  # noqa: E402
from neurona.serving import Client, ModelServer  # noqa: E402
from neurona.serving.client import ServerError  # noqa: E402
from neurona.serving.schema_check import SchemaCheck  # noqa: E402

SCHEMA = {"format": "neurona.serving.schema/1", "input": None,
          "features": [{"name": "temp", "type": "float", "min": -5.0, "max": 35.0},
                       {"name": "wind", "type": "float", "min": 0.0, "max": 10.0},
                       {"name": "code", "type": "int", "domain": [0, 1, 2]}]}
GOOD = np.array([[10.0, 1.0, 0.0], [30.0, 9.0, 2.0]], np.float32)
BAD = np.array([[10.0, 1.0, 0.0], [80.0, 1.0, 1.0], [np.nan, 1.0, 7.0]], np.float32)


def _model(folder, mode):
    nr.manual_seed(0)
    m = Sequential([Dense(2, input_dim=3)])
    m.save(folder)
    if mode is not None:
        (folder / "schema.json").write_text(json.dumps({**SCHEMA, "mode": mode}))
    return m


def test_check_finds_each_violation_by_hand():
    found = SchemaCheck({**SCHEMA, "mode": "flag"}).violations({"input": BAD})
    assert [(v["feature"], v["kind"], v["instances"]) for v in found] == [
        ("temp", "nan", [2]), ("temp", "out_of_range", [1]), ("code", "domain", [2])]
    assert SchemaCheck(SCHEMA).violations({"input": GOOD}) == []
    assert SchemaCheck(SCHEMA).violations({"input": GOOD[:, :2]})[0]["kind"] == "shape"
    image = SchemaCheck({"features": [{"name": "image", "type": "tensor", "shape": [2, 2], "min": 0, "max": 255}]})
    assert image.violations({"x": np.zeros((3, 1, 2, 2))}) == []
    assert [v["instances"] for v in image.violations({"x": np.full((2, 1, 2, 2), 300.0)})] == [[0, 1]]
    with pytest.raises(ValueError, match="mode must be 'flag' or 'reject'"):
        SchemaCheck({**SCHEMA, "mode": "block"})
    with pytest.raises(ValueError, match=r"features\[0\] \(temp\): unknown field\(s\) \['maximum'\]"):
        SchemaCheck({"features": [{"name": "temp", "maximum": 3}]})


def test_flag_mode_serves_counts_and_logs(tmp_path):
    m = _model(tmp_path / "models" / "w" / "1", "flag")
    log = tmp_path / "requests.jsonl"
    with ModelServer(model_base_path=tmp_path / "models", rest_port=0, grpc_port=0, poll_seconds=0,
                     request_log=log) as srv, \
            Client(srv.url, grpc_address=f"127.0.0.1:{srv.grpc_port}") as c:
        np.testing.assert_allclose(c.predict("w", GOOD), m.predict(GOOD), rtol=1e-5)
        out, _ = c.infer("w", BAD[:2])  # served despite the violation
        np.testing.assert_allclose(out["output"] if "output" in out else next(iter(out.values())),
                                   m.predict(BAD[:2]), rtol=1e-5)
        c.infer("w", BAD[:2], protocol="grpc")
        metrics = c.metrics()
    assert ('neurona_serving_schema_violations_total{action="flagged",feature="temp",kind="out_of_range",'
            'model="w",version="1"} 2.0') in metrics
    assert 'kind="nan"' not in metrics
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["status"] for r in records] == [200, 200, 200]
    assert "schema_violations" not in records[0]
    assert records[1]["schema_violations"] == [{"feature": "temp", "kind": "out_of_range", "instances": [1]}]
    assert records[2]["schema_violations"] == records[1]["schema_violations"]


def test_reject_mode_answers_400_and_invalid_argument(tmp_path):
    m = _model(tmp_path / "models" / "w" / "1", "reject")
    with ModelServer(model_base_path=tmp_path / "models", rest_port=0, grpc_port=0, poll_seconds=0) as srv, \
            Client(srv.url, grpc_address=f"127.0.0.1:{srv.grpc_port}") as c:
        np.testing.assert_allclose(c.predict("w", GOOD), m.predict(GOOD), rtol=1e-5)  # conforming: served
        with pytest.raises(ServerError) as e:
            c.infer("w", BAD)  # binary tensors: NaN travels
        assert e.value.status == 400
        assert "feature 'temp'" in e.value.message and "out_of_range" in e.value.message
        assert "nan" in e.value.message and "feature 'code'" in e.value.message
        with pytest.raises(ServerError) as e:
            c.infer("w", BAD[1:2], protocol="grpc")
        assert e.value.status == "INVALID_ARGUMENT" and "outside the training range [-5.0, 35.0]" in e.value.message
        metrics = c.metrics()
        assert ('neurona_serving_schema_violations_total{action="rejected",feature="code",kind="domain",'
                'model="w",version="1"} 1.0') in metrics
        assert c.ready("w")  # the server keeps serving


def test_no_schema_file_no_check_and_a_broken_one_fails_the_load(tmp_path):
    m = _model(tmp_path / "models" / "w" / "1", None)
    with ModelServer(model_base_path=tmp_path / "models", rest_port=0, grpc_port=None, poll_seconds=0) as srv, \
            Client(srv.url) as c:
        np.testing.assert_allclose(c.predict("w", BAD[:2]), m.predict(BAD[:2]), rtol=1e-5)
        assert "schema_violations_total{" not in c.metrics()
        _model(tmp_path / "models" / "w" / "2", None)
        (tmp_path / "models" / "w" / "2" / "schema.json").write_text('{"features": [], "mode": "flag"}')
        c.reload()
        states = {s["version"]: (s["state"], s["status"]["error_message"]) for s in c.status("w")}
        assert states["2"][0] == "END" and "'features' must be a non-empty list" in states["2"][1]
        assert states["1"] == ("AVAILABLE", "")
