"""Fuzzing the REST endpoints with hypothesis: arbitrary JSON values, near-valid V2 requests and
raw bytes with arbitrary binary-extension headers must get a 2xx or a 4xx with an {"error"}
message, never a 5xx. (A targeted fuzz test instead of schemathesis: it needs nothing beyond the
test extra and exercises the bodies the OpenAPI schema cannot describe, such as the binary tail.)"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")
import httpx  # noqa: E402

from neurona.layers import Dense  # noqa: E402
from neurona.models import Sequential  # noqa: E402
from neurona.serving import ModelConfig, ModelServer  # noqa: E402


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    Sequential([Dense(2, input_dim=3)]).save(base / "m" / "1")
    with ModelServer([ModelConfig("m", str(base / "m"))], rest_port=0, grpc_port=None, poll_seconds=0,
                     max_request_bytes=65536) as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            yield client


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) |
                           st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4),
                           max_leaves=20)
tensor = st.fixed_dictionaries({"name": st.sampled_from(["input", "x", ""]),
                                "shape": st.lists(st.integers(-2, 4), max_size=3),
                                "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BOOL", "BYTES", "fp32"]),
                                "data": st.lists(st.floats(-1e3, 1e3) | st.integers(-5, 5) | st.booleans(),
                                                 max_size=13)})
v2_bodies = st.fixed_dictionaries({"inputs": st.lists(tensor, max_size=2)},
                                  optional={"id": json_values, "outputs": json_values, "parameters": json_values})
tf_bodies = st.dictionaries(st.sampled_from(["instances", "inputs", "signature_name"]), json_values, max_size=2)
quick = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _check(r):
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert isinstance(r.json()["error"], str) and r.json()["error"]


@quick
@given(body=tf_bodies)
def test_tf_predict_never_500(url, body):
    _check(url.post("/v1/models/m:predict", json=body))


@quick
@given(body=v2_bodies)
def test_v2_infer_never_500(url, body):
    _check(url.post("/v2/models/m/infer", json=body))


@quick
@given(raw=st.binary(max_size=300), header=st.one_of(st.none(), st.integers(-5, 400).map(str), st.text(st.characters(min_codepoint=48, max_codepoint=126), max_size=4)))
def test_v2_raw_bytes_never_500(url, raw, header):
    headers = {} if header is None else {"Inference-Header-Content-Length": header}
    _check(url.post("/v2/models/m/infer", content=raw, headers=headers))


def test_valid_request_still_answers(url):
    r = url.post("/v1/models/m:predict", json={"instances": np.zeros((2, 3)).tolist()})
    assert r.status_code == 200 and np.shape(r.json()["predictions"]) == (2, 2)
