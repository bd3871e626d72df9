"""neurona.serving conformance: TF Serving REST (row and columnar), KServe V2 REST (JSON and the
binary-tensor extension), V2 gRPC through the stubs built from the committed descriptor set, the
real tritonclient (HTTP and gRPC, default settings), bad requests (4xx with a message, never 500),
metrics, the request log, auth. One server on 127.0.0.1 free ports serves the module."""
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("fastapi")  # the `serving` extra; make test installs it
import grpc  # noqa: E402
import httpx  # noqa: E402

from neurona.layers import Dense  # noqa: E402
from neurona.models import Input, Model, Sequential, load_model  # noqa: E402
from neurona.serving import Client, ModelConfig, ModelServer  # noqa: E402
from neurona.serving import protocol as P  # noqa: E402


def _mlp(seed):
    import neurona as nr

    nr.manual_seed(seed)
    return Sequential([Dense(16, activation="relu", input_dim=8), Dense(3, activation="softmax")])


def _two_io():
    a, b = Input(shape=(4,), name="a"), Input(shape=(4,), name="b")
    h = Dense(5, activation="tanh", name="hidden")(a)
    return Model([a, b], [Dense(2, name="sum_head")(h), Dense(3, name="b_head")(b)])


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    _mlp(1).save(base / "mlp" / "1")
    _mlp(2).save(base / "mlp" / "2")
    _two_io().save(base / "two" / "1")
    return base


@pytest.fixture(scope="module")
def server(repo, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "requests.jsonl"
    models = [ModelConfig("mlp", str(repo / "mlp"), version_policy=("all", None),
                          version_labels={"stable": 1, "canary": 2}, max_batch_rows=64),
              ModelConfig("two", str(repo / "two"))]
    srv = ModelServer(models, rest_port=0, grpc_port=0, poll_seconds=0, request_log=str(log),
                      max_request_bytes=256 * 1024)
    srv.start()
    srv.log_path = log
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def ref(repo):
    """model.predict of each saved version: what every protocol must return."""
    return {("mlp", 1): load_model(repo / "mlp" / "1", compile=False),
            ("mlp", 2): load_model(repo / "mlp" / "2", compile=False),
            ("two", 1): load_model(repo / "two" / "1", compile=False)}


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).random((5, 8), dtype=np.float32)


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float32), b, rtol=1e-5, atol=1e-6)


# -- TF Serving REST ---------------------------------------------------------------------------------
def test_tf_predict_row_and_columnar_equal_model_predict(server, ref, x):
    want = ref["mlp", 1].predict(x)
    r = httpx.post(f"{server.url}/v1/models/mlp:predict", json={"instances": x.tolist()})
    assert r.status_code == 200 and set(r.json()) == {"predictions"}
    _close(r.json()["predictions"], want)
    r = httpx.post(f"{server.url}/v1/models/mlp:predict", json={"inputs": x.tolist()})
    assert set(r.json()) == {"outputs"}
    _close(r.json()["outputs"], want)
    # explicit version and label
    _close(httpx.post(f"{server.url}/v1/models/mlp/versions/2:predict",
                      json={"instances": x.tolist()}).json()["predictions"], ref["mlp", 2].predict(x))
    _close(httpx.post(f"{server.url}/v1/models/mlp/labels/canary:predict",
                      json={"instances": x.tolist()}).json()["predictions"], ref["mlp", 2].predict(x))


def test_tf_several_inputs_and_outputs(server, ref):
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 4), dtype=np.float32), rng.random((3, 4), dtype=np.float32)
    want = ref["two", 1].predict([a, b])
    inst = [{"a": a[i].tolist(), "b": b[i].tolist()} for i in range(3)]
    preds = httpx.post(f"{server.url}/v1/models/two:predict", json={"instances": inst}).json()["predictions"]
    assert len(preds) == 3 and set(preds[0]) == {"sum_head", "b_head"}
    _close([p["sum_head"] for p in preds], want[0])
    _close([p["b_head"] for p in preds], want[1])
    out = httpx.post(f"{server.url}/v1/models/two:predict",
                     json={"inputs": {"a": a.tolist(), "b": b.tolist()}}).json()["outputs"]
    _close(out["sum_head"], want[0])
    _close(out["b_head"], want[1])


def test_tf_status_and_metadata(server):
    st = httpx.get(f"{server.url}/v1/models/mlp").json()
    assert st == {"model_version_status": [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}} for v in ("2", "1")]}
    assert httpx.get(f"{server.url}/v1/models/mlp/versions/1").json()["model_version_status"][0]["version"] == "1"
    assert httpx.get(f"{server.url}/v1/models/mlp/labels/canary").json()["model_version_status"][0]["version"] == "2"
    md = httpx.get(f"{server.url}/v1/models/mlp/metadata").json()
    assert md["model_spec"] == {"name": "mlp", "signature_name": "", "version": "1"}
    sig = md["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["input"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in sig["inputs"]["input"]["tensor_shape"]["dim"]] == ["-1", "8"]
    assert [d["size"] for d in sig["outputs"]["output"]["tensor_shape"]["dim"]] == ["-1", "3"]


# -- KServe V2 REST ------------------------------------------------------------------------------------
def test_v2_health_server_and_model_metadata(server):
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    assert httpx.get(f"{server.url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{server.url}/v2").json()["name"] == "neurona"
    md = httpx.get(f"{server.url}/v2/models/two").json()
    assert md["versions"] == ["1"] and md["platform"] == "neurona"
    assert md["inputs"] == [{"name": "a", "datatype": "FP32", "shape": [-1, 4]},
                            {"name": "b", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in md["outputs"]] == ["sum_head", "b_head"]
    assert httpx.get(f"{server.url}/v2/models/mlp/versions/2/ready").status_code == 200
    assert httpx.get(f"{server.url}/v2/models/mlp/versions/7/ready").status_code == 400
    assert httpx.get(f"{server.url}/v2/models/nope/ready").status_code == 404


def test_v2_infer_json_and_binary(server, ref, x):
    body = {"id": "req-1", "inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                       "data": x.ravel().tolist()}]}
    r = httpx.post(f"{server.url}/v2/models/mlp/versions/2/infer", json=body).json()
    assert r["model_name"] == "mlp" and r["model_version"] == "2" and r["id"] == "req-1"
    (out,) = r["outputs"]
    assert out["name"] == "output" and out["datatype"] == "FP32" and out["shape"] == [5, 3]
    _close(np.reshape(out["data"], out["shape"]), ref["mlp", 2].predict(x))
    # the binary-tensor extension, through neurona's Client (and below through tritonclient)
    with Client(server.url) as c:
        outputs, version = c.infer("mlp", x, version=1)
    assert version == 1 and outputs["output"].dtype == np.float32
    _close(outputs["output"], ref["mlp", 1].predict(x))


# -- gRPC through the stubs built from the committed descriptor set ---------------------------------------
def test_grpc_stub_all_methods(server, ref, x):
    m = P.messages()
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
        stub = P.GRPCInferenceServiceStub(ch)
        assert stub.ServerLive(m["ServerLiveRequest"]()).live
        assert stub.ServerReady(m["ServerReadyRequest"]()).ready
        assert stub.ModelReady(m["ModelReadyRequest"](name="mlp", version="2")).ready
        assert not stub.ModelReady(m["ModelReadyRequest"](name="mlp", version="9")).ready
        assert "binary_tensor_data" in stub.ServerMetadata(m["ServerMetadataRequest"]()).extensions
        md = stub.ModelMetadata(m["ModelMetadataRequest"](name="mlp"))
        assert list(md.versions) == ["1", "2"] and list(md.inputs[0].shape) == [-1, 8]
        req = m["ModelInferRequest"](model_name="mlp", model_version="2", id="g1")
        req.inputs.add(name="input", datatype="FP32", shape=list(x.shape))
        req.raw_input_contents.append(x.tobytes())
        resp = stub.ModelInfer(req, timeout=10)
        assert resp.id == "g1" and resp.model_version == "2" and list(resp.outputs[0].shape) == [5, 3]
        _close(np.frombuffer(resp.raw_output_contents[0], "<f4").reshape(5, 3), ref["mlp", 2].predict(x))
        # typed contents instead of raw bytes
        req = m["ModelInferRequest"](model_name="mlp")
        t = req.inputs.add(name="input", datatype="FP32", shape=list(x.shape))
        t.contents.fp32_contents.extend(x.ravel().tolist())
        resp = stub.ModelInfer(req, timeout=10)
        _close(np.frombuffer(resp.raw_output_contents[0], "<f4").reshape(5, 3), ref["mlp", 1].predict(x))
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(m["ModelInferRequest"](model_name="nope"), timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        bad = m["ModelInferRequest"](model_name="mlp")
        bad.inputs.add(name="input", datatype="FP32", shape=[2, 8])
        bad.raw_input_contents.append(b"\0" * 12)
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(bad, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "input 'input'" in e.value.details()


# -- the real tritonclient, default settings -----------------------------------------------------------------
def test_tritonclient_http(server, ref, x):
    tc = pytest.importorskip("tritonclient.http")
    client = tc.InferenceServerClient(f"127.0.0.1:{server.rest_port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("mlp")
    assert client.get_model_metadata("mlp")["inputs"][0]["shape"] == [-1, 8]
    inp = tc.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)  # binary_data=True by default
    res = client.infer("mlp", [inp])
    _close(res.as_numpy("output"), ref["mlp", 1].predict(x))
    res = client.infer("mlp", [inp], model_version="2", outputs=[tc.InferRequestedOutput("output", binary_data=False)])
    _close(res.as_numpy("output"), ref["mlp", 2].predict(x))
    a = tc.InferInput("a", [2, 4], "FP32")
    a.set_data_from_numpy(np.ones((2, 4), np.float32))
    b = tc.InferInput("b", [2, 4], "FP32")
    b.set_data_from_numpy(np.zeros((2, 4), np.float32), binary_data=False)
    res = client.infer("two", [a, b])
    want = ref["two", 1].predict([np.ones((2, 4), np.float32), np.zeros((2, 4), np.float32)])
    _close(res.as_numpy("sum_head"), want[0])
    _close(res.as_numpy("b_head"), want[1])
    client.close()


def test_tritonclient_grpc(server, ref, x):
    tg = pytest.importorskip("tritonclient.grpc")
    from tritonclient.utils import InferenceServerException

    client = tg.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("mlp", "2")
    assert client.get_model_metadata("mlp").versions == ["1", "2"]
    inp = tg.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    _close(client.infer("mlp", [inp]).as_numpy("output"), ref["mlp", 1].predict(x))
    _close(client.infer("mlp", [inp], model_version="2").as_numpy("output"), ref["mlp", 2].predict(x))
    bad = tg.InferInput("input", [5, 7], "FP32")
    bad.set_data_from_numpy(np.zeros((5, 7), np.float32))
    with pytest.raises(InferenceServerException, match="INVALID_ARGUMENT.*input 'input'"):
        client.infer("mlp", [bad])
    wrong_type = tg.InferInput("input", [1, 8], "FP64")
    wrong_type.set_data_from_numpy(np.zeros((1, 8), np.float64))
    with pytest.raises(InferenceServerException, match="FP64 does not match the model's FP32"):
        client.infer("mlp", [wrong_type])
    client.close()


# -- bad requests: 4xx with a message naming the problem, never a 500 ----------------------------------------
def _v2(shape, data, datatype="FP32", name="input"):
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]}


_BIN_HEAD = json.dumps({"inputs": [{"name": "input", "shape": [1, 8], "datatype": "FP32",
                                                     "parameters": {"binary_data_size": 32}}]}).encode()
BAD = [  # (method, path, body, headers, status, words in the message)
    ("post", "/v1/models/mlp:predict", b"{not json", {}, 400, "malformed JSON"),
    ("post", "/v1/models/mlp:predict", b"[1, 2]", {}, 400, "JSON object"),
    ("post", "/v1/models/mlp:predict", {}, {}, 400, "'instances'"),
    ("post", "/v1/models/mlp:predict", {"instances": [], }, {}, 400, "non-empty"),
    ("post", "/v1/models/mlp:predict", {"instances": [[1.0] * 7]}, {}, 400, "input 'input': shape [1, 7]"),
    ("post", "/v1/models/mlp:predict", {"instances": [[1.0] * 8, [1.0] * 7]}, {}, 400, "regular array"),
    ("post", "/v1/models/mlp:predict", {"instances": [["a"] * 8]}, {}, 400, "numbers"),
    ("post", "/v1/models/mlp:predict", {"instances": [[1.0] * 8] * 65}, {}, 400, "65 rows"),
    ("post", "/v1/models/mlp:predict", {"instances": [[1.0] * 8], "inputs": [[1.0] * 8]}, {}, 400, "exactly one"),
    ("post", "/v1/models/two:predict", {"instances": [{"a": [1.0] * 4}]}, {}, 400, "input 'b' is missing"),
    ("post", "/v1/models/nope:predict", {"instances": [[1.0]]}, {}, 404, "no model named 'nope'"),
    ("post", "/v1/models/mlp/versions/9:predict", {"instances": [[1.0] * 8]}, {}, 404, "no loaded version 9"),
    ("post", "/v1/models/mlp/versions/x:predict", {"instances": [[1.0] * 8]}, {}, 400, "integer"),
    ("post", "/v1/models/mlp/labels/gold:predict", {"instances": [[1.0] * 8]}, {}, 404, "no label 'gold'"),
    ("post", "/v2/models/mlp/infer", {"inputs": []}, {}, 400, "non-empty 'inputs'"),
    ("post", "/v2/models/mlp/infer", _v2([1, 8], [0.0] * 7), {}, 400, "holds 7 values"),
    ("post", "/v2/models/mlp/infer", _v2([1, 8], [0.0] * 8, "FP64"), {}, 400, "FP64 does not match"),
    ("post", "/v2/models/mlp/infer", _v2([1, 8], [0.0] * 8, "STRING"), {}, 400, "unsupported datatype"),
    ("post", "/v2/models/mlp/infer", _v2([1, 8], [0.0] * 8, name="x"), {}, 400, "unexpected ['x']"),
    ("post", "/v2/models/mlp/infer", _v2([-1, 8], [0.0] * 8), {}, 400, "non-negative"),
    ("post", "/v2/models/mlp/infer", _BIN_HEAD + b"\0" * 16, {"Inference-Header-Content-Length": str(len(_BIN_HEAD))},
     400, "binary_data_size 32"),
    ("post", "/v2/models/mlp/infer", b"{}", {"Inference-Header-Content-Length": "99"}, 400, "outside the body"),
    ("post", "/v1/models/mlp:predict", b"[" + b"0," * 200_000 + b"0]", {}, 413, "at most 262144"),
    ("put", "/v1/admin/models/mlp/labels/stable", {"version": 9}, {}, 400, "9 is not loaded"),
    ("put", "/v1/admin/models/mlp/canary", {"weight": 2}, {}, 400, "[0, 1]"),
]


@pytest.mark.parametrize("method,path,body,headers,status,words", BAD, ids=[f"{b[1]}-{b[5]}" for b in BAD])
def test_bad_requests_get_4xx_with_a_message(server, method, path, body, headers, status, words):
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = httpx.request(method.upper(), server.url + path, headers=headers, **kw)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_metrics_and_request_log(server, x):
    httpx.post(f"{server.url}/v1/models/mlp/versions/2:predict", json={"instances": x[:2].tolist()})
    httpx.post(f"{server.url}/v1/models/nope:predict", json={"instances": x[:2].tolist()})  # 404
    httpx.post(f"{server.url}/v1/models/mlp:predict", json={"instances": [[1.0]]})  # 400
    text = httpx.get(f"{server.url}/metrics").text
    assert 'neurona_serving_requests_total{model="mlp",protocol="rest-tf",status="200",version="2"}' in text
    assert 'neurona_serving_requests_total{model="_unknown",protocol="rest-tf",status="404",version=""}' in text
    assert 'neurona_serving_request_latency_seconds_bucket{le="0.5",model="mlp",protocol="rest-tf",version="2"}' in text
    assert 'neurona_serving_loaded_versions{model="mlp"} 2.0' in text
    assert "neurona_serving_queue_depth" in text and "neurona_serving_batch_size_bucket" in text
    records = [json.loads(line) for line in server.log_path.read_text().splitlines()]
    ok = [r for r in records if r["status"] == 200 and r["version"] == 2 and r["protocol"] == "rest-tf"]
    assert ok and set(ok[-1]) >= {"ts", "request_id", "model", "latency_ms", "inputs", "outputs"}
    assert ok[-1]["inputs"]["input"]["shape"] == [2, 8]
    _close(ok[-1]["inputs"]["input"]["values"], x[:2])
    assert ok[-1]["outputs"]["output"]["shape"] == [2, 3]
    bad = [r for r in records if r["status"] == 400]
    assert bad and "error" in bad[-1]


def test_openapi_spec_lists_both_protocols(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/models/{name}:predict" in spec["paths"] and "/v2/models/{name}/infer" in spec["paths"]
    assert "requestBody" in spec["paths"]["/v2/models/{name}/infer"]["post"]


def test_auth_token(repo):
    models = [ModelConfig("mlp", str(repo / "mlp"))]
    with ModelServer(models, rest_port=0, grpc_port=0, poll_seconds=0, auth_token="s3cret") as srv:
        body = {"instances": [[0.0] * 8]}
        assert httpx.get(f"{srv.url}/v2/health/ready").status_code == 200  # probes stay open
        r = httpx.post(f"{srv.url}/v1/models/mlp:predict", json=body)
        assert r.status_code == 401 and "Bearer" in r.json()["error"]
        assert httpx.post(f"{srv.url}/v1/models/mlp:predict", json=body,
                          headers={"Authorization": "Bearer s3cret"}).status_code == 200
        with Client(srv.url, grpc_address=f"127.0.0.1:{srv.grpc_port}", token="s3cret") as c:
            assert c.infer("mlp", np.zeros((1, 8), np.float32), protocol="grpc")[1] == 2  # latest
        with Client(srv.url, grpc_address=f"127.0.0.1:{srv.grpc_port}", token="wrong") as c:
            with pytest.raises(Exception, match="UNAUTHENTICATED"):
                c.infer("mlp", np.zeros((1, 8), np.float32), protocol="grpc")


def test_descriptor_set_matches_the_proto(tmp_path):
    """The committed grpc_predict_v2.desc is what protoc makes of grpc_predict_v2.proto."""
    pytest.importorskip("grpc_tools")
    from google.protobuf import descriptor_pb2

    from neurona.serving.protogen import build_descriptor_set

    fresh = descriptor_pb2.FileDescriptorSet.FromString(build_descriptor_set(tmp_path / "v2.desc").read_bytes())
    committed = descriptor_pb2.FileDescriptorSet.FromString(P.DESCRIPTOR_SET.read_bytes())
    assert fresh == committed
    service = committed.file[0].service[0]
    assert (committed.file[0].package, service.name) == ("inference", "GRPCInferenceService")
    assert [m.name for m in service.method] == [m for m, _, _ in P.GRPC_METHODS]


def test_import_neurona_loads_no_server_dependency():
    code = ("import sys, neurona, neurona.models, neurona.saving; "
            "bad = [m for m in ('fastapi', 'uvicorn', 'grpc', 'prometheus_client', 'neurona.serving') "
            "if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cli_help():
    r = subprocess.run([sys.executable, "-m", "neurona.serving", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--model-base-path" in r.stdout and "--enable-batching" in r.stdout


def test_tls_rest_and_grpc(repo, tmp_path):
    """HTTPS and gRPC over TLS with a self-signed certificate for 127.0.0.1 (made by openssl)."""
    import shutil
    import ssl

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    models = [ModelConfig("mlp", str(repo / "mlp"))]
    with ModelServer(models, rest_port=0, grpc_port=0, poll_seconds=0, tls_certfile=str(cert),
                     tls_keyfile=str(key)) as srv:
        assert srv.url.startswith("https://")
        r = httpx.post(f"{srv.url}/v1/models/mlp:predict", json={"instances": [[0.0] * 8]},
                       verify=ssl.create_default_context(cafile=str(cert)))
        assert r.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{srv.url}/v2/health/live")  # the system's trust store does not know the certificate
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{srv.grpc_port}", creds) as ch:
            assert P.GRPCInferenceServiceStub(ch).ServerLive(P.messages()["ServerLiveRequest"](), timeout=10).live
